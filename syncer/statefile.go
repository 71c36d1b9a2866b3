package syncer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

// The state file keeps hashes, versions and counters, never values. It is
// updated in memory as things happen. It is written after a cycle or a push
// only when a secret's record changed; counters and sync times alone are
// written at most every StateFlushInterval, and by FlushState at unmount,
// so an unchanged refresh writes nothing.

// DefaultStateFlushInterval is how long counters and sync times may wait
// in memory before they are written without a record change.
const DefaultStateFlushInterval = 5 * time.Minute

// saveState records a soft change (counters, sync times).
func (s *Syncer) saveState(fn func(f *state.File)) {
	if s.opt.State == nil {
		return
	}
	s.opt.State.Update(fn)
}

// flushState writes the state file if a record changed or the soft changes
// are StateFlushInterval old.
func (s *Syncer) flushState() {
	if s.opt.State == nil {
		return
	}
	if _, err := s.opt.State.SaveIfDue(s.opt.StateFlushInterval); err != nil {
		s.log.Warn("saving the state file failed", "path", s.opt.State.Path(), "err", err)
	}
}

// FlushState writes whatever the state file does not have yet (counters,
// sync times); the daemon calls it at unmount, after the last push. It is
// safe to call at any time, and after Close.
func (s *Syncer) FlushState() error {
	if s.opt.State == nil {
		return nil
	}
	s.firstSave.Wait()
	if _, err := s.opt.State.SaveIfDue(0); err != nil {
		return fmt.Errorf("save the state file %s: %w", s.opt.State.Path(), err)
	}
	return nil
}

func scopeID(project, env string) string { return project + "/" + env }

func (s *Syncer) saveScopeLocked(k scopeKey, sc *scope) {
	if s.opt.State == nil {
		return
	}
	rec := state.Scope{ETag: sc.etag, LastSync: sc.lastSync}
	if sc.lastErr != nil {
		rec.LastError = sc.lastErr.Error()
	}
	s.opt.State.Update(func(f *state.File) {
		if f.Scopes == nil {
			f.Scopes = map[string]state.Scope{}
		}
		old := f.Scopes[scopeID(k.project, k.env)]
		rec.ErrorCount = old.ErrorCount
		if sc.lastErr != nil {
			rec.ErrorCount++
		}
		f.Scopes[scopeID(k.project, k.env)] = rec
	})
}

// secretRecord is the state record of a secret; last_synced is when the
// mount took this version.
func (s *Syncer) secretRecord(a vault.Addr, value []byte, version int, now time.Time) state.Secret {
	return state.Secret{Hash: s.opt.State.Hasher().Hash(a.Key, value), Version: version, LastSynced: now}
}

// sameRecord reports whether a record says nothing new; last_synced is left
// out, so an unchanged listing changes nothing.
func sameRecord(a, b state.Secret) bool {
	return a.Hash == b.Hash && a.Version == b.Version
}

// setRecord stores a pushed secret's record.
func (s *Syncer) setRecord(a vault.Addr, value []byte, version int) {
	if s.opt.State == nil {
		return
	}
	rec := s.secretRecord(a, value, version, time.Now())
	id := state.SecretID(a.Project, a.Env, a.Path, a.Key)
	s.opt.State.UpdateRecords(func(f *state.File) bool {
		if f.Secrets == nil {
			f.Secrets = map[string]state.Secret{}
		}
		if old, ok := f.Secrets[id]; ok && sameRecord(old, rec) {
			return false
		}
		f.Secrets[id] = rec
		return true
	})
}

// dropRecord forgets a deleted secret's record.
func (s *Syncer) dropRecord(a vault.Addr) {
	if s.opt.State == nil {
		return
	}
	id := state.SecretID(a.Project, a.Env, a.Path, a.Key)
	s.opt.State.UpdateRecords(func(f *state.File) bool {
		_, ok := f.Secrets[id]
		delete(f.Secrets, id)
		return ok
	})
}

// recordListing stores one environment's hashes; on the first listing since
// start it logs, by name, what changed in Infisical while we were not running.
// Records that say nothing new are left as they are, so that a listing that
// changed nothing leaves nothing to write.
func (s *Syncer) recordListing(p tree.Project, env string, desired map[vault.Addr]want) {
	if s.opt.State == nil {
		return
	}
	now := time.Now()
	// Hashes are made here, outside the store's lock.
	cur := make(map[string]state.Secret, len(desired))
	for a, w := range desired {
		cur[state.SecretID(a.Project, a.Env, a.Path, a.Key)] = s.secretRecord(a, w.sec.Value, w.sec.Version, now)
	}
	s.mu.Lock()
	first := !s.scopes[scopeKey{p.ID, env}].synced
	s.mu.Unlock()
	prefix := state.SecretID(p.ID, env, "/", "")
	s.opt.State.UpdateRecords(func(f *state.File) bool {
		if f.Secrets == nil {
			f.Secrets = map[string]state.Secret{}
		}
		changed := false
		var old map[string]state.Secret // only for the first listing's log
		if first {
			old = map[string]state.Secret{}
		}
		for id, rec := range f.Secrets {
			if !strings.HasPrefix(id, prefix) { // not this environment's
				continue
			}
			if old != nil {
				old[id] = rec
			}
			if _, ok := cur[id]; !ok {
				delete(f.Secrets, id)
				changed = true
			}
		}
		if len(old) > 0 {
			prev := state.File{Secrets: old}
			added, edited, removed := prev.Changed(cur)
			if len(added)+len(edited)+len(removed) > 0 {
				s.log.Info("secrets changed in Infisical while not mounted", "project", p.Dir, "env", env,
					"added", added, "changed", edited, "removed", removed)
			}
		}
		if len(f.Secrets) == 0 {
			// The first listing into an empty state (a first mount):
			// cur becomes the records rather than a second map of them.
			f.Secrets = cur
			changed = changed || len(cur) > 0
			cur = nil
		}
		for id, rec := range cur {
			if o, ok := f.Secrets[id]; ok && sameRecord(o, rec) {
				continue
			}
			f.Secrets[id] = rec
			changed = true
		}
		if !slices.Contains(f.ProjectIDs, p.ID) {
			f.ProjectIDs = append(f.ProjectIDs, p.ID)
			changed = true
		}
		if !slices.Contains(f.Environments, env) {
			f.Environments = append(f.Environments, env)
			changed = true
		}
		one := ""
		if len(f.Environments) == 1 {
			one = f.Environments[0]
		}
		if f.Environment != one {
			f.Environment = one
			changed = true
		}
		return changed
	})
}
