package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// A mount with auth_method kubernetes logs in with the service-account
// JWT file and rereads it at every login: after kubelet rotates it (the
// old JWT refused from then on), the next cycle logs in with the new one
// and the mount follows a change. No client id or secret is configured.
func TestKubernetesAuthMount(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	const identity = "k8s-identity-1"
	srv.AddKubernetesIdentity(identity, "jwt-one")
	srv.Grant(identity, pid, infisicaltest.PermRead)
	tmp := t.TempDir()
	jwt := filepath.Join(tmp, "token")
	if err := os.WriteFile(jwt, []byte("jwt-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv, tmp)
	cfg.ClientID, cfg.ClientSecret = "", ""
	cfg.AuthMethod, cfg.IdentityID, cfg.KubernetesTokenPath = config.AuthKubernetes, identity, jwt
	cfg.ReadOnly = true
	mnt := mkMount(t, tmp)
	d, _ := startLogged(t, cfg, mnt)
	key := filepath.Join(mnt, "webshop/dev/DATABASE_URL")
	if got := readFile(t, key); got != "postgres://dev" {
		t.Fatalf("read %q", got)
	}
	// kubelet rotates the projected token, replacing the file by rename.
	srv.SetKubernetesJWTs(identity, "jwt-two")
	if err := os.WriteFile(jwt+".new", []byte("jwt-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(jwt+".new", jwt); err != nil {
		t.Fatal(err)
	}
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://after-rotation")
	syncNow(t, d)
	if got := readFile(t, key); got != "postgres://after-rotation" {
		t.Errorf("after the JWT rotation read %q", got)
	}
	logins := srv.KubernetesLoginJWTs()
	if len(logins) < 2 || logins[0] != "jwt-one" || logins[len(logins)-1] != "jwt-two" || slices.Contains(logins[1:], "jwt-one") {
		t.Errorf("the server saw Kubernetes logins with %q: want jwt-one first, then only the rotated jwt-two", logins)
	}
	if n := srv.Count("POST", "/api/v1/auth/universal-auth/login"); n != 0 {
		t.Errorf("%d universal-auth logins from a Kubernetes-auth mount", n)
	}
}

// Token auth: a given access token mounts; an expired one stops the start
// with a clear error that never shows the token, and nothing is mounted.
func TestTokenAuthMount(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, _ := testServer(t)
	var mu sync.Mutex
	now := time.Now()
	srv.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	tmp := t.TempDir()
	tok := srv.IssueToken(clientID, time.Hour, 24*time.Hour)
	cfg := testConfig(srv, tmp)
	cfg.ClientID, cfg.ClientSecret = "", ""
	cfg.AuthMethod = config.AuthToken
	cfg.TokenFile = filepath.Join(tmp, "token")
	if err := os.WriteFile(cfg.TokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := mkMount(t, tmp)
	d, _ := startLogged(t, cfg, mnt)
	if got := readFile(t, filepath.Join(mnt, "webshop/dev/DATABASE_URL")); got != "postgres://dev" {
		t.Fatalf("read %q", got)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	expired := srv.IssueToken(clientID, time.Minute, time.Hour)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	cfg.TokenFile, cfg.Token = "", expired
	logs := &testutil.Buffer{}
	_, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry, Logger: newTextLogger(logs)})
	if err == nil || !strings.Contains(err.Error(), "has expired; issue a new one") {
		t.Fatalf("start with an expired token: %v", err)
	}
	if strings.Contains(err.Error(), expired) || strings.Contains(logs.String(), expired) {
		t.Error("the expired token leaked into the error or the log")
	}
	if mountedAt(t, mnt) {
		t.Error("mounted with an expired token")
	}
}
