package infisical

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	create := func(e *testEnv) error {
		_, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte("v"))
		return err
	}
	tests := []struct {
		name     string
		mod      func(*Config)
		fault    func(e *testEnv)
		run      func(e *testEnv) error
		want     error // nil: success
		requests int
		sleeps   []time.Duration
	}{
		{name: "429 honours Retry-After", fault: func(e *testEnv) { e.srv.SetRetryAfter(7); e.srv.FailNext(1, 429) },
			run: listOnce, requests: 2, sleeps: []time.Duration{7 * time.Second}},
		{name: "429 Retry-After is capped", mod: func(c *Config) { c.Retry.MaxRetryAfter = time.Minute },
			fault: func(e *testEnv) { e.srv.SetRetryAfter(3600); e.srv.FailNext(1, 429) },
			run:   listOnce, requests: 2, sleeps: []time.Duration{time.Minute}},
		{name: "429 twice is ErrRateLimited", fault: func(e *testEnv) { e.srv.SetRetryAfter(1); e.srv.FailNext(2, 429) },
			run: listOnce, want: ErrRateLimited, requests: 2, sleeps: []time.Duration{time.Second}},
		{name: "429 on a write is retried", fault: func(e *testEnv) { e.srv.SetRetryAfter(2); e.srv.FailNext(1, 429) },
			run: create, requests: 2, sleeps: []time.Duration{2 * time.Second}},
		{name: "500 on a read is retried once", fault: func(e *testEnv) { e.srv.FailNext(1, 500) },
			run: listOnce, requests: 2, sleeps: []time.Duration{30 * time.Second}},
		{name: "500 twice is ErrServer", mod: func(c *Config) { c.Retry.ServerErrorWait = time.Second },
			fault: func(e *testEnv) { e.srv.FailNext(2, 500) },
			run:   listOnce, want: ErrServer, requests: 2, sleeps: []time.Duration{time.Second}},
		{name: "500 on a write is not replayed", fault: func(e *testEnv) { e.srv.FailNext(1, 500) },
			run: create, want: ErrServer, requests: 1},
		{name: "504 on a write is not replayed", fault: func(e *testEnv) { e.srv.FailNext(1, 504) },
			run: create, want: ErrServer, requests: 1},
		{name: "503 on a write is retried", fault: func(e *testEnv) { e.srv.FailNext(1, 503) },
			run: create, requests: 2, sleeps: []time.Duration{30 * time.Second}},
		{name: "502 on a delete is retried",
			fault: func(e *testEnv) { e.srv.SetSecret(e.proj, "dev", "/", "K", "v"); e.srv.FailNext(1, 502) },
			run:   func(e *testEnv) error { return e.c.DeleteSecret(ctx, e.ref("/", "K")) }, requests: 2,
			sleeps: []time.Duration{30 * time.Second}},
		{name: "outage on a read", fault: func(e *testEnv) { e.srv.SetOutage(true) },
			run: listOnce, want: ErrUnreachable, requests: 0, sleeps: []time.Duration{30 * time.Second}},
		{name: "outage on a write (refused: never sent, so retried)",
			fault: func(e *testEnv) { e.srv.SetOutage(true); e.c.hc.CloseIdleConnections() },
			run:   create, want: ErrUnreachable, requests: 0, sleeps: []time.Duration{30 * time.Second}},
		{name: "a retry cap shortens the wait after a 500", fault: func(e *testEnv) { e.srv.FailNext(1, 500) },
			run: listCapped, requests: 2, sleeps: []time.Duration{2 * time.Second}},
		{name: "a retry cap shortens the wait in an outage", fault: func(e *testEnv) { e.srv.SetOutage(true) },
			run: listCapped, want: ErrUnreachable, requests: 0, sleeps: []time.Duration{2 * time.Second}},
		{name: "a retry cap leaves Retry-After alone", fault: func(e *testEnv) { e.srv.SetRetryAfter(7); e.srv.FailNext(1, 429) },
			run: listCapped, requests: 2, sleeps: []time.Duration{7 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			e := newEnv(t, mods...)
			e.login(t)
			tc.fault(e)
			err := tc.run(e)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n := len(e.srv.Requests()); n != tc.requests {
				t.Errorf("%d requests, want %d: %v", n, tc.requests, e.methods())
			}
			if got := e.sleeps.Durations(); !slices.Equal(got, tc.sleeps) {
				t.Errorf("sleeps %v, want %v", got, tc.sleeps)
			}
			if tc.want == ErrUnreachable {
				var ae *APIError
				errors.As(err, &ae)
				if !strings.Contains(ae.Remedy, e.srv.URL()) || !strings.Contains(ae.Remedy, "GET /api/status answered: nothing") ||
					!strings.Contains(ae.Message, "refused") {
					t.Errorf("unreachable error lacks URL or probe: %v", err)
				}
			}
		})
	}
}

func TestRateLimitWithoutRetryAfter(t *testing.T) {
	c, sl := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeStub(w, 429, `{"statusCode":429,"error":"RateLimitExceeded","message":"Rate limit exceeded"}`)
	})
	_, err := c.ListSecrets(context.Background(), ListOptions{ProjectID: "p", Environment: "dev"})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err %v", err)
	}
	if got := sl.Durations(); !slices.Equal(got, []time.Duration{60 * time.Second}) {
		t.Fatalf("sleeps %v, want the 60 s default", got)
	}
}

// A route that drops connections while /api/status answers: the error must
// tell that the server is up.
func TestUnreachableProbeText(t *testing.T) {
	c, _ := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, _, _ := hj.Hijack()
		conn.Close()
	})
	_, err := c.ListSecrets(context.Background(), ListOptions{ProjectID: "p", Environment: "dev"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Err != ErrUnreachable {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(ae.Remedy, "GET /api/status answered: 200 Ok") {
		t.Fatalf("remedy %q", ae.Remedy)
	}
}

// A write whose connection drops after the request was sent may have been
// applied: it is reported, not replayed.
func TestWriteLostMidRequestIsNotReplayed(t *testing.T) {
	var mu sync.Mutex
	posts := 0
	c, sl := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	_, err := c.CreateSecret(context.Background(), Ref{ProjectID: "p", Environment: "dev", Path: "/", Key: "K"}, []byte("v"))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if posts != 1 || len(sl.Durations()) != 0 {
		t.Fatalf("%d attempts, %d sleeps", posts, len(sl.Durations()))
	}
}

func TestContextCancelStopsRetry(t *testing.T) {
	t.Run("cancelled before the call", func(t *testing.T) {
		e := newEnv(t)
		e.login(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		if n := len(e.srv.Requests()); n != 0 {
			t.Fatalf("%d requests", n)
		}
	})
	t.Run("cancelled while waiting to retry", func(t *testing.T) {
		e := newEnv(t)
		e.login(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.sleeps.hook = cancel
		e.srv.FailNext(3, 503)
		_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		if n := len(e.srv.Requests()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
	t.Run("cancelled during the request", func(t *testing.T) {
		e := newEnv(t)
		e.login(t)
		e.srv.SetLatency(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if n := len(e.sleeps.Durations()); n != 0 {
			t.Fatalf("slept %d times", n)
		}
	})
}

func TestObserveUsesTemplatedRoutes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	e := newEnv(t, func(c *Config) {
		c.Observe = func(method, route string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, method+" "+route)
		}
	})
	ctx := context.Background()
	if _, err := e.c.CreateSecret(ctx, e.ref("/", "MY_PRIVATE_NAME"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.GetSecret(ctx, e.ref("/", "MY_PRIVATE_NAME")); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST " + routeLogin, "POST " + routeSecret, "GET " + routeSecret}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
}

// stubClient is a client of an httptest server whose login and status work
// and whose every other route runs h: for answers the test server does not
// give (409, zod arrays, dropped connections, HTML).
func stubClient(t *testing.T, h http.HandlerFunc) (*Client, *sleepLog) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+routeLogin, func(w http.ResponseWriter, r *http.Request) {
		writeStub(w, 200, `{"accessToken":"tok","expiresIn":7200,"accessTokenMaxTTL":43200,"tokenType":"Bearer"}`)
	})
	mux.HandleFunc("GET "+routeStatus, func(w http.ResponseWriter, r *http.Request) {
		writeStub(w, 200, `{"date":"2026-01-01T00:00:00.000Z","message":"Ok"}`)
	})
	mux.HandleFunc("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sl := &sleepLog{clock: &fakeClock{t: time.Unix(0, 0)}}
	c, err := New(Config{SiteURL: srv.URL + "/api/", ClientID: "id", ClientSecret: "secret",
		Retry: RetryPolicy{Sleep: sl.Sleep}})
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

func writeStub(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// listCapped lists as a sync cycle with a 2 s refresh interval does.
func listCapped(e *testEnv) error {
	_, err := e.c.ListSecrets(WithRetryCap(context.Background(), 2*time.Second), ListOptions{ProjectID: e.proj, Environment: "dev"})
	return err
}

// OnNoAnswer is told about an unanswered request before the retry's wait,
// once per unanswered attempt that will be retried, and not at all when
// Infisical answers (even with an error).
func TestOnNoAnswerComesBeforeTheWait(t *testing.T) {
	var mu sync.Mutex
	var events []string
	e := newEnv(t, func(c *Config) {
		c.OnNoAnswer = func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("OnNoAnswer(%v): not ErrUnreachable", err)
			}
			events = append(events, "no answer")
		}
	})
	e.login(t)
	sleep := e.c.retry.Sleep
	e.c.retry.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		events = append(events, "wait")
		mu.Unlock()
		return sleep(ctx, d)
	}
	e.srv.FailNext(1, 500)
	if err := listOnce(e); err != nil {
		t.Fatal(err)
	}
	e.srv.SetOutage(true)
	if err := listOnce(e); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("list in an outage: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"wait", "no answer", "wait"}; !slices.Equal(events, want) {
		t.Errorf("events %v, want %v (a 500 is an answer; the outage is told before its wait)", events, want)
	}
}

// TestOnNoAnswerForASlowAnswer: an attempt still waiting for its answer
// after SlowAnswer is told to OnNoAnswer once, while it goes on; an answer
// within SlowAnswer tells nothing.
func TestOnNoAnswerForASlowAnswer(t *testing.T) {
	var told atomic.Int32
	e := newEnv(t, func(c *Config) {
		c.SlowAnswer = 100 * time.Millisecond
		c.OnNoAnswer = func(err error) {
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no answer after 100ms") {
				t.Errorf("OnNoAnswer(%v)", err)
			}
			told.Add(1)
		}
	})
	e.login(t)
	if err := listOnce(e); err != nil || told.Load() != 0 {
		t.Fatalf("a prompt answer: err %v, told %d times", err, told.Load())
	}
	e.srv.SetLatency(400 * time.Millisecond)
	if err := listOnce(e); err != nil {
		t.Fatalf("a slow answer still answers: %v", err)
	}
	if n := told.Load(); n != 1 {
		t.Fatalf("a slow answer was told %d times, want 1", n)
	}
}
