package fs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/infisicalfs/infisicalfs/vault"
)

// parseEnv reads back what RenderEnv writes, as sh would: KEY='...' with
// '\” standing for a quote; and the closing comment's left-out names.
func parseEnv(t *testing.T, b []byte) (map[string]string, []string) {
	out := map[string]string{}
	var left []string
	s := string(b)
	for s != "" {
		if rest, ok := strings.CutPrefix(s, envLeftOut); ok {
			line, after, _ := strings.Cut(rest, "\n")
			if after != "" {
				t.Fatalf("text after the left-out comment: %q", after)
			}
			dec := json.NewDecoder(strings.NewReader(line))
			for dec.More() {
				var k string
				if err := dec.Decode(&k); err != nil {
					t.Fatalf("left-out comment %q: %v", line, err)
				}
				left = append(left, k)
			}
			break
		}
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
	return out, left
}

const envLeftOut = "# infisicalfs: left out, not shell variable names (read them from .json or .yaml): "

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
		var wantLeft []string
		for k, v := range kv {
			if shellName(k) {
				want[k] = string(v)
			} else {
				wantLeft = append(wantLeft, strings.ToValidUTF8(k, "\uFFFD"))
			}
		}
		got, left := parseEnv(t, RenderEnv(entries(kv)))
		if len(got) != len(want) {
			t.Fatalf("rendered %d keys, want %d", len(got), len(want))
		}
		slices.Sort(wantLeft)
		if !slices.Equal(left, wantLeft) {
			t.Fatalf("left-out comment names %q, want %q", left, wantLeft)
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

// hostileValues are values a YAML writer gets wrong when it quotes lazily.
var hostileValues = [][]byte{
	[]byte(""), []byte("plain"), []byte(`say "hi"`), []byte(`back\slash`), []byte("it's"),
	[]byte("line1\nline2\n"), []byte("key: value"), []byte("# not a comment"), []byte("- item"),
	[]byte("no"), []byte("yes"), []byte("on"), []byte("off"), []byte("~"), []byte("null"), []byte("0x1F"),
	[]byte("1e3"), []byte("012"), []byte("  padded  "), []byte("tab\there"), []byte("{a: 1}"), []byte("[1, 2]"),
	[]byte("&anchor"), []byte("*alias"), []byte("!tag"), []byte("%YAML"), []byte("@x"), []byte("`x`"),
	[]byte("|"), []byte(">"), []byte("---"), []byte("..."), []byte("\x00nul"), []byte("bell\a"),
	[]byte("\xff\xfe not utf-8"), []byte("caf\xc3\xa9"), []byte("\u2028sep\u2029"), []byte("\ufeffbom"),
	[]byte("\x85nel"), []byte("\u0085"), []byte("\r\n"), []byte("\x7f"),
}

// TestRenderYAMLRoundTrips: a real YAML parser reads back every hostile
// value exactly, as a string, under its key.
func TestRenderYAMLRoundTrips(t *testing.T) {
	kv := map[string][]byte{}
	for i, v := range hostileValues {
		kv[fmt.Sprintf("K%02d", i)] = v
	}
	kv["no"], kv["lower.dotted-key"], kv["with space"] = []byte("key named no"), []byte("x"), []byte("y")
	checkYAML(t, kv)
	checkYAML(t, map[string][]byte{})
}

func checkYAML(t *testing.T, kv map[string][]byte) {
	t.Helper()
	out := RenderYAML(entries(kv))
	var got map[string]string
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("yaml.Unmarshal: %v\n%s", err, out)
	}
	if len(got) != len(kv) {
		t.Fatalf("parsed %d keys, want %d:\n%s", len(got), len(kv), out)
	}
	for k, v := range kv {
		if got[k] != string(v) {
			t.Errorf("%q = %q, want %q", k, got[k], v)
		}
	}
}

// FuzzRenderYAML: any keys and values parse back exactly.
func FuzzRenderYAML(f *testing.F) {
	for i := 0; i+1 < len(hostileValues); i += 2 {
		f.Add("KEY", hostileValues[i], "no", hostileValues[i+1])
	}
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte) {
		if !utf8.ValidString(k1) || !utf8.ValidString(k2) {
			t.Skip("keys come from JSON: always UTF-8")
		}
		checkYAML(t, map[string][]byte{k1: v1, k2: v2})
	})
}
