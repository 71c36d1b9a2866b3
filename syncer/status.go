package syncer

import (
	"time"
)

// Status is what .status and `infisicalfs status` show: sync times, counts
// and errors, never a value.
type Status struct {
	LastSync   *time.Time    `json:"last_sync"`
	StaleSince *time.Time    `json:"stale_since"`
	Stale      bool          `json:"stale"`
	Secrets    int           `json:"secrets"`
	Counts     Counts        `json:"counts"`
	LastError  string        `json:"last_error,omitempty"`
	Scopes     []ScopeStatus `json:"scopes"`
	// Unreadable are secrets whose files refuse reads: a value Infisical
	// hides from the identity, or references that cannot be expanded.
	Unreadable []Unreadable `json:"unreadable,omitempty"`
}

// ScopeStatus is one project environment's sync state.
type ScopeStatus struct {
	Project   string     `json:"project"`
	ProjectID string     `json:"project_id"`
	Env       string     `json:"env"`
	LastSync  *time.Time `json:"last_sync"`
	LastError string     `json:"last_error,omitempty"`
	Secrets   int        `json:"secrets"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Status reports the syncer's state.
func (s *Syncer) Status() Status {
	unreadable := s.unreadableList() // before mu: expandMu comes first
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		LastSync:   timePtr(s.lastOK),
		StaleSince: timePtr(s.staleSince),
		Stale:      !s.staleSince.IsZero(),
		Secrets:    s.opt.Vault.Len(),
		Counts:     s.counts,
		Unreadable: unreadable,
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	for _, p := range s.projects {
		for _, env := range p.Envs {
			ss := ScopeStatus{Project: p.Dir, ProjectID: p.ID, Env: env, Secrets: len(s.opt.Vault.Addrs(p.ID, env))}
			if sc := s.scopes[scopeKey{p.ID, env}]; sc != nil {
				ss.LastSync = timePtr(sc.lastSync)
				if sc.lastErr != nil {
					ss.LastError = sc.lastErr.Error()
				}
			}
			st.Scopes = append(st.Scopes, ss)
		}
	}
	return st
}
