package infisicaltest

import (
	"fmt"
	"strings"
	"time"
)

// Kubernetes-auth answers, from the backend's
// services/identity-kubernetes-auth/identity-kubernetes-auth-service.ts
// login: no auth method attached is a 404, a TokenReview that does not
// authenticate the JWT a 401 named KubernetesTokenReviewError.
const (
	msgK8sNotConfigured    = "Kubernetes auth method not found for identity, did you configure Kubernetes auth?"
	msgK8sNotAuthenticated = "Kubernetes token not authenticated"
)

// AddKubernetesIdentity registers an identity with Kubernetes auth, keyed
// (for Grant, LiveTokens, IssueToken) by identityID, which is also the
// identityId a login sends. jwts are the service-account tokens the fake
// TokenReview accepts. The identity has no universal auth.
func (s *Server) AddKubernetesIdentity(identityID string, jwts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.identities[identityID]
	if id == nil {
		id = &identity{id: identityID, clientID: identityID, grants: map[string]grant{}}
		s.identities[identityID] = id
	}
	id.k8sJWTs = append([]string(nil), jwts...)
	id.k8s = true
}

// SetKubernetesJWTs replaces the accepted JWTs of a Kubernetes identity, as
// kubelet's rotation makes the old projected token worthless.
func (s *Server) SetKubernetesJWTs(identityID string, jwts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.identities[identityID]
	if id == nil || !id.k8s {
		panic(fmt.Sprintf("infisicaltest: SetKubernetesJWTs for unknown Kubernetes identity %q", identityID))
	}
	id.k8sJWTs = append([]string(nil), jwts...)
}

// KubernetesLoginJWTs returns the JWT of every Kubernetes login attempt, in
// order, accepted or not, so tests can see which token a client sent.
func (s *Server) KubernetesLoginJWTs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.k8sLogins...)
}

// IssueToken mints an access token for an existing identity out of band
// (as a person would in Infisical's UI, or another tool's login), with its
// own TTL and max TTL (0: none). It panics on an unknown identity.
func (s *Server) IssueToken(clientID string, ttl, maxTTL time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.identities[clientID] == nil {
		panic(fmt.Sprintf("infisicaltest: IssueToken for unknown identity %q", clientID))
	}
	now := s.now()
	ss := &session{clientID: clientID, createdAt: now, ttl: ttl, maxTTL: maxTTL}
	s.sessions = append(s.sessions, ss)
	return s.issue(ss, now)["accessToken"].(string)
}

type k8sLoginBody struct {
	IdentityID *string `json:"identityId"`
	JWT        *string `json:"jwt"`
}

func (s *Server) kubernetesLogin(c *call) (any, *apiError) {
	var b k8sLoginBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	var issues []zodIssue
	if b.IdentityID == nil {
		issues = append(issues, requiredIssue("identityId"))
	}
	if b.JWT == nil {
		issues = append(issues, requiredIssue("jwt"))
	}
	if issues != nil {
		return nil, errValidation(issues...)
	}
	jwt := strings.TrimSpace(*b.JWT)
	s.k8sLogins = append(s.k8sLogins, jwt)
	id := s.identities[strings.TrimSpace(*b.IdentityID)]
	if id == nil || !id.k8s {
		return nil, errNotFound(msgK8sNotConfigured)
	}
	accepted := false
	for _, j := range id.k8sJWTs {
		accepted = accepted || (j != "" && j == jwt)
	}
	if !accepted {
		return nil, &apiError{status: 401, name: "KubernetesTokenReviewError", message: msgK8sNotAuthenticated}
	}
	ss := &session{clientID: id.clientID, createdAt: c.now, ttl: s.tokenTTL, maxTTL: s.tokenMax}
	s.sessions = append(s.sessions, ss)
	return s.issue(ss, c.now), nil
}
