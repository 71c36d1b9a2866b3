package infisicaltest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFailNext(t *testing.T) {
	f := newFixture(t)
	path := f.listQ("dev", "/")
	f.s.ResetRequests()
	f.s.SetRetryAfter(7)
	f.s.FailNext(2, 429)
	for i := 0; i < 2; i++ {
		r := f.api("GET", path, nil)
		wantErr(t, r, 429, "RateLimitExceeded", "try again in 7 seconds")
		if r.header.Get("Retry-After") != "7" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("429 headers: %v", r.header)
		}
	}
	if r := f.api("GET", path, nil); r.status != 200 {
		t.Fatalf("after FailNext: %d", r.status)
	}
	for _, st := range []int{500, 502, 503} {
		f.s.FailNext(1, st)
		// Login is a request like any other.
		wantErr(t, f.do("POST", "/api/v1/auth/universal-auth/login", "",
			map[string]any{"clientId": testClientID, "clientSecret": testClientSecret}), st, "InternalServerError", "Something went wrong")
	}
	if f.s.Count("POST", "/api/v1/auth") != 3 || f.s.Count("", "/api/v4/secrets") != 3 || f.s.Count("GET", "/") != 3 || f.s.Count("", "/") != 6 {
		t.Fatalf("counts: %+v", f.s.Requests())
	}
	f.s.ResetRequests()
	if len(f.s.Requests()) != 0 {
		t.Fatal("ResetRequests left entries")
	}
}

func TestFailPath(t *testing.T) {
	f := newFixture(t)
	f.s.FailPath("POST", "/api/v4/secrets", 503, 2)
	f.s.FailPath("", "/api/v2/folders", 500, -1)
	create := func(key string) resp {
		return f.api("POST", secretURL(key), f.body("dev", "/", "secretValue", "v"))
	}
	if r := f.api("GET", f.listQ("dev", "/"), nil); r.status != 200 {
		t.Fatalf("GET hit a POST fault: %d", r.status)
	}
	wantErr(t, create("A"), 503, "", "")
	wantErr(t, create("A"), 503, "", "")
	if r := create("A"); r.status != 200 {
		t.Fatalf("third create: %d %s", r.status, r.raw)
	}
	for i := 0; i < 3; i++ {
		wantErr(t, f.api("GET", "/api/v2/folders"+q("projectId", f.pid, "environment", "dev"), nil), 500, "", "")
	}
	f.s.ClearFaults()
	if r := f.api("GET", "/api/v2/folders"+q("projectId", f.pid, "environment", "dev"), nil); r.status != 200 {
		t.Fatalf("after ClearFaults: %d", r.status)
	}
	// Failed requests are logged with their status.
	n := 0
	for _, rq := range f.s.Requests() {
		if rq.Status == 503 && rq.Method == "POST" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("logged 503s = %d", n)
	}
}

func TestLatency(t *testing.T) {
	f := newFixture(t)
	f.s.SetLatency(80 * time.Millisecond)
	start := time.Now()
	f.api("GET", "/api/status", nil)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	f.s.ClearFaults()
	start = time.Now()
	f.api("GET", "/api/status", nil)
	if d := time.Since(start); d >= 80*time.Millisecond {
		t.Fatalf("latency still applied: %v", d)
	}
}

func TestOutage(t *testing.T) {
	f := newFixture(t)
	url := f.s.URL()
	// A keep-alive connection opened before the outage must be dropped too.
	client := &http.Client{Transport: &http.Transport{}}
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", url+"/api/status", nil)
		return client.Do(req)
	}
	res, err := get()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	f.s.SetOutage(true)
	f.s.SetOutage(true) // idempotent
	_, err = http.Get(url + "/api/status")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("during outage: %v, want connection refused", err)
	}
	if _, err := get(); err == nil {
		t.Fatal("keep-alive connection survived the outage")
	}
	f.s.SetOutage(false)
	if f.s.URL() != url {
		t.Fatalf("URL changed: %s → %s", url, f.s.URL())
	}
	if r := f.api("GET", f.listQ("dev", "/"), nil); r.status != 200 {
		t.Fatalf("after outage: %d", r.status)
	}
	f.s.SetOutage(true)
	f.s.Close() // closing during an outage must not hang or panic
}

func TestStartFixedAddress(t *testing.T) {
	s := New()
	addr := s.URL()[len("http://"):]
	s.Close()
	s2, err := Start(addr)
	if err != nil {
		t.Skipf("port %s taken again meanwhile: %v", addr, err)
	}
	defer s2.Close()
	if s2.URL() != "http://"+addr {
		t.Fatalf("URL %s", s2.URL())
	}
	if _, err := Start(addr); err == nil {
		t.Fatal("second Start on the same address succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				key := fmt.Sprintf("K%d_%d", i, j)
				if r := f.api("POST", secretURL(key), f.body("dev", "/", "secretValue", key)); r.status != 200 {
					t.Errorf("create %s: %d", key, r.status)
				}
				f.api("GET", f.listQ("dev", "/"), nil)
				f.s.SetSecret(f.pid, "prod", "/", key, "x")
				f.s.Count("GET", "/")
			}
		}(i)
	}
	wg.Wait()
	if n := len(f.s.Secrets(f.pid, "dev")); n != 80 {
		t.Fatalf("%d secrets, want 80", n)
	}
}

// TestPortBelowEphemeralRange: a client dialling the port during an outage
// must never be handed it as its own source port (TCP would connect the
// socket to itself and hold the port), so the port is below the range the
// kernel picks source ports from.
func TestPortBelowEphemeralRange(t *testing.T) {
	for range 5 {
		s := New()
		_, port, err := net.SplitHostPort(strings.TrimPrefix(s.URL(), "http://"))
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if lo := ephemeralLow(); p >= lo || p < 1024 {
			t.Fatalf("port %d: want one in [1024, %d)", p, lo)
		}
	}
}
