package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/refs"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

// projectRelistEvery is how many ordinary cycles pass between re-reading the
// project list; a forced sync always re-reads it. Listing projects every
// cycle would double the requests of an unchanged refresh.
const projectRelistEvery = 10

// Sync runs one refresh cycle now. A full cycle also re-reads the project
// list and every folder (empty folders do not show in a secret listing).
func (s *Syncer) Sync(ctx context.Context, full bool) error {
	s.cycleMu.Lock()
	defer s.cycleMu.Unlock()
	start := time.Now()
	s.mu.Lock()
	interval := s.opt.Interval
	s.mu.Unlock()
	// A retry waits no longer than the next cycle would come.
	err := s.sync(infisical.WithRetryCap(ctx, interval), full)
	d := time.Since(start)
	s.cycles.Add(1)
	if s.opt.OnSync != nil {
		s.opt.OnSync(d, err)
	}
	if err != nil {
		s.mu.Lock()
		never := s.lastOK.IsZero() && len(s.projects) == 0
		s.mu.Unlock()
		if never {
			// Nothing was ever reached: there are no last values, and the
			// caller (the start) reports the error itself.
			s.log.Debug("first sync failed", "err", err, "duration", d)
		} else {
			s.log.Warn("sync cycle failed; serving the last values", "err", err, "duration", d)
		}
	} else {
		s.log.Debug("sync cycle done", "duration", d)
	}
	s.notify(tree.Changes{}, true)
	return err
}

func (s *Syncer) sync(ctx context.Context, full bool) error {
	if err := s.opt.API.BeginCycle(ctx); err != nil {
		s.contactFailed(err)
		return fmt.Errorf("begin sync cycle: %w", err)
	}
	s.mu.Lock()
	first := len(s.projects) == 0
	// Every listing from here on starts after these writes, so their marks
	// can go, unless the open-for-write probe is listing meanwhile.
	if s.listing == 0 {
		clear(s.written)
	}
	// A refused write is retried once per cycle: a role may have been
	// granted since.
	for _, sc := range s.scopes {
		sc.writeErr = nil
	}
	s.mu.Unlock()
	var ch tree.Changes
	if full || first || s.cycles.Load()%projectRelistEvery == 0 {
		changed, err := s.loadProjects(ctx)
		if err != nil {
			s.contactFailed(err)
			return fmt.Errorf("list projects: %w", err)
		}
		ch.Tree = changed
	}
	var firstErr error
	for _, p := range s.Projects() {
		for _, env := range p.Envs {
			c, err := s.syncScope(ctx, p, env, full)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				if errors.Is(err, infisical.ErrUnreachable) || ctx.Err() != nil {
					s.contactFailed(err)
					return err
				}
				continue
			}
			ch.Updated = append(ch.Updated, c.Updated...)
			ch.Added = append(ch.Added, c.Added...)
			ch.Removed = append(ch.Removed, c.Removed...)
			ch.Folders = append(ch.Folders, c.Folders...)
		}
	}
	s.mu.Lock()
	now := time.Now()
	s.lastOK = now
	s.staleSince = time.Time{}
	s.lastErr = firstErr
	s.reachedLocked()
	s.counts.Pulls++
	s.mu.Unlock()
	s.saveState(func(f *state.File) {
		f.LastSync = now
		f.PullCount++
	})
	if s.opt.BackgroundFirstSave && s.cycles.Load() == 0 { // the start's cycle (cycles counts those completed)
		s.firstSave.Add(1)
		go func() {
			defer s.firstSave.Done()
			s.flushState()
		}()
	} else {
		s.flushState()
	}
	s.announce(ch)
	return firstErr
}

// loadProjects reads the project list and applies the project/env filters.
func (s *Syncer) loadProjects(ctx context.Context) (changed bool, err error) {
	all, err := s.opt.API.ListProjects(ctx)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	want, envs := s.opt.Projects, s.opt.Envs
	s.mu.Unlock()
	slugCount := map[string]int{}
	for _, p := range all {
		slugCount[p.Slug]++
	}
	var out []tree.Project
	seen := map[string]bool{}
	allEnvs := map[string][]string{}
	for _, p := range all {
		for _, e := range p.Environments {
			allEnvs[p.ID] = append(allEnvs[p.ID], e.Slug)
		}
		if len(want) > 0 && !slices.Contains(want, p.Slug) && !slices.Contains(want, p.ID) {
			continue
		}
		seen[p.Slug], seen[p.ID] = true, true
		dir := p.Slug
		if dir == "" || slugCount[p.Slug] > 1 || !validDirName(dir) {
			dir = p.ID
		}
		var es []string
		for _, e := range p.Environments {
			if len(envs) == 0 || slices.Contains(envs, e.Slug) {
				es = append(es, e.Slug)
			}
		}
		sort.Strings(es)
		out = append(out, tree.Project{ID: p.ID, Dir: dir, Envs: es})
	}
	for _, w := range want {
		if !seen[w] {
			s.log.Warn("configured project not found or not accessible; grant the identity a role on it in Access Control", "project", w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = !slices.EqualFunc(out, s.projects, func(a, b tree.Project) bool {
		return a.ID == b.ID && a.Dir == b.Dir && slices.Equal(a.Envs, b.Envs)
	})
	s.projects = out
	s.allEnvs = allEnvs
	return changed, nil
}

func validDirName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

func (s *Syncer) dirOf(projectID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projects {
		if p.ID == projectID {
			return p.Dir
		}
	}
	return projectID
}

// syncScope lists one environment recursively and applies the difference to
// the vault. It may run for one scope from a cycle and from a write's check
// at once: tickets keep their applies in order (see scope).
func (s *Syncer) syncScope(ctx context.Context, p tree.Project, env string, full bool) (tree.Changes, error) {
	key := scopeKey{p.ID, env}
	s.mu.Lock()
	sc := s.scopes[key]
	if sc == nil {
		sc = &scope{}
		s.scopes[key] = sc
	}
	etag := sc.etag
	if full {
		etag = ""
	}
	seq := s.writeSeq
	sc.ticket++
	ticket := sc.ticket
	s.mu.Unlock()

	res, err := s.opt.API.ListSecrets(ctx, infisical.ListOptions{
		ProjectID: p.ID, Environment: env, Path: "/",
		Recursive: true, IncludeImports: s.opt.IncludeImports,
		IfNoneMatch: etag,
	})
	if err != nil {
		s.scopeFailed(key, err)
		return tree.Changes{}, fmt.Errorf("list %s/%s: %w", p.Dir, env, err)
	}
	if res.NotModified {
		sc.applyMu.Lock()
		s.scopeOK(key, ticket, etag)
		sc.applyMu.Unlock()
		return tree.Changes{}, nil
	}
	defer wipeList(res)

	// Empty folders never show in a secret listing, so the folder tree is
	// read whenever the listing changed (a 304 above skips it).
	folders, err := s.opt.API.ListFolderTree(ctx, p.ID, env)
	foldersListed := err == nil
	if err != nil {
		s.log.Warn("listing folders failed; folders without secrets may be missing", "project", p.Dir, "env", env, "err", err)
	}
	sc.applyMu.Lock()
	defer sc.applyMu.Unlock()
	s.mu.Lock()
	stale := ticket < sc.applied
	s.mu.Unlock()
	if stale {
		return tree.Changes{}, nil // a newer listing is already in the vault
	}
	ch := s.apply(p, env, res, folders, foldersListed, seq)
	s.scopeOK(key, ticket, res.ETag)
	return ch, nil
}

// refreshScope lists one environment now, as a cycle would, and passes on
// what changed; the open-for-write probe (WriteCheck) uses it. Unchanged,
// it costs one 304.
func (s *Syncer) refreshScope(ctx context.Context, projectID, env string) error {
	var p tree.Project
	for _, q := range s.Projects() {
		if q.ID == projectID {
			p = q
		}
	}
	if p.ID == "" {
		return fmt.Errorf("project %s is not mounted", projectID)
	}
	s.mu.Lock()
	s.listing++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.listing--
		s.mu.Unlock()
	}()
	ch, err := s.syncScope(ctx, p, env, false)
	if err != nil {
		if errors.Is(err, infisical.ErrUnreachable) {
			s.contactFailed(err)
		}
		return err
	}
	s.announce(ch)
	return nil
}

// announce passes what a listing changed to the kernel cache and, for
// secrets, to the on-change hooks.
func (s *Syncer) announce(ch tree.Changes) {
	if ch.Empty() {
		return
	}
	s.notify(ch, false)
	if s.opt.OnChange != nil && len(ch.Updated)+len(ch.Added)+len(ch.Removed) > 0 {
		s.opt.OnChange(changedPaths(ch, s.dirOf))
	}
}

// apply diffs a fresh listing against the vault and applies the difference
// in one vault transaction, skipping addresses written locally since the
// listing was requested (the listing may predate the write).
func (s *Syncer) apply(p tree.Project, env string, res *infisical.ListResult, folders []string, foldersListed bool, seq uint64) tree.Changes {
	// Sized up front: grown entry by entry, a 100k-secret listing spent
	// more time rehashing and copying than sealing.
	desired := make(map[vault.Addr]want, len(res.Secrets))
	for i := range res.Secrets {
		sec := res.Secrets[i]
		path := sec.Path
		if path == "" {
			path = "/"
		}
		desired[vault.Addr{Project: p.ID, Env: env, Path: path, Key: sec.Key}] = want{sec: sec}
	}
	// Imports show read-only in the environment's root; the folder's own
	// keys win, and a later import wins over an earlier one.
	for i := range res.Imports {
		imp := &res.Imports[i]
		for j := range imp.Secrets {
			sec := imp.Secrets[j]
			a := vault.Addr{Project: p.ID, Env: env, Path: "/", Key: sec.Key}
			if w, ok := desired[a]; ok && !w.readOnly() {
				continue
			}
			path := imp.Path
			if path == "" {
				path = "/"
			}
			desired[a] = want{sec: sec, origin: &refs.Addr{Env: imp.Environment, Path: path, Key: sec.Key}}
		}
	}

	existing := s.opt.Vault.Addrs(p.ID, env)
	// At least this many are new (all of them at the first sync); the
	// slices start that large instead of doubling their way there.
	adds := max(len(desired)-len(existing), 0)
	s.mu.Lock()
	skip := func(a vault.Addr) bool { return s.written[a] > seq }
	changes := make([]vault.Change, 0, adds)
	ch := tree.Changes{Added: make([]vault.Addr, 0, adds)}
	origins := map[vault.Addr]refs.Addr{}
	for a, w := range desired {
		if skip(a) {
			continue
		}
		meta := metaOf(w.sec)
		meta.ReadOnly = w.readOnly()
		old, ok := s.opt.Vault.Stat(a)
		switch {
		case !ok:
			ch.Added = append(ch.Added, a)
		case old.ID != meta.ID || old.Version != meta.Version || old.ReadOnly != meta.ReadOnly || old.Hidden != meta.Hidden || !old.UpdatedAt.Equal(meta.UpdatedAt):
			ch.Updated = append(ch.Updated, a)
		default:
			continue
		}
		if w.origin != nil {
			origins[a] = *w.origin
		}
		changes = append(changes, vault.Change{Addr: a, Value: w.sec.Value, Meta: meta, Notes: notesOf(w.sec)})
	}
	for _, a := range existing {
		if _, ok := desired[a]; ok || skip(a) {
			continue
		}
		ch.Removed = append(ch.Removed, a)
		changes = append(changes, vault.Change{Addr: a, Delete: true})
	}
	s.mu.Unlock()

	// Folders: every folder that holds a secret exists; a full folder
	// listing also adds empty ones and removes vanished ones.
	wantFolders := map[string]bool{}
	for a := range desired {
		for d := a.Path; d != "/"; d = parentPath(d) {
			wantFolders[d] = true
		}
	}
	for _, f := range folders {
		wantFolders[f] = true
	}
	have := map[string]bool{}
	walkVaultFolders(s.opt.Vault, p.ID, env, "/", have)
	for f := range wantFolders {
		if !have[f] {
			s.opt.Vault.AddFolder(p.ID, env, f)
			ch.Folders = append(ch.Folders, folderAddr(p.ID, env, f))
		}
	}
	if foldersListed {
		for f := range have {
			// RemoveFolder takes the subtree, so a child of a removed
			// folder reports false and is not counted twice.
			if !wantFolders[f] && !s.wroteSince(folderAddr(p.ID, env, f), seq) && s.opt.Vault.RemoveFolder(p.ID, env, f) {
				ch.Folders = append(ch.Folders, folderAddr(p.ID, env, f))
			}
		}
	}
	if len(changes) > 0 {
		dependents, err := s.applyExpanded(p.ID, env, changes, origins)
		if err != nil {
			s.log.Error("applying a listing to the vault failed", "project", p.Dir, "env", env, "err", err)
			return tree.Changes{}
		}
		ch.Updated = append(ch.Updated, dependents...)
	}
	sortAddrs(ch.Added)
	sortAddrs(ch.Updated)
	sortAddrs(ch.Removed)
	s.recordListing(p, env, desired)
	return ch
}

// want is one secret a listing says should be in the vault.
type want struct {
	sec    *infisical.Secret
	origin *refs.Addr // an import's environment and path; nil for the folder's own (a pointer: one want per listed secret)
}

// readOnly: an import's secret shows read-only.
func (w want) readOnly() bool { return w.origin != nil }

// metaOf is what the vault keeps in the clear about a listed secret.
func metaOf(sec *infisical.Secret) vault.Meta {
	return vault.Meta{ID: sec.ID, Version: sec.Version, UpdatedAt: sec.UpdatedAt,
		Hidden: sec.ValueHidden, SkipMultiline: sec.SkipMultilineEncoding, Tags: sec.Tags}
}

// notesOf is what the vault keeps sealed about it besides the value.
func notesOf(sec *infisical.Secret) *vault.Notes {
	if sec.Comment == "" && len(sec.Metadata) == 0 {
		return nil // the vault keeps nothing for empty notes either
	}
	n := &vault.Notes{Comment: sec.Comment}
	for _, m := range sec.Metadata {
		n.Metadata = append(n.Metadata, vault.Metadatum{Key: m.Key, Value: m.Value})
	}
	return n
}
