package templates

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Scope is a project environment folder a template reads. Project is an
// ID, or a slug where BySlug.
type Scope struct {
	Project   string
	BySlug    bool
	Env       string
	Path      string // canonical folder path
	Recursive bool   // the folder and everything below it
}

// Result is what one Render did to one template.
type Result struct {
	Index   int
	Path    string
	Changed bool  // the file's bytes changed: invalidate the kernel's cache
	RunHook bool  // Changed after an earlier good render: run on_change
	Err     error // the render failed; the last good content stays
}

// Status is one template's state for .status: never a value.
type Status struct {
	Path       string    `json:"path"`
	Rendered   bool      `json:"rendered"`
	RenderedAt time.Time `json:"rendered_at,omitzero"` // last render that changed the bytes
	Size       int       `json:"size"`
	Error      string    `json:"error,omitempty"` // the last render's error, scrubbed of values
	ErrorAt    time.Time `json:"error_at,omitzero"`
}

// ErrNotRendered is what Content answers before a first good render.
var ErrNotRendered = errors.New("template has not rendered yet")

// entry is one template. spec, tmpl, static and usesDynamic are fixed at
// New; the rest is guarded by Set.mu.
type entry struct {
	spec        Spec
	tmpl        *template.Template
	static      []Scope
	usesDynamic bool

	deps       map[dep]struct{}
	learned    []Scope // slug scopes seen at render time
	usedSlug   bool
	sealed     []byte // nonce || ciphertext; nil before the first good render
	size       int
	renderedAt time.Time
	err        error
	errAt      time.Time
}

// Set is the parsed templates of one mount.
//
// Lock order: renderMu, then mu. renderMu serializes renders (Source reads
// are in-memory vault reads, not I/O); mu guards the entries' mutable
// fields and is never held while a template executes.
type Set struct {
	renderMu sync.Mutex
	mu       sync.Mutex
	entries  []*entry
	aead     cipher.AEAD
	now      func() time.Time
}

// New parses every spec. Errors name each template with its file and line;
// paths must be distinct and none may be a directory of another.
func New(specs []Spec) (*Set, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("templates: key: %w", err)
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("templates: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("templates: cipher: %w", err)
	}
	s := &Set{aead: aead, now: time.Now}
	var errs []error
	for i, sp := range specs {
		for _, prev := range s.entries {
			if pathsCollide(prev.spec.Path, sp.Path) {
				errs = append(errs, fmt.Errorf("template %s and template %s: one path is the other's directory or the same file", prev.spec.Path, sp.Path))
			}
		}
		if sp.Path == "" {
			errs = append(errs, fmt.Errorf("template[%d]: empty path", i))
			continue
		}
		if sp.Name == "" {
			sp.Name = "template " + sp.Path
		}
		t, err := parseSpec(sp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		static, dyn := staticScopes(t)
		s.entries = append(s.entries, &entry{spec: sp, tmpl: t, static: static, usesDynamic: dyn, deps: map[dep]struct{}{}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func pathsCollide(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// Len is the number of templates.
func (s *Set) Len() int { return len(s.entries) }

// Spec returns template i's spec (path, mode, hook).
func (s *Set) Spec(i int) Spec { return s.entries[i].spec }

// Paths lists every template's mount-relative path, in config order.
func (s *Set) Paths() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.spec.Path
	}
	return out
}

// Index returns the template at path, or -1.
func (s *Set) Index(path string) int {
	for i, e := range s.entries {
		if e.spec.Path == path {
			return i
		}
	}
	return -1
}

// UsesDynamicSecrets lists the templates that call dynamic_secret, for the
// start-up warning: they will fail to render.
func (s *Set) UsesDynamicSecrets() []string {
	var out []string
	for _, e := range s.entries {
		if e.usesDynamic {
			out = append(out, e.spec.Path)
		}
	}
	return out
}

// Render renders the templates at the given indices (all when which is
// nil) from src and keeps each result: a good render replaces the content,
// a failed one keeps the last good content and records the error.
func (s *Set) Render(src Source, which []int) []Result {
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	if which == nil {
		which = make([]int, len(s.entries))
		for i := range which {
			which[i] = i
		}
	}
	out := make([]Result, 0, len(which))
	for _, i := range which {
		if i < 0 || i >= len(s.entries) {
			continue
		}
		out = append(out, s.renderOne(src, i))
	}
	return out
}

func (s *Set) renderOne(src Source, i int) Result {
	e := s.entries[i]
	res := Result{Index: i, Path: e.spec.Path}
	b, rec, err := execute(e.tmpl, src)
	defer clear(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec != nil {
		if err == nil {
			e.deps = rec.deps
			e.learned = rec.slugs
		} else {
			// A failed render stopped early: keep what earlier renders read too.
			for d := range rec.deps {
				e.deps[d] = struct{}{}
			}
			e.learned = append(e.learned, rec.slugs...)
		}
		e.usedSlug = e.usedSlug || rec.usedSlug
	}
	if err != nil {
		e.err, e.errAt = err, s.now()
		res.Err = err
		return res
	}
	e.err, e.errAt = nil, time.Time{}
	first := e.sealed == nil
	if !first {
		old, oerr := s.open(e)
		same := oerr == nil && bytes.Equal(old, b)
		clear(old)
		if same {
			return res
		}
	}
	e.sealed = s.seal(e, b)
	e.size = len(b)
	e.renderedAt = s.now()
	res.Changed = true
	res.RunHook = !first && len(e.spec.OnChange) > 0
	return res
}

func (s *Set) seal(e *entry, b []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(b)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("templates: nonce: %v", err)) // crypto/rand does not fail on Linux
	}
	return s.aead.Seal(nonce, nonce, b, []byte(e.spec.Path))
}

func (s *Set) open(e *entry) ([]byte, error) {
	n := s.aead.NonceSize()
	return s.aead.Open(nil, e.sealed[:n], e.sealed[n:], []byte(e.spec.Path))
}

// Content returns template i's current bytes (the last good render), which
// the caller wipes after serving them; ErrNotRendered before the first good
// render.
func (s *Set) Content(i int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[i]
	if e.sealed == nil {
		if e.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotRendered, e.err)
		}
		return nil, ErrNotRendered
	}
	b, err := s.open(e)
	if err != nil {
		return nil, fmt.Errorf("template %s: open sealed content: %w", e.spec.Path, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Size is template i's current length in bytes (0 before a good render),
// for stat without decrypting.
func (s *Set) Size(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[i].size
}

// Status reports every template for .status.
func (s *Set) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.entries))
	for i, e := range s.entries {
		st := Status{Path: e.spec.Path, Rendered: e.sealed != nil, RenderedAt: e.renderedAt, Size: e.size, ErrorAt: e.errAt}
		if e.err != nil {
			st.Error = e.err.Error()
		}
		out[i] = st
	}
	return out
}

// Err is template i's last render error (nil after a good render).
func (s *Set) Err(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[i].err
}

// Affected lists, in order, the templates a vault change concerns: those
// that read a changed key, a folder holding one (with recursive, an
// ancestor folder), and, when the set of projects or environments changed,
// those that resolve a project slug or whose last render failed.
func (s *Set) Affected(ch tree.Changes) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i, e := range s.entries {
		if ch.Tree && (e.usedSlug || e.err != nil) || touches(e.deps, ch.Updated) || touches(e.deps, ch.Added) || touches(e.deps, ch.Removed) {
			out = append(out, i)
		}
	}
	return out
}

func touches(deps map[dep]struct{}, addrs []vault.Addr) bool {
	for _, a := range addrs {
		if _, ok := deps[dep{project: a.Project, env: a.Env, path: a.Path, key: a.Key}]; ok {
			return true
		}
		if _, ok := deps[dep{project: a.Project, env: a.Env, path: a.Path}]; ok {
			return true
		}
		// Recursive reads of this folder or any ancestor.
		for p := a.Path; ; p = parent(p) {
			if _, ok := deps[dep{project: a.Project, env: a.Env, path: p, recursive: true}]; ok {
				return true
			}
			if p == "/" {
				break
			}
		}
	}
	return false
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Scopes lists every scope the templates need, known from their text (calls
// with literal arguments) and from what they read when rendered, without
// duplicates and sorted. The daemon adds to its sync any it does not
// already sync; slug scopes need the slug resolved first.
func (s *Set) Scopes() []Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[Scope]bool{}
	var out []Scope
	add := func(sc Scope) {
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	for _, e := range s.entries {
		for _, sc := range e.static {
			add(sc)
		}
		for _, sc := range e.learned {
			add(sc)
		}
		for d := range e.deps {
			add(Scope{Project: d.project, Env: d.env, Path: d.path, Recursive: d.recursive})
		}
	}
	key := func(s Scope) string {
		return fmt.Sprintf("%s\x00%s\x00%s\x00%t\x00%t", s.Project, s.Env, s.Path, s.Recursive, s.BySlug)
	}
	slices.SortFunc(out, func(a, b Scope) int { return strings.Compare(key(a), key(b)) })
	return out
}

// Hooks returns the on_change commands as hooks for a hooks.Runner of their
// own: each hook's Path is its template's path, so the daemon reports a
// changed template by calling Runner.Changed with the paths of the Results
// whose RunHook is set.
func (s *Set) Hooks() []config.Hook {
	var out []config.Hook
	for _, e := range s.entries {
		if len(e.spec.OnChange) == 0 {
			continue
		}
		h := config.Hook{Path: e.spec.Path, Command: e.spec.OnChange}
		h.Timeout.Duration = e.spec.Timeout
		if h.Timeout.Duration == 0 {
			h.Timeout.Duration = config.DefaultHookTimeout
		}
		h.Debounce.Duration = config.DefaultHookDebounce
		out = append(out, h)
	}
	return out
}

// Adopt takes over old's content for every template at the same path, so
// that after a config reload the first render of the new set compares with
// what the file showed: unchanged bytes are not a change, and a change runs
// on_change. Call it before the new set's first Render.
func (s *Set) Adopt(old *Set) {
	if old == nil {
		return
	}
	for _, e := range s.entries {
		j := old.Index(e.spec.Path)
		if j < 0 {
			continue
		}
		b, err := old.Content(j)
		if err != nil {
			continue
		}
		old.mu.Lock()
		at := old.entries[j].renderedAt
		old.mu.Unlock()
		s.mu.Lock()
		e.sealed = s.seal(e, b)
		e.size = len(b)
		e.renderedAt = at
		s.mu.Unlock()
		clear(b)
	}
}

// Collides checks the templates' top-level names against names the mount
// root already uses (project directories; in flat mode, the environment's
// keys and folders), and names each clash: a start-up error.
func (s *Set) Collides(rootNames []string) error {
	var errs []error
	for _, e := range s.entries {
		top, _, _ := strings.Cut(e.spec.Path, "/")
		if slices.Contains(rootNames, top) {
			errs = append(errs, fmt.Errorf("template %s collides with %s in the mount root: move the template's path", e.spec.Path, top))
		}
	}
	return errors.Join(errs...)
}
