package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

const (
	clientID     = "daemon-test"
	clientSecret = "daemon-test-secret-0123456789"
)

var fastRetry = infisical.RetryPolicy{RateLimitWait: time.Millisecond, ServerErrorWait: time.Millisecond,
	MaxRetryAfter: 10 * time.Millisecond, LoginBackoff: time.Millisecond}

func testServer(t *testing.T) (*infisicaltest.Server, string) {
	t.Helper()
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev", "prod")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://dev")
	return srv, pid
}

func testConfig(srv *infisicaltest.Server, dir string) config.Config {
	cfg := config.Default()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = srv.URL(), clientID, clientSecret
	cfg.RefreshInterval = config.Duration{Duration: time.Hour}
	cfg.StateFile = filepath.Join(dir, "state.json")
	return cfg
}

func mountedAt(t *testing.T, path string) bool {
	t.Helper()
	ok, err := IsMounted(path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A bad mountpoint is refused before Infisical is contacted, and nothing
// is left mounted on it.
func TestBadMountpointRefusedBeforeLogin(t *testing.T) {
	srv, _ := testServer(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	nonEmpty := filepath.Join(tmp, "full")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(nonEmpty, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(tmp, "missing"), "does not exist"},
		{file, "not a directory"},
		{nonEmpty, "is not empty"},
	} {
		srv.ResetRequests()
		_, err := Start(context.Background(), Options{Config: testConfig(srv, tmp), Mountpoint: tc.path, Retry: &fastRetry})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.path, err, tc.want)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%s: %d requests reached Infisical before the mountpoint was refused", tc.path, n)
		}
		if mountedAt(t, tc.path) {
			t.Errorf("%s: left mounted", tc.path)
		}
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "keep")); err != nil {
		t.Errorf("the non-empty mountpoint lost its file: %v", err)
	}
}

// A failed first sync leaves nothing mounted and no token alive.
func TestFailedStartLeavesNothing(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, _ := testServer(t)
	tmp := t.TempDir()
	mnt := mkMount(t, tmp)
	cfg := testConfig(srv, tmp)
	cfg.ClientSecret = "wrong-secret-wrong-secret"
	_, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry})
	if err == nil || !strings.Contains(err.Error(), "first sync") {
		t.Fatalf("start with a wrong secret: %v", err)
	}
	if mountedAt(t, mnt) {
		t.Error("left mounted after a failed start")
	}
	cfg = testConfig(srv, tmp)
	cfg.MetricsAddr = "256.0.0.1:1"
	srv.ResetRequests()
	if _, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry}); err == nil || !strings.Contains(err.Error(), "metrics_addr") {
		t.Errorf("unusable metrics address: %v", err)
	}
	if n := len(srv.Requests()); n != 0 || mountedAt(t, mnt) {
		t.Errorf("metrics failure: %d requests, mounted %v", n, mountedAt(t, mnt))
	}
}

// Two views of one Source: one sync loop, both mounts see a change.
func TestTwoViewsShareOneSource(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	tmp := t.TempDir()
	cfg := testConfig(srv, tmp)
	ctx := context.Background()
	src, err := NewSource(ctx, SourceOptions{Config: cfg, Logger: slog.New(slog.DiscardHandler), Retry: &fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var mounts []*Mount
	for i, v := range []View{
		{ReadOnly: true, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())},
		{Flat: true, Project: "webshop", Env: "dev", UID: uint32(os.Getuid()), GID: uint32(os.Getgid())},
	} {
		dir := filepath.Join(tmp, "mnt"+string(rune('a'+i)))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		m, err := src.Mount(dir, v)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m)
	}
	paths := []string{filepath.Join(mounts[0].Dir(), "webshop/dev/DATABASE_URL"), filepath.Join(mounts[1].Dir(), "DATABASE_URL")}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err != nil || string(b) != "postgres://dev" {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://rotated")
	srv.ResetRequests()
	if err := src.Syncer().Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		m.FS().Flush()
	}
	if n := srv.Count("GET", "/api/v4/secrets"); n != 2 { // dev changed, prod 304
		t.Errorf("one sync for two views made %d listings, want 2 (one per environment)", n)
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err != nil || string(b) != "postgres://rotated" {
			t.Errorf("%s after the change: %q %v", p, b, err)
		}
	}
	for _, m := range mounts {
		if err := m.Unmount(); err != nil {
			t.Fatal(err)
		}
		if mountedAt(t, m.Dir()) {
			t.Errorf("%s still mounted", m.Dir())
		}
	}
}

// An unreachable server fails the start at once, naming the URL, instead
// of after the login's retry wait; nothing is mounted.
func TestUnreachableServerFailsAtOnce(t *testing.T) {
	srv, _ := testServer(t)
	url := srv.URL()
	srv.Close()
	tmp := t.TempDir()
	mnt := mkMount(t, tmp)
	cfg := testConfig(srv, tmp)
	cfg.URL = url
	slow := infisical.RetryPolicy{ServerErrorWait: time.Minute, RateLimitWait: time.Minute}
	done := make(chan error, 1)
	go func() {
		_, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &slow})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), url) {
			t.Errorf("start against a closed port: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the start waited out the retry policy (a minute) instead of failing at once")
	}
	if mountedAt(t, mnt) {
		t.Error("left mounted")
	}
}

// Stopping while Infisical is down unmounts and succeeds: the token that
// could not be revoked is logged, not a failed stop (systemd would mark
// the unit failed, the shell would see exit 1).
func TestStopWhileInfisicalIsDown(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, _ := testServer(t)
	tmp := t.TempDir()
	mnt := mkMount(t, tmp)
	d, logs := startLogged(t, testConfig(srv, tmp), mnt)
	srv.SetOutage(true)
	if err := d.Stop(context.Background()); err != nil {
		t.Errorf("stop with Infisical down: %v", err)
	}
	if mountedAt(t, mnt) {
		t.Error("still mounted after stop")
	}
	if !strings.Contains(logs.String(), "could not revoke the access token") {
		t.Errorf("the unrevoked token is not logged:\n%s", logs.String())
	}
}
