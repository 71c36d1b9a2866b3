package access

import (
	"path"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"webshop/prod/**", "webshop/prod/DB", true},
		{"webshop/prod/**", "webshop/prod/a/b/c", true},
		{"webshop/prod/**", "webshop/prod", true}, // ** matches no segment too
		{"webshop/prod/**", "webshop/production/DB", false},
		{"webshop/*/DB", "webshop/prod/DB", true},
		{"webshop/*/DB", "webshop/prod/x/DB", false},
		{"*/prod/*", "a/prod/.env", true}, // * matches dot names
		{"**/DB", "DB", true},
		{"**/DB", "a/b/DB", true},
		{"**/DB", "a/b/DBX", false},
		{"a/**/b/**/c", "a/x/b/y/z/c", true},
		{"a/**/b/**/c", "a/x/y/c", false},
		{"/webshop/prod/DB/", "webshop/prod/DB", true}, // slashes trimmed
		{"web?hop/[pd]*/D\\B", "webshop/prod/DB", true},
		{"**", "", true},
		{"x", "", false},
	}
	for _, c := range cases {
		g, err := CompileGlob(c.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", c.pattern, err)
		}
		if got := g.Match(c.path); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
		if got := refMatch(g, splitPath(c.path)); got != c.want {
			t.Errorf("reference %q on %q = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestGlobErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		"":       "empty pattern",
		"/":      "empty pattern",
		"a//b":   "empty segment",
		"a**":    "whole segment",
		"a/../b": ". and ..",
		"a/[b":   "bad segment",
		"a/\\":   "bad segment",
	} {
		_, err := CompileGlob(pattern)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileGlob(%q) = %v, want an error containing %q", pattern, err, want)
		}
	}
}

// refMatch is the obvious recursive matcher, exponential but plainly right:
// `**` tries every number of segments, any other segment is path.Match.
func refMatch(g Glob, parts []string) bool {
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		if i == len(g.segs) {
			return j == len(parts)
		}
		if g.segs[i].any {
			for k := j; k <= len(parts); k++ {
				if rec(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(parts) {
			return false
		}
		ok, err := path.Match(g.segs[i].s, parts[j])
		return err == nil && ok && rec(i+1, j+1)
	}
	return rec(0, 0)
}

func FuzzGlob(f *testing.F) {
	f.Add("webshop/prod/**", "webshop/prod/a/b")
	f.Add("**/x/**/y", "x/y")
	f.Add("a/*/c", "a/b/c")
	f.Add("[a-", "a")
	f.Add("**/**/a", "b/a")
	f.Fuzz(func(t *testing.T, pattern, p string) {
		if strings.Count(pattern, "/") > 12 || strings.Count(p, "/") > 12 {
			return // the reference is exponential
		}
		g, err := CompileGlob(pattern)
		if err != nil {
			return
		}
		parts := splitPath(p)
		for _, s := range parts {
			if s == "" {
				return // fs never passes empty segments
			}
		}
		if got, want := g.Match(p), refMatch(g, parts); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", pattern, p, got, want)
		}
		// A pattern is its own literal match when it has no metacharacters.
		if !strings.ContainsAny(pattern, `*?[\`) && !g.Match(pattern) {
			t.Fatalf("literal %q does not match itself", pattern)
		}
	})
}
