package infisicaltest

import (
	"slices"
	"testing"
	"time"
)

const k8sLogin = "/api/v1/auth/kubernetes-auth/login"

func TestKubernetesLogin(t *testing.T) {
	f := newFixture(t)
	const idID = "4a1c6d3e-0000-4000-8000-00000000c8s1"
	f.s.AddKubernetesIdentity(idID, "jwt-one")
	f.s.Grant(idID, f.pid, PermRead)

	r := f.do("POST", k8sLogin, "", map[string]any{"identityId": " " + idID + " ", "jwt": "jwt-one\n"})
	if r.status != 200 || r.str("accessToken") == "" || r.str("tokenType") != "Bearer" {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if l := f.do("GET", "/api/v1/projects", r.str("accessToken"), nil); l.status != 200 || len(l.list("projects")) != 1 {
		t.Fatalf("token use: %d %s", l.status, l.raw)
	}

	// kubelet rotated the token: the old one is refused with the backend's 401.
	f.s.SetKubernetesJWTs(idID, "jwt-two")
	wantErr(t, f.do("POST", k8sLogin, "", map[string]any{"identityId": idID, "jwt": "jwt-one"}),
		401, "KubernetesTokenReviewError", "Kubernetes token not authenticated")
	if r := f.do("POST", k8sLogin, "", map[string]any{"identityId": idID, "jwt": "jwt-two"}); r.status != 200 {
		t.Fatalf("rotated login: %d %s", r.status, r.raw)
	}
	wantErr(t, f.do("POST", k8sLogin, "", map[string]any{"identityId": "unknown", "jwt": "jwt-two"}),
		404, "NotFound", "Kubernetes auth method not found for identity")
	wantErr(t, f.do("POST", k8sLogin, "", map[string]any{"identityId": idID}), 422, "ValidationFailure", "jwt")
	// A Kubernetes identity has no universal auth.
	wantErr(t, f.do("POST", "/api/v1/auth/universal-auth/login", "", map[string]any{"clientId": idID, "clientSecret": ""}),
		401, "", "Invalid credentials")

	// The 422 was refused before any review, so four attempts were seen.
	got := f.s.KubernetesLoginJWTs()
	if want := []string{"jwt-one", "jwt-one", "jwt-two", "jwt-two"}; !slices.Equal(got, want) {
		t.Fatalf("logins %q, want %q", got, want)
	}
	if n := f.s.LiveTokens(idID); n != 2 {
		t.Fatalf("live tokens %d, want 2", n)
	}
}

func TestIssueToken(t *testing.T) {
	f := newFixture(t)
	tok := f.s.IssueToken(testClientID, time.Minute, time.Hour)
	if r := f.do("GET", "/api/v1/projects", tok, nil); r.status != 200 {
		t.Fatalf("issued token: %d %s", r.status, r.raw)
	}
	// Renewable until its max TTL, like a login's token.
	r := f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": tok})
	if r.status != 200 || r.str("accessToken") == "" {
		t.Fatalf("renew: %d %s", r.status, r.raw)
	}
	f.clock.Advance(2 * time.Minute)
	wantErr(t, f.do("GET", "/api/v1/projects", tok, nil), 403, "TokenError", "Your token has expired")
	f.clock.Advance(time.Hour)
	wantErr(t, f.do("POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": r.str("accessToken")}),
		403, "TokenError", "expired")
}
