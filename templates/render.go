package templates

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"unsafe"
)

// dep is one thing a render read: a folder (key "") or one key.
type dep struct {
	project, env, path, key string
	recursive               bool
}

// recorder serves one render: it reads the Source, notes what was read,
// and keeps every value it handed out so they can be scrubbed from errors
// and wiped afterwards.
type recorder struct {
	src      Source
	deps     map[dep]struct{}
	slugs    []Scope // slug scopes named by listSecretsByProjectSlug
	usedSlug bool
	values   [][]byte
}

func newRecorder(src Source) *recorder {
	return &recorder{src: src, deps: map[dep]struct{}{}}
}

func (r *recorder) funcs() template.FuncMap {
	return template.FuncMap{
		fnListSecrets: r.listSecrets,
		fnSecret:      r.listSecrets,
		fnListSecretsBySlug: func(slug, env, path string, args ...string) ([]Secret, error) {
			r.usedSlug = true
			o, _ := parseOptions(args)
			p, err := cleanPath(path)
			if err == nil {
				r.slugs = append(r.slugs, Scope{Project: slug, BySlug: true, Env: env, Path: p, Recursive: o.Recursive})
			}
			id, err := r.src.ProjectID(slug)
			if err != nil {
				return nil, fmt.Errorf("project slug %s: %w", slug, err)
			}
			return r.listSecrets(id, env, path, args...)
		},
		fnGetSecretByName: r.getSecretByName,
	}
}

// listSecrets is the agent's secretTemplateFunction over the Source.
func (r *recorder) listSecrets(project, env, path string, args ...string) ([]Secret, error) {
	o, err := parseOptions(args)
	if err != nil {
		return nil, err
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	r.deps[dep{project: project, env: env, path: p, recursive: o.Recursive}] = struct{}{}
	items, err := r.src.List(project, env, p, o.Recursive, *o.Expand)
	if err != nil {
		for _, it := range items {
			clear(it.Value)
		}
		return nil, fmt.Errorf("%s/%s%s: %w", project, env, p, err)
	}
	out := make([]Secret, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		r.values = append(r.values, it.Value)
		// The agent appends an imported secret only where the key is not
		// already there (InjectRawImportedSecret); a recursive listing of
		// the folder's own may repeat a key across folders, which it keeps.
		if it.Imported && seen[it.Key] {
			continue
		}
		seen[it.Key] = true
		s := Secret{Key: it.Key, WorkspaceId: project, Value: view(it.Value), Type: orShared(it.Type)}
		if it.Imported {
			s.ID = it.ID
		} else {
			s.SecretPath = it.Path
		}
		out = append(out, s)
	}
	return out, nil
}

// getSecretByName is the agent's getSingleSecretTemplateFunction: always
// expanded, imports included.
func (r *recorder) getSecretByName(project, env, path, name string) (Secret, error) {
	p, err := cleanPath(path)
	if err != nil {
		return Secret{}, err
	}
	r.deps[dep{project: project, env: env, path: p, key: name}] = struct{}{}
	it, err := r.src.Get(project, env, p, name)
	if err != nil {
		clear(it.Value)
		return Secret{}, fmt.Errorf("secret %s in %s/%s%s: %w", name, project, env, p, err)
	}
	r.values = append(r.values, it.Value)
	return Secret{
		Key: it.Key, WorkspaceId: project, Value: view(it.Value), Type: orShared(it.Type),
		ID: it.ID, Comment: it.Comment, SecretPath: it.Path,
	}, nil
}

// view makes a string over b without copying, so that wiping b after the
// render also wipes what the template saw. Nothing may keep the string past
// the render: the output buffer copies what it writes.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func orShared(t string) string {
	if t == "" {
		return "shared"
	}
	return t
}

// wipe zeroes every value handed out.
func (r *recorder) wipe() {
	for _, v := range r.values {
		clear(v)
	}
	r.values = nil
}

// minRedact is the shortest value scrubbed from error text; shorter ones
// would mangle line numbers and words without hiding anything useful.
const minRedact = 4

// scrub returns err with every value read during the render replaced, so
// that no execute error can carry a value into .status or the log.
func (r *recorder) scrub(err error) error {
	msg := err.Error()
	for _, v := range r.values {
		if len(v) < minRedact {
			continue
		}
		msg = strings.ReplaceAll(msg, string(v), "[REDACTED]")
		// The quoted form too, in case some message used %q.
		if q := strconv.Quote(string(v)); q[1:len(q)-1] != string(v) {
			msg = strings.ReplaceAll(msg, q[1:len(q)-1], "[REDACTED]")
		}
	}
	return &renderError{msg: msg, kind: sentinel(err)}
}

// renderError carries a scrubbed message; it unwraps only to our own
// sentinels, never to the raw chain that might quote a value.
type renderError struct {
	msg  string
	kind error
}

func (e *renderError) Error() string { return e.msg }
func (e *renderError) Unwrap() error { return e.kind }

func sentinel(err error) error {
	for _, s := range []error{ErrDynamicSecret, ErrNotSynced, ErrNotFound} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// wipeBuffer is an output buffer that wipes what it outgrows, so no copy
// of rendered bytes is left behind in a discarded backing array.
type wipeBuffer struct{ b []byte }

func (w *wipeBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > cap(w.b) {
		nb := make([]byte, len(w.b), 2*cap(w.b)+len(p)+64)
		copy(nb, w.b)
		clear(w.b)
		w.b = nb
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// execute renders one parsed template against src. The returned bytes are
// the caller's to wipe.
func execute(t *template.Template, src Source) ([]byte, *recorder, error) {
	c, err := t.Clone()
	if err != nil {
		return nil, nil, fmt.Errorf("clone template: %w", err)
	}
	rec := newRecorder(src)
	c.Funcs(rec.funcs())
	var buf wipeBuffer
	err = c.Execute(&buf, nil)
	out := buf.b
	if err != nil {
		clear(out)
		err = rec.scrub(err)
		rec.wipe()
		return nil, rec, err
	}
	rec.wipe()
	if len(out) == 0 {
		out = []byte{}
	}
	return out, rec, nil
}
