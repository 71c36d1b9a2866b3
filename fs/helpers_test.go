package fs_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/vault"
)

const (
	clientID     = "test-client"
	clientSecret = "test-client-secret-0123456789"
)

// testMount is one mounted filesystem against an infisicaltest server.
type testMount struct {
	t       testing.TB
	srv     *infisicaltest.Server
	dir     string // the mount point
	stateF  string
	d       *daemon.Daemon
	sync    *syncer.Syncer
	vault   *vault.Vault
	fsys    *fs.FS
	logs    *testutil.Buffer
	project string // ID of project "webshop"
}

type mountConfig struct {
	readOnly    bool
	flat        bool
	trimNewline bool
	tokenPolicy infisical.TokenPolicy
	seed        func(srv *infisicaltest.Server, webshop string)
	envs        []string
	httpClient  *http.Client           // nil: the client's own
	rawValues   bool                   // expand_references = false
	configure   func(*config.Config)   // last word on the config (access_test.go)
	retry       *infisical.RetryPolicy // nil: testRetry
	slowAnswer  time.Duration          // 0: the client's default
}

// mountForTest starts a test server with a project "webshop" (envs dev and
// prod), seeds it, syncs once and mounts it in a temp dir. Everything stops
// in t.Cleanup.
func mountForTest(t testing.TB, opts ...func(*mountConfig)) *testMount {
	t.Helper()
	testutil.RequireFUSE(t)
	mc := mountConfig{trimNewline: true, tokenPolicy: infisical.TokenPerCycle}
	for _, o := range opts {
		o(&mc)
	}
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev", "prod")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
	if mc.seed != nil {
		mc.seed(srv, pid)
	}
	return mountServer(t, srv, pid, mc)
}

// testRetry keeps the client's waits short: faults in tests are injected.
var testRetry = infisical.RetryPolicy{
	RateLimitWait: time.Millisecond, ServerErrorWait: time.Millisecond,
	MaxRetryAfter: 10 * time.Millisecond, LoginBackoff: time.Millisecond,
}

// mountServer mounts srv through daemon.Start, as `infisicalfs mount`
// does, with the refresh loop effectively off (tests call refresh).
func mountServer(t testing.TB, srv *infisicaltest.Server, pid string, mc mountConfig) *testMount {
	t.Helper()
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tmp := t.TempDir()
	m := &testMount{t: t, srv: srv, dir: filepath.Join(tmp, "mnt"), stateF: filepath.Join(tmp, "state", "infisical_sync_state.json"), logs: logs, project: pid}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = srv.URL(), clientID, clientSecret
	cfg.TokenPolicy = mc.tokenPolicy.String()
	cfg.RefreshInterval = config.Duration{Duration: time.Hour}
	cfg.StateFile = m.stateF
	cfg.ReadOnly, cfg.TrimNewline, cfg.Envs = mc.readOnly, mc.trimNewline, mc.envs
	cfg.ExpandReferences = !mc.rawValues
	if mc.flat {
		cfg.Flat = true
		cfg.Projects, cfg.Envs = []string{"webshop"}, []string{"dev"}
		if len(mc.envs) == 1 {
			cfg.Envs = mc.envs
		}
	}
	if mc.configure != nil {
		mc.configure(&cfg)
	}
	retry := testRetry
	if mc.retry != nil {
		retry = *mc.retry
	}
	d, err := daemon.Start(context.Background(), daemon.Options{
		Config: cfg, Mountpoint: m.dir, Logger: log,
		HTTPClient: mc.httpClient, Retry: &retry, PushTimeout: 10 * time.Second, SlowAnswer: mc.slowAnswer,
	})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	m.d, m.sync, m.vault, m.fsys = d, d.Syncer(), d.Vault(), d.FS()
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return m
}

// path joins names below the mount point.
func (m *testMount) path(parts ...string) string {
	return filepath.Join(append([]string{m.dir}, parts...)...)
}

// shIn is `sh -c script` run in dir, with args as $1...: the shell
// changes into dir itself. Not cmd.Dir: the child would chdir between fork
// and exec, a FUSE request to this very process while the forking thread
// holds its P (a Go fork is a vfork), which can deadlock the daemon.
func shIn(dir, script string, args ...string) *exec.Cmd {
	return exec.Command("sh", append([]string{"-c", `cd -- "$0" || exit 125
` + script, dir}, args...)...)
}

// sh runs a shell command in the mount directory and returns its output.
func (m *testMount) sh(script string) (string, error) {
	m.t.Helper()
	cmd := shIn(m.dir, script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustSh runs a shell command that must succeed.
func (m *testMount) mustSh(script string) string {
	m.t.Helper()
	out, err := m.sh(script)
	if err != nil {
		m.t.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
	return out
}

// refresh runs a sync cycle now and waits until its invalidations reached
// the kernel.
func (m *testMount) refresh() {
	m.t.Helper()
	if err := m.sync.Sync(context.Background(), false); err != nil {
		m.t.Fatalf("sync: %v", err)
	}
	m.fsys.Flush()
}

func (m *testMount) readFile(parts ...string) string {
	m.t.Helper()
	b, err := os.ReadFile(m.path(parts...))
	if err != nil {
		m.t.Fatalf("read %s: %v", filepath.Join(parts...), err)
	}
	return string(b)
}

// serverValue is what Infisical holds for a secret of project webshop.
func (m *testMount) serverValue(env, path, key string) (string, bool) {
	v, _, ok := m.srv.Secret(m.project, env, path, key)
	return v, ok
}

// eventually polls cond for up to 5 s: for effects the kernel delivers
// after the syscall returned (RELEASE).
func (m *testMount) eventually(cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
