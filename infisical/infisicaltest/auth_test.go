package infisicaltest

import (
	"testing"
	"time"
)

func TestStatusNeedsNoAuth(t *testing.T) {
	f := newFixture(t)
	r := f.do("GET", "/api/status", "", nil)
	if r.status != 200 || r.str("message") != "Ok" || r.str("date") == "" {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
}

func TestAuthErrors(t *testing.T) {
	f := newFixture(t)
	path := f.listQ("dev", "/")
	cases := []struct {
		name   string
		hdr    []string
		status int
		errNm  string
		msg    string
	}{
		{"no header", nil, 401, "UnauthorizedError", "Token missing"},
		{"garbage token", []string{"Authorization", "Bearer not-a-token"}, 403, "TokenError", "malformed"},
		{"short header", []string{"Authorization", "Bear"}, 403, "TokenError", "malformed"},
		{"api key", []string{"X-API-Key", "k"}, 400, "BadRequest", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.do("GET", path, "", nil, tc.hdr...), tc.status, tc.errNm, tc.msg)
		})
	}
	if r := f.api("GET", path, nil); r.status != 200 {
		t.Fatalf("valid token: %d %s", r.status, r.raw)
	}
}

func TestLoginErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"unknown client", map[string]any{"clientId": "nobody", "clientSecret": "x"}, 401, "Invalid credentials"},
		{"wrong secret", map[string]any{"clientId": testClientID, "clientSecret": "x"}, 401, "Invalid credentials"},
		{"missing secret", map[string]any{"clientId": testClientID}, 422, "clientSecret"},
		{"not json", []byte("{"), 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.do("POST", "/api/v1/auth/universal-auth/login", "", tc.body), tc.status, "", tc.msg)
		})
	}
	// Credentials are trimmed.
	r := f.do("POST", "/api/v1/auth/universal-auth/login", "",
		map[string]any{"clientId": " " + testClientID + " ", "clientSecret": testClientSecret + "\n"})
	if r.status != 200 || r.str("tokenType") != "Bearer" || r.body["expiresIn"] != float64(2592000) {
		t.Fatalf("trimmed login: %d %s", r.status, r.raw)
	}
}

func TestLoginLockout(t *testing.T) {
	f := newFixture(t)
	bad := map[string]any{"clientId": testClientID, "clientSecret": "wrong"}
	good := map[string]any{"clientId": testClientID, "clientSecret": testClientSecret}
	login := func(b any) resp { return f.do("POST", "/api/v1/auth/universal-auth/login", "", b) }

	// Failures spread over more than 30 s never lock.
	for i := 0; i < 4; i++ {
		wantErr(t, login(bad), 401, "UnauthorizedError", "Invalid credentials")
		f.clock.Advance(16 * time.Second)
	}
	if r := login(good); r.status != 200 {
		t.Fatalf("spread failures locked: %s", r.raw)
	}
	for i := 0; i < 3; i++ {
		wantErr(t, login(bad), 401, "", "Invalid credentials")
	}
	wantErr(t, login(good), 401, "UnauthorizedError", "temporarily locked")
	f.clock.Advance(299 * time.Second)
	wantErr(t, login(good), 401, "", "temporarily locked")
	f.clock.Advance(2 * time.Second)
	if r := login(good); r.status != 200 {
		t.Fatalf("after lock: %d %s", r.status, r.raw)
	}
}

func TestTokenLifecycle(t *testing.T) {
	f := newFixture(t)
	f.s.SetTokenTTL(10*time.Minute, time.Hour)
	tok := f.login(testClientID, testClientSecret)
	path := f.listQ("dev", "/")
	if n := f.s.LiveTokens(testClientID); n != 2 {
		t.Fatalf("LiveTokens = %d, want 2", n)
	}

	// Renew: a new string, fresh expiry; the old string stays valid until its own expiry.
	f.clock.Advance(9 * time.Minute)
	r := f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": tok})
	if r.status != 200 || r.str("accessToken") == tok || r.body["expiresIn"] != float64(600) ||
		r.body["accessTokenMaxTTL"] != float64(3600) {
		t.Fatalf("renew: %d %s", r.status, r.raw)
	}
	renewed := r.str("accessToken")
	if n := f.s.LiveTokens(testClientID); n != 2 {
		t.Fatalf("renew added a token row: LiveTokens = %d", n)
	}
	f.clock.Advance(2 * time.Minute)
	wantErr(t, f.do("GET", path, tok, nil), 403, "TokenError", "Your token has expired. Please re-authenticate.")
	if r := f.do("GET", path, renewed, nil); r.status != 200 {
		t.Fatalf("renewed token: %d %s", r.status, r.raw)
	}
	wantErr(t, f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": tok}), 403, "TokenError", "expired")

	// Expiry is capped by the max TTL (60 min after login).
	for i := 0; i < 6; i++ { // renews at 18, 25, …, 53 min
		f.clock.Advance(7 * time.Minute)
		r = f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": renewed})
		if r.status != 200 {
			t.Fatalf("renew %d: %s", i, r.raw)
		}
		renewed = r.str("accessToken")
	}
	if r.body["expiresIn"] != float64(420) {
		t.Fatalf("capped expiresIn = %v, want 420", r.body["expiresIn"])
	}
	f.clock.Advance(3 * time.Minute)
	r = f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": renewed})
	if r.body["expiresIn"] != float64(240) {
		t.Fatalf("capped expiresIn = %v, want 240", r.body["expiresIn"])
	}
	renewed = r.str("accessToken")
	f.clock.Advance(270 * time.Second)
	wantErr(t, f.do("GET", path, renewed, nil), 403, "TokenError", "expired")

	// Past max TTL while the token is still valid → 401.
	f.s.SetTokenTTL(time.Hour, time.Hour)
	t2 := f.login(testClientID, testClientSecret)
	f.clock.Advance(time.Hour - time.Second)
	if r := f.do("GET", path, t2, nil); r.status != 200 {
		t.Fatalf("t2: %s", r.raw)
	}
	f.s.SetTokenTTL(2*time.Hour, time.Minute)
	t3 := f.login(testClientID, testClientSecret)
	f.clock.Advance(30 * time.Second)
	if r := f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": t3}); r.status != 200 {
		t.Fatalf("renew t3: %s", r.raw)
	}
	f.s.SetTokenTTL(2*time.Hour, 0)
	t4 := f.login(testClientID, testClientSecret)
	f.clock.Advance(1000 * time.Hour)
	r = f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": t4})
	if r.status != 403 {
		t.Fatalf("renew expired t4: %d", r.status)
	}
}

func TestRenewPastMaxTTL(t *testing.T) {
	f := newFixture(t)
	f.s.SetTokenTTL(0, time.Minute) // no expiry, max TTL one minute
	tok := f.login(testClientID, testClientSecret)
	f.clock.Advance(2 * time.Minute)
	if r := f.api("GET", f.listQ("dev", "/"), nil); r.status != 200 {
		t.Fatalf("non-expiring token: %d", r.status)
	}
	wantErr(t, f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": tok}),
		401, "UnauthorizedError", "Max TTL")
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	tok := f.login(testClientID, testClientSecret)
	r := f.do("POST", "/api/v1/auth/token/revoke", "", map[string]any{"accessToken": tok})
	if r.status != 200 || r.str("message") != "Successfully revoked access token" {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	wantErr(t, f.do("GET", f.listQ("dev", "/"), tok, nil), 401, "UnauthorizedError", "No identity access token found")
	if n := f.s.LiveTokens(testClientID); n != 1 {
		t.Fatalf("LiveTokens = %d, want 1", n)
	}
	f.s.RevokeAllTokens()
	wantErr(t, f.api("GET", f.listQ("dev", "/"), nil), 401, "", "No identity access token found")
	if n := f.s.LiveTokens(testClientID); n != 0 {
		t.Fatalf("LiveTokens after RevokeAll = %d", n)
	}
}

func TestExpireAllTokens(t *testing.T) {
	f := newFixture(t)
	f.s.SetTokenTTL(0, 0)
	tok := f.login(testClientID, testClientSecret)
	f.s.ExpireAllTokens()
	for _, tk := range []string{f.token, tok} {
		wantErr(t, f.do("GET", f.listQ("dev", "/"), tk, nil), 403, "TokenError", "expired")
	}
	if n := f.s.LiveTokens(testClientID); n != 0 {
		t.Fatalf("LiveTokens = %d", n)
	}
	if tok := f.login(testClientID, testClientSecret); f.do("GET", f.listQ("dev", "/"), tok, nil).status != 200 {
		t.Fatal("fresh login after ExpireAllTokens fails")
	}
}
