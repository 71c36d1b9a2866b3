package syncer

import (
	"bytes"
	"cmp"
	"errors"
	"slices"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/refs"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Secret references are expanded here, locally, as raw values change: the
// vault keeps each secret's raw value and, for a secret whose raw value
// holds references, a second sealed value with them expanded (refs
// reproduces the backend's expansion), which is what files and views
// serve. So a read never expands, an unchanged refresh (a 304) expands
// nothing, and no listing is requested twice. refs.Deps, one per project,
// says which secrets a change re-expands, in any folder or environment.
//
// Every raw change goes through expandChanges and the vault in one
// critical section (expandMu), so an expansion always reads the raw values
// current when it is applied.

// expansion is the state of the expansions: under expandMu, a leaf after
// the syncer's key locks; s.mu is taken inside it, never the other way.
type expansion struct {
	deps map[string]*refs.Deps // project ID → reverse index
	// origins are imported secrets' import environment and path: the
	// server expands an imported value there (fnSecretsV2FromImports).
	origins map[vault.Addr]refs.Addr
	// unreadable are secrets the mount refuses to serve, with why (a
	// hidden value, a reference that cannot be expanded): .status lists
	// them. Names and reasons only.
	unreadable map[vault.Addr]string
}

func (s *Syncer) depsOf(project string) *refs.Deps {
	d := s.exp.deps[project]
	if d == nil {
		d = &refs.Deps{}
		s.exp.deps[project] = d
	}
	return d
}

// envState is how a Lookup answers for an environment.
func (s *Syncer) envState(project, env, listing string) refs.Status {
	if env == listing {
		return refs.Found
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scopes[scopeKey{project, env}]
	switch {
	case sc != nil && sc.lastErr != nil && errors.Is(sc.lastErr, infisical.ErrPermissionDenied):
		return refs.Denied
	case sc != nil && sc.synced:
		return refs.Found
	}
	if all, ok := s.allEnvs[project]; ok && !slices.Contains(all, env) {
		return refs.Missing // no such environment: the reference stays literal
	}
	return refs.Unknown // filtered out, or not listed yet
}

// lookup answers refs for one project from the vault's raw values, with
// the changes about to be applied laid over them.
type lookup struct {
	s       *Syncer
	project string
	listing string // the environment being applied: listed by definition
	overlay map[vault.Addr]*vault.Change
}

func (l *lookup) Secret(a refs.Addr) refs.Entry {
	if a.Env == "" || a.Key == "" {
		return refs.Entry{Status: refs.Missing}
	}
	switch st := l.s.envState(l.project, a.Env, l.listing); st {
	case refs.Found:
	default:
		return refs.Entry{Status: st}
	}
	va := vault.Addr{Project: l.project, Env: a.Env, Path: a.Path, Key: a.Key}
	if c, ok := l.overlay[va]; ok {
		return entryOf(c.Delete, c.Meta, c.Value)
	}
	v, m, err := l.s.opt.Vault.GetForm(va, vault.Raw)
	if err != nil {
		return refs.Entry{Status: refs.Missing}
	}
	e := entryOf(false, m, v.Bytes())
	if e.Status != refs.Found {
		v.Wipe()
	}
	return e
}

// entryOf: imported secrets sit at (env, "/", key) read-only, but
// references do not resolve through imports: Missing. A hidden value is
// one the identity may not read.
func entryOf(deleted bool, m vault.Meta, raw []byte) refs.Entry {
	switch {
	case deleted || m.ReadOnly:
		return refs.Entry{Status: refs.Missing}
	case m.Hidden:
		return refs.Entry{Status: refs.Denied}
	}
	return refs.Entry{Status: refs.Found, Value: raw, SkipMultiline: m.SkipMultiline}
}

// Release wipes the copies decrypted from the vault (not the overlay's,
// which the caller owns).
func (l *lookup) Release(a refs.Addr, e refs.Entry) {
	if e.Value == nil {
		return
	}
	if _, ok := l.overlay[vault.Addr{Project: l.project, Env: a.Env, Path: a.Path, Key: a.Key}]; !ok {
		clear(e.Value)
	}
}

func refAddr(a vault.Addr) refs.Addr { return refs.Addr{Env: a.Env, Path: a.Path, Key: a.Key} }

// expandChanges completes the raw changes of one project (listing is the
// environment being applied, or "") with their expansions, adds
// expansion-only changes for the secrets that depend on them, and returns
// those dependents (to invalidate) and a func that wipes the expanded
// buffers once the vault sealed them. Hold expandMu from here until the
// vault applied the result.
func (s *Syncer) expandChanges(project, listing string, changes []vault.Change) ([]vault.Change, []vault.Addr, func()) {
	deps := s.depsOf(project)
	// Nothing to look up and nobody depending on anything (every refresh
	// of a project without references): no overlay, no dependents pass,
	// which at 100k changed secrets were two maps and a copy of them all.
	lookups := deps.Len() > 0 || anyRefs(changes, s.opt.ExpandReferences)
	var overlay map[vault.Addr]*vault.Change
	if lookups {
		overlay = make(map[vault.Addr]*vault.Change, len(changes))
		for i := range changes {
			overlay[changes[i].Addr] = &changes[i]
		}
	}
	x := refs.Expander{Lookup: &lookup{s: s, project: project, listing: listing, overlay: overlay}}
	var bufs [][]byte
	for i := range changes {
		c := &changes[i]
		if c.Delete {
			deps.Delete(refAddr(c.Addr))
			delete(s.exp.origins, c.Addr)
			s.setUnreadable(c.Addr, "")
			continue
		}
		s.expandOne(&x, deps, c)
		if c.Expanded != nil {
			bufs = append(bufs, c.Expanded)
		}
	}
	var dependents []vault.Addr
	var changed []refs.Addr
	if deps.Len() > 0 { // only with lookups: dependencies come from references
		changed = make([]refs.Addr, 0, len(changes))
		for i := range changes {
			changed = append(changed, refAddr(changes[i].Addr))
		}
	}
	for _, d := range deps.Dependents(changed...) {
		a := vault.Addr{Project: project, Env: d.Env, Path: d.Path, Key: d.Key}
		if _, ok := overlay[a]; ok {
			continue
		}
		raw, m, err := s.opt.Vault.GetForm(a, vault.Raw)
		if errors.Is(err, vault.ErrNotFound) {
			deps.Delete(d)
			continue
		}
		if err != nil {
			continue
		}
		c := vault.Change{Addr: a, ExpandOnly: true, Meta: m}
		c.Value = raw.Bytes()
		s.expandOne(&x, deps, &c)
		raw.Wipe()
		c.Value = nil
		if c.Expanded != nil {
			bufs = append(bufs, c.Expanded)
		}
		changes = append(changes, c)
		dependents = append(dependents, a)
	}
	return changes, dependents, func() {
		for _, b := range bufs {
			clear(b)
		}
	}
}

// anyRefs reports whether some change's raw value holds a reference that
// will be expanded.
func anyRefs(changes []vault.Change, expand bool) bool {
	if !expand {
		return false
	}
	for i := range changes {
		if !changes[i].Delete && refs.HasRefs(changes[i].Value) {
			return true
		}
	}
	return false
}

// expandOne sets c's Expanded and expansion Meta from its raw Value.
func (s *Syncer) expandOne(x *refs.Expander, deps *refs.Deps, c *vault.Change) {
	c.Expanded, c.Meta.Refs, c.Meta.ExpandErr = nil, false, ""
	if c.Meta.Hidden {
		s.setUnreadable(c.Addr, "Infisical hides this secret's value from the identity (secretValueHidden); grant it read-value permission")
		return
	}
	if !s.opt.ExpandReferences || !refs.HasRefs(c.Value) {
		deps.Delete(refAddr(c.Addr))
		s.setUnreadable(c.Addr, "")
		return
	}
	var res refs.Result
	var err error
	if origin, imported := s.exp.origins[c.Addr]; imported {
		res, err = x.ExpandValue(origin, c.Value, c.Meta.SkipMultiline)
	} else {
		res, err = x.Expand(refAddr(c.Addr))
	}
	deps.Set(refAddr(c.Addr), res.Deps)
	var re *refs.RefError
	switch {
	case err == nil:
		c.Meta.Refs = true
		if bytes.Equal(res.Value, c.Value) {
			clear(res.Value) // nothing resolved: the raw value is the expansion
		} else {
			c.Expanded = res.Value
		}
		s.setUnreadable(c.Addr, "")
	case c.Meta.ReadOnly && errors.As(err, &re):
		// An imported secret: the server swallows the error and serves
		// the raw value.
		c.Meta.Refs = true
		s.setUnreadable(c.Addr, "")
	default:
		c.Meta.Refs = true
		c.Meta.ExpandErr = err.Error() // names and references only, never a value
		s.setUnreadable(c.Addr, "references cannot be expanded: "+c.Meta.ExpandErr)
	}
}

func (s *Syncer) setUnreadable(a vault.Addr, why string) {
	if why == "" {
		delete(s.exp.unreadable, a)
		return
	}
	s.exp.unreadable[a] = why
}

// applyExpanded applies raw changes of one project with their expansions
// in one vault transaction, and returns the dependents it re-expanded.
func (s *Syncer) applyExpanded(project, listing string, changes []vault.Change, origins map[vault.Addr]refs.Addr) ([]vault.Addr, error) {
	s.expandMu.Lock()
	defer s.expandMu.Unlock()
	for _, c := range changes {
		if o, ok := origins[c.Addr]; ok {
			s.exp.origins[c.Addr] = o
		} else {
			delete(s.exp.origins, c.Addr)
		}
	}
	all, dependents, wipe := s.expandChanges(project, listing, changes)
	defer wipe()
	if len(all) == 0 {
		return nil, nil
	}
	if _, err := s.opt.Vault.Apply(all); err != nil {
		return nil, err
	}
	return dependents, nil
}

// Unreadable is one secret the mount refuses to serve, and why.
type Unreadable struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (s *Syncer) unreadableList() []Unreadable {
	s.expandMu.Lock()
	defer s.expandMu.Unlock()
	out := make([]Unreadable, 0, len(s.exp.unreadable))
	for a, why := range s.exp.unreadable {
		out = append(out, Unreadable{Path: s.name(a), Reason: why})
	}
	slices.SortFunc(out, func(x, y Unreadable) int { return cmp.Compare(x.Path, y.Path) })
	return out
}

// SetComment updates a secret's comment in Infisical (one PATCH; Infisical
// adds a version) and takes what the server stored into the vault.
func (s *Syncer) SetComment(a vault.Addr, comment string) error {
	defer s.lockKeys(a)()
	meta, known := s.opt.Vault.Stat(a)
	if !known {
		return s.failed("comment", a, infisical.ErrNotFound)
	}
	if meta.ReadOnly {
		return s.failed("comment", a, ErrReadOnlyImport)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	sec, err := s.opt.API.UpdateSecret(ctx, ref(a), infisical.Update{Comment: &comment})
	if err != nil {
		return s.failed("comment", a, err)
	}
	defer clear(sec.Value)
	if sec.Value == nil {
		// An answer without the value must not blank the secret: keep
		// the raw value the vault holds.
		v, _, err := s.opt.Vault.GetForm(a, vault.Raw)
		if err != nil {
			return s.failed("comment", a, err)
		}
		sec.Value = append([]byte(nil), v.Bytes()...)
		v.Wipe()
	}
	if sec.Comment == "" && comment != "" {
		sec.Comment = comment // the PATCH answer's base schema may omit it
	}
	if err := s.store(a, sec); err != nil {
		return s.failed("comment", a, err)
	}
	s.notify(tree.Changes{Updated: []vault.Addr{a}}, false)
	s.pushed("comment")
	return nil
}

// FetchVersion reads version n of a secret from Infisical's history and
// keeps it sealed in the vault (Vault.Version reads it after). A pruned or
// unknown version is infisical.ErrNotFound.
func (s *Syncer) FetchVersion(a vault.Addr, n int) error {
	meta, ok := s.opt.Vault.Stat(a)
	if !ok || n < 1 || n > meta.Version {
		return opError("history", s.name(a), infisical.ErrNotFound)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	sec, err := s.opt.API.GetSecretVersion(ctx, ref(a), n)
	if err != nil {
		return opError("history", s.name(a), err)
	}
	defer clear(sec.Value)
	if sec.ValueHidden {
		return opError("history", s.name(a), infisical.ErrPermissionDenied)
	}
	s.opt.Vault.SetVersion(a, meta.ID, n, sec.Value)
	return nil
}

// keepListedMeta fills in what a write's answer lacks (its schema is the
// base one, without tags and metadata) from the vault's record of the same
// secret, so a push or a comment does not drop them until the next listing.
func (s *Syncer) keepListedMeta(a vault.Addr, sec *infisical.Secret) {
	old, ok := s.opt.Vault.Stat(a)
	if !ok || old.ID != sec.ID {
		return
	}
	if len(sec.Tags) == 0 {
		sec.Tags = old.Tags
	}
	if len(sec.Metadata) == 0 {
		if n, err := s.opt.Vault.Notes(a); err == nil {
			for _, m := range n.Metadata {
				sec.Metadata = append(sec.Metadata, infisical.Metadata{Key: m.Key, Value: m.Value})
			}
		}
	}
}
