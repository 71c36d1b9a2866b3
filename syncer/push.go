package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Writes run on a context of our own with our own timeout: the FUSE
// request's context is cancelled by any signal to the caller, Go's
// preemption signal included, and a half-sent push is worse than a slow one.

func ref(a vault.Addr) infisical.Ref {
	return infisical.Ref{ProjectID: a.Project, Environment: a.Env, Path: a.Path, Key: a.Key}
}

func (s *Syncer) name(a vault.Addr) string {
	return s.dirOf(a.Project) + "/" + a.Env + strings.TrimSuffix(a.Path, "/") + "/" + a.Key
}

// lockKeys serialises writes to the same secrets, so that concurrent closes
// of one key are pushed one after another, in order.
func (s *Syncer) lockKeys(as ...vault.Addr) func() {
	if len(as) == 2 && as[1].String() < as[0].String() {
		as[0], as[1] = as[1], as[0]
	}
	var held []*sync.Mutex
	for i, a := range as {
		if i > 0 && a == as[i-1] {
			continue
		}
		m, _ := s.keyLocks.LoadOrStore(a, &sync.Mutex{})
		mu := m.(*sync.Mutex)
		mu.Lock()
		held = append(held, mu)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
}

func (s *Syncer) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opt.PushTimeout)
}

// probeTimeout bounds the probe an open-for-write makes after a failed
// contact: a few seconds, whatever the retry policy says.
const probeTimeout = 5 * time.Second

// WriteCheck fails an open-for-write early when the outcome of a push is
// already known, since bash ignores close() errors on its own redirections
// and open is the last place the user is sure to see them: Infisical
// refused a write to this environment, or it cannot be reached. After a
// failed contact it does not trust the failure but asks Infisical once
// (a conditional listing of this environment, usually a 304, bounded by
// probeTimeout): a blip must not refuse writes until the next cycle.
// Refusals are logged once per burst.
func (s *Syncer) WriteCheck(project, env string) error {
	s.mu.Lock()
	contactErr := s.contactErr
	var writeErr error
	if sc := s.scopes[scopeKey{project, env}]; sc != nil {
		writeErr = sc.writeErr
	}
	where := s.dirOfLocked(project) + "/" + env
	s.mu.Unlock()
	if writeErr != nil {
		return opError("open", where, writeErr)
	}
	if contactErr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	err := s.refreshScope(ctx, project, env)
	if err == nil {
		return nil
	}
	s.mu.Lock()
	first := !s.refusing
	s.refusing = true
	s.mu.Unlock()
	if first {
		s.log.Warn("refusing writes: Infisical did not answer a probe; reads serve the last values", "scope", where, "err", err)
	}
	return opError("open", where, err)
}

func (s *Syncer) dirOfLocked(projectID string) string {
	for _, p := range s.projects {
		if p.ID == projectID {
			return p.Dir
		}
	}
	return projectID
}

// CheckKey applies Infisical's secret name rules (and refuses names the
// server would silently change).
func (s *Syncer) CheckKey(name string) error {
	return opError("name", name, infisical.ValidateKey(name))
}

// CheckFolder applies Infisical's folder name rule.
func (s *Syncer) CheckFolder(name string) error {
	return opError("name", name, infisical.ValidateFolderName(name))
}

// Push upserts a secret's value and records what Infisical stored (the
// server trims whitespace), so a read shows the stored value. A base above
// 0 is the version the value was derived from (an append, an edit, a
// scratch file renamed onto the key): it is pushed only if Infisical still
// holds that version (see checkBase). Base 0 is a blind overwrite.
//
// A negative base is -version for a write whose version the caller already
// confirmed with CheckBase (an append at open): no listing now, but the
// version Infisical returns is checked as for any base.
func (s *Syncer) Push(a vault.Addr, value []byte, base int) error {
	defer s.lockKeys(a)()
	ctx, cancel := s.ctx()
	defer cancel()
	// Imports first: they live in another folder, where the version
	// check would not find them.
	if meta, ok := s.opt.Vault.Stat(a); ok && meta.ReadOnly {
		return s.failed("push", a, ErrReadOnlyImport)
	}
	switch {
	case base < 0:
		base = -base
	case base > 0:
		if err := s.checkBase(ctx, a, base); err != nil {
			return s.failed("push", a, err)
		}
	}
	_, known := s.opt.Vault.Stat(a)
	sec, err := s.opt.API.UpsertSecret(ctx, ref(a), value, known)
	if err != nil {
		return s.failed("push", a, err)
	}
	s.log.Debug("pushed", "path", s.name(a), "checked_version", base, "stored_version", sec.Version)
	if base > 0 && sec.Version != base+1 {
		// Infisical's PATCH has no precondition: another writer (another
		// mount, the CLI) got in between the check and this write, which
		// replaced their change. Put theirs back and refuse this one, as
		// if the check had seen them: the write that checked first wins.
		restored, err := s.restore(ctx, a, sec)
		clear(sec.Value)
		if err != nil {
			s.log.Error("another writer changed this secret between the version check and this write, which replaced their change; putting it back failed: restore it from the secret's history",
				"path", s.name(a), "checked_version", base, "their_version", sec.Version-1, "err", err)
			return s.failed("push", a, &StaleError{Key: a.Key, From: base, To: sec.Version - 1})
		}
		defer clear(restored.Value)
		if err := s.store(a, restored); err != nil {
			return s.failed("push", a, err)
		}
		s.notify(tree.Changes{Updated: []vault.Addr{a}}, false)
		return s.failed("push", a, &StaleError{Key: a.Key, From: base, To: sec.Version - 1})
	}
	defer clear(sec.Value)
	if err := s.store(a, sec); err != nil {
		return s.failed("push", a, err)
	}
	if known {
		s.notify(tree.Changes{Updated: []vault.Addr{a}}, false)
	} else {
		s.notify(tree.Changes{Added: []vault.Addr{a}}, false)
	}
	s.pushed("push")
	return nil
}

// store puts a pushed secret into the vault and the state file.
func (s *Syncer) store(a vault.Addr, sec *infisical.Secret) error {
	s.markWritten(a)
	s.keepListedMeta(a, sec)
	m := metaOf(sec)
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = time.Now()
	}
	dependents, err := s.applyExpanded(a.Project, "", []vault.Change{{Addr: a, Value: sec.Value, Meta: m, Notes: notesOf(sec)}}, nil)
	if err != nil {
		return err
	}
	s.notify(tree.Changes{Updated: dependents}, false)
	s.setRecord(a, sec.Value, sec.Version)
	return nil
}

func (s *Syncer) forget(a vault.Addr) {
	s.markWritten(a)
	if dependents, err := s.applyExpanded(a.Project, "", []vault.Change{{Addr: a, Delete: true}}, nil); err == nil {
		s.notify(tree.Changes{Updated: dependents}, false)
	}
	s.dropRecord(a)
}

// Delete removes a secret, if Infisical still holds version base of it
// (0: whatever it holds), so rm never removes a value nobody here has
// seen. A secret that is already gone counts as deleted.
func (s *Syncer) Delete(a vault.Addr, base int) error {
	defer s.lockKeys(a)()
	ctx, cancel := s.ctx()
	defer cancel()
	if meta, ok := s.opt.Vault.Stat(a); ok && meta.ReadOnly {
		return s.failed("delete", a, ErrReadOnlyImport)
	}
	if base > 0 {
		if err := s.checkBase(ctx, a, base); err != nil {
			return s.failed("delete", a, err)
		}
	}
	err := s.opt.API.DeleteSecret(ctx, ref(a))
	if err != nil && !errors.Is(err, infisical.ErrNotFound) {
		return s.failed("delete", a, err)
	}
	s.log.Debug("deleted", "path", s.name(a), "checked_version", base)
	s.forget(a)
	s.notify(tree.Changes{Removed: []vault.Addr{a}}, false)
	if err == nil { // already gone: nothing was pushed
		s.pushed("delete")
	}
	return nil
}

// Rename moves a secret. In one folder it is a rename on the server (PATCH
// newSecretName); elsewhere, or onto an existing key, the value is written
// at the target first and the source deleted after, so the target never
// goes missing and a failure never loses the value.
//
// base is the version of from the move derives from (0: unchecked).
func (s *Syncer) Rename(from, to vault.Addr, base int) error {
	defer s.lockKeys(from, to)()
	s.log.Debug("rename", "from", s.name(from), "to", s.name(to), "checked_version", base)
	ctx, cancel := s.ctx()
	defer cancel()
	if fm, ok := s.opt.Vault.Stat(from); ok && fm.ReadOnly {
		return s.failed("rename", from, ErrReadOnlyImport)
	}
	if base > 0 {
		if err := s.checkBase(ctx, from, base); err != nil {
			return s.failed("rename", from, err)
		}
	}
	fm, ok := s.opt.Vault.Stat(from)
	if !ok {
		return s.failed("rename", from, infisical.ErrNotFound)
	}
	tm, toKnown := s.opt.Vault.Stat(to)
	if fm.ReadOnly || (toKnown && tm.ReadOnly) {
		return s.failed("rename", from, ErrReadOnlyImport)
	}
	sameFolder := from.Project == to.Project && from.Env == to.Env && from.Path == to.Path
	if sameFolder && !toKnown {
		sec, err := s.opt.API.UpdateSecret(ctx, ref(from), infisical.Update{NewName: to.Key})
		if err == nil {
			defer clear(sec.Value)
			s.forget(from)
			if err := s.store(to, sec); err != nil {
				return s.failed("rename", from, err)
			}
			s.notify(tree.Changes{Removed: []vault.Addr{from}, Added: []vault.Addr{to}}, false)
			s.pushed("rename")
			return nil
		}
		if !errors.Is(err, infisical.ErrAlreadyExists) {
			return s.failed("rename", from, err)
		}
		toKnown = true // exists on the server though not yet in the vault
	}
	val, _, err := s.opt.Vault.GetForm(from, vault.Raw) // the raw value: a move keeps references as written
	if err != nil {
		return s.failed("rename", from, err)
	}
	defer val.Wipe()
	sec, err := s.opt.API.UpsertSecret(ctx, ref(to), val.Bytes(), toKnown)
	if err != nil {
		return s.failed("rename", from, err)
	}
	defer clear(sec.Value)
	if err := s.store(to, sec); err != nil {
		return s.failed("rename", from, err)
	}
	ch := tree.Changes{Added: []vault.Addr{to}}
	if toKnown {
		ch = tree.Changes{Updated: []vault.Addr{to}}
	}
	if err := s.opt.API.DeleteSecret(ctx, ref(from)); err != nil && !errors.Is(err, infisical.ErrNotFound) {
		s.notify(ch, false)
		return s.failed("rename", from, err)
	}
	s.forget(from)
	ch.Removed = []vault.Addr{from}
	s.notify(ch, false)
	s.pushed("rename")
	return nil
}

// Mkdir creates the folder at path (its parents must exist).
func (s *Syncer) Mkdir(project, env, path string) error {
	fa := folderAddr(project, env, path)
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.opt.API.CreateFolder(ctx, project, env, fa.Path, fa.Key); err != nil {
		return s.failed("mkdir", fa, err)
	}
	s.markWritten(fa)
	s.opt.Vault.AddFolder(project, env, path)
	s.notify(tree.Changes{Folders: []vault.Addr{fa}}, false)
	s.pushed("mkdir")
	return nil
}

// Rmdir deletes an empty folder; Infisical's forceDelete is never used.
func (s *Syncer) Rmdir(project, env, path string) error {
	fa := folderAddr(project, env, path)
	if l := s.opt.Vault.List(project, env, path); len(l.Keys)+len(l.Folders) > 0 {
		return opError("rmdir", s.name(fa), ErrNotEmpty)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.opt.API.DeleteFolder(ctx, project, env, fa.Path, fa.Key)
	if errors.Is(err, infisical.ErrFolderNotEmpty) {
		// Something the vault has not seen yet lives there.
		err = ErrNotEmpty
	}
	if err != nil && !errors.Is(err, infisical.ErrNotFound) {
		return s.failed("rmdir", fa, err)
	}
	s.markWritten(fa)
	s.opt.Vault.RemoveFolder(project, env, path)
	s.notify(tree.Changes{Folders: []vault.Addr{fa}}, false)
	s.pushed("rmdir")
	return nil
}

func (s *Syncer) pushed(op string) {
	s.mu.Lock()
	s.counts.Pushes++
	s.reachedLocked()
	s.mu.Unlock()
	s.saveState(func(f *state.File) { f.PushCount++ })
	s.flushState()
	if s.opt.OnPush != nil {
		s.opt.OnPush(op, nil)
	}
}

// failed counts and logs a failed write once, with what to do about it, and
// remembers failures that predict the next write's fate.
func (s *Syncer) failed(op string, a vault.Addr, err error) error {
	e := opError(op, s.name(a), err)
	s.mu.Lock()
	s.counts.PushErrors++
	s.counts.Errors++
	switch {
	case errors.Is(err, infisical.ErrUnreachable):
		s.markStaleLocked(err)
	case errors.Is(err, infisical.ErrPermissionDenied):
		k := scopeKey{a.Project, a.Env}
		if sc := s.scopes[k]; sc != nil {
			sc.writeErr = err
		}
	}
	s.mu.Unlock()
	s.saveState(func(f *state.File) { f.ErrorCount++ })
	s.flushState()
	level := s.log.Warn
	msg := op + " failed"
	var stale *StaleError
	switch {
	case errors.Is(err, infisical.ErrApprovalPending):
		msg = op + " not applied: the change awaits approval under the environment's approval policy"
	case errors.As(err, &stale):
		msg = op + " refused: " + stale.Error()
	}
	level(msg, "path", s.name(a), "errno", e.(*Error).Errno().Error(), "err", err)
	if s.opt.OnPush != nil {
		s.opt.OnPush(op, err)
	}
	return e
}

// CheckBase is checkBase for the filesystem (an open for appending): the
// refusal is logged and counted like a failed push.
func (s *Syncer) CheckBase(a vault.Addr, base int) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := s.checkBase(ctx, a, base); err != nil {
		return s.failed("open", a, err)
	}
	return nil
}

// checkBase confirms that Infisical still holds version base of a, with
// one request for that secret alone: small whatever the environment's
// size, where a conditional listing would be a 304 only until this mount's
// own next write, and a whole environment after it. If Infisical moved on,
// the vault and the kernel take the newer value at once and the change is
// refused with a StaleError, leaving Infisical untouched.
func (s *Syncer) checkBase(ctx context.Context, a vault.Addr, base int) error {
	sec, err := s.opt.API.GetSecret(ctx, ref(a))
	switch {
	case errors.Is(err, infisical.ErrNotFound):
		s.reached()
		s.forget(a)
		s.notify(tree.Changes{Removed: []vault.Addr{a}}, false)
		return &StaleError{Key: a.Key, From: base, Deleted: true}
	case err != nil:
		return err // every caller counts it once, through failed
	}
	s.reached()
	defer clear(sec.Value)
	if sec.Version == base {
		return nil
	}
	if err := s.store(a, sec); err != nil {
		return err
	}
	s.notify(tree.Changes{Updated: []vault.Addr{a}}, false)
	return &StaleError{Key: a.Key, From: base, To: sec.Version}
}

// reached records a request that succeeded.
func (s *Syncer) reached() {
	s.mu.Lock()
	s.reachedLocked()
	s.mu.Unlock()
}

// restore writes back the version just before sec, the other writer's
// change that sec replaced, and returns what Infisical stored.
func (s *Syncer) restore(ctx context.Context, a vault.Addr, sec *infisical.Secret) (*infisical.Secret, error) {
	theirs, err := s.opt.API.GetSecretVersion(ctx, ref(a), sec.Version-1)
	if err != nil {
		return nil, fmt.Errorf("read version %d: %w", sec.Version-1, err)
	}
	defer clear(theirs.Value)
	v := theirs.Value
	if v == nil {
		v = []byte{} // an empty value, not "unchanged"
	}
	back, err := s.opt.API.UpdateSecret(ctx, ref(a), infisical.Update{Value: v})
	if err != nil {
		return nil, fmt.Errorf("write version %d back: %w", sec.Version-1, err)
	}
	if back.Version != sec.Version+1 {
		// A third writer got in between this write and putting the second
		// one's back, and putting it back replaced theirs. With no
		// precondition on Infisical's writes this window cannot be closed;
		// it is logged so that no change is lost silently.
		s.log.Warn("lost update: a third writer changed this secret while another writer's change was being put back, and was replaced; its value is in the secret's history",
			"path", s.name(a), "replaced_versions_from", sec.Version+1, "to", back.Version-1)
	}
	return back, nil
}
