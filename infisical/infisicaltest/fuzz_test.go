package infisicaltest

import (
	"strings"
	"testing"
)

func FuzzKeyProblem(f *testing.F) {
	for _, s := range []string{"KEY", " k ", "a:b", "a/b", "", "   ", "ключ", "a.b-c", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		code, msg := keyProblem(key)
		trimmed := strings.TrimSpace(key)
		valid := trimmed != "" && !strings.ContainsAny(trimmed, ":/")
		if valid != (code == "") {
			t.Fatalf("keyProblem(%q) = %q, want valid=%v", key, code, valid)
		}
		if code != "" && msg == "" {
			t.Fatal("problem without a message")
		}
	})
}

func FuzzCanonicalSecretPath(f *testing.F) {
	for _, s := range []string{"/", "", "/a/b", "/a/b/", "a/b", "//a", "/a b", "/a.b", " /x ", "/ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		cp, ok := canonicalSecretPath(p)
		if !ok {
			return
		}
		if cp != "/" && strings.HasSuffix(cp, "/") && !strings.HasSuffix(strings.TrimSpace(p), "//") {
			t.Fatalf("%q → %q keeps a trailing slash", p, cp)
		}
		segs, usable := splitPath(cp)
		if !usable {
			return
		}
		for _, s := range segs {
			if !pathSegmentRe.MatchString(s) {
				t.Fatalf("%q accepted with segment %q", p, s)
			}
		}
		// Canonical form is a fixed point.
		if again, ok := canonicalSecretPath(cp); !ok || again != cp {
			t.Fatalf("not idempotent: %q → %q → %q", p, cp, again)
		}
	})
}

func FuzzNormalizeValue(f *testing.F) {
	for _, s := range []string{"", "x", " x \n", "a\n\n", "\n", "\t \r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n := normalizeValue(v)
		if normalizeValue(n) != n {
			t.Fatalf("not idempotent: %q → %q", v, n)
		}
		if strings.HasSuffix(v, "\n") != strings.HasSuffix(n, "\n") {
			t.Fatalf("trailing newline changed: %q → %q", v, n)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"KEY", "dev.KEY", "prod.a.b.KEY", "..", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		env, path, key, local := parseReference(ref)
		if local != !strings.Contains(ref, ".") || (local && (env != "" || path != "")) {
			t.Fatalf("%q: local=%v env=%q path=%q", ref, local, env, path)
		}
		if !local && !strings.HasPrefix(path, "/") {
			t.Fatalf("%q: path %q", ref, path)
		}
		if !strings.HasSuffix(ref, key) {
			t.Fatalf("%q: key %q", ref, key)
		}
	})
}
