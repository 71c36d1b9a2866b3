package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

const tmplCanary = "canary-value-7f3c9a" // a secret value that must never reach a log

// hookLog counts the runs of a hook that appends a line to a file.
type hookLog string

func (h hookLog) argv() []string { return []string{"/bin/sh", "-c", "echo run >> " + string(h)} }

func (h hookLog) runs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(string(h))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// waitRuns waits until the hook ran want times, then a further settle
// period (beyond the hook debounce) to see it ran no more.
func (h hookLog) waitRuns(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.runs(t) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(config.DefaultHookDebounce + 500*time.Millisecond)
	if got := h.runs(t); got != want {
		t.Fatalf("hook ran %d times, want %d", got, want)
	}
}

func startLogged(t *testing.T, cfg config.Config, mnt string) (*Daemon, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	d, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d, logs
}

func mkMount(t *testing.T, tmp string) string {
	t.Helper()
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return mnt
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// syncNow runs one refresh and waits until its invalidations reached the
// kernel.
func syncNow(t *testing.T, d *Daemon) {
	t.Helper()
	if err := d.Syncer().Sync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	d.FS().Flush()
}

// A template over two folders renders the bytes the agent's semantics give
// (written by hand below); an out-of-band change to a secret it reads
// re-renders it, invalidates the kernel's copy and runs its hook once; a
// change to a secret it does not read, and an unchanged refresh, render
// and run nothing; a render that fails after a change keeps the last good
// bytes, says why in .status and the log, and runs no hook.
func TestTemplateRendersAndFollowsChanges(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, ro := range []bool{true, false} {
		t.Run(map[bool]string{true: "read-only", false: "read-write"}[ro], func(t *testing.T) {
			srv, pid := testServer(t)
			srv.SetSecret(pid, "dev", "/app", "API_KEY", "k1")
			srv.SetSecret(pid, "dev", "/app", "PORT", "8080")
			srv.SetSecret(pid, "dev", "/other", "UNUSED", "u1")
			srv.SetSecret(pid, "dev", "/other", "CANARY", tmplCanary)
			tmp := t.TempDir()
			hl := hookLog(filepath.Join(tmp, "hook.log"))
			src := filepath.Join(tmp, "app.env.tmpl")
			text := `{{- with getSecretByName "` + pid + `" "dev" "/" "DATABASE_URL" }}DB={{ .Value }}
{{ end }}
{{- range listSecrets "` + pid + `" "dev" "/app" }}{{ .Key }}={{ .Value }} path={{ .SecretPath }}
{{ end -}}
`
			if err := os.WriteFile(src, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(srv, tmp)
			cfg.ReadOnly = ro
			cfg.Templates = []config.Template{{Path: "rendered/app.env", Source: src, OnChange: hl.argv()}}
			mnt := mkMount(t, tmp)
			d, logs := startLogged(t, cfg, mnt)
			file := filepath.Join(mnt, "rendered", "app.env")

			want := "DB=postgres://dev\nAPI_KEY=k1 path=/app\nPORT=8080 path=/app\n"
			if got := readFile(t, file); got != want {
				t.Fatalf("rendered %q, want %q", got, want)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o222 != 0 || fi.Size() != int64(len(want)) {
				t.Errorf("template file mode %v size %d: want read-only, size %d", fi.Mode(), fi.Size(), len(want))
			}
			names, err := os.ReadDir(mnt)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range names {
				got = append(got, n.Name())
			}
			if strings.Join(got, ",") != ".status,rendered,webshop" {
				t.Errorf("mount root lists %v", got)
			}
			if err := os.WriteFile(file, []byte("x"), 0o600); err == nil {
				t.Error("writing a template file succeeded")
			}
			if err := os.Remove(file); err == nil {
				t.Error("removing a template file succeeded")
			}
			if err := os.Mkdir(filepath.Join(mnt, "rendered", "sub"), 0o700); err == nil {
				t.Error("mkdir in a template directory succeeded")
			}
			if err := os.WriteFile(filepath.Join(mnt, "rendered", "new"), []byte("x"), 0o600); err == nil {
				t.Error("creating a file in a template directory succeeded")
			}
			if got := readFile(t, file); got != want {
				t.Fatalf("after refused writes rendered %q", got)
			}

			// A secret it reads changes out of band.
			srv.SetSecret(pid, "dev", "/app", "API_KEY", "k2")
			syncNow(t, d)
			want = "DB=postgres://dev\nAPI_KEY=k2 path=/app\nPORT=8080 path=/app\n"
			if got := readFile(t, file); got != want {
				t.Fatalf("after the change rendered %q, want %q", got, want)
			}
			hl.waitRuns(t, 1)

			// One it does not read; then nothing at all.
			srv.SetSecret(pid, "dev", "/other", "UNUSED", "u2")
			syncNow(t, d)
			syncNow(t, d)
			hl.waitRuns(t, 1)
			if got := readFile(t, file); got != want {
				t.Fatalf("after unrelated changes rendered %q, want %q", got, want)
			}

			// The secret getSecretByName needs goes: the render fails.
			srv.DeleteSecret(pid, "dev", "/", "DATABASE_URL")
			syncNow(t, d)
			if got := readFile(t, file); got != want {
				t.Errorf("after a failed render the file shows %q, want the last good %q", got, want)
			}
			var st StatusDoc
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(mnt, ".status"))), &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Templates) != 1 || st.Templates[0].Path != "rendered/app.env" || !strings.Contains(st.Templates[0].Error, "DATABASE_URL") {
				t.Errorf(".status templates: %+v", st.Templates)
			}
			if !strings.Contains(logs.String(), "template failed to render") || !strings.Contains(logs.String(), "rendered/app.env") {
				t.Errorf("log does not name the failed template:\n%s", logs)
			}
			hl.waitRuns(t, 1)

			// It comes back: the render recovers and the hook runs again.
			srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://back")
			syncNow(t, d)
			want = "DB=postgres://back\nAPI_KEY=k2 path=/app\nPORT=8080 path=/app\n"
			if got := readFile(t, file); got != want {
				t.Errorf("after recovery rendered %q, want %q", got, want)
			}
			hl.waitRuns(t, 2)
			if strings.Contains(logs.String(), tmplCanary) || strings.Contains(logs.String(), "postgres://") {
				t.Errorf("a value reached the log:\n%s", logs)
			}
		})
	}
}

// A template that does not parse stops the start with its file and line,
// before Infisical is contacted, and nothing is mounted; one whose path
// collides with a project directory stops it naming both.
func TestBrokenTemplateAtStart(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "bad.tmpl")
	if err := os.WriteFile(src, []byte("line one\n{{ range listSecrets \""+pid+"\" \"dev\" \"/\" }}\n{{ .Key }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := mkMount(t, tmp)
	cfg := testConfig(srv, tmp)
	cfg.Templates = []config.Template{{Path: "out/app.env", Source: src}}
	srv.ResetRequests()
	_, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry})
	if err == nil || !strings.Contains(err.Error(), src+":3:") {
		t.Fatalf("start with a broken template: %v, want its file and line %s:3", err, src)
	}
	if n := len(srv.Requests()); n != 0 || mountedAt(t, mnt) {
		t.Errorf("broken template: %d requests, mounted %v", n, mountedAt(t, mnt))
	}

	cfg.Templates = []config.Template{{Path: "webshop/app.env", Content: "x"}}
	_, err = Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry})
	if err == nil || !strings.Contains(err.Error(), "webshop/app.env") || !strings.Contains(err.Error(), "collides with webshop") {
		t.Fatalf("start with a template over a project directory: %v", err)
	}
	if mountedAt(t, mnt) {
		t.Error("left mounted after a collision")
	}
	flat := cfg
	flat.Flat, flat.Projects, flat.Envs = true, []string{"webshop"}, []string{"dev"}
	flat.Templates = []config.Template{{Path: "DATABASE_URL", Content: "x"}}
	_, err = Start(context.Background(), Options{Config: flat, Mountpoint: mnt, Retry: &fastRetry})
	if err == nil || !strings.Contains(err.Error(), "template DATABASE_URL collides with DATABASE_URL") {
		t.Fatalf("flat start with a template over a key: %v", err)
	}
	if mountedAt(t, mnt) {
		t.Error("left mounted after a flat collision")
	}

	// Executing fails at the first render (a missing secret): also a
	// start-up error, naming the template; there is no content to show.
	cfg.Templates = []config.Template{{Path: "out/x", Content: `{{ (getSecretByName "` + pid + `" "dev" "/" "MISSING").Value }}`}}
	_, err = Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry})
	if err == nil || !strings.Contains(err.Error(), "out/x") || !strings.Contains(err.Error(), "MISSING") {
		t.Fatalf("start with a template that cannot render: %v", err)
	}
	if mountedAt(t, mnt) {
		t.Error("left mounted after a failed first render")
	}
}

func newTextLogger(w *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Templates reload with the config file: a changed template re-renders
// (its hook runs once, as the bytes changed), a renamed path appears and
// the old one goes, and a template that no longer parses keeps the
// running ones, saying so in the log.
func TestTemplatesReloadWithConfig(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	tmp := t.TempDir()
	hl := hookLog(filepath.Join(tmp, "hook.log"))
	path := filepath.Join(tmp, "config.toml")
	writeConfig := func(tmplPath, content string) {
		t.Helper()
		toml := `url = "` + srv.URL() + `"
client_id = "` + clientID + `"
refresh_interval = "1h"
state_file = "` + filepath.Join(tmp, "state.json") + `"
read_only = true

[[template]]
path = "` + tmplPath + `"
content = '''` + content + `'''
on_change = ["/bin/sh", "-c", "echo run >> ` + string(hl) + `"]
`
		if err := os.WriteFile(path+".new", []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	get := `{{ (getSecretByName "` + pid + `" "dev" "/" "DATABASE_URL").Value }}`
	writeConfig("out/db", "db="+get)
	_, logs, mnt := startFromFile(t, path, tmp)
	file := filepath.Join(mnt, "out/db")
	if got := readFile(t, file); got != "db=postgres://dev" {
		t.Fatalf("read %q", got)
	}
	writeConfig("out/db", "url="+get)
	waitFor(t, logs, "changed template re-rendered", func() bool { b, _ := os.ReadFile(file); return string(b) == "url=postgres://dev" })
	hl.waitRuns(t, 1)

	writeConfig("out/renamed", "url="+get)
	moved := filepath.Join(mnt, "out/renamed")
	waitFor(t, logs, "renamed template appears", func() bool { b, _ := os.ReadFile(moved); return string(b) == "url=postgres://dev" })
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the old template path still answers: %v", err)
	}
	hl.waitRuns(t, 1) // a new path is a first render, same bytes: no hook

	writeConfig("out/renamed", "{{ broken")
	waitFor(t, logs, "the reload failure is logged", func() bool { return strings.Contains(logs.String(), "templates reload failed") })
	if got := readFile(t, moved); got != "url=postgres://dev" {
		t.Errorf("after a broken reload the template shows %q", got)
	}
}

// A template reading an environment or project outside the configured
// filters adds it to the sync: it renders at start, and a change there
// re-renders it; nothing is fetched for it by the template itself (every
// request is the syncer's). Scopes named in the text are synced from the
// first cycle; computed ones once the first render showed them.
func TestTemplateWidensTheSync(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, computed := range []bool{false, true} {
		t.Run(map[bool]string{false: "literal", true: "computed"}[computed], func(t *testing.T) {
			srv, pid := testServer(t)
			srv.SetSecret(pid, "prod", "/", "DATABASE_URL", "postgres://prod")
			other := srv.AddProject("other", "Other", "qa")
			srv.Grant(clientID, other, infisicaltest.PermRead)
			srv.SetSecret(other, "qa", "/", "TOKEN", "qa-token")
			tmp := t.TempDir()
			cfg := testConfig(srv, tmp)
			cfg.Projects, cfg.Envs = []string{"webshop"}, []string{"dev"}
			cfg.ReadOnly = true
			prod, qa := `"`+pid+`" "prod"`, `"`+other+`" "qa"`
			if computed {
				prod = `(printf "%s" "` + pid + `") (printf "pr%s" "od")`
				qa = `(printf "%s" "` + other + `") (printf "q%s" "a")`
			}
			cfg.Templates = []config.Template{{Path: "all", Content: `{{ (getSecretByName "` + pid + `" "dev" "/" "DATABASE_URL").Value }} ` +
				`{{ (getSecretByName ` + prod + ` "/" "DATABASE_URL").Value }} {{ (getSecretByName ` + qa + ` "/" "TOKEN").Value }}`}}
			mnt := mkMount(t, tmp)
			d, _ := startLogged(t, cfg, mnt)
			file := filepath.Join(mnt, "all")
			if got := readFile(t, file); got != "postgres://dev postgres://prod qa-token" {
				t.Fatalf("rendered %q", got)
			}
			srv.SetSecret(pid, "prod", "/", "DATABASE_URL", "postgres://prod2")
			srv.ResetRequests()
			syncNow(t, d)
			if got := readFile(t, file); got != "postgres://dev postgres://prod2 qa-token" {
				t.Errorf("after a prod change rendered %q", got)
			}
			// Widening after the first render leaves one extra cycle
			// queued (SetFilter triggers one), so count only without it.
			if n := srv.Count("GET", "/api/v4/secrets"); !computed && n != 3 {
				t.Errorf("%d secret listings in one cycle, want 3 (webshop dev and prod, other qa: the syncer's)", n)
			}
			for _, r := range srv.Requests() {
				if strings.HasPrefix(r.Path, "/api/v3/secrets/raw/") || strings.HasPrefix(r.Path, "/api/v4/secrets/") {
					t.Errorf("a single-secret request %s %s: templates must render from the vault", r.Method, r.Path)
				}
			}
		})
	}
}

// A template listing a folder with an import shows the imported secrets
// after the folder's own (the agent's order: own first, then imported keys
// the folder lacks), and an out-of-band change to the imported secret, in
// the environment it comes from, re-renders it: the syncer reports imports
// as addresses of the importing folder.
func TestTemplateFollowsImports(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	srv.SetSecret(pid, "prod", "/shared", "SMTP_HOST", "smtp.example")
	srv.SetSecret(pid, "prod", "/shared", "DATABASE_URL", "postgres://prod-shadowed")
	srv.AddImport(pid, "dev", "/", "prod", "/shared")
	tmp := t.TempDir()
	cfg := testConfig(srv, tmp)
	cfg.Envs = []string{"dev"}
	cfg.Templates = []config.Template{{Path: "env", Content: `{{ range listSecrets "` + pid + `" "dev" "/" }}{{ .Key }}={{ .Value }} path={{ .SecretPath }}
{{ end }}`}}
	mnt := mkMount(t, tmp)
	d, _ := startLogged(t, cfg, mnt)
	file := filepath.Join(mnt, "env")
	want := "DATABASE_URL=postgres://dev path=/\nSMTP_HOST=smtp.example path=\n"
	if got := readFile(t, file); got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	srv.SetSecret(pid, "prod", "/shared", "SMTP_HOST", "smtp2.example")
	syncNow(t, d)
	want = "DATABASE_URL=postgres://dev path=/\nSMTP_HOST=smtp2.example path=\n"
	if got := readFile(t, file); got != want {
		t.Errorf("after the imported secret changed rendered %q, want %q", got, want)
	}
}

// An agent config with Kubernetes auth: the identity id from its file, the
// service-account token from its path; the mount logs in with them and
// renders the template.
func TestAgentConfigKubernetesAuth(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	const identity = "agent-k8s-identity"
	srv.AddKubernetesIdentity(identity, "pod-jwt")
	srv.Grant(identity, pid, infisicaltest.PermRead)
	tmp := t.TempDir()
	for name, text := range map[string]string{"identity-id": identity + "\n", "sa-token": "pod-jwt"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	agent := filepath.Join(tmp, "agent.yaml")
	yml := `infisical:
  address: "` + srv.URL() + `"
auth:
  type: kubernetes
  config:
    identity-id: ./identity-id
    service-account-token: ./sa-token
templates:
  - template-content: '{{ (getSecretByName "` + pid + `" "dev" "/" "DATABASE_URL").Value }}'
    destination-path: /run/app/db
`
	if err := os.WriteFile(agent, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateFile = filepath.Join(tmp, "state.json")
	cfg.AgentConfig = agent
	mnt := mkMount(t, tmp)
	startLogged(t, cfg, mnt)
	if got := readFile(t, filepath.Join(mnt, "db")); got != "postgres://dev" {
		t.Errorf("rendered %q", got)
	}
	if got := srv.KubernetesLoginJWTs(); len(got) != 1 || got[0] != "pod-jwt" {
		t.Errorf("Kubernetes logins %q, want one with the file's JWT", got)
	}
}

// Templates read values as the agent's do: references expanded by default,
// raw with expandSecretReferences false, and a change to a referenced
// secret re-renders the template that shows its dependent.
func TestTemplateExpandsReferences(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := testServer(t)
	srv.SetSecret(pid, "dev", "/", "HOST", "db1.internal")
	srv.SetSecret(pid, "dev", "/", "URL", "postgres://${HOST}/shop")
	tmp := t.TempDir()
	cfg := testConfig(srv, tmp)
	cfg.Envs = []string{"dev"}
	cfg.Templates = []config.Template{{Path: "url", Content: `{{ (getSecretByName "` + pid + `" "dev" "/" "URL").Value }}|` +
		`{{ range listSecrets "` + pid + `" "dev" "/" "{\"expandSecretReferences\": false}" }}{{ if eq .Key "URL" }}{{ .Value }}{{ end }}{{ end }}`}}
	mnt := mkMount(t, tmp)
	d, _ := startLogged(t, cfg, mnt)
	file := filepath.Join(mnt, "url")
	if got, want := readFile(t, file), "postgres://db1.internal/shop|postgres://${HOST}/shop"; got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	srv.SetSecret(pid, "dev", "/", "HOST", "db2.internal")
	syncNow(t, d)
	if got, want := readFile(t, file), "postgres://db2.internal/shop|postgres://${HOST}/shop"; got != want {
		t.Errorf("after the referenced secret changed rendered %q, want %q", got, want)
	}
}

// startFromFile starts a daemon whose settings are the config file at path,
// re-read at every reload, as `infisicalfs mount --config` does.
func startFromFile(t *testing.T, path, tmp string) (*Daemon, *testutil.Buffer, string) {
	t.Helper()
	resolve := func() (config.Config, error) {
		c, _, err := config.Load(path)
		c.ClientSecret = clientSecret
		return c, err
	}
	cfg, err := resolve()
	if err != nil {
		t.Fatal(err)
	}
	mnt := mkMount(t, tmp)
	logs := &testutil.Buffer{}
	d, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry, Resolve: resolve, Logger: newTextLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d, logs, mnt
}

// waitFor polls ok for up to 10 s, failing with the daemon's log.
func waitFor(t *testing.T, logs *testutil.Buffer, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s\n%s", what, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
