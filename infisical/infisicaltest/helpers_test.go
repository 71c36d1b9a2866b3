package infisicaltest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for SetNow.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a server with project "shop" (dev, staging, prod) and a
// logged-in read-write identity.
type fixture struct {
	t     *testing.T
	s     *Server
	clock *fakeClock
	pid   string
	token string
}

const (
	testClientID     = "client-rw"
	testClientSecret = "secret-rw"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	clk := newClock()
	s.SetNow(clk.Now)
	f := &fixture{t: t, s: s, clock: clk}
	f.pid = s.AddProject("shop", "Shop")
	s.AddIdentity(testClientID, testClientSecret)
	s.Grant(testClientID, f.pid, PermReadWrite)
	f.token = f.login(testClientID, testClientSecret)
	return f
}

func (f *fixture) login(id, secret string) string {
	f.t.Helper()
	r := f.do("POST", "/api/v1/auth/universal-auth/login", "", map[string]any{"clientId": id, "clientSecret": secret})
	if r.status != 200 {
		f.t.Fatalf("login %s: %d %s", id, r.status, r.raw)
	}
	return r.str("accessToken")
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) str(k string) string { s, _ := r.body[k].(string); return s }

// obj walks nested objects: r.obj("secret")["secretValue"].
func (r resp) obj(k string) map[string]any { m, _ := r.body[k].(map[string]any); return m }

func (r resp) list(k string) []any { l, _ := r.body[k].([]any); return l }

// do sends a request with token as bearer ("" = no Authorization header).
func (f *fixture) do(method, path, token string, body any, hdr ...string) resp {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, f.s.URL()+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

// api sends with the fixture's token.
func (f *fixture) api(method, path string, body any, hdr ...string) resp {
	f.t.Helper()
	return f.do(method, path, f.token, body, hdr...)
}

// q builds a query string from pairs.
func q(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Set(pairs[i], pairs[i+1])
	}
	return "?" + v.Encode()
}

func (f *fixture) listQ(env, path string, more ...string) string {
	return "/api/v4/secrets" + q(append([]string{"projectId", f.pid, "environment", env, "secretPath", path}, more...)...)
}

func (f *fixture) body(env, path string, kv ...any) map[string]any {
	m := map[string]any{"projectId": f.pid, "environment": env, "secretPath": path}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

var reqIDRe = regexp.MustCompile(`^req-[a-zA-Z0-9]{14}$`)

// wantErr checks the backend error shape: status, error name and (a
// substring of) a string message.
func wantErr(t *testing.T, r resp, status int, name, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if !reqIDRe.MatchString(r.str("reqId")) {
		t.Errorf("reqId %q malformed", r.str("reqId"))
	}
	if sc, _ := r.body["statusCode"].(float64); int(sc) != status {
		t.Errorf("statusCode %v, want %d", r.body["statusCode"], status)
	}
	if name != "" && r.str("error") != name {
		t.Errorf("error %q, want %q (%s)", r.str("error"), name, r.raw)
	}
	if msgPart == "" {
		return
	}
	msg := r.str("message")
	if msg == "" { // 422: zod issues
		js, _ := json.Marshal(r.body["message"])
		msg = string(js)
	}
	if !strings.Contains(msg, msgPart) {
		t.Errorf("message %q lacks %q", msg, msgPart)
	}
}
