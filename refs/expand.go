package refs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Status is what a Lookup knows about one address.
type Status int

const (
	// Missing: no such secret, folder or environment. The reference stays
	// literal, as on the server.
	Missing Status = iota
	// Found: Entry.Value holds the raw value.
	Found
	// Denied: the identity may not read it. Expansion fails (the server
	// answers 403 "Failed to expand one or more secret references").
	Denied
	// Unknown: the caller does not hold that part of the project (an
	// environment outside the mount's filter, a listing that failed), so a
	// local answer would be a guess. Expansion fails.
	Unknown
)

func (s Status) String() string {
	switch s {
	case Found:
		return "found"
	case Denied:
		return "denied"
	case Unknown:
		return "unknown"
	}
	return "missing"
}

// Entry is a Lookup's answer for one address.
type Entry struct {
	Status Status
	// Value is the raw (unexpanded) value when Status is Found. It must stay
	// valid and unchanged until the Expand call that asked for it returns;
	// the Expander never modifies or retains it.
	Value []byte
	// SkipMultiline is Infisical's skipMultilineEncoding. Only the expanded
	// secret's own flag matters; a referenced secret's is ignored.
	SkipMultiline bool
}

// Lookup answers for the raw secrets of one project. It is asked about any
// address a reference names, including malformed ones (empty Env or Key,
// from "${.KEY}" or "${dev.}"), which it answers Missing or Denied as the
// server would for the identity.
type Lookup interface {
	Secret(a Addr) Entry
}

// Releaser is implemented by a Lookup that hands out copies (a vault that
// decrypts per call, say): Expand calls Release once for every entry it got,
// after the expanded bytes are built, so the copy can be wiped.
type Releaser interface {
	Release(a Addr, e Entry)
}

var (
	// ErrDenied: a reference names a secret the identity may not read.
	ErrDenied = errors.New("reference not readable by this identity")
	// ErrUnknown: a reference names a secret outside what the caller holds.
	ErrUnknown = errors.New("reference outside the secrets held locally")
	// ErrNotFound: the secret to expand does not exist.
	ErrNotFound = errors.New("secret not found")
	// ErrLimit: the expansion grew past the Expander's Limits.
	ErrLimit = errors.New("expansion limit exceeded")
)

// RefError reports a reference that could not be expanded. It names the
// secret and the reference, never a value.
type RefError struct {
	Secret Addr   // the secret being expanded
	Ref    string // the reference as written, e.g. "${prod.a.KEY}"; empty when Formed or when Secret itself was refused
	Target Addr   // the address it names (zero when Ref is empty)
	Status Status // Denied or Unknown
	// Formed is set for a Multipass reference that appears only after
	// substitution: its text may hold part of a value, so it is not kept.
	Formed bool
}

func (e *RefError) Error() string {
	var what string
	switch {
	case e.Formed:
		what = "a reference formed by substitution"
	case e.Ref == "":
		what = "the secret itself"
	default:
		what = fmt.Sprintf("reference %s (%s)", e.Ref, e.Target)
	}
	return fmt.Sprintf("refs: expanding %s: %s: %v", e.Secret, what, e.Unwrap())
}

// Unwrap returns ErrDenied or ErrUnknown, for errors.Is.
func (e *RefError) Unwrap() error {
	if e.Status == Unknown {
		return ErrUnknown
	}
	return ErrDenied
}

// Limits bound one expansion, which Infisical does not: a value like
// "${A}${A}" with A = "${B}${B}" ... doubles per level, and a cycle can fan
// out. Zero fields take the defaults.
type Limits struct {
	MaxBytes int // expanded size; default 8 MiB
	MaxRefs  int // reference occurrences processed; default 65536
	MaxWork  int // bytes scanned and copied; default 512 MiB (well under a second)
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{MaxBytes: 8 << 20, MaxRefs: 1 << 16, MaxWork: 512 << 20}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxRefs <= 0 {
		l.MaxRefs = DefaultLimits.MaxRefs
	}
	if l.MaxWork <= 0 {
		l.MaxWork = DefaultLimits.MaxWork
	}
	return l
}

// maxDepth is MAX_SECRET_REFERENCE_DEPTH: frames deeper than this are not
// scanned, so a chain resolves 11 hops and the 12th stays literal.
const maxDepth = 10

// maxPasses is the Multipass rescans of the whole result (same constant).
const maxPasses = 10

// Expander expands references the way the Infisical backend does, from
// raw values supplied by Lookup. Safe for concurrent use if Lookup is.
type Expander struct {
	Lookup  Lookup
	Dialect Dialect
	Limits  Limits
}

// Result is one expansion.
type Result struct {
	// Value is the expanded value in a fresh buffer the caller owns (and
	// wipes). Without references it is a copy of the raw value. Nil on error.
	Value []byte
	// HasRefs reports that the raw value holds a reference: its expanded
	// view must be read-only.
	HasRefs bool
	// Deps is every address looked up while expanding, other than the secret
	// itself, sorted: found, missing, denied and unknown alike, since a
	// change to any of them can change the result. Filled on error too. In
	// Multipass a dependency can be named by a value: do not log Deps there.
	Deps []Addr
	// Refs counts the reference occurrences processed.
	Refs int
}

// Expand returns the expanded value of the secret at `at`, whose raw value
// and flag come from Lookup. Errors: a *RefError (ErrDenied, ErrUnknown)
// naming the reference, ErrNotFound, or ErrLimit; none holds a value.
func (x *Expander) Expand(at Addr) (Result, error) {
	root := x.Lookup.Secret(at)
	r := run{x: x, lim: x.Limits.withDefaults(), root: at, d: x.Dialect, rootHeld: true, rootC: cached{e: root}}
	defer r.release()
	switch root.Status {
	case Found:
	case Missing:
		r.rootC.e.Value = nil
		return Result{}, fmt.Errorf("refs: expanding %s: %w", at, ErrNotFound)
	default:
		r.rootC.e.Value = nil
		return Result{}, &RefError{Secret: at, Status: root.Status}
	}
	return r.result(root.Value, root.SkipMultiline)
}

// ExpandValue expands raw as the server expands a value in the context of
// address at without raw being the value stored there: an imported secret,
// which the server expands with the environment and path of the import
// (fnSecretsV2FromImports), even when it came from a deeper import. raw is
// not modified or retained. A reference to at itself is looked up, and is
// then one of Deps.
func (x *Expander) ExpandValue(at Addr, raw []byte, skipMultiline bool) (Result, error) {
	r := run{x: x, lim: x.Limits.withDefaults(), root: at, d: x.Dialect}
	defer r.release()
	return r.result(raw, skipMultiline)
}

func (r *run) result(raw []byte, skipMultiline bool) (Result, error) {
	hasRefs := r.d.HasRefs(raw)
	r.rootC.hasRefs = hasRefs
	res := Result{HasRefs: hasRefs}
	if !hasRefs {
		// expandSecret returns values without a reference untouched: no
		// multi-line quoting either.
		res.Value = append(make([]byte, 0, len(raw)), raw...)
		return res, nil
	}
	var err error
	if r.d == Multipass && !r.rootHeld {
		// 032da03 first checks that the secret being expanded may be read,
		// at the address it is expanded as.
		if c := r.lookup(r.root); c.e.Status == Denied || c.e.Status == Unknown {
			err = &RefError{Secret: r.root, Status: c.e.Status}
		}
	}
	if err == nil {
		err = r.expand(raw)
	}
	res.Deps, res.Refs = r.deps(), r.refs
	if err == nil && skipMultiline {
		err = r.quoteMultiline()
	}
	if err != nil {
		wipe(r.out)
		return res, err
	}
	res.Value = r.out
	return res, nil
}

// visit is one link of the path of secrets that led to a frame
// (visitedSecrets); frames share their ancestors' links.
type visit struct {
	a  Addr
	up *visit
}

func (v *visit) has(a Addr) bool {
	for ; v != nil; v = v.up {
		if v.a == a {
			return true
		}
	}
	return false
}

// frame is one stack entry of recursivelyExpandSecret: a value to scan for
// references, in the context (env, path) they are relative to.
type frame struct {
	value   []byte
	env     string
	path    string
	depth   int
	visited *visit
	formed  bool // Multipass rescan of the result: refs may come from values
}

type cached struct {
	e       Entry
	hasRefs bool
}

type run struct {
	x    *Expander
	d    Dialect
	lim  Limits
	root Addr
	// rootC is the secret itself when rootHeld (Expand), kept out of cache:
	// most secrets need nothing else.
	rootC    cached
	rootHeld bool
	raw      []byte
	out      []byte
	cache    map[Addr]cached
	order    []Addr
	refs     int
	work     int
}

func (r *run) lookup(a Addr) cached {
	if r.rootHeld && a == r.root {
		return r.rootC
	}
	if c, ok := r.cache[a]; ok {
		return c
	}
	if r.cache == nil {
		r.cache = make(map[Addr]cached, 8)
	}
	e := r.x.Lookup.Secret(a)
	c := cached{e: e}
	if e.Status == Found {
		c.hasRefs = r.d.HasRefs(e.Value)
		r.work += len(e.Value)
	} else {
		c.e.Value = nil
	}
	r.cache[a] = c
	r.order = append(r.order, a)
	return c
}

func (r *run) release() {
	rel, ok := r.x.Lookup.(Releaser)
	if !ok {
		return
	}
	if r.rootHeld {
		rel.Release(r.root, r.rootC.e)
	}
	for _, a := range r.order {
		rel.Release(a, r.cache[a].e)
	}
}

func (r *run) deps() []Addr {
	out := slices.Clone(r.order)
	slices.SortFunc(out, Addr.less)
	return out
}

func (r *run) limit(what string) error {
	return fmt.Errorf("refs: expanding %s: %s: %w", r.root, what, ErrLimit)
}

func (r *run) expand(raw []byte) error {
	r.raw = raw
	r.out = append(make([]byte, 0, len(raw)), raw...)
	rootVisit := &visit{a: r.root}
	stack := []frame{{value: raw, env: r.root.Env, path: r.root.Path, visited: rootVisit}}

	// Multipass: the references the current pass started from; a rescan
	// runs while the result holds one not among them.
	passStart, passOwned, pass := raw, false, 0
	defer func() {
		if passOwned {
			wipe(passStart)
		}
	}()

	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if f.depth <= maxDepth {
			var err error
			if stack, err = r.scan(f, stack); err != nil {
				return err
			}
		}
		if r.d != Multipass || len(stack) > 0 || pass >= maxPasses {
			continue
		}
		fresh, err := r.hasNewRef(passStart)
		if err != nil {
			return err
		}
		if !fresh {
			continue
		}
		if passOwned {
			wipe(passStart)
		}
		passStart, passOwned = append(make([]byte, 0, len(r.out)), r.out...), true
		pass++
		stack = append(stack, frame{value: passStart, env: r.root.Env, path: r.root.Path, visited: rootVisit, formed: true})
	}
	return nil
}

// scan processes every reference occurrence in f.value, in order: look the
// target up, queue its raw value for scanning unless it is on the path that
// led here, and replace every occurrence of the reference text in the
// whole result with the raw value (the server's expandedValue.replaceAll).
func (r *run) scan(f frame, stack []frame) ([]frame, error) {
	r.work += len(f.value)
	for i := 0; ; {
		s, e, ok := r.d.next(f.value, i)
		if !ok {
			return stack, nil
		}
		i = e
		text := f.value[s:e]
		if r.refs++; r.refs > r.lim.MaxRefs {
			return stack, r.limit(fmt.Sprintf("more than %d references", r.lim.MaxRefs))
		}
		local, env, path, key := splitRef(text[2 : len(text)-1])
		if !local && r.d == Multipass && strings.HasPrefix(env, "@") {
			// Cross-project: the server without cross-project sharing
			// leaves it literal, and one project is all a Lookup knows.
			continue
		}
		target := Addr{Env: env, Path: path, Key: key}
		if local {
			target = Addr{Env: f.env, Path: f.path, Key: key}
		}
		c := r.lookup(target)
		if c.e.Status == Denied || c.e.Status == Unknown {
			re := &RefError{Secret: r.root, Status: c.e.Status}
			if f.formed && !bytes.Contains(r.raw, text) {
				re.Formed = true
			} else {
				re.Ref, re.Target = string(text), target
			}
			return stack, re
		}
		if c.hasRefs && !f.visited.has(target) {
			stack = append(stack, frame{
				value: c.e.Value, env: target.Env, path: target.Path,
				depth: f.depth + 1, visited: &visit{a: target, up: f.visited},
			})
		}
		// Classic substitutes only a non-empty value ("if (referencedSecretValue)"),
		// Multipass any existing one.
		if r.d == Classic && len(c.e.Value) == 0 || c.e.Status != Found {
			continue
		}
		if err := r.replace(text, c.e.Value); err != nil {
			return stack, err
		}
	}
}

// splitRef parses the text between "${" and "}" (see parseRef).
func splitRef(inner []byte) (local bool, env, path, key string) {
	first := bytes.IndexByte(inner, '.')
	if first < 0 {
		return true, "", "", string(inner)
	}
	last := bytes.LastIndexByte(inner, '.')
	return false, string(inner[:first]), joinPath(inner[first+1 : max(last, first+1)]), string(inner[last+1:])
}

// replace substitutes every occurrence of old in r.out with val, left to
// right, without rescanning what it inserts (JavaScript's replaceAll with a
// function, so "$&" in val is literal). The old buffer is wiped.
func (r *run) replace(old, val []byte) error {
	r.work += len(r.out)
	if r.work > r.lim.MaxWork {
		return r.limit(fmt.Sprintf("more than %d bytes of work", r.lim.MaxWork))
	}
	n := bytes.Count(r.out, old)
	if n == 0 {
		return nil
	}
	size := len(r.out) + n*(len(val)-len(old))
	if size > r.lim.MaxBytes {
		return r.limit(fmt.Sprintf("larger than %d bytes", r.lim.MaxBytes))
	}
	r.work += size
	buf := make([]byte, 0, size)
	rest := r.out
	for {
		j := bytes.Index(rest, old)
		if j < 0 {
			break
		}
		buf = append(buf, rest[:j]...)
		buf = append(buf, val...)
		rest = rest[j+len(old):]
	}
	buf = append(buf, rest...)
	wipe(r.out)
	r.out = buf
	return nil
}

// hasNewRef reports whether r.out holds a reference that passStart does not
// (refsAfterPass.some(ref => !refsBeforePass.has(ref))).
func (r *run) hasNewRef(passStart []byte) (bool, error) {
	r.work += len(r.out) + len(passStart)
	for i := 0; ; {
		s, e, ok := r.d.next(r.out, i)
		if !ok {
			return false, nil
		}
		i = e
		if !r.containsRef(passStart, r.out[s:e]) {
			return true, nil
		}
		if r.work > r.lim.MaxWork {
			return false, r.limit(fmt.Sprintf("more than %d bytes of work", r.lim.MaxWork))
		}
	}
}

// containsRef reports whether text is one of the references in b (not
// merely a substring: "${A}" inside "${${A}}" is one, "${AB}" does not hold "${A}").
func (r *run) containsRef(b, text []byte) bool {
	for i := 0; ; {
		s, e, ok := r.d.next(b, i)
		if !ok {
			return false
		}
		r.work += e - s
		if bytes.Equal(b[s:e], text) {
			return true
		}
		i = e
	}
}

// quoteMultiline is formatMultiValueEnv: a value holding "\n" becomes
// "..." with each newline written as the two bytes \n; nothing else is
// escaped (not '"', not '\r').
func (r *run) quoteMultiline() error {
	n := bytes.Count(r.out, []byte{'\n'})
	if n == 0 {
		return nil
	}
	if len(r.out)+n+2 > r.lim.MaxBytes {
		return r.limit(fmt.Sprintf("larger than %d bytes", r.lim.MaxBytes))
	}
	buf := make([]byte, 0, len(r.out)+n+2)
	buf = append(buf, '"')
	for _, c := range r.out {
		if c == '\n' {
			buf = append(buf, '\\', 'n')
		} else {
			buf = append(buf, c)
		}
	}
	buf = append(buf, '"')
	wipe(r.out)
	r.out = buf
	return nil
}

func wipe(b []byte) { clear(b) }
