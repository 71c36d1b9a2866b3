// Package infisical is infisicalfs's only way to talk to Infisical: a client
// for the HTTP API described in /work/shared/infisical-api.md, with
// universal, Kubernetes or token auth (authmethods.go), one re-login on auth
// failures, a small retry policy, a one-time fallback to the routes of older
// servers (legacy.go) and typed errors (*APIError wrapping a sentinel from
// errors.go).
//
// Nothing this package logs or returns carries a secret value, an access
// token, a service-account JWT or the client secret.
package infisical

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TokenPolicy says how access tokens are obtained.
type TokenPolicy int

const (
	// TokenPerCycle logs in at every BeginCycle and revokes the previous
	// token, as the original sync design's security checklist asks.
	TokenPerCycle TokenPolicy = iota
	// TokenRenew keeps one token and renews it at two thirds of its TTL,
	// logging in again near its max TTL, as the official agent does.
	TokenRenew
)

func (p TokenPolicy) String() string {
	if p == TokenRenew {
		return "renew"
	}
	return "per-cycle"
}

// Config configures a Client. SiteURL is required, and so are the settings
// of the chosen auth method, except universal auth's client id and secret,
// which may be set later with SetCredentials.
type Config struct {
	SiteURL string // e.g. http://127.0.0.1:8222; "/api" appended unless present

	// AuthMethod picks how tokens are obtained ("" = AuthUniversal).
	AuthMethod   AuthMethod
	ClientID     string // universal auth
	ClientSecret string // universal auth
	IdentityID   string // kubernetes auth: the machine identity's id
	// KubernetesTokenPath is the service-account JWT file, reread at every
	// login ("" = DefaultKubernetesTokenPath).
	KubernetesTokenPath string
	Token               string // token auth: the access token itself
	TokenFile           string // token auth: a file holding it, reread at every login (instead of Token)

	// TokenPolicy applies to universal and Kubernetes auth; token auth
	// always renews (see tokenAuth).
	TokenPolicy TokenPolicy
	Retry       RetryPolicy  // zero fields take DefaultRetryPolicy's
	HTTPClient  *http.Client // nil: one shared keep-alive client for the process
	Logger      *slog.Logger // nil: discard
	UserAgent   string
	// Observe, if set, is called once per HTTP attempt. route is templated
	// (never a secret or folder name); status is 0 when no answer came.
	Observe func(method, route string, status int, d time.Duration)
	// OnToken, if set, is called with every new access token (login,
	// relogin or renewal), outside the client's locks, so the agent's
	// token sinks can follow it. It must not call back into the client.
	OnToken func(token []byte)
	// OnNoAnswer, if set, is called when an attempt got no answer and the
	// client is about to wait and retry it, with the ErrUnreachable error
	// the call would return: a caller need not wait out the retry to know
	// that Infisical is down. Called outside the client's locks.
	OnNoAnswer func(err error)
	// SlowAnswer is how long an attempt may go without an answer (the
	// response headers) before OnNoAnswer is called for it while it goes
	// on waiting: a server that accepts connections and never answers
	// (hung, or stopped) otherwise shows only when the transport gives up,
	// a minute later. 0: DefaultSlowAnswer; negative: never.
	SlowAnswer time.Duration
}

// DefaultSlowAnswer is Config.SlowAnswer's default: well past what a
// large listing takes to start answering, well before the transport's
// own one-minute header timeout.
const DefaultSlowAnswer = 15 * time.Second

// RetryPolicy holds the waits of the retry policy. Sleep is injectable so
// tests need not wait.
type RetryPolicy struct {
	RateLimitWait   time.Duration // a 429 without Retry-After
	ServerErrorWait time.Duration // before the one retry of a 5xx or connection error
	MaxRetryAfter   time.Duration // cap on an honoured Retry-After
	LoginBackoff    time.Duration // first backoff after a failed login, doubling up to 5 min
	Sleep           func(ctx context.Context, d time.Duration) error
}

// maxLoginBackoff is Infisical's lockout time: waiting longer gains nothing.
const maxLoginBackoff = 5 * time.Minute

// DefaultRetryPolicy is the original sync design's policy. The login
// backoff of 15 s keeps a wrong secret from reaching Infisical's lockout
// (3 failures within 30 s): failures then come at 0 s, 15 s, 45 s, …
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		RateLimitWait:   60 * time.Second,
		ServerErrorWait: 30 * time.Second,
		MaxRetryAfter:   5 * time.Minute,
		LoginBackoff:    15 * time.Second,
		Sleep:           sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if r.RateLimitWait <= 0 {
		r.RateLimitWait = d.RateLimitWait
	}
	if r.ServerErrorWait <= 0 {
		r.ServerErrorWait = d.ServerErrorWait
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = d.MaxRetryAfter
	}
	if r.LoginBackoff <= 0 {
		r.LoginBackoff = d.LoginBackoff
	}
	if r.Sleep == nil {
		r.Sleep = d.Sleep
	}
	return r
}

var (
	sharedHTTPOnce sync.Once
	sharedHTTP     *http.Client
)

// defaultHTTPClient is the process's one keep-alive client, so a refresh
// cycle reuses its connection instead of a new (TLS) handshake each time.
func defaultHTTPClient() *http.Client {
	sharedHTTPOnce.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.MaxIdleConns = 32
		tr.MaxIdleConnsPerHost = 8
		tr.IdleConnTimeout = 90 * time.Second
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 60 * time.Second
		sharedHTTP = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	})
	return sharedHTTP
}

// Client talks to one Infisical site. It is safe for concurrent use.
type Client struct {
	site       string // scheme://host[/prefix], without /api
	hc         *http.Client
	log        *slog.Logger
	ua         string
	policy     TokenPolicy
	retry      RetryPolicy
	obs        func(method, route string, status int, d time.Duration)
	onTok      func(token []byte)
	onNoAnswer func(err error)
	slowAnswer time.Duration    // <= 0: never
	now        func() time.Time // replaced by tests

	auth     authenticator
	loginSem chan struct{} // one login at a time; a channel so waiting honours ctx
	legacy   legacyRoutes  // older routes this server needs (atomic, no lock)

	mu           sync.Mutex // guards the fields below
	clientID     string
	clientSecret string
	tok          tokenState
	loginFails   int
	loginRetryAt time.Time // no login attempt before this (backoff)
	lastLoginErr *APIError
}

// New checks cfg and returns a client. It sends nothing.
func New(cfg Config) (*Client, error) {
	site, err := siteBase(cfg.SiteURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		site:         site,
		hc:           cfg.HTTPClient,
		log:          cfg.Logger,
		ua:           cfg.UserAgent,
		policy:       cfg.TokenPolicy,
		retry:        cfg.Retry.withDefaults(),
		obs:          cfg.Observe,
		onTok:        cfg.OnToken,
		onNoAnswer:   cfg.OnNoAnswer,
		slowAnswer:   cfg.SlowAnswer,
		now:          time.Now,
		loginSem:     make(chan struct{}, 1),
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ua == "" {
		c.ua = "infisicalfs"
	}
	if c.slowAnswer == 0 {
		c.slowAnswer = DefaultSlowAnswer
	}
	if cfg.TokenPolicy != TokenPerCycle && cfg.TokenPolicy != TokenRenew {
		return nil, fmt.Errorf("infisical: unknown token policy %d", cfg.TokenPolicy)
	}
	if c.auth, err = newAuthenticator(cfg); err != nil {
		return nil, err
	}
	if c.auth.method() == AuthToken && c.policy == TokenPerCycle {
		// A given token cannot be replaced by a login, and revoking it
		// would destroy the user's token: renewing is the only policy.
		c.policy = TokenRenew
		c.log.Debug("infisical: token auth renews the given token; the per-cycle token policy does not apply")
	}
	return c, nil
}

// siteBase normalizes the site URL to scheme://host[/prefix] without a
// trailing "/api"; routes then carry the "/api" themselves.
func siteBase(raw string) (string, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if s == "" {
		return "", errors.New("infisical: site URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("infisical: site URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("infisical: site URL %q must be http(s)://host[:port]", raw)
	}
	if u.User != nil {
		return "", errors.New("infisical: site URL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("infisical: site URL %q must not have a query or fragment", raw)
	}
	return strings.TrimSuffix(s, "/api"), nil
}

// SiteURL is the site the client talks to, without "/api".
func (c *Client) SiteURL() string { return c.site }

// scope names where a call acts, for the permission remedy.
type scope struct{ project, env, path string }

// call is one API operation, which may take several HTTP attempts.
type call struct {
	op          string
	method      string
	route       string // templated, for logs and metrics
	path        string // escaped path, starting with /api
	query       url.Values
	body        []byte // JSON, or nil
	ifNoneMatch string
	auth        bool
	scope       scope
	sensitive   [][]byte // bytes sent that must never come back in an error
	noProbe     bool     // do not probe /api/status when unreachable
	noRetry     bool     // one attempt only (the status probe)
	// decode, when set, reads a 2xx body as it arrives instead of
	// buffering it (a 100k-secret listing is 66 MiB): it may run again on
	// a retry, so it starts from scratch each time.
	decode func(r io.Reader) error
}

// response is one HTTP answer, body fully read (none for a 304).
type response struct {
	status int
	header http.Header
	body   []byte
	perr   parsedError // for status >= 400
	// decodeErr: call.decode found the 2xx body malformed (not a
	// transport failure, so not retried).
	decodeErr error
}

// wipe zeroes the body, which may have held values.
func (r *response) wipe() { clear(r.body) }

// do runs c through the retry policy: one re-login and replay on an auth
// failure; one retry of a 429 (after Retry-After), a 5xx or a connection
// error (after ServerErrorWait), never once ctx is done.
//
// Writes (POST, PATCH, DELETE) are retried only when the request provably
// did not take effect: the connection was never made (dial error), or the
// answer was 429, 502 or 503, which come from a limiter or a proxy before
// the backend acts. A 500 or 504, or a connection lost mid-request, may
// follow an applied write: replaying a POST would then answer "already
// exists" and a PATCH would add a version, so the error goes to the caller,
// whose next sync cycle sees the true state.
func (c *Client) do(ctx context.Context, cl *call) (*response, error) {
	authRetried, retried := false, false
	for {
		tok := ""
		if cl.auth {
			t, err := c.token(ctx)
			if err != nil {
				return nil, err
			}
			tok = t
		}
		resp, err := c.send(ctx, cl, tok)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctxError(cl, ctx)
			}
			if !retried && !cl.noRetry && (cl.method == http.MethodGet || neverSent(err)) {
				retried = true
				if c.onNoAnswer != nil {
					e := c.unanswered(cl, err)
					e.Remedy += "; retrying"
					c.onNoAnswer(e)
				}
				if err := c.wait(ctx, cl, c.capped(ctx, c.retry.ServerErrorWait), "connection error"); err != nil {
					return nil, err
				}
				continue
			}
			return nil, c.unreachable(ctx, cl, err)
		}
		st := resp.status
		switch {
		case st < 400:
			return resp, nil
		case cl.auth && isAuthFailure(st, resp.perr.Code) && !authRetried:
			authRetried = true
			c.log.Debug("infisical: access token refused, logging in again",
				"route", cl.route, "status", st, "code", resp.perr.Code)
			if err := c.relogin(ctx, tok); err != nil {
				return nil, err
			}
			continue
		case cl.noRetry:
		case st == http.StatusTooManyRequests && !retried:
			retried = true
			if err := c.wait(ctx, cl, c.retryAfter(resp.header), "rate limited"); err != nil {
				return nil, err
			}
			continue
		case st >= 500 && !retried && (cl.method == http.MethodGet ||
			st == http.StatusBadGateway || st == http.StatusServiceUnavailable):
			retried = true
			if err := c.wait(ctx, cl, c.capped(ctx, c.retry.ServerErrorWait), "server error"); err != nil {
				return nil, err
			}
			continue
		}
		return nil, c.apiError(cl, resp)
	}
}

type retryCapKey struct{}

// WithRetryCap returns ctx under which the client waits at most d before
// retrying a request that got no answer or a 5xx. A sync cycle passes its
// refresh interval: waiting longer than the next cycle would is pointless.
// The wait after a 429 is not capped: Retry-After is the server's word.
func WithRetryCap(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, retryCapKey{}, d)
}

func (c *Client) capped(ctx context.Context, d time.Duration) time.Duration {
	if limit, ok := ctx.Value(retryCapKey{}).(time.Duration); ok && limit > 0 {
		return min(d, limit)
	}
	return d
}

// wait sleeps before a retry, giving up when ctx is done.
func (c *Client) wait(ctx context.Context, cl *call, d time.Duration, why string) error {
	c.log.Debug("infisical: retrying once", "route", cl.route, "reason", why, "wait", d)
	if err := c.retry.Sleep(ctx, d); err != nil || ctx.Err() != nil {
		return ctxError(cl, ctx)
	}
	return nil
}

// ctxError reports a call abandoned because its context ended. It is not an
// *APIError: Infisical said nothing, the caller gave up.
func ctxError(cl *call, ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		err = context.Canceled
	}
	return fmt.Errorf("infisical: %s (%s %s): %w", cl.op, cl.method, cl.route, err)
}

// retryAfter is how long a 429 asks to wait: Retry-After in seconds (or as
// an HTTP date), else RateLimitWait, capped at MaxRetryAfter.
func (c *Client) retryAfter(h http.Header) time.Duration {
	d := c.retry.RateLimitWait
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			d = time.Duration(min(secs, 1<<20)) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = max(t.Sub(c.now()), 0)
		}
	}
	return min(d, c.retry.MaxRetryAfter)
}

// neverSent reports whether a transport error proves the request never
// reached the server: the dial itself failed (refused, no route, DNS).
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// maxResponse bounds a response body; a recursive list of a big project
// stays far below it.
const maxResponse = 256 << 20

// send makes one HTTP attempt. A 304 comes back with no body read.
func (c *Client) send(ctx context.Context, cl *call, tok string) (*response, error) {
	u := c.site + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if cl.ifNoneMatch != "" {
		req.Header.Set("If-None-Match", cl.ifNoneMatch)
	}
	start := time.Now()
	var slow *time.Timer
	if c.onNoAnswer != nil && c.slowAnswer > 0 {
		slow = time.AfterFunc(c.slowAnswer, func() {
			c.onNoAnswer(c.unanswered(cl, fmt.Errorf("no answer after %s (the request goes on waiting)", c.slowAnswer)))
		})
	}
	hr, err := c.hc.Do(req)
	if slow != nil {
		slow.Stop()
	}
	if err != nil {
		c.observe(cl, 0, time.Since(start))
		c.log.Debug("infisical request failed", "method", cl.method, "route", cl.route,
			"duration", time.Since(start), "error", transportText(err))
		return nil, err
	}
	resp := &response{status: hr.StatusCode, header: hr.Header}
	switch {
	case hr.StatusCode == http.StatusNotModified:
	case cl.decode != nil && hr.StatusCode >= 200 && hr.StatusCode < 300:
		lr := &io.LimitedReader{R: hr.Body, N: maxResponse + 1}
		if derr := cl.decode(lr); derr != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if lr.N <= 0 {
				err = fmt.Errorf("response larger than %d bytes", maxResponse)
			} else if errors.As(derr, &se) || errors.As(derr, &te) {
				resp.decodeErr = derr
			} else {
				err = derr // the connection, mid-body
			}
		}
	default:
		resp.body, err = io.ReadAll(io.LimitReader(hr.Body, maxResponse+1))
		if err == nil && len(resp.body) > maxResponse {
			err = fmt.Errorf("response larger than %d bytes", maxResponse)
		}
	}
	hr.Body.Close()
	d := time.Since(start)
	c.observe(cl, hr.StatusCode, d)
	if err != nil {
		resp.wipe()
		c.log.Debug("infisical request failed", "method", cl.method, "route", cl.route,
			"status", hr.StatusCode, "duration", d, "error", transportText(err))
		return nil, fmt.Errorf("read response: %w", err)
	}
	reqID := cleanToken(hr.Header.Get("X-Request-Id"))
	if resp.status >= 400 {
		resp.perr = parseErrorBody(resp.body)
		if resp.perr.ReqID != "" {
			reqID = resp.perr.ReqID
		}
		c.log.Debug("infisical request", "method", cl.method, "route", cl.route,
			"status", resp.status, "duration", d, "reqId", reqID,
			"body", string(redactBodyScrubbed(resp.body, cl.sensitive)))
		return resp, nil
	}
	c.log.Debug("infisical request", "method", cl.method, "route", cl.route,
		"status", resp.status, "duration", d, "reqId", reqID)
	return resp, nil
}

func (c *Client) observe(cl *call, status int, d time.Duration) {
	if c.obs != nil {
		c.obs(cl.method, cl.route, status, d)
	}
}

// transportText is a transport error without the request URL (url.Error
// repeats it, query and all), one line.
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return oneLine(err.Error())
}

// apiError builds the typed error of a failed answer.
func (c *Client) apiError(cl *call, resp *response) *APIError {
	p := resp.perr
	e := &APIError{
		Op: cl.op, Method: cl.method, Route: cl.route, Status: resp.status,
		Code: p.Code, Message: scrub(p.Message, cl.sensitive), ReqID: p.ReqID,
		Err:          kindOf(resp.status, p.Code, p.Message),
		routeMissing: isRouteNotFound(resp.status, p),
	}
	if e.Message == "" && resp.status >= 400 {
		e.Message = http.StatusText(resp.status)
	}
	e.Remedy = c.remedy(cl, e, resp)
	return e
}

const authRemedy = "check client id and secret, that the identity is not disabled, and its access token TTL"

func (c *Client) remedy(cl *call, e *APIError, resp *response) string {
	switch e.Err {
	case ErrPermissionDenied:
		s := cl.scope
		if s.project == "" {
			return "the identity lacks permission; grant it a role in Access Control"
		}
		return fmt.Sprintf("the identity lacks permission on project %s env %s path %s; grant it a role in Access Control",
			s.project, orDash(s.env), orDash(s.path))
	case ErrAuthFailed, ErrTokenExpired:
		return c.auth.remedy()
	case ErrRateLimited:
		return fmt.Sprintf("Infisical rate-limits this client; retry after %s", c.retryAfter(resp.header))
	case ErrServer:
		return "Infisical failed to handle the request; see its logs for the request id"
	case ErrValueTooLarge:
		return fmt.Sprintf("Infisical accepts request bodies up to %d bytes", MaxValueSize)
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// unreachable builds the error for a call that got no answer, with what a
// short GET /api/status answered, so the log tells a wrong URL from a down
// server from a broken route.
func (c *Client) unreachable(ctx context.Context, cl *call, err error) *APIError {
	e := c.unanswered(cl, err)
	if !cl.noProbe {
		e.Remedy += "; GET /api/status answered: " + c.probeStatus(ctx)
	}
	return e
}

// unanswered is the error of a call that got no answer, without a probe.
func (c *Client) unanswered(cl *call, err error) *APIError {
	return &APIError{Op: cl.op, Method: cl.method, Route: cl.route, Message: transportText(err),
		Err: ErrUnreachable, Remedy: fmt.Sprintf("check that Infisical runs at %s", c.site)}
}

// probeTimeout bounds the status probe of an unreachable error.
const probeTimeout = 3 * time.Second

func (c *Client) probeStatus(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	st, err := c.status(ctx)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status != 0 {
			return fmt.Sprintf("%d %s", ae.Status, ae.Message)
		}
		if ae != nil {
			return "nothing (" + ae.Message + ")"
		}
		return "nothing (" + oneLine(err.Error()) + ")"
	}
	return "200 " + oneLine(st.Message)
}
