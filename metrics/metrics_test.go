package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample finds the value of one exposition line, e.g.
// `infisicalfs_sync_total{result="ok"}`.
func sample(t *testing.T, body, series string) string {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	t.Errorf("series %s not in the scrape", series)
	return ""
}

func TestScrapeOverHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New()
	addr, err := Serve(ctx, "127.0.0.1:0", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()

	if code, body := get(t, base+"/healthz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "not ready" {
		t.Errorf("healthz before ready = %d %q", code, body)
	}
	_, body := get(t, base+"/metrics")
	if v := sample(t, body, `infisicalfs_sync_total{result="error"}`); v != "0" {
		t.Errorf("error syncs before any sync = %s, want a 0 series", v)
	}
	if v := sample(t, body, "infisicalfs_ready"); v != "0" {
		t.Errorf("ready = %s before SetReady", v)
	}

	m.ObserveRequest("GET", "/api/v4/secrets", 200, 20*time.Millisecond)
	m.ObserveRequest("GET", "/api/v4/secrets", 200, 30*time.Millisecond)
	m.ObserveRequest("POST", "/api/v1/auth/universal-auth/login", 401, time.Millisecond)
	m.SyncDone(1500*time.Millisecond, nil)
	m.SyncDone(time.Second, errors.New("boom"))
	m.SetSecrets(42)
	m.Push("set", nil)
	m.Push("set", nil)
	m.Push("delete", errors.New("403"))
	m.Error("auth")
	m.SetReady(true)

	code, body := get(t, base+"/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthz when ready = %d %q", code, body)
	}
	code, body = get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for series, want := range map[string]string{
		`infisicalfs_api_requests_total{code="200",method="GET",route="/api/v4/secrets"}`:                    "2",
		`infisicalfs_api_requests_total{code="401",method="POST",route="/api/v1/auth/universal-auth/login"}`: "1",
		`infisicalfs_api_request_duration_seconds_count{method="GET",route="/api/v4/secrets"}`:               "2",
		`infisicalfs_api_request_duration_seconds_sum{method="GET",route="/api/v4/secrets"}`:                 "0.05",
		`infisicalfs_sync_total{result="ok"}`:                                                                "1",
		`infisicalfs_sync_total{result="error"}`:                                                             "1",
		`infisicalfs_sync_duration_seconds_count`:                                                            "2",
		`infisicalfs_sync_duration_seconds_sum`:                                                              "2.5",
		`infisicalfs_sync_duration_seconds_bucket{le="1"}`:                                                   "1",
		`infisicalfs_secrets`:                                  "42",
		`infisicalfs_pushes_total{op="set",result="ok"}`:       "2",
		`infisicalfs_pushes_total{op="delete",result="error"}`: "1",
		`infisicalfs_errors_total{kind="auth"}`:                "1",
		`infisicalfs_ready`:                                    "1",
	} {
		if got := sample(t, body, series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
	if sample(t, body, "infisicalfs_last_sync_success_timestamp_seconds") == "0" {
		t.Error("last successful sync time not set")
	}
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Error("runtime and process collectors missing")
	}
	if code, _ := get(t, base+"/"); code != http.StatusNotFound {
		t.Errorf("/ = %d, want 404", code)
	}

	m.SetReady(false)
	if code, _ := get(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz after SetReady(false) = %d", code)
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still answering after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSeparateRegistries(t *testing.T) {
	// Two instances must not collide (a global registry would panic).
	a, b := New(), New()
	a.SetSecrets(1)
	b.SetSecrets(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, "http://"+addr.String()+"/metrics")
	if got := sample(t, body, "infisicalfs_secrets"); got != "2" {
		t.Errorf("secrets = %s, want this instance's 2", got)
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("GET", "/", 200, time.Second)
	m.SyncDone(time.Second, nil)
	m.SetSecrets(1)
	m.Push("set", nil)
	m.Error("x")
	m.SetReady(true)
	if _, err := Serve(context.Background(), "127.0.0.1:0", nil, nil); err == nil {
		t.Error("Serve(nil) succeeded")
	}
}

func TestServeBadAddress(t *testing.T) {
	if _, err := Serve(context.Background(), "256.0.0.1:bad", New(), nil); err == nil {
		t.Error("bad address accepted")
	}
}
