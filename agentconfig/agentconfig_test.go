package agentconfig

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/hooks"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/templates"
	"github.com/infisicalfs/infisicalfs/vault"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTranslateUniversalAuthConfig(t *testing.T) {
	dir := t.TempDir()
	yml := `
infisical:
  address: "https://infisical.example.com"
  exit-after-auth: true
  retry-strategy:
    max-retries: 5
auth:
  type: "universal-auth"
  config:
    client-id: "./client-id"
    client-secret: "/run/secrets/client-secret"
    remove_client_secret_on_read: true
    colour: blue
sinks:
  - type: "file"
    config:
      path: "token"
  - type: "k8s-secret"
    config:
      path: "/x"
cache:
  persistent:
    type: kubernetes
templates:
  - source-path: app.tmpl
    destination-path: /run/secrets/app.env
    config:
      polling-interval: 10m
      execute:
        command: "systemctl reload app"
        timeout: 45
  - template-content: "{{ add 1 2 }}"
    destination-path: /run/secrets/inline/three
    config:
      polling-interval: 90s
  - base64-template-content: ` + base64.StdEncoding.EncodeToString([]byte("{{ minus 5 1 }}")) + `
    destination-path: /run/secrets/b64.txt
    unknown-template-key: 1
`
	s, err := Parse([]byte(yml), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Settings{
		URL:                      "https://infisical.example.com",
		AuthMethod:               AuthUniversal,
		ClientIDFile:             filepath.Join(dir, "client-id"),
		ClientSecretFile:         "/run/secrets/client-secret",
		RemoveClientSecretOnRead: true,
		RefreshInterval:          90 * time.Second,
		Root:                     "/run/secrets",
		Sinks:                    []string{filepath.Join(dir, "token")},
		Templates: []config.Template{
			{Path: "app.env", Source: filepath.Join(dir, "app.tmpl"), OnChange: []string{"/bin/sh", "-c", "systemctl reload app"}, Timeout: config.Duration{Duration: 45 * time.Second}},
			{Path: "inline/three", Content: "{{ add 1 2 }}", Timeout: config.Duration{Duration: config.DefaultHookTimeout}},
			{Path: "b64.txt", Content: "{{ minus 5 1 }}", Timeout: config.Duration{Duration: config.DefaultHookTimeout}},
		},
		Unsupported: []string{
			"unknown key templates[2].unknown-template-key",
			"unknown key auth.config.colour",
			`sinks[1] of type "k8s-secret" (only file)`,
			"infisical.exit-after-auth (a mount keeps running)",
			"infisical.retry-strategy (infisicalfs has its own retry delays)",
			"cache (nothing is cached on disk)",
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings:\n%+v\nwant\n%+v", s, want)
	}
	w := s.Warning()
	if strings.Count(w, "\n") != 0 || !strings.Contains(w, "exit-after-auth") || !strings.Contains(w, "k8s-secret") || !strings.Contains(w, "colour") {
		t.Errorf("warning line: %q", w)
	}

	c := config.Default()
	s.Apply(&c)
	if c.URL != s.URL || c.ClientIDFile != s.ClientIDFile || c.ClientSecretFile != s.ClientSecretFile || c.RefreshInterval.Duration != 90*time.Second || len(c.Templates) != 3 {
		t.Errorf("applied: %+v", c)
	}
	// What Apply produced passes the config package's own checks.
	c.ClientID, c.ClientSecret = "id", "secret"
	if err := c.Validate(); err != nil {
		t.Errorf("applied config invalid: %v", err)
	}
}

func TestTranslateKubernetesAuth(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "identity"), "  3f1c-identity\n")
	s, err := Parse([]byte("auth:\n  type: kubernetes\n  config:\n    identity-id: identity\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthMethod != AuthKubernetes || s.IdentityIDFile != filepath.Join(dir, "identity") || s.IdentityID != "3f1c-identity" ||
		s.KubernetesTokenPath != DefaultTokenPath || s.URL != DefaultAddress || s.RefreshInterval != 0 || len(s.Unsupported) != 0 {
		t.Errorf("settings %+v", s)
	}
	s, err = Parse([]byte("auth:\n  type: kubernetes\n  config:\n    identity-id: /nonexistent/id\n    service-account-token: /var/run/custom/token\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.KubernetesTokenPath != "/var/run/custom/token" || s.IdentityID != "" || s.IdentityIDFile != "/nonexistent/id" {
		t.Errorf("settings %+v", s)
	}
}

func TestBadAgentConfigs(t *testing.T) {
	const canary = "CANARY-yaml-7d1e"
	cases := map[string]string{
		"auth.type \"aws-iam\" is not supported": "auth:\n  type: aws-iam\n",
		"auth.type is missing":                   "templates: []\n",
		"set source-path, template-content":      "auth: {type: universal-auth}\ntemplates:\n  - destination-path: /a\n",
		"destination-path is empty":              "auth: {type: universal-auth}\ntemplates:\n  - template-content: x\n",
		"used twice":                             "auth: {type: universal-auth}\ntemplates:\n  - {template-content: x, destination-path: /a}\n  - {template-content: y, destination-path: /a}\n",
		"at least 60 seconds":                    "auth: {type: universal-auth}\ntemplates:\n  - {template-content: x, destination-path: /a, config: {polling-interval: 30s}}\n",
		"invalid time unit":                      "auth: {type: universal-auth}\ntemplates:\n  - {template-content: x, destination-path: /a, config: {polling-interval: 5x}}\n",
		"base64-template-content":                "auth: {type: universal-auth}\ntemplates:\n  - {base64-template-content: '!!', destination-path: /a}\n",
		"line 2: did not find expected":          "auth:\n  type: universal-auth\n  config: [" + canary + "\n",
		"line 2":                                 "infisical:\n  exit-after-auth: " + canary + "\n",
		"must not be negative":                   "auth: {type: universal-auth}\ntemplates:\n  - {template-content: x, destination-path: /a, config: {execute: {command: x, timeout: -1}}}\n",
	}
	for want, yml := range cases {
		_, err := Parse([]byte(yml), "/")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want it to say %q", yml, err, want)
		}
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Errorf("error quotes the file: %v", err)
		}
	}
}

func TestParseTimeDurationString(t *testing.T) {
	ok := map[string]time.Duration{"60s": time.Minute, "1000ms": time.Second, "5000ms": 5 * time.Second, "5m": 5 * time.Minute,
		"2h": 2 * time.Hour, "1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour}
	for s, want := range ok {
		if got, err := ParseTimeDurationString(s); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "5", "m", "59s", "999ms", "0m", "-5m", "1.5m", "5 m", "10y", "99999999999999999999w", "2562048h1"} {
		if d, err := ParseTimeDurationString(s); err == nil {
			t.Errorf("%q accepted as %v", s, d)
		}
	}
}

func TestWriteTokenMode0600(t *testing.T) {
	dir := t.TempDir()
	s := &Settings{Sinks: []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}}
	write(t, s.Sinks[1], "old-token")
	if err := os.Chmod(s.Sinks[1], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSinks([]byte("tok-123")); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Sinks {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if st.Mode().Perm() != 0o600 || string(b) != "tok-123" {
			t.Errorf("%s: mode %v content %q", p, st.Mode().Perm(), b)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left-over temp files: %v", entries)
	}
	err := WriteToken(filepath.Join(dir, "missing-dir", "t"), []byte("CANARY-token"))
	if err == nil || strings.Contains(err.Error(), "CANARY-token") {
		t.Errorf("write into a missing directory: %v", err)
	}
}

// agentFixture is an infisicaltest server holding what the agent config's
// templates read, and an agent config with one template of each source kind.
type agentFixture struct {
	srv     *infisicaltest.Server
	project string
	src     *serverSource
	dir     string
	set     *templates.Set
	sets    *Settings
}

func newAgentFixture(t *testing.T, appTemplate string) *agentFixture {
	t.Helper()
	f := &agentFixture{srv: infisicaltest.New(), dir: t.TempDir()}
	t.Cleanup(f.srv.Close)
	p := f.srv.AddProject("webshop", "Webshop", "dev", "prod")
	f.project = p
	f.srv.AddIdentity("agent-id", "agent-secret")
	f.srv.Grant("agent-id", p, infisicaltest.PermRead)
	f.srv.SetSecret(p, "dev", "/", "DB_HOST", "db.internal")
	f.srv.SetSecret(p, "dev", "/", "DB_USER", "shop")
	f.srv.SetSecret(p, "dev", "/", "DB_URL", "postgres://${DB_USER}@${DB_HOST}/shop")
	f.srv.SetSecret(p, "dev", "/backend", "REDIS_URL", "redis://cache:6379")
	f.srv.SetSecret(p, "dev", "/backend", "PORT", "8080")
	f.srv.SetSecret(p, "prod", "/", "FEATURE_FLAG", "on")
	f.srv.SetSecret(p, "prod", "/", "DB_HOST", "prod-db")
	f.srv.SetSecret(p, "prod", "/other", "UNRELATED", "x") // prod's root is imported, /other is not
	f.srv.AddImport(p, "dev", "/", "prod", "/")
	c, err := infisical.New(infisical.Config{SiteURL: f.srv.URL(), ClientID: "agent-id", ClientSecret: "agent-secret"})
	if err != nil {
		t.Fatal(err)
	}
	f.src = &serverSource{c: c, slugs: map[string]string{"webshop": p}}

	write(t, filepath.Join(f.dir, "templates/app.tmpl"), strings.ReplaceAll(appTemplate, "PROJECT", p))
	inline := "{{- with getSecretByName \"PROJECT\" \"dev\" \"/backend\" \"PORT\" }}port={{ .Value }}{{ end }}\n" +
		"{{ range listSecrets \"PROJECT\" \"dev\" \"/\" `{\"expandSecretReferences\": false}` }}{{ if eq .Key \"DB_URL\" }}raw={{ .Value }}{{ end }}{{ end }}\n"
	b64 := `{{ len (listSecretsByProjectSlug "webshop" "dev" "/" "{\"recursive\": true}") }} secrets, next port {{ add 8080 1 }}`
	yml := fmt.Sprintf(`infisical:
  address: %s
auth:
  type: universal-auth
  config:
    client-id: ./client-id
    client-secret: ./client-secret
sinks:
  - type: file
    config:
      path: ./access-token
templates:
  - source-path: templates/app.tmpl
    destination-path: /etc/app/app.env
    config:
      polling-interval: 5m
      execute:
        command: echo app >> %s
        timeout: 10
  - template-content: |
%s
    destination-path: /etc/app/inline.conf
    config:
      polling-interval: 2m
      execute:
        command: echo inline >> %s
  - base64-template-content: %s
    destination-path: /etc/app/count.txt
`, f.srv.URL(), filepath.Join(f.dir, "ran"), indent(strings.ReplaceAll(inline, "PROJECT", p), "      "), filepath.Join(f.dir, "ran"),
		base64.StdEncoding.EncodeToString([]byte(b64)))
	write(t, filepath.Join(f.dir, "agent-config.yaml"), yml)
	s, err := Load(filepath.Join(f.dir, "agent-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f.sets = s
	specs, err := templates.FromConfig(s.Templates)
	if err != nil {
		t.Fatal(err)
	}
	f.set, err = templates.New(specs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return by + strings.Join(lines, "\n"+by)
}

const appTemplate = `{{- range listSecrets "PROJECT" "dev" "/" }}
{{ .Key }}={{ .Value }}
{{- end }}
{{- range listSecrets "PROJECT" "dev" "/backend" }}
{{ .Key }}={{ .Value }}
{{- end }}
`

// Expected outputs, written by hand from the agent's semantics: listSecrets
// lists the folder's own secrets with references expanded, then imported
// ones whose key is new (prod's DB_HOST is hidden by dev's own); trim
// markers eat the newlines next to them.
const (
	wantApp = "\nDB_HOST=db.internal\nDB_URL=postgres://shop@db.internal/shop\nDB_USER=shop\nFEATURE_FLAG=on\nPORT=8080\nREDIS_URL=redis://cache:6379\n"
	// YAML's "|" keeps the final newline; the raw listing shows the reference.
	wantInline = "port=8080\nraw=postgres://${DB_USER}@${DB_HOST}/shop\n"
	// Recursive from /: three own at /, two in /backend, FEATURE_FLAG imported.
	wantCount = "6 secrets, next port 8081"
)

func TestAgentConfigRendersAsTheAgentWould(t *testing.T) {
	f := newAgentFixture(t, appTemplate)
	if f.sets.Root != "/etc/app" || f.sets.RefreshInterval != 2*time.Minute {
		t.Errorf("root %q interval %v", f.sets.Root, f.sets.RefreshInterval)
	}
	if got := f.set.Paths(); !reflect.DeepEqual(got, []string{"app.env", "inline.conf", "count.txt"}) {
		t.Errorf("paths %v", got)
	}
	for _, r := range f.set.Render(f.src, nil) {
		if r.Err != nil || !r.Changed || r.RunHook {
			t.Errorf("first render %+v", r)
		}
	}
	for i, want := range []string{wantApp, wantInline, wantCount} {
		b, err := f.set.Content(i)
		if err != nil || string(b) != want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", f.set.Paths()[i], b, err, want)
		}
	}
	// The scopes the templates need, from their text and their renders:
	// the daemon adds to its sync those it does not sync already.
	want := []templates.Scope{
		{Project: f.project, Env: "dev", Path: "/"},
		{Project: f.project, Env: "dev", Path: "/", Recursive: true},
		{Project: f.project, Env: "dev", Path: "/backend"},
		{Project: "webshop", BySlug: true, Env: "dev", Path: "/", Recursive: true},
	}
	if sc := f.set.Scopes(); !reflect.DeepEqual(sc, want) {
		t.Errorf("scopes\n%+v\nwant\n%+v", sc, want)
	}
}

// After an out-of-band change on the server, exactly the templates whose
// bytes changed report it, and only their hooks run, through a real
// hooks.Runner and sh -c as the agent's execute.command.
func TestAgentChangeRerendersAndRunsHookOnce(t *testing.T) {
	f := newAgentFixture(t, appTemplate)
	f.set.Render(f.src, nil)
	var logs bytes.Buffer
	runner := hooks.New(f.set.Hooks(), slog.New(slog.NewTextHandler(&logs, nil)))
	defer runner.Close()
	ran := filepath.Join(f.dir, "ran")

	// Out of band: DB_USER changes; the server's expansion changes DB_URL.
	f.srv.SetSecret(f.project, "dev", "/", "DB_USER", "admin")
	if v, _, _ := f.srv.Secret(f.project, "dev", "/", "DB_USER"); v != "admin" {
		t.Fatalf("server holds %q", v)
	}
	ch := tree.Changes{Updated: []vault.Addr{
		{Project: f.project, Env: "dev", Path: "/", Key: "DB_USER"},
		{Project: f.project, Env: "dev", Path: "/", Key: "DB_URL"},
	}}
	affected := f.set.Affected(ch)
	if !reflect.DeepEqual(affected, []int{0, 1, 2}) {
		t.Errorf("affected %v: every template reads dev's root", affected)
	}
	var hookPaths []string
	for _, r := range f.set.Render(f.src, affected) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Changed != (r.Path == "app.env") || r.RunHook != (r.Path == "app.env") {
			t.Errorf("%s: %+v", r.Path, r)
		}
		if r.RunHook {
			hookPaths = append(hookPaths, r.Path)
		}
	}
	runner.Changed(hookPaths)
	b, _ := f.set.Content(0)
	wantNew := strings.ReplaceAll(strings.ReplaceAll(wantApp, "DB_USER=shop", "DB_USER=admin"), "shop@", "admin@")
	if string(b) != wantNew {
		t.Errorf("after change:\n got %q\nwant %q", b, wantNew)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(ran); return string(b) == "app\n" })

	// A change to a secret no template reads, and an unchanged refresh:
	// nothing renders, nothing runs.
	f.srv.SetSecret(f.project, "prod", "/other", "UNRELATED", "y")
	if a := f.set.Affected(tree.Changes{Updated: []vault.Addr{{Project: f.project, Env: "prod", Path: "/other", Key: "UNRELATED"}}}); len(a) != 0 {
		t.Errorf("unrelated change affects %v", a)
	}
	if a := f.set.Affected(tree.Changes{}); len(a) != 0 {
		t.Errorf("empty change affects %v", a)
	}
	for _, r := range f.set.Render(f.src, nil) {
		if r.Changed || r.RunHook || r.Err != nil {
			t.Errorf("unchanged refresh: %+v", r)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the runner's 1s debounce
	if b, _ := os.ReadFile(ran); string(b) != "app\n" {
		t.Errorf("hooks ran %q, want exactly one app", b)
	}
	runner.Close()
	// The hook runner's log names the hook, never a value.
	if !strings.Contains(logs.String(), "on_change hook ran") {
		t.Errorf("no hook log line:\n%s", logs.String())
	}
	for _, v := range []string{"db.internal", "postgres://", "redis://cache"} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("log holds value %q:\n%s", v, logs.String())
		}
	}
}

func TestAgentTemplateBrokenAtParseAndExecute(t *testing.T) {
	f := newAgentFixture(t, appTemplate)
	// At parse: the source file and line.
	write(t, filepath.Join(f.dir, "templates/app.tmpl"), "fine\n{{ range listSecrets \"p\" \"dev\" \"/\" }}\n{{ .Key }\n{{ end }}\n")
	specs, err := templates.FromConfig(f.sets.Templates)
	if err != nil {
		t.Fatal(err)
	}
	_, err = templates.New(specs)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(f.dir, "templates/app.tmpl")+":3") {
		t.Errorf("parse error: %v", err)
	}

	// At execute: a template that needs a secret which then disappears.
	g := newAgentFixture(t, `{{ (getSecretByName "PROJECT" "dev" "/backend" "PORT").Value }}`)
	g.set.Render(g.src, nil)
	if b, _ := g.set.Content(0); string(b) != "8080" {
		t.Fatalf("first render %q", b)
	}
	g.srv.DeleteSecret(g.project, "dev", "/backend", "PORT")
	a := g.set.Affected(tree.Changes{Removed: []vault.Addr{{Project: g.project, Env: "dev", Path: "/backend", Key: "PORT"}}})
	rs := g.set.Render(g.src, a)
	if len(rs) != 3 || !errors.Is(rs[0].Err, templates.ErrNotFound) || rs[0].RunHook || rs[0].Changed {
		t.Fatalf("render after removal: %+v", rs)
	}
	if b, _ := g.set.Content(0); string(b) != "8080" {
		t.Errorf("last good content lost: %q", b)
	}
	if st := g.set.Status()[0]; !strings.Contains(st.Error, "PORT") || !strings.Contains(st.Error, "app.tmpl:1") {
		t.Errorf("status error: %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
