package infisical

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// AuthMethod is how a client obtains access tokens.
type AuthMethod string

// Auth methods. Universal auth is the default.
const (
	AuthUniversal  AuthMethod = "universal"  // client id + secret (POST /api/v1/auth/universal-auth/login)
	AuthKubernetes AuthMethod = "kubernetes" // identity id + service-account JWT (POST /api/v1/auth/kubernetes-auth/login)
	AuthToken      AuthMethod = "token"      // an access token the user gives, renewed but never revoked
)

// DefaultKubernetesTokenPath is where kubelet projects a pod's
// service-account token, as the official CLI and agent read it.
const DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// maxCredentialFile bounds a JWT or token file read at login.
const maxCredentialFile = 64 << 10

// authenticator is the seam between the token lifecycle (token, relogin,
// BeginCycle, Close in auth.go) and how one token is obtained. Login
// backoff, renewal and the re-login on a refused token are shared.
type authenticator interface {
	method() AuthMethod
	// obtain gets a fresh access token: one login request, or for token
	// auth the given token itself.
	obtain(ctx context.Context, c *Client) (tokenState, error)
	// owned reports whether the client minted its tokens, and so revokes
	// them when it replaces them and at Close.
	owned() bool
	// remedy is what a person can do about a refused login.
	remedy() string
}

func newAuthenticator(cfg Config) (authenticator, error) {
	switch cfg.AuthMethod {
	case "", AuthUniversal:
		return universalAuth{}, nil
	case AuthKubernetes:
		if strings.TrimSpace(cfg.IdentityID) == "" {
			return nil, errors.New("infisical: kubernetes auth needs the machine identity id")
		}
		p := cfg.KubernetesTokenPath
		if p == "" {
			p = DefaultKubernetesTokenPath
		}
		return kubernetesAuth{identityID: strings.TrimSpace(cfg.IdentityID), tokenPath: p}, nil
	case AuthToken:
		switch {
		case cfg.Token != "" && cfg.TokenFile != "":
			return nil, errors.New("infisical: token auth takes a token or a token file, not both")
		case strings.TrimSpace(cfg.Token) == "" && cfg.TokenFile == "":
			return nil, errors.New("infisical: token auth needs an access token or a token file")
		}
		return tokenAuth{token: strings.TrimSpace(cfg.Token), file: cfg.TokenFile}, nil
	}
	return nil, fmt.Errorf("infisical: unknown auth method %q (want universal, kubernetes or token)", cfg.AuthMethod)
}

// universalAuth logs in with the client id and secret held by the client
// (SetCredentials replaces them).
type universalAuth struct{}

func (universalAuth) method() AuthMethod { return AuthUniversal }
func (universalAuth) owned() bool        { return true }
func (universalAuth) remedy() string     { return authRemedy }

func (universalAuth) obtain(ctx context.Context, c *Client) (tokenState, error) {
	c.mu.Lock()
	id, secret := c.clientID, c.clientSecret
	c.mu.Unlock()
	if id == "" || secret == "" {
		return tokenState{}, &APIError{Op: "log in", Method: http.MethodPost, Route: routeLogin,
			Message: "no client id or client secret configured", Remedy: authRemedy, Err: ErrAuthFailed}
	}
	body, err := json.Marshal(struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}{id, secret})
	if err != nil {
		return tokenState{}, fmt.Errorf("infisical: log in: encode: %w", err)
	}
	defer clear(body)
	return c.postLogin(ctx, routeLogin, body, [][]byte{[]byte(secret)})
}

// kubernetesAuth logs in with the pod's service-account JWT. The file is
// read at every login, never cached: kubelet rotates projected tokens
// (hourly by default), and a JWT read at start-up would be refused later.
// Both token policies apply: per-cycle logs in (rereading the file) every
// cycle, renew renews and logs in again near the max TTL.
type kubernetesAuth struct {
	identityID string
	tokenPath  string
}

func (kubernetesAuth) method() AuthMethod { return AuthKubernetes }
func (kubernetesAuth) owned() bool        { return true }

func (k kubernetesAuth) remedy() string {
	return fmt.Sprintf("check that identity %s has Kubernetes auth attached and that Infisical's TokenReview accepts "+
		"the service-account token in %s (allowed namespaces, service account names, audience)", k.identityID, k.tokenPath)
}

func (k kubernetesAuth) obtain(ctx context.Context, c *Client) (tokenState, error) {
	jwt, err := readCredentialFile(k.tokenPath)
	if err != nil {
		return tokenState{}, &APIError{Op: "log in", Method: http.MethodPost, Route: routeK8sLogin,
			Message: "read the Kubernetes service-account token: " + oneLine(err.Error()),
			Remedy:  "mount the service-account token (automountServiceAccountToken or a projected volume) or set kubernetes_token_path",
			Err:     ErrAuthFailed}
	}
	defer clear(jwt)
	body, err := json.Marshal(struct {
		IdentityID string `json:"identityId"`
		JWT        string `json:"jwt"`
	}{k.identityID, string(jwt)})
	if err != nil {
		return tokenState{}, fmt.Errorf("infisical: log in: encode: %w", err)
	}
	defer clear(body)
	t, err := c.postLogin(ctx, routeK8sLogin, body, [][]byte{jwt})
	var ae *APIError
	if errors.As(err, &ae) && (ae.Err == ErrAuthFailed || ae.Status == http.StatusNotFound) {
		ae.Err, ae.Remedy = ErrAuthFailed, k.remedy() // a 404 here: no Kubernetes auth on the identity
	}
	return t, err
}

// readCredentialFile reads a small secret file, surrounding whitespace
// trimmed. An empty file is an error: sending "" would only be refused.
func readCredentialFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCredentialFile {
		clear(b)
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCredentialFile)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	out := append([]byte(nil), t...)
	clear(b)
	return out, nil
}

// tokenAuth uses an access token the user gives (INFISICAL_TOKEN, or a file
// reread at every "login" so that a replaced file is picked up). The token
// is the user's: the client renews it where Infisical allows, but never
// revokes it, at Close or otherwise.
//
// Per-cycle login makes no sense here: there is nothing to log in with, and
// revoking the user's token each cycle would destroy it. New therefore runs
// token auth under TokenRenew whatever TokenPolicy says.
//
// Obtaining renews once straight away, as the official agent does with a
// token it finds in its sink: the answer tells the token's TTL (the token
// itself does not), and newer servers answer with a fresh token string.
type tokenAuth struct {
	token string
	file  string
}

func (tokenAuth) method() AuthMethod { return AuthToken }
func (tokenAuth) owned() bool        { return false }

func (a tokenAuth) source() string {
	if a.file != "" {
		return "the access token in " + a.file + " (INFISICAL_TOKEN_FILE)"
	}
	return "the access token given with INFISICAL_TOKEN"
}

func (a tokenAuth) remedy() string {
	return "issue a new access token for the identity, or use universal or Kubernetes auth, which log in by themselves"
}

func (a tokenAuth) obtain(ctx context.Context, c *Client) (tokenState, error) {
	tok := a.token
	if a.file != "" {
		b, err := readCredentialFile(a.file)
		if err != nil {
			return tokenState{}, &APIError{Op: "log in", Message: "read the access token: " + oneLine(err.Error()),
				Remedy: a.remedy(), Err: ErrAuthFailed}
		}
		tok = string(b)
		clear(b)
	}
	now := c.now()
	given := tokenState{value: tok, obtained: now, sessionStart: now} // TTL unknown
	t, err := c.renew(ctx, given)
	if err == nil {
		// The session's start is unknown, so its max TTL cannot be
		// planned for: renew until Infisical refuses, then use the token
		// until it expires.
		t.loginTTL, t.maxTTL, t.sessionStart = t.ttl, 0, now
		return t, nil
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return tokenState{}, err
	}
	switch {
	case ae.Err == ErrTokenExpired:
		return tokenState{}, &APIError{Op: "log in", Method: ae.Method, Route: ae.Route, Status: ae.Status, Code: ae.Code,
			ReqID: ae.ReqID, Message: a.source() + " has expired; issue a new one", Remedy: a.remedy(), Err: ErrTokenExpired}
	case ae.Status == http.StatusUnauthorized && strings.Contains(strings.ToLower(ae.Message), "max ttl"),
		ae.Status == http.StatusBadRequest:
		// Past its max TTL but still valid, or not an identity token
		// (renew answers 400): use it as it is until Infisical refuses it.
		c.log.Info("infisical: the given access token cannot be renewed; using it until it expires",
			"reason", ae.Message)
		return given, nil
	case ae.Err == ErrAuthFailed:
		return tokenState{}, &APIError{Op: "log in", Method: ae.Method, Route: ae.Route, Status: ae.Status, Code: ae.Code,
			ReqID: ae.ReqID, Message: a.source() + " was refused: " + ae.Message, Remedy: a.remedy(), Err: ErrAuthFailed}
	}
	return tokenState{}, err
}
