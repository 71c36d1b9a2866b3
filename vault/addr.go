package vault

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Addr names one secret: which project (by ID), environment, folder and key.
type Addr struct {
	Project string // project ID
	Env     string // environment slug
	Path    string // canonical folder path: "/" or "/a/b"
	Key     string
}

// String returns "project/env/path/KEY" ("project/env/KEY" at the root). It
// is the AEAD associated data of the sealed value and safe to log: names are
// not secret. Components never contain "/" (validate enforces it), so the
// form is unambiguous.
func (a Addr) String() string { return string(a.ad()) }

// ad returns the String form as bytes: the AEAD associated data.
func (a Addr) ad() []byte {
	return a.appendTo(make([]byte, 0, len(a.Project)+len(a.Env)+len(a.Path)+len(a.Key)+3))
}

// appendTo appends the String form to dst; sealing and opening use it to
// build the associated data without an intermediate string.
func (a Addr) appendTo(dst []byte) []byte {
	dst = append(dst, a.Project...)
	dst = append(dst, '/')
	dst = append(dst, a.Env...)
	if a.Path != "/" {
		dst = append(dst, a.Path...)
	}
	dst = append(dst, '/')
	return append(dst, a.Key...)
}

// CompareAddrs orders addresses as their String forms compare, without
// building them: sorting a 100k-secret listing's changes by String made
// 100k strings at the moment the listing's memory peaks.
func CompareAddrs(a, b Addr) int {
	pa, pb := a.parts(), b.parts()
	var i, j int
	if a.Project == b.Project && a.Env == b.Env {
		i, j = 3, 3 // one environment's addresses, as a listing's are
	}
	var x, y string
	for {
		for x == "" && i < len(pa) {
			x, i = pa[i], i+1
		}
		for y == "" && j < len(pb) {
			y, j = pb[j], j+1
		}
		if x == "" || y == "" {
			return cmp.Compare(len(x), len(y)) // the one that ended first is less
		}
		n := min(len(x), len(y))
		if c := strings.Compare(x[:n], y[:n]); c != 0 {
			return c
		}
		x, y = x[n:], y[n:]
	}
}

// parts are the pieces of the String form, in order.
func (a Addr) parts() [6]string {
	path := a.Path
	if path == "/" {
		path = ""
	}
	return [6]string{a.Project, "/", a.Env, path, "/", a.Key}
}

// notesForm binds the sealed Notes; like expandedForm it is internal.
const notesForm Form = 254

// formAD is the associated data of one of the secret's boxes: the raw value
// keeps the plain String form; the others are prefixed with "/<form>/",
// which no plain form starts with (a project name is non-empty and has no
// "/"), so no box can be opened as another's.
func (a Addr) formAD(f Form) []byte { return a.appendFormAD(nil, f) }

func (a Addr) appendFormAD(dst []byte, f Form) []byte {
	switch f {
	case Raw:
	case expandedForm:
		dst = append(dst, "/x/"...)
	case notesForm:
		dst = append(dst, "/n/"...)
	default:
		panic(fmt.Sprintf("vault: no associated data for form %d", f))
	}
	return a.appendTo(dst)
}

// versionAD binds an earlier version n: "/v<n>/" then the String form.
func (a Addr) versionAD(n int) []byte {
	dst := append([]byte("/v"), strconv.Itoa(n)...)
	return a.appendTo(append(dst, '/'))
}

func (a Addr) validate() error {
	if err := validName("project", a.Project); err != nil {
		return err
	}
	if err := validName("environment", a.Env); err != nil {
		return err
	}
	if err := validPath(a.Path); err != nil {
		return err
	}
	return validName("key", a.Key)
}

// validName accepts any non-empty name without "/" (Infisical itself forbids
// "/" and ":" in keys; ":" is not ours to police).
func validName(what, s string) error {
	if s == "" {
		return fmt.Errorf("vault: empty %s name", what)
	}
	if strings.IndexByte(s, '/') >= 0 {
		return fmt.Errorf("vault: %s name %q contains '/'", what, s)
	}
	return nil
}

// validPath accepts only canonical folder paths, so that one folder has
// exactly one spelling in the vault's maps.
func validPath(p string) error {
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("vault: folder path %q is not canonical", p)
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("vault: folder path %q is not canonical", p)
		}
	}
	return nil
}

// ChildPath is the canonical path of name in folder dir ("/" or "/a/b").
func ChildPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentOf returns the parent folder and the last component of a canonical
// path other than "/".
func parentOf(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// under reports whether folder p is root or below it.
func under(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}
