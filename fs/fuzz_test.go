package fs

import (
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/vault"
)

// parseEnv reads back what RenderEnv writes, as sh would: KEY='...' with
// '\” standing for a quote.
func parseEnv(t *testing.T, b []byte) map[string]string {
	out := map[string]string{}
	s := string(b)
	for s != "" {
		eq := strings.Index(s, "='")
		if eq < 0 {
			t.Fatalf("no =' in %q", s)
		}
		key := s[:eq]
		s = s[eq+2:]
		var v strings.Builder
		for {
			i := strings.IndexByte(s, '\'')
			if i < 0 {
				t.Fatalf("unterminated value for %s", key)
			}
			v.WriteString(s[:i])
			s = s[i+1:]
			if strings.HasPrefix(s, `\''`) {
				v.WriteByte('\'')
				s = s[3:]
				continue
			}
			break
		}
		if !strings.HasPrefix(s, "\n") {
			t.Fatalf("value of %s not followed by a newline", key)
		}
		s = s[1:]
		out[key] = v.String()
	}
	return out
}

func entries(kv map[string][]byte) []vault.Entry {
	var es []vault.Entry
	for k, v := range kv {
		es = append(es, vault.Entry{Key: k, Value: vaultValue(v)})
	}
	return es
}

// FuzzRenderEnv: every shell-name key comes back with its exact value, and
// nothing else appears.
func FuzzRenderEnv(f *testing.F) {
	f.Add("KEY", []byte("plain"), "OTHER", []byte("it's $(x) `y`\n\"z\"\\"))
	f.Add("bad-name", []byte("x"), "_ok1", []byte("'''"))
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte) {
		kv := map[string][]byte{k1: v1, k2: v2}
		want := map[string]string{}
		for k, v := range kv {
			if shellName(k) {
				want[k] = string(v)
			}
		}
		got := parseEnv(t, RenderEnv(entries(kv)))
		if len(got) != len(want) {
			t.Fatalf("rendered %d keys, want %d", len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s = %q, want %q", k, got[k], v)
			}
		}
	})
}

// FuzzScratchPattern: any name is classified without a panic, and the
// editor names the mount relies on are scratch.
func FuzzScratchPattern(f *testing.F) {
	for _, s := range []string{".KEY.swp", "KEY~", "4913", "sedAbc123", "KEY", "x.tmp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := scratchPattern(name)
		if strings.HasPrefix(name, ".") && !got {
			t.Fatalf("%q: a dot file is scratch", name)
		}
		if !got && strings.HasSuffix(name, "~") {
			t.Fatalf("%q: a backup is scratch", name)
		}
	})
}
