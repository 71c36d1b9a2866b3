package infisical

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

const k8sIdentity = "7d3c1f0a-5b2e-4c11-9a8d-0000000000k8"

// k8sEnv is a server with a Kubernetes identity that may read the project
// and a client logging in with the JWT file it returns.
func k8sEnv(t *testing.T, policy TokenPolicy, accepted ...string) (*testEnv, *Client, string) {
	t.Helper()
	e := newEnv(t)
	e.srv.AddKubernetesIdentity(k8sIdentity, accepted...)
	e.srv.Grant(k8sIdentity, e.proj, infisicaltest.PermRead)
	jwtFile := filepath.Join(t.TempDir(), "token")
	c := e.client(t, "", "", func(cfg *Config) {
		cfg.AuthMethod, cfg.IdentityID, cfg.KubernetesTokenPath, cfg.TokenPolicy = AuthKubernetes, k8sIdentity, jwtFile, policy
	})
	return e, c, jwtFile
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Replace by rename, as kubelet's atomic writer does.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesAuthRereadsRotatedJWT(t *testing.T) {
	for _, policy := range []TokenPolicy{TokenPerCycle, TokenRenew} {
		t.Run(policy.String(), func(t *testing.T) {
			e, c, jwtFile := k8sEnv(t, policy, "jwt-first")
			ctx := context.Background()
			writeFile(t, jwtFile, "jwt-first\n")
			if err := c.BeginCycle(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
				t.Fatal(err)
			}
			// kubelet rotates the token: the old one stops working.
			e.srv.SetKubernetesJWTs(k8sIdentity, "jwt-second")
			writeFile(t, jwtFile, "jwt-second")
			if policy == TokenPerCycle {
				if err := c.BeginCycle(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				e.srv.ExpireAllTokens() // the renewed session ends; the next call logs in again
			}
			if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
				t.Fatal(err)
			}
			if got := e.srv.KubernetesLoginJWTs(); !slices.Equal(got, []string{"jwt-first", "jwt-second"}) {
				t.Fatalf("server saw logins with %q, want the first then the rotated JWT", got)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := e.srv.LiveTokens(k8sIdentity); n != 0 {
				t.Errorf("%d tokens left after Close: the client's own tokens are revoked", n)
			}
		})
	}
}

func TestKubernetesAuthWrongJWT(t *testing.T) {
	const canary = "eyJCANARY-jwt-5c2e1d.payload.sig"
	e, c, jwtFile := k8sEnv(t, TokenPerCycle, "the-right-jwt")
	writeFile(t, jwtFile, canary)
	_, err := c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"})
	var ae *APIError
	if !errors.Is(err, ErrAuthFailed) || !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("err %v, want a 401 authentication failure (EACCES)", err)
	}
	msg := err.Error()
	for _, want := range []string{"Kubernetes token not authenticated", k8sIdentity, jwtFile} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, canary) || strings.Contains(e.logs.String(), canary) || strings.Contains(e.logs.String(), "CANARY") {
		t.Fatalf("the JWT leaked:\nerror: %s\nlogs:\n%s", msg, e.logs.String())
	}
	if got := e.srv.KubernetesLoginJWTs(); !slices.Equal(got, []string{canary}) {
		t.Fatalf("server saw %q", got)
	}

	// An unreadable token file is its own clear error, with no request.
	e.srv.ResetRequests()
	c2 := e.client(t, "", "", func(cfg *Config) {
		cfg.AuthMethod, cfg.IdentityID, cfg.KubernetesTokenPath = AuthKubernetes, k8sIdentity, filepath.Join(t.TempDir(), "absent")
	})
	_, err = c2.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"})
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "read the Kubernetes service-account token") {
		t.Fatalf("missing file: %v", err)
	}
	if n := len(e.srv.Requests()); n != 0 {
		t.Errorf("%d requests without a JWT", n)
	}
	// An identity without Kubernetes auth: the 404 is an auth failure too.
	c3 := e.client(t, "", "", func(cfg *Config) {
		cfg.AuthMethod, cfg.IdentityID, cfg.KubernetesTokenPath = AuthKubernetes, "no-such-identity", jwtFile
	})
	_, err = c3.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"})
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "did you configure Kubernetes auth") {
		t.Fatalf("unknown identity: %v", err)
	}
}

func tokenClient(e *testEnv, t *testing.T, mod func(*Config)) *Client {
	return e.client(t, "", "", func(cfg *Config) {
		cfg.AuthMethod = AuthToken
		mod(cfg)
	})
}

func TestTokenAuthRenewsAndNeverRevokes(t *testing.T) {
	e := newEnv(t)
	tok := e.srv.IssueToken(testID, time.Hour, 24*time.Hour)
	ctx := context.Background()
	// The default per-cycle policy does not apply to a given token.
	c := tokenClient(e, t, func(cfg *Config) { cfg.Token = tok; cfg.TokenPolicy = TokenPerCycle })
	for range 3 {
		if err := c.BeginCycle(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, l := e.srv.Count("POST", routeRenew), e.srv.Count("POST", "/api/v1/auth/universal-auth"); n != 1 || l != 0 {
		t.Fatalf("%d renewals and %d logins for three cycles, want the one renewal that learns the TTL", n, l)
	}
	// At two thirds of the TTL the next cycle renews.
	e.clock.Add(41 * time.Minute)
	if err := c.BeginCycle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Count("POST", routeRenew); n != 2 {
		t.Fatalf("%d renewals after 2/3 of the TTL, want 2", n)
	}
	// Well past the original hour the renewed token still works.
	e.clock.Add(40 * time.Minute)
	if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Count("POST", routeRevoke); n != 0 {
		t.Fatalf("%d revocations: the given token is the user's", n)
	}
	if n := e.srv.LiveTokens(testID); n != 1 {
		t.Fatalf("live tokens %d after Close, want the user's one", n)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Fatal("the access token appears in the logs")
	}
}

func TestTokenAuthExpired(t *testing.T) {
	e := newEnv(t)
	tok := e.srv.IssueToken(testID, time.Minute, time.Hour)
	c := tokenClient(e, t, func(cfg *Config) { cfg.Token = tok })
	e.clock.Add(2 * time.Minute)
	_, err := c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"})
	if !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("err %v, want ErrTokenExpired", err)
	}
	if !strings.Contains(err.Error(), "the access token given with INFISICAL_TOKEN has expired; issue a new one") {
		t.Fatalf("error %q is not the clear message", err)
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(e.logs.String(), tok) {
		t.Fatal("the access token leaked")
	}
	if n := e.srv.Count("GET", "/api/v4/secrets"); n != 0 {
		t.Errorf("%d list requests with an expired token", n)
	}
}

func TestTokenAuthMidSessionExpiryRereadsFile(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, e.srv.IssueToken(testID, time.Minute, time.Minute)+"\n")
	c := tokenClient(e, t, func(cfg *Config) { cfg.TokenFile = file })
	ctx := context.Background()
	if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	// Past its max TTL the token can neither be renewed nor used.
	e.clock.Add(2 * time.Minute)
	_, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
	if !errors.Is(err, ErrTokenExpired) || !strings.Contains(err.Error(), "the access token in "+file+" (INFISICAL_TOKEN_FILE) has expired") {
		t.Fatalf("expired: %v", err)
	}
	// The user puts a new token in the file; the next login reads it.
	writeFile(t, file, e.srv.IssueToken(testID, time.Hour, 0))
	c.ResetLoginBackoff()
	if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
		t.Fatalf("with the new token: %v", err)
	}
}

func TestTokenAuthNotRenewable(t *testing.T) {
	e := newEnv(t)
	// No expiry of its own but past its max TTL: renewal is refused
	// (401 "…due to Max TTL expiration") while the token still works.
	tok := e.srv.IssueToken(testID, 0, time.Minute)
	e.clock.Add(90 * time.Second)
	c := tokenClient(e, t, func(cfg *Config) { cfg.Token = tok })
	if _, err := c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
		t.Fatalf("a valid token that cannot be renewed: %v", err)
	}
	if !strings.Contains(e.logs.String(), "cannot be renewed; using it until it expires") {
		t.Errorf("no log line says the token is used as is:\n%s", e.logs.String())
	}
}

func TestAuthConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AuthMethod: AuthKubernetes}, "machine identity id"},
		{Config{AuthMethod: AuthToken}, "needs an access token"},
		{Config{AuthMethod: AuthToken, Token: "a", TokenFile: "/f"}, "not both"},
		{Config{AuthMethod: "ldap"}, `unknown auth method "ldap"`},
	} {
		tc.cfg.SiteURL = "http://127.0.0.1:1"
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg.AuthMethod, err, tc.want)
		}
	}
	c, err := New(Config{SiteURL: "http://127.0.0.1:1", AuthMethod: AuthKubernetes, IdentityID: "x"})
	if err != nil || c.auth.(kubernetesAuth).tokenPath != DefaultKubernetesTokenPath {
		t.Fatalf("default JWT path: %v", err)
	}
}

func TestTokenAuthRevoked(t *testing.T) {
	e := newEnv(t)
	tok := e.srv.IssueToken(testID, time.Hour, 0)
	c := tokenClient(e, t, func(cfg *Config) { cfg.Token = tok })
	ctx := context.Background()
	if _, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	e.srv.RevokeAllTokens()
	_, err := c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
	if !errors.Is(err, ErrAuthFailed) ||
		!strings.Contains(err.Error(), "the access token given with INFISICAL_TOKEN was refused: No identity access token found") {
		t.Fatalf("revoked: %v", err)
	}
	if n := e.srv.Count("POST", "/api/v1/auth/universal-auth"); n != 0 {
		t.Fatalf("%d universal logins by a token client", n)
	}
}
