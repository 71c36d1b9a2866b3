package templates

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// twoFolders is the data behind testdata/two-folders.*: p1/dev holds three
// secrets at the root (one referencing another), two in /backend, and the
// root imports p1/staging's SHARED_KEY and a DB_HOST that the root's own
// DB_HOST hides (the agent keeps the folder's own key).
func twoFolders() *fakeSource {
	f := newFake()
	f.set("p1", "dev", "/", "DB_HOST", "db.local")
	f.set("p1", "dev", "/", "DB_PASS", "s3cr3t-pass")
	f.set("p1", "dev", "/", "URL", "postgres://${DB_HOST}", "postgres://db.local")
	f.set("p1", "dev", "/backend", "PORT", "8080")
	f.set("p1", "dev", "/backend", "REDIS", "redis://r:6379")
	f.set("p1", "staging", "/", "SHARED_KEY", "shared-val")
	f.set("p1", "staging", "/", "DB_HOST", "other-host")
	f.imports[addr("p1", "dev", "/", "")] = []vault.Addr{addr("p1", "staging", "/", "SHARED_KEY"), addr("p1", "staging", "/", "DB_HOST")}
	return f
}

func loadSpec(t *testing.T, name, path string) Spec {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Path: path, Name: "testdata/" + name, Text: string(b), OnChange: []string{"true"}}
}

func readExpected(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The expected file was written by hand from agent.go: listSecrets fills
// Key, Value, Type, WorkspaceId and SecretPath for a folder's own secrets
// (ID empty) and Key, Value, Type, WorkspaceId, ID for imported ones (no
// SecretPath), appending an import only where the key is new;
// getSecretByName adds ID and Comment; options are JSON with expansion on
// by default; add and minus are int arithmetic.
func TestTwoFoldersMatchAgent(t *testing.T) {
	f := twoFolders()
	s := mustSet(t, loadSpec(t, "two-folders.tmpl", "rendered/app.env"))
	r := one(t, s.Render(f, nil))
	if r.Err != nil || !r.Changed || r.RunHook {
		t.Fatalf("first render: %+v (want changed, no hook)", r)
	}
	if got, want := content(t, s, 0), readExpected(t, "two-folders.expected"); got != want {
		t.Errorf("rendered:\n%q\nwant:\n%q", got, want)
	}
	if s.Size(0) != len(readExpected(t, "two-folders.expected")) {
		t.Errorf("Size = %d", s.Size(0))
	}
	if err := f.allWiped(); err != nil {
		t.Error(err)
	}
}

func TestRerenderOnlyWhenReadSecretChanges(t *testing.T) {
	f := twoFolders()
	f.set("p1", "prod", "/", "OTHER", "x")
	s := mustSet(t, loadSpec(t, "two-folders.tmpl", "rendered/app.env"))
	s.Render(f, nil)

	cases := []struct {
		name string
		ch   tree.Changes
		want bool
	}{
		{"key of a listed folder", tree.Changes{Updated: []vault.Addr{addr("p1", "dev", "/", "DB_PASS")}}, true},
		{"new key in a listed folder", tree.Changes{Added: []vault.Addr{addr("p1", "dev", "/", "NEW")}}, true},
		{"key below a recursive listing", tree.Changes{Removed: []vault.Addr{addr("p1", "dev", "/backend/deep", "K")}}, true},
		{"other environment", tree.Changes{Updated: []vault.Addr{addr("p1", "prod", "/", "OTHER")}}, false},
		{"other project", tree.Changes{Updated: []vault.Addr{addr("p2", "dev", "/", "DB_PASS")}}, false},
		{"status only", tree.Changes{Status: true}, false},
	}
	for _, c := range cases {
		if got := len(s.Affected(c.ch)) == 1; got != c.want {
			t.Errorf("%s: affected = %v, want %v", c.name, got, c.want)
		}
	}

	// Narrow template: one getSecretByName only.
	n := mustSet(t, Spec{Path: "port", Text: `{{ (getSecretByName "p1" "dev" "/backend" "PORT").Value }}`})
	n.Render(f, nil)
	if a := n.Affected(tree.Changes{Updated: []vault.Addr{addr("p1", "dev", "/backend", "REDIS")}}); len(a) != 0 {
		t.Errorf("a change to REDIS affects a template reading only PORT: %v", a)
	}
	if a := n.Affected(tree.Changes{Updated: []vault.Addr{addr("p1", "dev", "/backend", "PORT")}}); len(a) != 1 {
		t.Errorf("a change to PORT does not affect the template reading it: %v", a)
	}

	// An unchanged refresh renders the same bytes: no change, no hook.
	if r := one(t, s.Render(f, nil)); r.Changed || r.RunHook || r.Err != nil {
		t.Errorf("unchanged re-render: %+v", r)
	}
	// A real change: new bytes and the hook.
	f.set("p1", "dev", "/", "DB_PASS", "rotated-pass")
	r := one(t, s.Render(f, s.Affected(tree.Changes{Updated: []vault.Addr{addr("p1", "dev", "/", "DB_PASS")}})))
	if !r.Changed || !r.RunHook || r.Err != nil {
		t.Errorf("after a change: %+v", r)
	}
	if got := content(t, s, 0); !strings.Contains(got, "DB_PASS=rotated-pass") || strings.Contains(got, "s3cr3t-pass") {
		t.Errorf("content after change:\n%s", got)
	}
	// A change that leaves the rendered bytes as they were runs nothing.
	f.set("p1", "dev", "/", "URL", "postgres://${DB_HOST}", "postgres://db.local")
	if r := one(t, s.Render(f, []int{0})); r.Changed || r.RunHook {
		t.Errorf("same bytes after an update: %+v", r)
	}
}

func TestParseErrorNamesFileAndLine(t *testing.T) {
	_, err := New([]Spec{{Path: "a", Name: "/etc/tmpl/app.tmpl", Text: "ok\nok\n{{ end }}\n"}})
	if err == nil || !strings.Contains(err.Error(), "/etc/tmpl/app.tmpl:3") {
		t.Errorf("unclosed range: %v", err)
	}
	_, err = New([]Spec{{Path: "b", Text: "line1\n{{ replace .X \"a\" \"b\" }}"}})
	if err == nil || !strings.Contains(err.Error(), "template b:2") || !strings.Contains(err.Error(), `"replace" not defined`) {
		t.Errorf("unknown function: %v", err)
	}
	// Every broken template is named, not only the first.
	_, err = New([]Spec{{Path: "x", Text: "{{"}, {Path: "y", Text: "{{ end }}"}})
	if err == nil || !strings.Contains(err.Error(), "template x") || !strings.Contains(err.Error(), "template y") {
		t.Errorf("two broken templates: %v", err)
	}
}

func TestPathsMustNotCollide(t *testing.T) {
	for _, c := range [][2]string{{"a", "a"}, {"a", "a/b"}, {"x/y/z", "x/y"}} {
		if _, err := New([]Spec{{Path: c[0], Text: "1"}, {Path: c[1], Text: "2"}}); err == nil {
			t.Errorf("%q and %q accepted", c[0], c[1])
		}
	}
	if _, err := New([]Spec{{Path: "a/b", Text: "1"}, {Path: "a/c", Text: "2"}, {Path: "ab", Text: "3"}}); err != nil {
		t.Errorf("siblings refused: %v", err)
	}
}

// A render that fails after a change keeps the last good content, reports
// why (without the value), and does not ask for the hook.
func TestExecuteErrorKeepsLastGoodContent(t *testing.T) {
	const canary = "CANARY-8f3e1d-value"
	f := newFake()
	f.set("p", "dev", "/", "API_KEY", canary)
	f.set("p", "dev", "/", "OPTS", canary)
	s := mustSet(t, Spec{Path: "key", Name: "k.tmpl", Text: "key={{ (getSecretByName \"p\" \"dev\" \"/\" \"API_KEY\").Value }}\n", OnChange: []string{"true"}})
	s.Render(f, nil)
	good := content(t, s, 0)
	if good != "key="+canary+"\n" {
		t.Fatalf("first render %q", good)
	}
	f.del("p", "dev", "/", "API_KEY")
	r := one(t, s.Render(f, s.Affected(tree.Changes{Removed: []vault.Addr{addr("p", "dev", "/", "API_KEY")}})))
	if r.Err == nil || r.Changed || r.RunHook {
		t.Fatalf("render of a removed secret: %+v", r)
	}
	if !errors.Is(r.Err, ErrNotFound) || !strings.Contains(r.Err.Error(), "k.tmpl:1") || !strings.Contains(r.Err.Error(), "API_KEY") {
		t.Errorf("error does not say where and what: %v", r.Err)
	}
	if got := content(t, s, 0); got != good {
		t.Errorf("content after failure %q, want the last good %q", got, good)
	}
	st := s.Status()[0]
	if st.Error == "" || !st.Rendered || st.ErrorAt.IsZero() {
		t.Errorf("status: %+v", st)
	}
	// The secret comes back: the file recovers and, being different from
	// nothing new, the bytes equal the last good ones, so no hook.
	f.set("p", "dev", "/", "API_KEY", canary)
	if r := one(t, s.Render(f, s.Affected(tree.Changes{Added: []vault.Addr{addr("p", "dev", "/", "API_KEY")}}))); r.Err != nil || r.Changed || r.RunHook {
		t.Errorf("recovery with the same bytes: %+v", r)
	}
	if s.Status()[0].Error != "" {
		t.Error("error kept after a good render")
	}

	// An execute error that would quote a value is scrubbed: here the value
	// is part of a bad folder path, which the error names.
	bad := mustSet(t, Spec{Path: "bad", Text: `{{ listSecrets "p" "dev" (printf "/../%s" (getSecretByName "p" "dev" "/" "OPTS").Value) }}`})
	r = one(t, bad.Render(f, nil))
	if r.Err == nil {
		t.Fatal("bad options accepted")
	}
	if strings.Contains(r.Err.Error(), canary) || strings.Contains(bad.Status()[0].Error, canary) {
		t.Errorf("error leaks the value: %v", r.Err)
	}
	if !strings.Contains(r.Err.Error(), "[REDACTED]") {
		t.Errorf("error should show where the value was cut: %v", r.Err)
	}
	if _, err := bad.Content(0); !errors.Is(err, ErrNotRendered) {
		t.Errorf("content of a never-rendered template: %v", err)
	}
	if err := f.allWiped(); err != nil {
		t.Error(err)
	}
}

func TestDynamicSecretIsAClearError(t *testing.T) {
	f := newFake()
	s := mustSet(t, Spec{Path: "db", Text: `{{ with dynamic_secret "proj" "dev" "/" "pg" }}{{ .DB_USERNAME }}{{ end }}`})
	if got := s.UsesDynamicSecrets(); !reflect.DeepEqual(got, []string{"db"}) {
		t.Errorf("UsesDynamicSecrets = %v", got)
	}
	r := one(t, s.Render(f, nil))
	if !errors.Is(r.Err, ErrDynamicSecret) || !strings.Contains(r.Err.Error(), "licensed") || !strings.Contains(r.Err.Error(), "dynamic_secret") {
		t.Errorf("dynamic_secret: %v", r.Err)
	}
}

func TestScopesFromTextAndRenders(t *testing.T) {
	f := newFake()
	f.slugs["webshop"] = "p9"
	f.set("p9", "prod", "/api", "K", "v")
	f.set("p1", "dev", "/", "WHICH", "/computed")
	f.set("p1", "dev", "/computed", "Z", "z")
	s := mustSet(t,
		Spec{Path: "a", Text: `{{ range listSecrets "p1" "staging" "/x/" "{\"recursive\": true}" }}{{ end }}`},
		Spec{Path: "b", Text: `{{ range listSecretsByProjectSlug "webshop" "prod" "api" }}{{ .Key }}{{ end }}`},
		Spec{Path: "c", Text: `{{ $p := (getSecretByName "p1" "dev" "/" "WHICH").Value }}{{ range listSecrets "p1" "dev" $p }}{{ .Key }}{{ end }}`},
	)
	before := s.Scopes()
	want := []Scope{
		{Project: "p1", Env: "dev", Path: "/"},
		{Project: "p1", Env: "staging", Path: "/x", Recursive: true},
		{Project: "webshop", BySlug: true, Env: "prod", Path: "/api"},
	}
	if !reflect.DeepEqual(before, want) {
		t.Errorf("static scopes:\n%+v\nwant\n%+v", before, want)
	}
	// p1/staging is not synced: the render fails, the scope stays named.
	f.synced = map[string]bool{"p9/prod": true, "p1/dev": true}
	rs := s.Render(f, nil)
	if !errors.Is(rs[0].Err, ErrNotSynced) || rs[1].Err != nil || rs[2].Err != nil {
		t.Fatalf("renders: %+v", rs)
	}
	if got := content(t, s, 1) + content(t, s, 2); got != "KZ" {
		t.Errorf("contents %q", got)
	}
	after := s.Scopes()
	for _, w := range append(want, Scope{Project: "p1", Env: "dev", Path: "/computed"}, Scope{Project: "p9", Env: "prod", Path: "/api"}) {
		found := false
		for _, g := range after {
			found = found || g == w
		}
		if !found {
			t.Errorf("scope %+v missing from %+v", w, after)
		}
	}
	// Once the daemon syncs it, the new scope's secrets arrive as Added and
	// reach the template that failed.
	if a := s.Affected(tree.Changes{Added: []vault.Addr{addr("p1", "staging", "/x/y", "K")}}); !reflect.DeepEqual(a, []int{0}) {
		t.Errorf("affected by the new scope: %v", a)
	}
	// A tree change re-renders slug readers and failed templates.
	if a := s.Affected(tree.Changes{Tree: true}); !reflect.DeepEqual(a, []int{0, 1}) {
		t.Errorf("affected by a tree change: %v", a)
	}
	// A computed path is a dependency like a literal one.
	if a := s.Affected(tree.Changes{Updated: []vault.Addr{addr("p1", "dev", "/computed", "Z")}}); !reflect.DeepEqual(a, []int{2}) {
		t.Errorf("affected by the computed folder: %v", a)
	}
}

func TestHooksAndAdopt(t *testing.T) {
	f := twoFolders()
	specs := []Spec{
		{Path: "one", Text: `{{ (getSecretByName "p1" "dev" "/" "DB_HOST").Value }}`, OnChange: []string{"systemctl", "reload", "app"}},
		{Path: "two", Text: "static"},
	}
	s := mustSet(t, specs...)
	hooks := s.Hooks()
	want := []config.Hook{{Path: "one", Command: []string{"systemctl", "reload", "app"}}}
	want[0].Timeout.Duration = config.DefaultHookTimeout
	want[0].Debounce.Duration = config.DefaultHookDebounce
	if !reflect.DeepEqual(hooks, want) {
		t.Errorf("Hooks = %+v", hooks)
	}
	s.Render(f, nil)

	// Reload: the same template again renders the same bytes, which is not
	// a change; an edited template that renders new bytes runs its hook.
	next := mustSet(t, specs[0], Spec{Path: "two", Text: "edited", OnChange: []string{"true"}})
	next.Adopt(s)
	rs := next.Render(f, nil)
	if rs[0].Changed || rs[0].RunHook {
		t.Errorf("unchanged template after reload: %+v", rs[0])
	}
	if !rs[1].Changed || !rs[1].RunHook || content(t, next, 1) != "edited" {
		t.Errorf("edited template after reload: %+v", rs[1])
	}
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	src := dir + "/app.tmpl"
	if err := os.WriteFile(src, []byte("{{ add 2 3 }}"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := []config.Template{
		{Path: "/a/file/", Source: src, Mode: "0440", OnChange: []string{"x"}},
		{Path: "b", Content: "{{ minus 2 3 }}"},
	}
	specs, err := FromConfig(ts)
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].Path != "a/file" || specs[0].Name != src || specs[0].Mode != 0o440 || specs[1].Name != "template b" {
		t.Errorf("specs %+v", specs)
	}
	if got := SourceFiles(ts); !reflect.DeepEqual(got, []string{src}) {
		t.Errorf("SourceFiles = %v", got)
	}
	s := mustSet(t, specs...)
	s.Render(newFake(), nil)
	if content(t, s, 0) != "5" || content(t, s, 1) != "-1" {
		t.Errorf("contents %q %q", content(t, s, 0), content(t, s, 1))
	}
	if _, err := FromConfig([]config.Template{{Path: "m", Source: dir + "/missing.tmpl"}}); err == nil || !strings.Contains(err.Error(), "missing.tmpl") {
		t.Errorf("missing source: %v", err)
	}
}

func TestOptionsAsTheAgentReadsThem(t *testing.T) {
	f := twoFolders()
	cases := map[string]string{
		`{{ range listSecrets "p1" "dev" "/backend" }}{{ .Key }},{{ end }}`:                                           "PORT,REDIS,",
		`{{ range listSecrets "p1" "dev" "backend/" "{}" }}{{ .Key }},{{ end }}`:                                      "PORT,REDIS,",
		`{{ range listSecrets "p1" "dev" "/" "{\"expandSecretReferences\": false}" }}{{ .Value }},{{ end }}`:          "db.local,s3cr3t-pass,postgres://${DB_HOST},shared-val,",
		`{{ range listSecrets "p1" "dev" "/" "{\"recursive\": false, \"other\": 1}" "ignored" }}{{ .Key }},{{ end }}`: "DB_HOST,DB_PASS,URL,SHARED_KEY,",
		`{{ len (listSecrets "p1" "dev" "/" "{\"recursive\": true}") }}`:                                              "6",
	}
	for text, want := range cases {
		s := mustSet(t, Spec{Path: "x", Text: text})
		r := one(t, s.Render(f, nil))
		if r.Err != nil {
			t.Errorf("%s: %v", text, r.Err)
			continue
		}
		if got := content(t, s, 0); got != want {
			t.Errorf("%s:\n got %q\nwant %q", text, got, want)
		}
	}
	s := mustSet(t, Spec{Path: "x", Text: `{{ listSecrets "p1" "dev" "/" "not json" }}`})
	if r := one(t, s.Render(f, nil)); r.Err == nil || !strings.Contains(r.Err.Error(), "want JSON") {
		t.Errorf("bad options: %v", r.Err)
	}
}

// The annotated example config's templates load and parse.
func TestExampleConfigTemplatesParse(t *testing.T) {
	c, _, err := config.Load("../testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := FromConfig(c.Templates)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSet(t, specs...)
	want := []Scope{
		{Project: "6f0c7a3e-0000-4000-8000-000000000000", Env: "prod", Path: "/", Recursive: true},
		{Project: "6f0c7a3e-0000-4000-8000-000000000000", Env: "prod", Path: "/backend"},
	}
	if got := s.Scopes(); !reflect.DeepEqual(got, want) {
		t.Errorf("scopes %+v", got)
	}
	if s.Spec(0).Mode != 0o440 || len(s.Hooks()) != 1 {
		t.Errorf("spec %+v hooks %+v", s.Spec(0), s.Hooks())
	}
}

func TestCollidesWithRootNames(t *testing.T) {
	s := mustSet(t, Spec{Path: "webshop/app.env", Text: "x"}, Spec{Path: "rendered/b", Text: "y"}, Spec{Path: "top", Text: "z"})
	err := s.Collides([]string{"webshop", "top", "other"})
	if err == nil || !strings.Contains(err.Error(), "template webshop/app.env collides with webshop") || !strings.Contains(err.Error(), "template top collides with top") || strings.Contains(err.Error(), "rendered") {
		t.Errorf("collisions: %v", err)
	}
	if err := s.Collides([]string{"shop", ".status"}); err != nil {
		t.Errorf("no collision: %v", err)
	}
}
