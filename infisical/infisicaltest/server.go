// Package infisicaltest is an in-process Infisical-compatible HTTP server for
// tests and the dev-server demo. It follows the API contract in
// /work/shared/infisical-api.md (status codes, error bodies, response shapes,
// validation rules) and stands on that contract alone: it does not import the
// client package it is used to test.
//
// Where the contract is silent or unconfirmed, the fake chooses:
//   - a request body over 1 MiB answers 413 PayloadTooLarge (Fastify's own
//     status) rather than 500;
//   - a batch delete naming a missing key fails whole, 404 "Secret not
//     found: K", and deletes nothing;
//   - recursive folder lists give relativePath = the folder's path relative
//     to the listed path ("/b/c"); a created folder's "path" is its full path;
//   - every version of a secret is kept until PruneSecretVersions; a
//     pruned version answers 404 "Secret with name 'X' not found", the
//     backend's answer for a missing version row (getSecretByName);
//   - renew mints a new string for the same token row: the old string stays
//     valid until its own expiry, and revoking either revokes the row;
//   - references expand as the backend's secret-reference-fns.ts at commit
//     58d2a53 expands them (expand.go), skipMultilineEncoding included;
//   - permissions are per environment; SetValueHidden stands for a rule
//     that lets identities describe a secret but not read its value;
//   - SetOldServer answers as a server without /api/v2/folders and
//     /api/v1/projects, with Fastify's own route-not-found body (which
//     every unknown route gets).
//
// All state sits behind one mutex; every exported method is safe for
// concurrent use. Request handlers hold the mutex for their whole run, so a
// request sees and changes the store atomically.
package infisicaltest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Server is a running fake Infisical. Create it with New or Start.
type Server struct {
	mu         sync.Mutex
	now        func() time.Time
	projects   map[string]*project // by id
	projOrder  []string
	identities map[string]*identity // by client id
	tokens     map[string]*token
	sessions   []*session
	tokenTTL   time.Duration
	tokenMax   time.Duration

	// faults, guarded by mu
	latency time.Duration
	// beforeRequest runs before a request is handled (outside mu): a test
	// makes "another writer" land at an exact moment with it.
	beforeRequest func(*http.Request)
	failNext      int
	failStatus    int
	retryAfter    int
	failPaths     []*pathFault
	requests      []Request
	oldServer     bool     // answer as a server without v2 folders and v1/projects
	k8sLogins     []string // JWT of every Kubernetes login attempt

	mux *http.ServeMux

	// lnMu guards the listener side; it is never held with mu.
	lnMu   sync.Mutex
	addr   string
	srv    *http.Server
	outage bool
	closed bool
}

// Request is one logged request. Bodies are never logged: they carry values.
type Request struct {
	Method      string
	Path        string
	RawQuery    string
	Status      int
	Time        time.Time
	ETag        string // ETag header of the answer, if any
	IfNoneMatch string // If-None-Match header of the request, if any
}

// Default token lifetimes, the universal-auth attach defaults (30 days).
const (
	defaultTokenTTL = 30 * 24 * time.Hour
	defaultMaxTTL   = 30 * 24 * time.Hour
)

// New starts a server on 127.0.0.1 with a free port below the kernel's
// ephemeral range. It panics if it cannot listen, as httptest.NewServer
// does.
//
// Why below: SetOutage closes the listener, and a client dialling a closed
// loopback port can be given that very port as its own source port; TCP
// then connects the socket to itself. The port is taken (listening again
// fails) and the client reads its own request back as the answer. Source
// ports come only from the ephemeral range, so a port under it is safe.
func New() *Server {
	ln, err := listenBelowEphemeral()
	if err != nil {
		panic(fmt.Sprintf("infisicaltest: %v", err))
	}
	return start(ln)
}

// ephemeralLow is the lowest port the kernel hands out as a source port.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // Linux's default
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 1024 {
		return 32768
	}
	return lo
}

func listenBelowEphemeral() (net.Listener, error) {
	lo := ephemeralLow()
	base := max(1024, lo-12000)
	if base >= lo {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	var err error
	for range 200 {
		port := base + mrand.IntN(lo-base)
		var ln net.Listener
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no free port in [%d, %d): %w", base, lo, err)
}

// Start starts a server listening on addr (host:port; port 0 picks one).
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return start(ln), nil
}

func start(ln net.Listener) *Server {
	s := &Server{
		now:        time.Now,
		projects:   map[string]*project{},
		identities: map[string]*identity{},
		tokens:     map[string]*token{},
		tokenTTL:   defaultTokenTTL,
		tokenMax:   defaultMaxTTL,
		retryAfter: 60,
	}
	s.routes()
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// URL is the site URL, without /api, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return "http://" + s.addr }

// Close stops the server and drops live connections.
func (s *Server) Close() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.srv != nil && !s.outage {
		_ = s.srv.Close()
	}
}

// SetNow replaces the server clock (token expiry, lockout, timestamps).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// BeforeRequest sets fn to run before each request is handled, outside
// the server's lock, so fn may call the server's own helpers (SetSecret);
// nil removes it.
func (s *Server) BeforeRequest(fn func(*http.Request)) {
	s.mu.Lock()
	s.beforeRequest = fn
	s.mu.Unlock()
}

// SetOutage with on=true closes the listener and every live connection, so
// clients get "connection refused"; on=false listens again on the same port.
func (s *Server) SetOutage(on bool) {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.closed || s.outage == on {
		return
	}
	if on {
		_ = s.srv.Close()
		s.outage = true
		return
	}
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		panic(fmt.Sprintf("infisicaltest: listen again on %s: %v", s.addr, err))
	}
	s.outage = false
	s.serve(ln)
}

// ServeHTTP runs faults, logging, ETag handling and routing around every
// request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
	}
	s.mu.Lock()
	latency, old, before := s.latency, s.oldServer, s.beforeRequest
	s.mu.Unlock()
	if before != nil {
		before(r)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
	switch {
	case s.injectFault(bw, r):
	case old && missingOnOldServer(r):
		writeRouteNotFound(bw, r)
	default:
		r.Body = http.MaxBytesReader(bw, r.Body, bodyLimit)
		s.mux.ServeHTTP(bw, r)
	}
	if r.Method == http.MethodGet {
		applyETag(bw, r)
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Status: bw.status, Time: s.now(),
		ETag: bw.header.Get("ETag"), IfNoneMatch: r.Header.Get("If-None-Match"),
	})
	s.mu.Unlock()
	bw.flushTo(w)
}

// bodyLimit is Fastify's default request body limit. Larger bodies get 413
// (Fastify's FST_ERR_CTP_BODY_TOO_LARGE status; whether Infisical's error
// handler keeps it is unconfirmed, see the contract §0).
const bodyLimit = 1 << 20

// apiError is an error answer in the backend's error-handler shape.
type apiError struct {
	status  int
	name    string
	message any // string, or []zodIssue for 422
	details any
}

type zodIssue map[string]any

func errBadRequest(msg string) *apiError {
	return &apiError{status: 400, name: "BadRequest", message: msg}
}
func errNotFound(msg string) *apiError { return &apiError{status: 404, name: "NotFound", message: msg} }
func errUnauthorized(msg string) *apiError {
	return &apiError{status: 401, name: "UnauthorizedError", message: msg}
}
func errToken(msg string) *apiError { return &apiError{status: 403, name: "TokenError", message: msg} }
func errValidation(issues ...zodIssue) *apiError {
	return &apiError{status: 422, name: "ValidationFailure", message: issues}
}
func errDatabase() *apiError {
	return &apiError{status: 500, name: "DatabaseError", message: "Something went wrong"}
}

func errPermission(action, subject, env, path string) *apiError {
	return &apiError{
		status: 403, name: "PermissionDenied",
		message: fmt.Sprintf("You are not allowed to %s on %s", action, subject),
		details: []map[string]any{{
			"action": action, "subject": subject,
			"conditions": map[string]any{"environment": env, "secretPath": map[string]string{"$glob": path}},
		}},
	}
}

func issue(code, msg string, path ...any) zodIssue {
	if path == nil {
		path = []any{}
	}
	return zodIssue{"code": code, "message": msg, "path": path}
}

func requiredIssue(field string) zodIssue {
	return zodIssue{"code": "invalid_type", "expected": "string", "received": "undefined",
		"message": "Required", "path": []any{field}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{
		"reqId": newReqID(), "statusCode": e.status, "message": e.message, "error": e.name,
	}
	if e.details != nil {
		body["details"] = e.details
	}
	writeJSON(w, e.status, body)
}

// call is one routed request, handled with s.mu held.
type call struct {
	s       *Server
	r       *http.Request
	body    []byte // read before s.mu is taken, so a slow client blocks no one
	bodyErr error
	ident   *identity // nil on unauthenticated routes
	now     time.Time
}

type handler func(c *call) (any, *apiError)

// handle registers a route. auth=true requires a valid identity token.
func (s *Server) handle(pattern string, auth bool, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, bodyErr := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		c := &call{s: s, r: r, body: body, bodyErr: bodyErr, now: s.now()}
		if auth {
			id, e := s.authenticate(r, c.now)
			if e != nil {
				writeError(w, e)
				return
			}
			c.ident = id
		}
		out, e := h(c)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", writeRouteNotFound)
	s.handle("GET /api/status", false, s.status)
	s.authRoutes()
	s.projectRoutes()
	s.secretRoutes()
	s.folderRoutes()
}

func (s *Server) status(c *call) (any, *apiError) {
	return map[string]any{
		"date": iso(c.now), "message": "Ok", "emailConfigured": false,
		"inviteOnlySignup": false, "redisConfigured": true, "secretScanningConfigured": false,
		"samlDefaultOrgSlug": nil, "auditLogStorageDisabled": false,
	}, nil
}

// decodeBody decodes the JSON body into v. An empty body decodes as {}.
func (c *call) decodeBody(v any) *apiError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(c.bodyErr, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, name: "PayloadTooLarge",
			message: "Request body is too large"}
	case c.bodyErr != nil:
		return errBadRequest("Could not read the request body")
	case len(bytes.TrimSpace(c.body)) == 0:
		return nil
	}
	err := json.Unmarshal(c.body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return errValidation(zodIssue{"code": "invalid_type", "expected": te.Type.String(),
			"received": te.Value, "message": "Expected " + te.Type.String() + ", received " + te.Value,
			"path": strings.Split(te.Field, ".")})
	}
	return errBadRequest("Body is not valid JSON")
}

// queryBool parses a zod enum boolean: exactly "true" or "false".
func (c *call) queryBool(name string, def bool) (bool, *apiError) {
	q := c.r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	switch v := q.Get(name); v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, errValidation(zodIssue{"code": "invalid_enum_value", "options": []string{"true", "false"},
			"received": v, "path": []any{name},
			"message": fmt.Sprintf("Invalid enum value. Expected 'true' | 'false', received '%s'", v)})
	}
}

// firstQuery returns the first non-empty of the named query parameters.
func (c *call) firstQuery(names ...string) string {
	q := c.r.URL.Query()
	for _, n := range names {
		if v := q.Get(n); v != "" {
			return v
		}
	}
	return ""
}
