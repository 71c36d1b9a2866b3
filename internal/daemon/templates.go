package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/hooks"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/templates"
	"github.com/infisicalfs/infisicalfs/vault"
)

// tmplState is a Source's [[template]] files: the parsed set, rendered from
// the vault after every change that concerns it, their own hooks runner,
// and the fs.Templates the mounts read.
//
// Lock order: renderMu, then mu. renderMu makes a change's re-render and a
// reload's swap one after the other, so that no change falls between a
// reload's render and its swap; it is held while rendering (vault reads,
// no I/O) but never while a kernel notification is delivered (tell only
// queues). mu guards set and specs and is held for nothing else.
type tmplState struct {
	log   *slog.Logger
	vs    *vaultSource
	hooks *hooks.Runner
	tell  func(paths []string, tree bool) // the mounts' InvalidateTemplates
	scope func()                          // re-check the sync covers Scopes()

	renderMu sync.Mutex
	mu       sync.Mutex
	set      *templates.Set
	specs    []templates.Spec
}

// newTemplates parses cfg's templates: a template that does not parse is
// a start-up error naming its file and line. nil without templates.
func newTemplates(cfg config.Config, vs *vaultSource, log *slog.Logger) (*tmplState, error) {
	if len(cfg.Templates) == 0 {
		return nil, nil
	}
	specs, err := templates.FromConfig(cfg.Templates)
	if err != nil {
		return nil, err
	}
	set, err := templates.New(specs)
	if err != nil {
		return nil, err
	}
	if dyn := set.UsesDynamicSecrets(); len(dyn) > 0 {
		log.Warn("these templates call dynamic_secret, which infisicalfs does not support: they will fail to render", "templates", dyn)
	}
	return &tmplState{log: log, vs: vs, set: set, specs: specs, hooks: hooks.New(set.Hooks(), log),
		tell: func([]string, bool) {}, scope: func() {}}, nil
}

func (t *tmplState) current() *templates.Set {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.set
}

// first renders every template after the first sync. A template that
// cannot render then has no content to show: a start-up error, naming it
// and why (text/template's errors carry the file and line).
func (t *tmplState) first() error {
	var errs []error
	for _, r := range t.current().Render(t.vs, nil) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", r.Path, r.Err))
		}
	}
	return errors.Join(errs...)
}

// changed re-renders the templates ch concerns; it runs wherever the
// syncer reports a change (its notifier, or a push), only queueing kernel
// invalidations and hook runs.
func (t *tmplState) changed(ch tree.Changes) {
	if !ch.Secrets() {
		return
	}
	t.renderMu.Lock()
	defer t.renderMu.Unlock()
	set := t.current()
	ids := set.Affected(ch)
	if len(ids) == 0 {
		return
	}
	t.report(set.Render(t.vs, ids), set)
	t.scope()
}

// report tells the mounts which files changed, runs the hooks of those
// whose bytes changed after a good render, and logs failures (never a
// value: the set scrubs them).
func (t *tmplState) report(rs []templates.Result, set *templates.Set) {
	var changed, hooked []string
	status := false
	for _, r := range rs {
		switch {
		case r.Err != nil:
			t.log.Warn("template failed to render; it keeps its last good content and runs no hook", "template", set.Spec(r.Index).Name, "path", r.Path, "err", r.Err)
			status = true
		case r.Changed:
			changed = append(changed, r.Path)
			status = true
			if r.RunHook {
				hooked = append(hooked, r.Path)
			}
		}
	}
	if len(changed) > 0 || status {
		t.tell(changed, false)
	}
	if len(hooked) > 0 {
		t.hooks.Changed(hooked)
	}
}

// reload replaces the templates with cfg's (a config or template file
// changed). A set that does not parse keeps the running one; an unchanged
// set does nothing.
func (t *tmplState) reload(ts []config.Template) {
	t.renderMu.Lock()
	defer t.renderMu.Unlock()
	specs, err := templates.FromConfig(ts)
	if err == nil && slices.EqualFunc(specs, t.specsNow(), sameSpec) {
		return
	}
	var next *templates.Set
	if err == nil {
		next, err = templates.New(specs)
	}
	if err != nil {
		t.log.Warn("templates reload failed, keeping the running templates", "err", err)
		return
	}
	old := t.current()
	next.Adopt(old)
	rs := next.Render(t.vs, nil)
	t.hooks.Update(next.Hooks())
	t.mu.Lock()
	t.set, t.specs = next, specs
	t.mu.Unlock()
	t.tell(nil, !slices.Equal(old.Paths(), next.Paths()))
	t.report(rs, next)
	t.scope()
	t.log.Info("templates reloaded", "templates", len(specs))
}

func sameSpec(a, b templates.Spec) bool {
	return a.Path == b.Path && a.Name == b.Name && a.Text == b.Text && a.Mode == b.Mode &&
		a.Timeout == b.Timeout && slices.Equal(a.OnChange, b.OnChange)
}

func (t *tmplState) specsNow() []templates.Spec {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.specs
}

func (t *tmplState) close() { t.hooks.Close() }

// Paths, Stat and Content make tmplState the mounts' fs.Templates.
func (t *tmplState) Paths() []string { return t.current().Paths() }

func (t *tmplState) Stat(path string) (int, uint32, time.Time, bool) {
	set := t.current()
	i := set.Index(path)
	if i < 0 {
		return 0, 0, time.Time{}, false
	}
	var at time.Time
	if st := set.Status(); i < len(st) {
		at = st[i].RenderedAt
	}
	return set.Size(i), set.Spec(i).Mode, at, true
}

func (t *tmplState) Content(path string) ([]byte, error) {
	set := t.current()
	i := set.Index(path)
	if i < 0 {
		return nil, fmt.Errorf("template %s: gone", path)
	}
	return set.Content(i)
}

// Status is the templates' part of .status.
func (t *tmplState) Status() []templates.Status { return t.current().Status() }

var _ fs.Templates = (*tmplState)(nil)

// vaultSource is templates.Source over the vault: what a template reads
// is what the mount shows, and no template makes a request of its own.
type vaultSource struct {
	v    *vault.Vault
	sync *syncer.Syncer
	// raw and expanded read one folder's values: expanded as the mount
	// serves them (references expanded, as the agent's templates read
	// them by default), raw as stored.
	raw, expanded func(project, env, path string) ([]vault.Entry, error)
}

func newVaultSource(v *vault.Vault) *vaultSource {
	// A secret whose references could not be expanded, or whose value the
	// identity may not see, is left out: the vault holds its raw value or
	// none, and a template must not render either as if it were the value.
	expanded := func(project, env, path string) ([]vault.Entry, error) {
		es, _, err := v.Snapshot(project, env, path)
		out := es[:0]
		for _, e := range es {
			if e.Meta.ExpandErr != "" || e.Meta.Hidden {
				e.Value.Wipe()
				continue
			}
			out = append(out, e)
		}
		return out, err
	}
	raw := func(project, env, path string) ([]vault.Entry, error) {
		es, _, err := v.Snapshot(project, env, path)
		for i := range es {
			if !es[i].Meta.Refs {
				continue // raw and served are the same bytes
			}
			a := vault.Addr{Project: project, Env: env, Path: path, Key: es[i].Key}
			rv, _, rerr := v.GetForm(a, vault.Raw)
			if rerr != nil {
				continue
			}
			es[i].Value.Wipe()
			es[i].Value = rv
		}
		return es, err
	}
	return &vaultSource{v: v, raw: raw, expanded: expanded}
}

func (s *vaultSource) synced(project, env string) error {
	for _, p := range s.sync.Projects() {
		if p.ID == project {
			if slices.Contains(p.Envs, env) {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("project %s environment %s: %w", project, env, templates.ErrNotSynced)
}

// ProjectID resolves a slug through the mounted projects' directory
// names, which are slugs unless two projects share one.
func (s *vaultSource) ProjectID(slug string) (string, error) {
	for _, p := range s.sync.Projects() {
		if p.Dir == slug {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("project slug %s: %w", slug, templates.ErrNotSynced)
}

// List returns the folder's own secrets (with recursive, of every folder
// below too) sorted by folder path and key, then, for the environment's
// root, the imported ones the syncer keeps there (read-only), by key.
func (s *vaultSource) List(project, env, path string, recursive, expand bool) ([]templates.Item, error) {
	if err := s.synced(project, env); err != nil {
		return nil, err
	}
	if !s.v.HasFolder(project, env, path) {
		return nil, fmt.Errorf("folder %s in %s: %w", path, env, templates.ErrNotFound)
	}
	read := s.raw
	if expand {
		read = s.expanded
	}
	var own, imported []templates.Item
	folders := []string{path}
	for len(folders) > 0 {
		slices.Sort(folders)
		p := folders[0]
		folders = folders[1:]
		es, err := read(project, env, p)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			it := templates.Item{Key: e.Key, Path: p, Value: append([]byte(nil), e.Value.Bytes()...), ID: e.Meta.ID, Imported: e.Meta.ReadOnly}
			e.Value.Wipe()
			if it.Imported {
				imported = append(imported, it)
			} else {
				own = append(own, it)
			}
		}
		if recursive {
			for _, f := range s.v.List(project, env, p).Folders {
				folders = append(folders, vault.ChildPath(p, f))
			}
		}
	}
	slices.SortStableFunc(own, func(a, b templates.Item) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return append(own, imported...), nil
}

// Get returns one secret of the folder (imports included, where the
// syncer keeps them).
func (s *vaultSource) Get(project, env, path, key string) (templates.Item, error) {
	if err := s.synced(project, env); err != nil {
		return templates.Item{}, err
	}
	es, err := s.expanded(project, env, path)
	if err != nil {
		return templates.Item{}, err
	}
	var out templates.Item
	found := false
	for _, e := range es {
		if e.Key == key && !found {
			out = templates.Item{Key: key, Path: path, Value: append([]byte(nil), e.Value.Bytes()...), ID: e.Meta.ID, Imported: e.Meta.ReadOnly}
			found = true
		}
		e.Value.Wipe()
	}
	if !found {
		return templates.Item{}, fmt.Errorf("secret %s in %s:%s: %w", key, env, path, templates.ErrNotFound)
	}
	return out, nil
}

// scopeFilter adds to the sync's project and environment filters what
// templates read beyond them; a filter left empty (everything) needs
// nothing. base is the configured filter, extra what templates added.
type scopeFilter struct {
	mu                       sync.Mutex
	baseProjects, baseEnvs   []string
	extraProjects, extraEnvs []string
}

// set is the configured filter changing (reload); it returns the union.
func (f *scopeFilter) set(projects, envs []string) (p, e []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.baseProjects, f.baseEnvs = projects, envs
	return f.unionLocked()
}

func (f *scopeFilter) unionLocked() (p, e []string) {
	if len(f.baseProjects) > 0 {
		p = union(f.baseProjects, f.extraProjects)
	}
	if len(f.baseEnvs) > 0 {
		e = union(f.baseEnvs, f.extraEnvs)
	}
	return p, e
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// need adds the scopes that the synced projects do not cover; it reports
// the new union and whether something was added. With projects nil
// (before the first sync) every scope not literally in the filter is
// added: the filter matches slugs and IDs alike, so naming a project
// twice is harmless.
func (f *scopeFilter) need(scopes []templates.Scope, projects []tree.Project) (p, e []string, added bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sc := range scopes {
		covered := false
		for _, pr := range projects {
			if (pr.ID == sc.Project || sc.BySlug && pr.Dir == sc.Project) && slices.Contains(pr.Envs, sc.Env) {
				covered = true
			}
		}
		if covered {
			continue
		}
		if len(f.baseProjects) > 0 && !slices.Contains(f.baseProjects, sc.Project) && !slices.Contains(f.extraProjects, sc.Project) {
			f.extraProjects = append(f.extraProjects, sc.Project)
			added = true
		}
		if len(f.baseEnvs) > 0 && !slices.Contains(f.baseEnvs, sc.Env) && !slices.Contains(f.extraEnvs, sc.Env) {
			f.extraEnvs = append(f.extraEnvs, sc.Env)
			added = true
		}
	}
	p, e = f.unionLocked()
	return p, e, added
}

// ensureScopes adds what the templates read to the sync, reporting
// whether it added anything; with now it syncs again at once (start-up, so
// the first render sees it), else the next cycle (SetFilter triggers one)
// brings it.
func (s *Source) ensureScopes(ctx context.Context, now bool) (bool, error) {
	if s.tmpl == nil {
		return false, nil
	}
	p, e, added := s.filter.need(s.tmpl.current().Scopes(), s.sync.Projects())
	if !added {
		return false, nil
	}
	s.log.Info("templates read beyond the configured projects and environments: syncing those too", "projects", p, "envs", e)
	s.sync.SetFilter(p, e)
	if now {
		return true, s.sync.Sync(ctx, true)
	}
	return true, nil
}

// setFilter is the configured project/env filter changing (reload).
func (s *Source) setFilter(projects, envs []string) {
	p, e := s.filter.set(projects, envs)
	s.sync.SetFilter(p, e)
	if s.tmpl != nil {
		s.tmpl.scope()
	}
}

// startTemplates renders the templates after the first sync, widening the
// sync first where they read beyond it. A template with computed
// arguments shows what it reads only when it runs, and a render stops at
// the first call outside the sync: so render, widen, and render again
// while that adds something (at most maxWiden rounds).
func (s *Source) startTemplates(ctx context.Context) error {
	if s.tmpl == nil {
		return nil
	}
	s.tmpl.vs.sync = s.sync
	s.tmpl.tell = s.tellTemplates
	if _, err := s.ensureScopes(ctx, true); err != nil {
		return fmt.Errorf("syncing what the templates read: %w", err)
	}
	err := s.tmpl.first()
	for i := 0; err != nil && i < maxWiden; i++ {
		added, werr := s.ensureScopes(ctx, true)
		if werr != nil {
			return fmt.Errorf("syncing what the templates read: %w", werr)
		}
		if !added {
			break
		}
		err = s.tmpl.first()
	}
	if err != nil {
		return err
	}
	s.tmpl.scope = func() { _, _ = s.ensureScopes(context.Background(), false) }
	return nil
}

// maxWiden bounds the render-and-widen rounds at start: one per scope a
// template computes.
const maxWiden = 16

func (s *Source) tellTemplates(paths []string, tree bool) {
	s.mu.Lock()
	views := append([]*fs.FS(nil), s.views...)
	s.mu.Unlock()
	for _, f := range views {
		f.InvalidateTemplates(paths, tree)
		f.Invalidate(tree2status)
	}
}

var tree2status = tree.Changes{Status: true}

// templateCollisions refuses templates whose first path segment is a name
// the mount root already shows.
func (s *Source) templateCollisions(rootNames []string) error {
	if s.tmpl == nil {
		return nil
	}
	return s.tmpl.current().Collides(rootNames)
}
