package metrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// /healthz says 503 once the last successful sync is older than
// healthz_max_stale, and 200 again after the next one; failed syncs do not
// count as fresh.
func TestHealthzStaleness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := New()
	m.now = func() time.Time { return now }
	addr, err := Serve(ctx, "127.0.0.1:0", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/healthz"
	m.SetMaxStale(5 * time.Minute)
	m.SyncDone(time.Second, nil)
	m.SetReady(true)
	if code, body := get(t, url); code != http.StatusOK {
		t.Errorf("fresh: %d %q", code, body)
	}
	now = now.Add(4 * time.Minute)
	m.SyncDone(time.Second, errors.New("outage")) // a failed sync is no fresher
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("4 min after the last good sync: %d, want 200", code)
	}
	now = now.Add(2 * time.Minute)
	code, body := get(t, url)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "stale: last successful sync 6m0s ago") {
		t.Errorf("6 min after the last good sync: %d %q, want 503 naming the age", code, body)
	}
	m.SyncDone(time.Second, nil)
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("after a good sync: %d, want 200", code)
	}
	m.SetMaxStale(0)
	now = now.Add(time.Hour)
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("max stale 0 (never): %d, want 200", code)
	}
}
