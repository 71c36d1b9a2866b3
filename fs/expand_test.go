package fs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// canaryKey is planted as a referenced value: it must never reach a log.
const canaryKey = "canary-3b9e71c4-key"

func seedRefs(srv *infisicaltest.Server, pid string) {
	srv.SetSecret(pid, "dev", "/", "API_KEY", canaryKey)
	srv.SetSecret(pid, "dev", "/", "GREETING", "hello ${API_KEY}")
	srv.SetSecret(pid, "dev", "/", "PLAIN", "no refs here")
	srv.SetSecret(pid, "dev", "/app", "URL", "https://${dev.API_KEY}@${prod.HOST}/x")
	srv.SetSecret(pid, "prod", "/", "HOST", "db.prod")
}

// apiClient is a client of the test identity, to ask the server what it
// answers itself.
func apiClient(t testing.TB, srv *infisicaltest.Server) *infisical.Client {
	t.Helper()
	c, err := infisical.New(infisical.Config{SiteURL: srv.URL(), ClientID: clientID, ClientSecret: clientSecret, TokenPolicy: infisical.TokenRenew})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// serverExpanded is what the server answers with expandSecretReferences=true
// for one environment: "path/KEY" → value.
func serverExpanded(t testing.TB, c *infisical.Client, pid, env string) map[string]string {
	t.Helper()
	res, err := c.ListSecrets(context.Background(), infisical.ListOptions{ProjectID: pid, Environment: env, Path: "/", Recursive: true, ExpandReferences: true, IncludeImports: true})
	if err != nil {
		t.Fatalf("list %s expanded: %v", env, err)
	}
	out := map[string]string{}
	for _, s := range res.Secrets {
		out[strings.TrimPrefix(strings.TrimSuffix(s.Path, "/")+"/"+s.Key, "/")] = string(s.Value)
	}
	for _, imp := range res.Imports {
		for _, s := range imp.Secrets {
			if _, own := out[s.Key]; !own {
				out[s.Key] = string(s.Value) // later imports win, as the mount does
			}
		}
	}
	return out
}

func TestExpandedReferences(t *testing.T) {
	m := mountForTest(t, withSeed(seedRefs))
	dev := m.path("webshop/dev")
	if got := m.readFile("webshop/dev/GREETING"); got != "hello "+canaryKey {
		t.Errorf("GREETING = %q, want it expanded", got)
	}
	if got := m.readFile("webshop/dev/app/URL"); got != "https://"+canaryKey+"@db.prod/x" {
		t.Errorf("app/URL = %q, want the cross-environment reference expanded", got)
	}
	if got := m.readFile("webshop/dev/.raw/GREETING"); got != "hello ${API_KEY}" {
		t.Errorf(".raw/GREETING = %q, want the raw value", got)
	}
	if got := m.readFile("webshop/dev/.raw/app/URL"); got != "https://${dev.API_KEY}@${prod.HOST}/x" {
		t.Errorf(".raw/app/URL = %q", got)
	}
	// The same bytes as the server's own expansion.
	want := serverExpanded(t, apiClient(t, m.srv), m.project, "dev")
	for _, k := range []string{"GREETING", "app/URL", "PLAIN", "API_KEY"} {
		if got := m.readFile("webshop/dev/" + k); got != want[k] {
			t.Errorf("%s: mount %q, server %q", k, got, want[k])
		}
	}
	// .env sourced in a shell reproduces the expanded values.
	out := m.mustSh(`cd webshop/dev && set -a && . ./.env && printf '%s|%s' "$GREETING" "$PLAIN"`)
	if out != "hello "+canaryKey+"|no refs here" {
		t.Errorf("sourced .env = %q", out)
	}
	out = m.mustSh(`cd webshop/dev/app && set -a && . ./.env && printf '%s' "$URL"`)
	if out != want["app/URL"] {
		t.Errorf("sourced app/.env = %q, want %q", out, want["app/URL"])
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(m.readFile("webshop/dev/.json")), &js); err != nil || js["GREETING"] != "hello "+canaryKey {
		t.Errorf(".json GREETING = %q (%v)", js["GREETING"], err)
	}
	if y := m.readFile("webshop/dev/.yaml"); !strings.Contains(y, canaryKey) || strings.Contains(y, "${API_KEY}") {
		t.Errorf(".yaml not expanded:\n%s", y)
	}

	// A referencing secret is read-only in the expanded view.
	st, err := os.Stat(dev + "/GREETING")
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Errorf("GREETING mode %v (%v), want no write bits", st.Mode(), err)
	}
	if st, _ := os.Stat(dev + "/PLAIN"); st.Mode().Perm()&0o200 == 0 {
		t.Errorf("PLAIN mode %v, want writable", st.Mode())
	}
	if _, err := os.OpenFile(dev+"/GREETING", os.O_WRONLY, 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("open GREETING for writing: %v, want EACCES", err)
	}
	if !strings.Contains(m.logs.String(), "GREETING references other secrets; edit .raw/GREETING") {
		t.Errorf("no log line naming .raw/GREETING:\n%s", m.logs.String())
	}
	if out, err := m.sh(`sed -i 's/hello/bye/' webshop/dev/GREETING`); err == nil {
		t.Errorf("sed -i on a referencing secret succeeded: %s", out)
	}
	if out, err := m.sh(`vim -es -c 's/hello/bye/' -c 'wq' webshop/dev/GREETING`); err == nil {
		t.Errorf("vim on a referencing secret succeeded: %s", out)
	}
	if v, _ := m.serverValue("dev", "/", "GREETING"); v != "hello ${API_KEY}" {
		t.Fatalf("server GREETING = %q after refused edits, want the reference kept", v)
	}
	if got := m.readFile("webshop/dev/GREETING"); got != "hello "+canaryKey {
		t.Errorf("GREETING = %q after refused edits", got)
	}

	// A change to a referenced secret reaches every dependent, across
	// folders and environments.
	m.srv.SetSecret(m.project, "dev", "/", "API_KEY", "rotated")
	m.srv.SetSecret(m.project, "prod", "/", "HOST", "db2.prod")
	m.refresh()
	if got := m.readFile("webshop/dev/GREETING"); got != "hello rotated" {
		t.Errorf("GREETING after the referenced secret changed = %q", got)
	}
	if got := m.readFile("webshop/dev/app/URL"); got != "https://rotated@db2.prod/x" {
		t.Errorf("app/URL after changes in two environments = %q", got)
	}
	if out := m.mustSh(`cd webshop/dev && set -a && . ./.env && printf '%s' "$GREETING"`); out != "hello rotated" {
		t.Errorf(".env after the change = %q", out)
	}

	// Edits under .raw/ store references as written.
	m.mustSh(`printf 'bye ${API_KEY}' > webshop/dev/.raw/GREETING`)
	if v, _ := m.serverValue("dev", "/", "GREETING"); v != "bye ${API_KEY}" {
		t.Errorf("server GREETING = %q after a write to .raw/", v)
	}
	if got := m.readFile("webshop/dev/GREETING"); got != "bye rotated" {
		t.Errorf("GREETING = %q after a write to .raw/", got)
	}
	m.mustSh(`sed -i 's/bye/ciao/' webshop/dev/.raw/GREETING`)
	m.mustSh(`vim -es -c 's/ciao/hej/' -c 'wq' webshop/dev/.raw/GREETING`)
	if v, _ := m.serverValue("dev", "/", "GREETING"); v != "hej ${API_KEY}" {
		t.Errorf("server GREETING = %q after sed -i and vim in .raw/", v)
	}
	if got := m.readFile("webshop/dev/GREETING"); got != "hej rotated" {
		t.Errorf("GREETING = %q after sed -i and vim in .raw/", got)
	}
	// Adding a reference to a plain secret makes it read-only.
	m.mustSh(`printf '%s' '${API_KEY}!' > webshop/dev/.raw/PLAIN`)
	if st, _ := os.Stat(dev + "/PLAIN"); st.Mode().Perm()&0o222 != 0 {
		t.Errorf("PLAIN mode %v once it references, want read-only", st.Mode())
	}
	if got := m.readFile("webshop/dev/PLAIN"); got != "rotated!" {
		t.Errorf("PLAIN = %q", got)
	}

	// A reference to a missing secret: Infisical's 400, EINVAL, nothing changed.
	out, err = m.sh(`printf '%s' 'x ${NOPE}' | tee webshop/dev/.raw/GREETING`)
	if err == nil || !strings.Contains(out, "Invalid argument") {
		t.Errorf("tee of a reference to a missing secret: %v %q, want EINVAL", err, out)
	}
	if v, _ := m.serverValue("dev", "/", "GREETING"); v != "hej ${API_KEY}" {
		t.Errorf("server GREETING = %q after a refused reference", v)
	}
	if got := m.readFile("webshop/dev/.raw/GREETING"); got != "hej ${API_KEY}" {
		t.Errorf(".raw/GREETING = %q after a refused reference", got)
	}
	if strings.Contains(m.logs.String(), canaryKey) || strings.Contains(m.logs.String(), "rotated") {
		t.Errorf("a value reached the log:\n%s", m.logs.String())
	}
	stf, err := os.ReadFile(m.stateF)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if strings.Contains(string(stf), canaryKey) || strings.Contains(string(stf), "rotated") {
		t.Error("a value reached the state file")
	}
}

// expand_references = false keeps today's raw behaviour.
func TestRawValuesWhenExpansionOff(t *testing.T) {
	m := mountForTest(t, withSeed(seedRefs), func(c *mountConfig) { c.rawValues = true })
	if got := m.readFile("webshop/dev/GREETING"); got != "hello ${API_KEY}" {
		t.Errorf("GREETING = %q, want raw", got)
	}
	if out := m.mustSh(`cd webshop/dev && set -a && . ./.env && printf '%s' "$GREETING"`); out != "hello ${API_KEY}" {
		t.Errorf(".env GREETING = %q, want raw", out)
	}
	m.mustSh(`printf 'hi ${API_KEY}' > webshop/dev/GREETING`)
	if v, _ := m.serverValue("dev", "/", "GREETING"); v != "hi ${API_KEY}" {
		t.Errorf("server GREETING = %q after a write to the raw file", v)
	}
}

// A reference the identity may not read: EACCES with one log line naming
// the reference, as Infisical refuses the expansion (403); .status says why.
func TestRefusedReference(t *testing.T) {
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev", "prod")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite, "dev")
	srv.SetSecret(pid, "prod", "/", "SECRET", canaryKey)
	srv.SetSecret(pid, "dev", "/", "LEAK", "x${prod.SECRET}")
	srv.SetSecret(pid, "dev", "/", "OK", "fine")
	m := mountServer(t, srv, pid, mountConfig{trimNewline: true})

	if _, err := os.ReadFile(m.path("webshop/dev/LEAK")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("read LEAK: %v, want EACCES", err)
	}
	if _, err := apiClient(t, srv).ListSecrets(context.Background(), infisical.ListOptions{ProjectID: pid, Environment: "dev", Path: "/", ExpandReferences: true}); !errors.Is(err, infisical.ErrPermissionDenied) {
		t.Errorf("the server's own expansion: %v, want 403", err)
	}
	logs := m.logs.String()
	if n := strings.Count(logs, "a reference of this secret cannot be expanded"); n != 1 || !strings.Contains(logs, "${prod.SECRET}") {
		t.Errorf("want one log line naming ${prod.SECRET}, got %d:\n%s", n, logs)
	}
	if got := m.readFile("webshop/dev/.raw/LEAK"); got != "x${prod.SECRET}" {
		t.Errorf(".raw/LEAK = %q", got)
	}
	if env := m.readFile("webshop/dev/.env"); strings.Contains(env, "LEAK") || !strings.Contains(env, "OK='fine'") {
		t.Errorf(".env must leave LEAK out and keep OK:\n%s", env)
	}
	if st := m.readFile(".status"); !strings.Contains(st, "webshop/dev/LEAK") || !strings.Contains(st, "cannot be expanded") {
		t.Errorf(".status does not list LEAK:\n%s", st)
	}
	if strings.Contains(m.logs.String(), canaryKey) {
		t.Error("a value reached the log")
	}
}

// secretValueHidden: never the placeholder; mode 0000 and EACCES.
func TestHiddenValue(t *testing.T) {
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "HIDDEN", canaryKey)
		srv.SetSecret(pid, "dev", "/", "SEEN", "visible")
		srv.SetValueHidden(pid, "dev", "/", "HIDDEN", true)
	}))
	st, err := os.Stat(m.path("webshop/dev/HIDDEN"))
	if err != nil || st.Mode().Perm() != 0 {
		t.Fatalf("HIDDEN mode %v (%v), want 0000", st.Mode(), err)
	}
	for _, p := range []string{"webshop/dev/HIDDEN", "webshop/dev/.raw/HIDDEN"} {
		if b, err := os.ReadFile(m.path(p)); !errors.Is(err, syscall.EACCES) {
			t.Errorf("read %s = %q, %v; want EACCES", p, b, err)
		}
	}
	for _, v := range []string{".env", ".json", ".yaml"} {
		if b := m.readFile("webshop/dev/" + v); strings.Contains(b, "hidden-by-infisical") || strings.Contains(b, "HIDDEN") {
			t.Errorf("%s shows the hidden secret:\n%s", v, b)
		}
	}
	if !strings.Contains(m.logs.String(), "secretValueHidden") {
		t.Errorf("no log line says why:\n%s", m.logs.String())
	}
	if s := m.readFile(".status"); !strings.Contains(s, "webshop/dev/HIDDEN") || !strings.Contains(s, "secretValueHidden") {
		t.Errorf(".status does not say why:\n%s", s)
	}
	if got := m.readFile("webshop/dev/SEEN"); got != "visible" {
		t.Errorf("SEEN = %q", got)
	}
}

// A secret named like a view is shadowed there, logged once, and reachable
// through .raw/.
func TestReservedNames(t *testing.T) {
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", ".env", "not-a-view")
		srv.SetSecret(pid, "dev", "/", ".history", "h")
		srv.SetSecret(pid, "dev", "/", "A", "a")
	}))
	if got := m.readFile("webshop/dev/.env"); got != "A='a'\n" {
		t.Errorf(".env = %q, want the rendered view", got)
	}
	if got := m.readFile("webshop/dev/.raw/.env"); got != "not-a-view" {
		t.Errorf(".raw/.env = %q, want the secret", got)
	}
	if got := m.readFile("webshop/dev/.raw/.history"); got != "h" {
		t.Errorf(".raw/.history = %q, want the secret", got)
	}
	if st, err := os.Stat(m.path("webshop/dev/.history")); err != nil || !st.IsDir() {
		t.Errorf(".history: %v %v, want the history directory", st, err)
	}
	m.mustSh("ls -A webshop/dev >/dev/null; ls -A webshop/dev >/dev/null; cat webshop/dev/.env >/dev/null")
	if n := strings.Count(m.logs.String(), "a secret has a reserved name"); n != 2 {
		t.Errorf("%d log lines about reserved names, want one per secret:\n%s", n, m.logs.String())
	}
}

// A push of a referenced secret re-expands its dependents at once, and an
// unchanged refresh stays one 304 per environment.
func TestPushReexpandsDependents(t *testing.T) {
	m := mountForTest(t, withSeed(seedRefs))
	if got := m.readFile("webshop/dev/app/URL"); got != "https://"+canaryKey+"@db.prod/x" {
		t.Fatalf("app/URL = %q", got)
	}
	m.mustSh(`printf 'db3.prod' > webshop/prod/HOST && printf 'pushed' > webshop/dev/API_KEY`)
	m.fsys.Flush()
	if got := m.readFile("webshop/dev/app/URL"); got != "https://pushed@db3.prod/x" {
		t.Errorf("app/URL after pushes in two environments = %q", got)
	}
	if got := m.readFile("webshop/dev/GREETING"); got != "hello pushed" {
		t.Errorf("GREETING after a push of API_KEY = %q", got)
	}
	m.mustSh(`rm webshop/dev/API_KEY`)
	m.fsys.Flush()
	if got := m.readFile("webshop/dev/GREETING"); got != "hello ${API_KEY}" {
		t.Errorf("GREETING after API_KEY was deleted = %q, want the reference literal", got)
	}
	m.refresh() // takes in the pushes' new versions
	m.srv.ResetRequests()
	m.refresh()
	var lists, notModified int
	for _, r := range m.srv.Requests() {
		if r.Method == "GET" && r.Path == "/api/v4/secrets" {
			lists++
			if r.Status == 304 {
				notModified++
			}
		} else if strings.HasPrefix(r.Path, "/api/v4/secrets") {
			t.Errorf("an unchanged refresh asked %s %s", r.Method, r.Path)
		}
	}
	if lists != 2 || notModified != 2 {
		t.Errorf("unchanged refresh: %d listings, %d of them 304; want 2 and 2", lists, notModified)
	}
}

// A reference into an environment the mount does not show cannot be
// answered locally: refused (EACCES), not guessed; the rest still works.
func TestReferenceOutsideFilter(t *testing.T) {
	m := mountForTest(t, withSeed(seedRefs), func(c *mountConfig) { c.envs = []string{"dev"} })
	if _, err := os.ReadFile(m.path("webshop/dev/app/URL")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("read app/URL (references prod, not mounted): %v, want EACCES", err)
	}
	if !strings.Contains(m.logs.String(), "${prod.HOST}") {
		t.Errorf("the log does not name ${prod.HOST}:\n%s", m.logs.String())
	}
	if got := m.readFile("webshop/dev/GREETING"); got != "hello "+canaryKey {
		t.Errorf("GREETING = %q", got)
	}
	if got := m.readFile("webshop/dev/.raw/app/URL"); got != "https://${dev.API_KEY}@${prod.HOST}/x" {
		t.Errorf(".raw/app/URL = %q", got)
	}
}
