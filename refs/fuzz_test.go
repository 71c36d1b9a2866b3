package refs

import (
	"bytes"
	"errors"
	"testing"
)

const fuzzCanary = "canary-Zx9Q-never-in-errors"

// FuzzExpand builds a small project whose values are the fuzz input, wired
// so references among them form cycles across folders and environments
// (${A}, ${B}, ${ROOT}, ${prod.A}, ${dev.x.A}, ${restricted.T}, ${staging.T}),
// and expands ROOT in both dialects. It must not panic, must stay within
// its limits (so adversarial cycles end quickly), must be deterministic,
// must return a value without references unchanged, and its errors must be
// the documented kinds and never hold the canary value.
func FuzzExpand(f *testing.F) {
	seeds := []struct{ root, a, b string }{
		{"hello ${A}", "a", "b"},
		{"${A}${B}${ROOT}", "${B}${B}${A}", "${A}${ROOT}${A}${B}"},
		{"${A}${A}${A}${A}${A}${A}${A}${A}", "${A}${A}", "${ROOT}"},
		{"${prod.A} ${A}", "${dev.x.A}", "${A}\n${B}"},
		{"${dev.x.A}", "${ROOT}${prod.A}", "${dev.x.A}${dev.x.A}"},
		{"${restricted.T}", "", ""},
		{"${B}", "${staging.T}", "${A}"},
		{"${CANARY} ${${A}}", "B", "${dev.${A}.A}"},
		{"no refs at all $ ${ }", "${A}", "${B}"},
		{"${@p.dev.A} ${@A}", "x", "y"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.root), []byte(s.a), []byte(s.b), true)
		f.Add([]byte(s.root), []byte(s.a), []byte(s.b), false)
	}
	lim := Limits{MaxBytes: 64 << 10, MaxRefs: 4096, MaxWork: 4 << 20}
	f.Fuzz(func(t *testing.T, root, a, b []byte, skip bool) {
		w := newWorld()
		set := func(env, path, key string, v []byte, skip bool) {
			w.secrets[Addr{env, path, key}] = Entry{Status: Found, Value: bytes.Clone(v), SkipMultiline: skip}
		}
		set("dev", "/", "ROOT", root, skip)
		set("dev", "/", "A", a, false)
		set("dev", "/", "B", b, true)
		set("dev", "/x", "A", b, false)
		set("prod", "/", "A", a, false)
		set("prod", "/", "B", root, false)
		set("dev", "/", "CANARY", []byte(fuzzCanary), false)
		rootAddr := Addr{"dev", "/", "ROOT"}
		for _, d := range []Dialect{Classic, Multipass} {
			x := &Expander{Lookup: w, Dialect: d, Limits: lim}
			res, err := x.Expand(rootAddr)
			if w.outstanding != 0 {
				t.Fatalf("%s: %d copies not released", d, w.outstanding)
			}
			if !d.HasRefs(root) {
				if err != nil || !bytes.Equal(res.Value, root) || res.HasRefs || len(res.Deps) != 0 {
					t.Fatalf("%s: no refs in %q but got %q, %v, deps %v", d, root, res.Value, err, res.Deps)
				}
				continue
			}
			if res.Refs > lim.MaxRefs {
				t.Fatalf("%s: %d refs processed, limit %d", d, res.Refs, lim.MaxRefs)
			}
			if err != nil {
				if !errors.Is(err, ErrDenied) && !errors.Is(err, ErrUnknown) && !errors.Is(err, ErrLimit) {
					t.Fatalf("%s: undocumented error %v", d, err)
				}
				if res.Value != nil {
					t.Fatalf("%s: value with error", d)
				}
				if bytes.Contains([]byte(err.Error()), []byte(fuzzCanary)) && !bytes.Contains(root, []byte(fuzzCanary)) &&
					!bytes.Contains(a, []byte(fuzzCanary)) && !bytes.Contains(b, []byte(fuzzCanary)) {
					t.Fatalf("%s: error %q holds a value", d, err)
				}
			} else if len(res.Value) > lim.MaxBytes {
				t.Fatalf("%s: %d bytes, limit %d", d, len(res.Value), lim.MaxBytes)
			}
			again, err2 := x.Expand(rootAddr)
			if !bytes.Equal(again.Value, res.Value) || (err == nil) != (err2 == nil) {
				t.Fatalf("%s: not deterministic", d)
			}
		}
	})
}
