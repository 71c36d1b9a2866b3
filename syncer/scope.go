package syncer

import (
	"errors"
	"path"
	"slices"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

func parentPath(p string) string {
	d := path.Dir(p)
	if d == "." {
		return "/"
	}
	return d
}

// folderAddr names a folder the way Changes.Folders does: parent path plus
// the folder's name in Key.
func folderAddr(project, env, p string) vault.Addr {
	return vault.Addr{Project: project, Env: env, Path: parentPath(p), Key: path.Base(p)}
}

func walkVaultFolders(v *vault.Vault, project, env, dir string, out map[string]bool) {
	for _, f := range v.List(project, env, dir).Folders {
		p := vault.ChildPath(dir, f)
		out[p] = true
		walkVaultFolders(v, project, env, p, out)
	}
}

// sortAddrs sorts by String form without building the strings (see
// vault.CompareAddrs).
func sortAddrs(as []vault.Addr) { slices.SortFunc(as, vault.CompareAddrs) }

// wipeList zeroes the plaintext of a listing once the vault has sealed it.
func wipeList(res *infisical.ListResult) {
	for i := range res.Secrets {
		clear(res.Secrets[i].Value)
	}
	for i := range res.Imports {
		for j := range res.Imports[i].Secrets {
			clear(res.Imports[i].Secrets[j].Value)
		}
	}
}

// markWritten records a local change to a, so that a listing requested before
// it does not undo it.
func (s *Syncer) markWritten(as ...vault.Addr) {
	s.mu.Lock()
	s.writeSeq++
	for _, a := range as {
		s.written[a] = s.writeSeq
	}
	s.mu.Unlock()
}

func (s *Syncer) wroteSince(a vault.Addr, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written[a] > seq
}

// scopeOK records a listing that succeeded; the caller holds sc.applyMu.
// Only the newest listing's ETag is kept.
func (s *Syncer) scopeOK(k scopeKey, ticket uint64, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scopes[k]
	if ticket >= sc.applied {
		sc.applied = ticket
		sc.etag = etag
	}
	sc.lastSync = time.Now()
	sc.lastErr = nil
	sc.synced = true
	s.reachedLocked()
	s.saveScopeLocked(k, sc)
}

// reachedLocked records a request that succeeded: Infisical answers, so
// opens for writing stop probing it. s.mu is held.
func (s *Syncer) reachedLocked() {
	if s.contactErr != nil {
		s.log.Info("Infisical answers again; writes are accepted")
	}
	s.contactErr, s.refusing = nil, false
}

// NoAnswer marks the mount stale as soon as one request got no answer,
// while the client still waits to retry it (infisical.Config.OnNoAnswer):
// .status and opens for writing reflect the outage at once, not when the
// cycle gives up. Nothing is counted here; a cycle that then fails counts
// its error once (contactFailed).
func (s *Syncer) NoAnswer(err error) {
	s.mu.Lock()
	first := s.markStaleLocked(err)
	s.mu.Unlock()
	if first {
		s.log.Warn("Infisical does not answer; reads serve the last values, writes are refused until it does", "err", err)
	}
}

func (s *Syncer) scopeFailed(k scopeKey, err error) {
	s.mu.Lock()
	sc := s.scopes[k]
	sc.lastErr = err
	if errors.Is(err, infisical.ErrPermissionDenied) {
		s.log.Warn("the identity may not read this environment; grant it a role in Access Control", "project", k.project, "env", k.env, "err", err)
	}
	s.counts.Errors++
	s.saveScopeLocked(k, sc)
	s.mu.Unlock()
	s.saveState(func(f *state.File) { f.ErrorCount++ })
}

// contactFailed marks the mount stale: reads keep the last values, and opens
// for writing fail early with the reason.
func (s *Syncer) contactFailed(err error) {
	s.mu.Lock()
	s.markStaleLocked(err)
	s.counts.Errors++
	s.mu.Unlock()
	s.saveState(func(f *state.File) { f.ErrorCount++ })
}

// markStaleLocked records a contact that failed with err: the mount is
// stale from now on (unless it already was; first says whether it was
// not), and opens for writing probe Infisical. s.mu is held.
func (s *Syncer) markStaleLocked(err error) (first bool) {
	first = s.staleSince.IsZero()
	if first {
		s.staleSince = time.Now()
	}
	s.lastErr, s.contactErr = err, err
	return first
}
