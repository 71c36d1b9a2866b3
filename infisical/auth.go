package infisical

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	routeLogin    = "/api/v1/auth/universal-auth/login"
	routeK8sLogin = "/api/v1/auth/kubernetes-auth/login"
	routeRenew    = "/api/v1/auth/token/renew"
	routeRevoke   = "/api/v1/auth/token/revoke"
)

// tokenState is the current access token and what the server said of it.
type tokenState struct {
	value        string
	obtained     time.Time     // login or last renewal
	ttl          time.Duration // 0: no expiry
	loginTTL     time.Duration // ttl at login; renewals near max TTL answer less
	maxTTL       time.Duration // 0: no max
	sessionStart time.Time     // login time, which the max TTL counts from
}

// tokenAnswer is the login and renew answer (contract §2).
type tokenAnswer struct {
	AccessToken       string `json:"accessToken"`
	ExpiresIn         int64  `json:"expiresIn"`
	AccessTokenMaxTTL int64  `json:"accessTokenMaxTTL"`
	TokenType         string `json:"tokenType"`
}

// SetCredentials replaces the universal-auth client id and secret (a
// rotated secret); the next login uses them. The login backoff is reset:
// new credentials deserve an immediate try. Other auth methods ignore the
// credentials.
func (c *Client) SetCredentials(clientID, clientSecret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clientID, c.clientSecret = clientID, clientSecret
	c.loginFails, c.loginRetryAt, c.lastLoginErr = 0, time.Time{}, nil
}

// ResetLoginBackoff lets the next login go out at once, for a caller that
// knows the credential changed: a rewritten token file or JWT file.
func (c *Client) ResetLoginBackoff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loginFails, c.loginRetryAt, c.lastLoginErr = 0, time.Time{}, nil
}

func (c *Client) lockLogin(ctx context.Context) error {
	select {
	case c.loginSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("infisical: log in: %w", ctx.Err())
	}
}

func (c *Client) unlockLogin() { <-c.loginSem }

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok.value
}

func (c *Client) setToken(t tokenState) (old string) {
	c.mu.Lock()
	old = c.tok.value
	c.tok = t
	c.mu.Unlock()
	if c.onTok != nil && t.value != "" && t.value != old {
		b := []byte(t.value)
		c.onTok(b)
		clear(b)
	}
	return old
}

// token returns the access token, logging in first if there is none.
func (c *Client) token(ctx context.Context) (string, error) {
	if t := c.currentToken(); t != "" {
		return t, nil
	}
	if err := c.lockLogin(ctx); err != nil {
		return "", err
	}
	defer c.unlockLogin()
	if t := c.currentToken(); t != "" {
		return t, nil // another call logged in while this one waited
	}
	t, err := c.login(ctx)
	if err != nil {
		return "", err
	}
	c.setToken(t)
	return t.value, nil
}

// relogin replaces a token the server refused. If another call already
// replaced it, that token is used instead of a second login. The refused
// token is not revoked: it is expired or revoked already.
func (c *Client) relogin(ctx context.Context, refused string) error {
	if err := c.lockLogin(ctx); err != nil {
		return err
	}
	defer c.unlockLogin()
	if cur := c.currentToken(); cur != "" && cur != refused {
		return nil
	}
	t, err := c.login(ctx)
	if err != nil {
		return err
	}
	c.setToken(t)
	return nil
}

// BeginCycle prepares the token for a sync cycle. TokenPerCycle: log in
// afresh, then revoke the previous token (best effort, logged).
// TokenRenew: log in if there is no token, renew it from two thirds of its
// TTL, and log in again (revoking the old one) when its max TTL is near.
func (c *Client) BeginCycle(ctx context.Context) error {
	if err := c.lockLogin(ctx); err != nil {
		return err
	}
	var stale string
	err := func() error {
		defer c.unlockLogin()
		cur := func() tokenState { c.mu.Lock(); defer c.mu.Unlock(); return c.tok }()
		if c.policy == TokenRenew && cur.value != "" {
			now := c.now()
			margin := max(cur.loginTTL/3, 5*time.Second)
			expired := cur.ttl > 0 && !now.Before(cur.obtained.Add(cur.ttl))
			switch {
			case expired:
				// Neither renewable nor worth revoking: start afresh.
				t, err := c.login(ctx)
				if err != nil {
					return err
				}
				c.setToken(t)
				return nil
			case cur.maxTTL > 0 && !now.Before(cur.sessionStart.Add(cur.maxTTL-margin)):
				// Renewing cannot outlive the max TTL: start a new session.
			case cur.ttl > 0 && !now.Before(cur.obtained.Add(cur.ttl*2/3)):
				t, err := c.renew(ctx, cur)
				if err == nil {
					c.setToken(t)
					return nil
				}
				var ae *APIError
				if !errors.As(err, &ae) || (ae.Err != ErrAuthFailed && ae.Err != ErrTokenExpired) {
					return err
				}
				c.log.Info("infisical: token renewal refused, logging in again", "error", err)
			default:
				return nil
			}
		}
		t, err := c.login(ctx)
		if err != nil {
			return err
		}
		stale = c.setToken(t)
		return nil
	}()
	if err != nil || stale == "" || !c.auth.owned() {
		return err
	}
	if err := c.revoke(ctx, stale); err != nil && !tokenAlreadyDead(err) {
		c.log.Warn("infisical: could not revoke the previous access token", "error", err)
	}
	return nil
}

// Close revokes the current token. A token the server already considers
// dead counts as revoked.
func (c *Client) Close(ctx context.Context) error {
	if err := c.lockLogin(ctx); err != nil {
		return err
	}
	old := c.setToken(tokenState{})
	c.unlockLogin()
	if old == "" || !c.auth.owned() {
		return nil // a given token is the user's: never revoked
	}
	if err := c.revoke(ctx, old); err != nil && !tokenAlreadyDead(err) {
		return err
	}
	return nil
}

func tokenAlreadyDead(err error) bool {
	return errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrTokenExpired)
}

// login obtains a new token through the client's authenticator,
// honouring the backoff of earlier failures: while it runs, no request is
// sent and the last failure is returned again, so a wrong secret never
// drives the client id into Infisical's lockout (3 failures in 30 s lock
// it for 5 minutes), nor a rejected JWT or token into a request per call.
func (c *Client) login(ctx context.Context) (tokenState, error) {
	c.mu.Lock()
	retryAt, fails, last := c.loginRetryAt, c.loginFails, c.lastLoginErr
	c.mu.Unlock()

	if now := c.now(); now.Before(retryAt) && last != nil {
		e := *last
		e.Message = fmt.Sprintf("%s (not retrying for %s after %d failed login(s))",
			last.Message, retryAt.Sub(now).Round(time.Second), fails)
		return tokenState{}, &e
	}
	t, err := c.auth.obtain(ctx, c)
	if err != nil {
		c.loginFailed(err)
		return tokenState{}, err
	}
	c.mu.Lock()
	c.loginFails, c.loginRetryAt, c.lastLoginErr = 0, time.Time{}, nil
	c.mu.Unlock()
	c.log.Debug("infisical: logged in", "method", c.auth.method(), "expiresIn", int64(t.ttl/time.Second),
		"maxTTL", int64(t.maxTTL/time.Second))
	return t, nil
}

// postLogin sends one login request (body holds the credential, wiped by
// the caller; sensitive lists what must never come back in an error) and
// reads the token answer, the same for every login route (contract §2).
func (c *Client) postLogin(ctx context.Context, route string, body []byte, sensitive [][]byte) (tokenState, error) {
	cl := &call{op: "log in", method: http.MethodPost, route: route, path: route,
		body: body, sensitive: sensitive}
	start := c.now()
	resp, err := c.do(ctx, cl)
	if err != nil {
		return tokenState{}, err
	}
	defer resp.wipe()
	var ans tokenAnswer
	if err := json.Unmarshal(resp.body, &ans); err != nil || ans.AccessToken == "" {
		return tokenState{}, &APIError{Op: "log in", Method: cl.method, Route: cl.route, Status: resp.status,
			Message: "the login answer carries no access token", Remedy: c.auth.remedy(), Err: ErrAuthFailed}
	}
	ttl := time.Duration(ans.ExpiresIn) * time.Second
	return tokenState{
		value: ans.AccessToken, obtained: start, sessionStart: start,
		ttl: ttl, loginTTL: ttl, maxTTL: time.Duration(ans.AccessTokenMaxTTL) * time.Second,
	}, nil
}

// loginFailed starts or doubles the login backoff after a refused login.
// Failures that say nothing about the credentials (no answer, 429, 5xx)
// have their own retry and do not count.
func (c *Client) loginFailed(err error) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status == http.StatusTooManyRequests || ae.Status >= 500 || ae.Status == 0 && ae.Err != ErrAuthFailed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loginFails++
	backoff := c.retry.LoginBackoff
	for i := 1; i < c.loginFails && backoff < maxLoginBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, maxLoginBackoff)
	if strings.Contains(strings.ToLower(ae.Message), "temporarily locked") {
		backoff = maxLoginBackoff
		ae.Remedy = "Infisical has locked this client id for 5 minutes after repeated failed logins; " + c.auth.remedy()
	}
	c.loginRetryAt = c.now().Add(backoff)
	c.lastLoginErr = ae
	c.log.Warn("infisical: login failed, backing off", "failures", c.loginFails, "backoff", backoff, "error", ae)
}

// renew extends the current token (POST /api/v1/auth/token/renew, which
// takes the token in the body and no Authorization). Newer servers answer
// with a new token string: the answer's token is used.
func (c *Client) renew(ctx context.Context, cur tokenState) (tokenState, error) {
	body, err := json.Marshal(map[string]string{"accessToken": cur.value})
	if err != nil {
		return tokenState{}, fmt.Errorf("infisical: renew token: encode: %w", err)
	}
	defer clear(body)
	start := c.now()
	resp, err := c.do(ctx, &call{op: "renew token", method: http.MethodPost, route: routeRenew,
		path: routeRenew, body: body, sensitive: [][]byte{[]byte(cur.value)}})
	if err != nil {
		return tokenState{}, err
	}
	defer resp.wipe()
	var ans tokenAnswer
	if err := json.Unmarshal(resp.body, &ans); err != nil || ans.AccessToken == "" {
		return tokenState{}, &APIError{Op: "renew token", Method: http.MethodPost, Route: routeRenew,
			Status: resp.status, Message: "the renew answer carries no access token", Err: ErrAuthFailed}
	}
	cur.value = ans.AccessToken
	cur.obtained = start
	cur.ttl = time.Duration(ans.ExpiresIn) * time.Second
	return cur, nil
}

// revoke revokes a token (no Authorization; the token is in the body).
func (c *Client) revoke(ctx context.Context, tok string) error {
	body, err := json.Marshal(map[string]string{"accessToken": tok})
	if err != nil {
		return fmt.Errorf("infisical: revoke token: encode: %w", err)
	}
	defer clear(body)
	resp, err := c.do(ctx, &call{op: "revoke token", method: http.MethodPost, route: routeRevoke,
		path: routeRevoke, body: body, sensitive: [][]byte{[]byte(tok)}, noProbe: true})
	if err != nil {
		return err
	}
	resp.wipe()
	return nil
}
