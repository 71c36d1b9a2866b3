package refs

import (
	"bytes"
	"strings"
)

// Addr names one secret inside one project: environment slug, canonical
// folder path ("/" or "/a/b") and key. Names are not secret; an Addr is safe
// to log (but see Multipass: there a reference can be formed from a value).
type Addr struct {
	Env  string
	Path string
	Key  string
}

// String returns "env:/path:KEY", the form Infisical uses for its cycle
// check (env:secretPath:key).
func (a Addr) String() string { return a.Env + ":" + a.Path + ":" + a.Key }

func (a Addr) less(b Addr) int {
	if c := strings.Compare(a.Env, b.Env); c != 0 {
		return c
	}
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// Ref is one reference as written in a raw value.
type Ref struct {
	Text  string // "${dev.a.b.KEY}" exactly as written
	Local bool   // ${KEY}: same environment and folder as the secret holding it
	Env   string // environment slug; empty when Local
	Path  string // canonical folder path; empty when Local
	Key   string
	// CrossProject marks ${@slug.env.path.KEY} (Multipass syntax only): Env,
	// Path and Key are then empty, and the Expander leaves it literal.
	CrossProject bool
}

// Target returns the address the reference names when it appears in the
// secret at (or in a value being expanded in the context of) at.
func (r Ref) Target(at Addr) Addr {
	if r.Local {
		return Addr{Env: at.Env, Path: at.Path, Key: r.Key}
	}
	return Addr{Env: r.Env, Path: r.Path, Key: r.Key}
}

// Dialect selects which Infisical backend's expansion the Expander
// reproduces; the package comment lists the differences.
type Dialect int

const (
	// Classic is secret-reference-fns.ts at commit 58d2a53 (the regex
	// \$\{([a-zA-Z0-9-_.]+)\} of infisical-api.md §9). The default.
	Classic Dialect = iota
	// Multipass is the same file at commit 032da03: '@' in the reference
	// class, empty values substituted, and up to 10 rescans of the result.
	Multipass
)

func (d Dialect) String() string {
	if d == Multipass {
		return "multipass"
	}
	return "classic"
}

// refClass[d][c] reports whether byte c may appear between "${" and "}".
var refClass = func() (t [2][256]bool) {
	for c := 0; c < 256; c++ {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		t[Classic][c] = ok
		t[Multipass][c] = ok || c == '@'
	}
	return t
}()

var open = []byte("${")

// next finds the first reference in b at or after from, as the regex's
// global exec does (leftmost, non-overlapping): it returns the span of
// "${...}" or ok=false. The class excludes '$', '{' and '}', so after a
// failed start the next candidate is simply the next "${".
func (d Dialect) next(b []byte, from int) (start, end int, ok bool) {
	class := &refClass[d&1]
	for from < len(b) {
		j := bytes.Index(b[from:], open)
		if j < 0 {
			return 0, 0, false
		}
		s := from + j
		k := s + 2
		for k < len(b) && class[b[k]] {
			k++
		}
		if k > s+2 && k < len(b) && b[k] == '}' {
			return s, k + 1, true
		}
		from = s + 2
	}
	return 0, 0, false
}

// HasRefs reports whether raw holds a reference in the Classic syntax: such
// a secret's expanded view is read-only (writing the expansion back would
// flatten the reference).
func HasRefs(raw []byte) bool { return Classic.HasRefs(raw) }

// HasRefs reports whether raw holds a reference in the dialect's syntax
// (Infisical's INTERPOLATION_TEST_REGEX.test).
func (d Dialect) HasRefs(raw []byte) bool {
	_, _, ok := d.next(raw, 0)
	return ok
}

// Parse returns the references in raw in the Classic syntax, in order of
// appearance, repeats included.
func Parse(raw []byte) []Ref { return Classic.Parse(raw) }

// Parse returns the references in raw in the dialect's syntax, in order of
// appearance, repeats included. In Multipass a multi-part reference whose
// first part starts with '@' is returned with CrossProject set.
func (d Dialect) Parse(raw []byte) []Ref {
	var out []Ref
	for i := 0; ; {
		s, e, ok := d.next(raw, i)
		if !ok {
			return out
		}
		r := parseRef(raw[s:e])
		if d == Multipass && !r.Local && strings.HasPrefix(r.Env, "@") {
			r = Ref{Text: r.Text, CrossProject: true}
		}
		out = append(out, r)
		i = e
	}
}

// parseRef splits "${...}" the way the backend does: split on ".", one part
// is a local key, otherwise env, folder parts, key, the folder joined with
// node's path.join("/", ...), which drops empty parts (no part can be "."
// or ".." since parts never contain a dot).
func parseRef(text []byte) Ref {
	local, env, path, key := splitRef(text[2 : len(text)-1])
	return Ref{Text: string(text), Local: local, Env: env, Path: path, Key: key}
}

// joinPath turns "a.b..c" (the folder parts between env and key) into
// "/a/b/c".
func joinPath(parts []byte) string {
	var sb strings.Builder
	for len(parts) > 0 {
		i := bytes.IndexByte(parts, '.')
		seg := parts
		if i >= 0 {
			seg, parts = parts[:i], parts[i+1:]
		} else {
			parts = nil
		}
		if len(seg) > 0 {
			sb.WriteByte('/')
			sb.Write(seg)
		}
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}
