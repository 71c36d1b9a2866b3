package agentconfig

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary YAML to the agent config parser: it must not
// panic, an error must not quote the input's scalars, and what it accepts
// must be well formed (relative, clean template paths under Root).
func FuzzParse(f *testing.F) {
	f.Add([]byte("auth:\n  type: universal-auth\n  config:\n    client-id: a\n    client-secret: b\ntemplates:\n  - template-content: x\n    destination-path: /a/b\n"))
	f.Add([]byte("auth: {type: kubernetes, config: {identity-id: i}}\nsinks: [{type: file, config: {path: t}}]\n"))
	f.Add([]byte("templates:\n  - {source-path: s, destination-path: d, config: {polling-interval: 1w, execute: {command: c, timeout: 3}}}\nauth: {type: universal-auth}\n"))
	f.Add([]byte("infisical: [\n"))
	f.Add([]byte("auth:\n  type: universal-auth\ntemplates:\n  - {base64-template-content: e30=, destination-path: ../../x}\n  - {template-content: y, destination-path: /}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b, "/base")
		if err != nil {
			return
		}
		for _, tp := range s.Templates {
			if tp.Path == "" || strings.HasPrefix(tp.Path, "/") || filepath.Clean("/"+tp.Path) != "/"+tp.Path {
				t.Fatalf("template path %q (root %q)", tp.Path, s.Root)
			}
			if tp.Source != "" && tp.Content != "" {
				t.Fatalf("template with both source and content: %+v", tp)
			}
			if !filepath.IsAbs(filepath.Join(s.Root, tp.Path)) {
				t.Fatalf("root %q", s.Root)
			}
		}
		_ = s.Warning()
	})
}
