package infisical

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func listOnce(e *testEnv) error {
	_, err := e.c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"})
	return err
}

func TestFirstCallLogsIn(t *testing.T) {
	e := newEnv(t)
	if err := listOnce(e); err != nil {
		t.Fatal(err)
	}
	got := e.methods()
	if len(got) != 2 || got[0] != "POST "+routeLogin || !strings.HasPrefix(got[1], "GET /api/v4/secrets") {
		t.Fatalf("requests %v", got)
	}
}

func TestConcurrentCallsShareOneLogin(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- listOnce(e) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.Count("POST", routeLogin); n != 1 {
		t.Fatalf("%d logins", n)
	}
}

func TestTransparentRelogin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(e *testEnv)
	}{
		{"expired token (403 TokenError)", func(e *testEnv) { e.srv.ExpireAllTokens() }},
		{"revoked token (401)", func(e *testEnv) { e.srv.RevokeAllTokens() }},
		{"token past TTL by the clock", func(e *testEnv) { e.srv.SetTokenTTL(time.Minute, time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.name == "token past TTL by the clock" {
				tc.break_(e)
				e.login(t)
				e.clock.Add(2 * time.Minute)
			} else {
				e.login(t)
				tc.break_(e)
			}
			if err := listOnce(e); err != nil {
				t.Fatal(err)
			}
			got := e.methods()
			if len(got) != 3 || got[1] != "POST "+routeLogin {
				t.Fatalf("requests %v, want refused GET, login, GET", got)
			}
		})
	}
}

func TestAuthFailsAfterOneRelogin(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	e.srv.FailPath("GET", "/api/v4/secrets", 401, -1)
	err := listOnce(e)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err %v", err)
	}
	var ae *APIError
	errors.As(err, &ae)
	if ae.Remedy != authRemedy {
		t.Fatalf("remedy %q", ae.Remedy)
	}
	if n, l := e.srv.Count("GET", "/api/v4"), e.srv.Count("POST", routeLogin); n != 2 || l != 1 {
		t.Fatalf("%d GETs and %d logins, want 2 and 1", n, l)
	}
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, id, secret string
		msg              string
		requests         int
	}{
		{"wrong secret", testID, "wrong", "Invalid credentials", 1},
		{"unknown id", "nobody", "x", "Invalid credentials", 1},
		{"no credentials", "", "", "no client id", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.ResetRequests()
			c := e.client(t, tc.id, tc.secret)
			err := c.BeginCycle(context.Background())
			var ae *APIError
			if !errors.As(err, &ae) || ae.Err != ErrAuthFailed {
				t.Fatalf("err %v", err)
			}
			if !strings.Contains(ae.Message, tc.msg) || ae.Remedy == "" {
				t.Fatalf("error %v", err)
			}
			if n := len(e.srv.Requests()); n != tc.requests {
				t.Fatalf("%d requests", n)
			}
		})
	}
}

// A wrong secret must never drive the client id into the server's lockout
// (3 failures within 30 s): failed logins back off, doubling.
func TestLoginBackoffAvoidsLockout(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, testID, "wrong", func(cfg *Config) { cfg.Retry.LoginBackoff = 15 * time.Second })
	ctx := context.Background()
	attempt := func() int {
		e.srv.ResetRequests()
		if err := c.BeginCycle(ctx); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("BeginCycle: %v", err)
		}
		return e.srv.Count("POST", routeLogin)
	}
	// Failure 1 at t=0: backoff 15 s.
	if n := attempt(); n != 1 {
		t.Fatalf("first attempt sent %d logins", n)
	}
	for _, step := range []struct {
		advance time.Duration
		sends   int
	}{
		{5 * time.Second, 0},  // t=5: within 15 s
		{10 * time.Second, 1}, // t=15: failure 2, backoff 30 s
		{20 * time.Second, 0}, // t=35
		{10 * time.Second, 1}, // t=45: failure 3, backoff 60 s
		{59 * time.Second, 0},
		{time.Second, 1}, // t=105: failure 4
	} {
		e.clock.Add(step.advance)
		if n := attempt(); n != step.sends {
			t.Fatalf("after +%v: %d logins, want %d", step.advance, n, step.sends)
		}
	}
	// The right secret works at once: the client id was never locked.
	c.SetCredentials(testID, testSecret)
	if err := c.BeginCycle(ctx); err != nil {
		t.Fatalf("login after rotation: %v", err)
	}
	if err := c.BeginCycle(ctx); err != nil {
		t.Fatalf("second cycle: %v", err)
	}
}

func TestLockedOutAnswerSaysSo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for range 3 { // fresh clients: no shared backoff
		_ = e.client(t, testID, "wrong").BeginCycle(ctx)
	}
	err := e.c.BeginCycle(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Err != ErrAuthFailed {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(ae.Message, "temporarily locked") || !strings.Contains(ae.Remedy, "locked this client id for 5 minutes") {
		t.Fatalf("error does not say locked: %v", err)
	}
	// The client waits out the lock instead of prolonging it.
	e.srv.ResetRequests()
	e.clock.Add(4 * time.Minute)
	if err := e.c.BeginCycle(ctx); err == nil || len(e.srv.Requests()) != 0 {
		t.Fatalf("tried during the lock: %v, %d requests", err, len(e.srv.Requests()))
	}
	e.clock.Add(time.Minute + time.Second)
	if err := e.c.BeginCycle(ctx); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

func TestTokenPerCycleRevokesPrevious(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for range 3 {
		if err := e.c.BeginCycle(ctx); err != nil {
			t.Fatal(err)
		}
		if err := listOnce(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.LiveTokens(testID); n != 1 {
		t.Fatalf("%d live tokens", n)
	}
	if l, r := e.srv.Count("POST", routeLogin), e.srv.Count("POST", routeRevoke); l != 3 || r != 2 {
		t.Fatalf("%d logins, %d revokes", l, r)
	}
	if err := e.c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.LiveTokens(testID); n != 0 {
		t.Fatalf("%d live tokens after Close", n)
	}
	// A closed client logs in again on its next call.
	if err := listOnce(e); err != nil {
		t.Fatal(err)
	}
}

func TestTokenRenew(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TokenPolicy = TokenRenew })
	e.srv.SetTokenTTL(90*time.Second, 5*time.Minute)
	ctx := context.Background()
	counts := func() (int, int, int) {
		return e.srv.Count("POST", routeLogin), e.srv.Count("POST", routeRenew), e.srv.Count("POST", routeRevoke)
	}
	cycle := func(advance time.Duration, login, renew, revoke int) {
		t.Helper()
		e.clock.Add(advance)
		if err := e.c.BeginCycle(ctx); err != nil {
			t.Fatal(err)
		}
		if err := listOnce(e); err != nil {
			t.Fatal(err)
		}
		if l, r, v := counts(); l != login || r != renew || v != revoke {
			t.Fatalf("at %v: logins %d renews %d revokes %d, want %d %d %d",
				e.clock.Now().Format(time.TimeOnly), l, r, v, login, renew, revoke)
		}
	}
	cycle(0, 1, 0, 0)              // t=0 login
	cycle(30*time.Second, 1, 0, 0) // t=30: before 2/3 of 90 s
	cycle(30*time.Second, 1, 1, 0) // t=60: renew
	cycle(30*time.Second, 1, 1, 0) // t=90: renewed at 60
	cycle(30*time.Second, 1, 2, 0) // t=120: renew
	cycle(60*time.Second, 1, 3, 0) // t=180: renew
	cycle(60*time.Second, 1, 4, 0) // t=240: renew (expiry now capped at max TTL 300)
	cycle(30*time.Second, 2, 4, 1) // t=270: max TTL near: log in, revoke the old token
	if n := e.srv.LiveTokens(testID); n != 1 {
		t.Fatalf("%d live tokens", n)
	}
	cycle(10*time.Minute, 3, 4, 1) // long pause: token expired, log in without renew or revoke
	if n := e.srv.LiveTokens(testID); n != 1 {
		t.Fatalf("%d live tokens", n)
	}
}

func TestRotatedSecret(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	e.srv.AddIdentity(testID, "rotated")
	e.srv.RevokeAllTokens()
	if err := listOnce(e); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old secret: %v", err)
	}
	e.c.SetCredentials(testID, "rotated")
	if err := listOnce(e); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}
