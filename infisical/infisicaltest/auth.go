package infisicaltest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	lockoutFailures = 3
	lockoutWindow   = 30 * time.Second
	lockoutDuration = 300 * time.Second

	msgTokenExpired   = "Your token has expired. Please re-authenticate."
	msgTokenMalformed = "The provided access token is malformed. Please use a valid token or generate a new one and try again."
	msgNoToken        = "No identity access token found"
	msgLocked         = "This identity auth method is temporarily locked, please try again later"
	msgMaxTTL         = "Failed to renew MI access token due to Max TTL expiration"
)

// AddIdentity registers a universal-auth identity (no grants yet).
func (s *Server) AddIdentity(clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.identities[clientID]; ok {
		id.clientSecret = clientSecret
		return
	}
	s.identities[clientID] = &identity{id: newID(), clientID: clientID, clientSecret: clientSecret,
		grants: map[string]grant{}}
}

// Grant sets what clientID may do in projectID. envs narrows the grant to
// those environment slugs; none means every environment. PermNone removes
// the identity from the project. It panics on an unknown identity.
func (s *Server) Grant(clientID, projectID string, perm Perm, envs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.identities[clientID]
	if id == nil {
		panic(fmt.Sprintf("infisicaltest: Grant for unknown identity %q", clientID))
	}
	if perm == PermNone {
		delete(id.grants, projectID)
		return
	}
	g := grant{perm: perm, envs: map[string]bool{}}
	for _, e := range envs {
		g.envs[e] = true
	}
	id.grants[projectID] = g
}

// SetTokenTTL sets accessTokenTTL and accessTokenMaxTTL for later logins;
// 0 means no expiry (or no max TTL).
func (s *Server) SetTokenTTL(ttl, maxTTL time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL, s.tokenMax = ttl, maxTTL
}

// ExpireAllTokens makes every issued token expired (403 TokenError).
func (s *Server) ExpireAllTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, t := range s.tokens {
		t.exp = past
	}
	for _, ss := range s.sessions {
		ss.latestExp = past
	}
}

// RevokeAllTokens revokes every issued token (401 "No identity access token
// found").
func (s *Server) RevokeAllTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.revoked = true
	}
}

// LiveTokens counts clientID's token rows that are neither expired nor
// revoked. Renewing does not add a row.
func (s *Server) LiveTokens(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for _, ss := range s.sessions {
		if ss.clientID == clientID && !ss.revoked && (ss.latestExp.IsZero() || now.Before(ss.latestExp)) {
			n++
		}
	}
	return n
}

func (s *Server) authRoutes() {
	s.handle("POST /api/v1/auth/universal-auth/login", false, s.login)
	s.handle("POST /api/v1/auth/kubernetes-auth/login", false, s.kubernetesLogin)
	s.handle("POST /api/v1/auth/token/renew", false, s.renew)
	s.handle("POST /api/v1/auth/token/revoke", false, s.revoke)
}

// authenticate resolves the bearer token of r, in the backend's order:
// missing header, JWT checks (malformed, expired), then the token row.
func (s *Server) authenticate(r *http.Request, now time.Time) (*identity, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.Header.Get("X-API-Key") != "" {
			return nil, errBadRequest("API key authentication is not supported")
		}
		return nil, errUnauthorized("Token missing")
	}
	if len(h) < 7 {
		return nil, errToken(msgTokenMalformed)
	}
	t, e := s.checkToken(h[7:], now)
	if e != nil {
		return nil, e
	}
	id := s.identities[t.sess.clientID]
	if id == nil {
		return nil, errUnauthorized(msgNoToken)
	}
	return id, nil
}

func (s *Server) checkToken(raw string, now time.Time) (*token, *apiError) {
	t := s.tokens[raw]
	switch {
	case t == nil:
		return nil, errToken(msgTokenMalformed)
	case !t.exp.IsZero() && !now.Before(t.exp):
		return nil, errToken(msgTokenExpired)
	case t.sess.revoked:
		return nil, errUnauthorized(msgNoToken)
	}
	return t, nil
}

type loginBody struct {
	ClientID     *string `json:"clientId"`
	ClientSecret *string `json:"clientSecret"`
}

func (s *Server) login(c *call) (any, *apiError) {
	var b loginBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	var issues []zodIssue
	if b.ClientID == nil {
		issues = append(issues, requiredIssue("clientId"))
	}
	if b.ClientSecret == nil {
		issues = append(issues, requiredIssue("clientSecret"))
	}
	if issues != nil {
		return nil, errValidation(issues...)
	}
	id := s.identities[strings.TrimSpace(*b.ClientID)]
	if id == nil || id.clientSecret == "" { // no universal auth attached

		return nil, errUnauthorized("Invalid credentials")
	}
	if c.now.Before(id.lockedUntil) {
		return nil, errUnauthorized(msgLocked)
	}
	if strings.TrimSpace(*b.ClientSecret) != id.clientSecret {
		recent := id.failures[:0]
		for _, f := range id.failures {
			if c.now.Sub(f) < lockoutWindow {
				recent = append(recent, f)
			}
		}
		id.failures = append(recent, c.now)
		if len(id.failures) >= lockoutFailures {
			id.lockedUntil = c.now.Add(lockoutDuration)
			id.failures = nil
		}
		return nil, errUnauthorized("Invalid credentials")
	}
	id.failures = nil
	ss := &session{clientID: id.clientID, createdAt: c.now, ttl: s.tokenTTL, maxTTL: s.tokenMax}
	s.sessions = append(s.sessions, ss)
	return s.issue(ss, c.now), nil
}

// issue mints a new token string for ss with a fresh expiry, capped by the
// max TTL, and answers in the login shape.
func (s *Server) issue(ss *session, now time.Time) map[string]any {
	var exp time.Time
	if ss.ttl > 0 {
		exp = now.Add(ss.ttl)
		if ss.maxTTL > 0 && exp.After(ss.createdAt.Add(ss.maxTTL)) {
			exp = ss.createdAt.Add(ss.maxTTL)
		}
	}
	raw := randomAlnum(48)
	s.tokens[raw] = &token{sess: ss, exp: exp}
	ss.latestExp = exp
	expiresIn := int64(0)
	if !exp.IsZero() {
		expiresIn = int64(exp.Sub(now) / time.Second)
	}
	return map[string]any{
		"accessToken": raw, "expiresIn": expiresIn,
		"accessTokenMaxTTL": int64(ss.maxTTL / time.Second), "tokenType": "Bearer",
	}
}

type tokenBody struct {
	AccessToken *string `json:"accessToken"`
}

func (c *call) tokenFromBody() (*token, *apiError) {
	var b tokenBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if b.AccessToken == nil {
		return nil, errValidation(requiredIssue("accessToken"))
	}
	return c.s.checkToken(strings.TrimSpace(*b.AccessToken), c.now)
}

func (s *Server) renew(c *call) (any, *apiError) {
	t, e := c.tokenFromBody()
	if e != nil {
		return nil, e
	}
	ss := t.sess
	if ss.maxTTL > 0 && !c.now.Before(ss.createdAt.Add(ss.maxTTL)) {
		return nil, errUnauthorized(msgMaxTTL)
	}
	return s.issue(ss, c.now), nil
}

func (s *Server) revoke(c *call) (any, *apiError) {
	t, e := c.tokenFromBody()
	if e != nil {
		return nil, e
	}
	t.sess.revoked = true
	return map[string]any{"message": "Successfully revoked access token"}, nil
}
