package infisical

import (
	"github.com/infisicalfs/infisicalfs/internal/testutil"

	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

const (
	testID     = "client-id-1"
	testSecret = "client-secret-1"
)

// fakeClock is shared by the client and the test server, and advanced by
// the recording Sleep, so waits are instant but still move time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

type testEnv struct {
	t      *testing.T
	srv    *infisicaltest.Server
	c      *Client
	proj   string
	clock  *fakeClock
	logs   *testutil.Buffer
	sleeps *sleepLog
}

type sleepLog struct {
	mu    sync.Mutex
	ds    []time.Duration
	clock *fakeClock
	hook  func() // runs inside Sleep, e.g. to cancel a context
}

func (s *sleepLog) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.clock.Add(d)
	return nil
}

func (s *sleepLog) Durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

// newEnv starts a test server with project "proj" (envs dev, prod), an
// identity with read-write access, and a client logged in on first use.
func newEnv(t testing.TB, mod ...func(*Config)) *testEnv {
	t.Helper()
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetNow(clock.Now)
	proj := srv.AddProject("proj", "Project", "dev", "prod")
	srv.AddIdentity(testID, testSecret)
	srv.Grant(testID, proj, infisicaltest.PermReadWrite)
	e := &testEnv{srv: srv, proj: proj, clock: clock, logs: &testutil.Buffer{},
		sleeps: &sleepLog{clock: clock}}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.c = e.client(t, testID, testSecret, mod...)
	return e
}

// client makes another client of the same server.
func (e *testEnv) client(t testing.TB, id, secret string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		SiteURL: e.srv.URL(), ClientID: id, ClientSecret: secret,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:  RetryPolicy{Sleep: e.sleeps.Sleep},
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.now = e.clock.Now
	return c
}

func (e *testEnv) ref(path, key string) Ref {
	return Ref{ProjectID: e.proj, Environment: "dev", Path: path, Key: key}
}

// login makes sure the client holds a token, so fault injection that
// counts requests hits the call under test and not the login.
func (e *testEnv) login(t testing.TB) {
	t.Helper()
	if err := e.c.BeginCycle(context.Background()); err != nil {
		t.Fatalf("BeginCycle: %v", err)
	}
	e.srv.ResetRequests()
}

// methods lists the logged requests as "METHOD path".
func (e *testEnv) methods() []string {
	var out []string
	for _, r := range e.srv.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
