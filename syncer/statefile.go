package syncer

import (
	"slices"
	"strings"
	"time"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

// The state file keeps hashes, versions and counters, never values. It is
// updated in memory as things happen and written once per cycle and after
// each push.

func (s *Syncer) saveState(fn func(f *state.File)) {
	if s.opt.State == nil {
		return
	}
	s.opt.State.Update(fn)
}

func (s *Syncer) flushState() {
	if s.opt.State == nil {
		return
	}
	if err := s.opt.State.Save(); err != nil {
		s.log.Warn("saving the state file failed", "path", s.opt.State.Path(), "err", err)
	}
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

func secretRecord(a vault.Addr, value []byte, version int, now time.Time) state.Secret {
	return state.Secret{
		Hash: state.Hash(a.Key, value), Version: version, LastSynced: now,
		Project: a.Project, Environment: a.Env, Path: a.Path, Key: a.Key,
	}
}

// recordListing stores one environment's hashes; on the first listing since
// start it logs, by name, what changed in Infisical while we were not running.
func (s *Syncer) recordListing(p tree.Project, env string, desired map[vault.Addr]want) {
	if s.opt.State == nil {
		return
	}
	now := time.Now()
	cur := make(map[string]state.Secret, len(desired))
	for a, w := range desired {
		cur[state.SecretID(a.Project, a.Env, a.Path, a.Key)] = secretRecord(a, w.sec.Value, w.sec.Version, now)
	}
	s.mu.Lock()
	first := !s.scopes[scopeKey{p.ID, env}].synced
	s.mu.Unlock()
	prefix := state.SecretID(p.ID, env, "/", "")
	s.opt.State.Update(func(f *state.File) {
		if f.Secrets == nil {
			f.Secrets = map[string]state.Secret{}
		}
		old := map[string]state.Secret{}
		for id, rec := range f.Secrets {
			if inScope(rec, id, p.ID, env, prefix) {
				old[id] = rec
				delete(f.Secrets, id)
			}
		}
		if first && len(old) > 0 {
			prev := state.File{Secrets: old}
			added, changed, removed := prev.Changed(cur)
			if len(added)+len(changed)+len(removed) > 0 {
				s.log.Info("secrets changed in Infisical while not mounted", "project", p.Dir, "env", env,
					"added", added, "changed", changed, "removed", removed)
			}
		}
		for id, rec := range cur {
			if o, ok := old[id]; ok && o.Hash == rec.Hash && o.Version == rec.Version {
				rec.LastSynced = now
			}
			f.Secrets[id] = rec
		}
		if !slices.Contains(f.ProjectIDs, p.ID) {
			f.ProjectIDs = append(f.ProjectIDs, p.ID)
		}
		if !slices.Contains(f.Environments, env) {
			f.Environments = append(f.Environments, env)
		}
		if len(f.Environments) == 1 {
			f.Environment = f.Environments[0]
		} else {
			f.Environment = ""
		}
	})
}

func inScope(rec state.Secret, id, project, env, prefix string) bool {
	if rec.Project != "" {
		return rec.Project == project && rec.Environment == env
	}
	return strings.HasPrefix(id, prefix)
}
