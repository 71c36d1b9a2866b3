package daemon

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// The official agent's config, with one template of each source kind
// (source-path, template-content, base64-template-content), mounts with
// each template at its destination made relative to the destinations'
// common directory, rendering what the agent's semantics give (expected
// bytes written by hand from Infisical/cli packages/cmd/agent.go: a
// listSecrets range over the folder's secrets sorted by key, .Key/.Value;
// getSecretByName's .Value; add and minus as ints); the token sink holds
// a working access token, mode 0600; the unsupported keys are named in one
// log line; execute.command runs once per changing re-render. Read from
// the file and from $INFISICAL_AGENT_CONFIG_BASE64 alike.
func TestAgentConfigMounts(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, via := range []string{"file", "base64"} {
		t.Run(via, func(t *testing.T) {
			srv, pid := testServer(t)
			srv.SetSecret(pid, "dev", "/app", "B_KEY", "bee")
			srv.SetSecret(pid, "dev", "/app", "A_KEY", "ay")
			tmp := t.TempDir()
			write := func(name, text string) string {
				p := filepath.Join(tmp, name)
				if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			idFile := write("client-id", clientID+"\n")
			secretFile := write("client-secret", clientSecret)
			tmplFile := write("app.tmpl", `{{ range listSecrets "`+pid+`" "dev" "/app" }}{{ .Key }}={{ .Value }}
{{ end }}`)
			hl := hookLog(filepath.Join(tmp, "hook.log"))
			sink := filepath.Join(tmp, "sink", "token")
			if err := os.Mkdir(filepath.Dir(sink), 0o700); err != nil {
				t.Fatal(err)
			}
			inline := `{{ with getSecretByName "` + pid + `" "dev" "/" "DATABASE_URL" }}url: {{ .Value }}{{ end }}`
			b64 := base64.StdEncoding.EncodeToString([]byte(`{{ add 40 2 }} {{ minus 5 7 }}`))
			remove := via == "base64"
			yml := `infisical:
  address: "` + srv.URL() + `"
  retry-strategy:
    max-retries: 3
auth:
  type: universal-auth
  config:
    client-id: "` + idFile + `"
    client-secret: "` + secretFile + `"
    remove_client_secret_on_read: ` + map[bool]string{true: "true", false: "false"}[remove] + `
sinks:
  - type: file
    config:
      path: "` + sink + `"
templates:
  - source-path: "` + tmplFile + `"
    destination-path: /run/secrets/app.env
    config:
      polling-interval: 5m
      execute:
        command: "echo run >> ` + string(hl) + `"
        timeout: 10
  - template-content: '` + inline + `'
    destination-path: /run/secrets/db/url.yaml
  - base64-template-content: ` + b64 + `
    destination-path: /run/secrets/numbers
`
			cfg := config.Default()
			cfg.RefreshInterval = config.Duration{Duration: 3600e9}
			cfg.StateFile = filepath.Join(tmp, "state.json")
			if via == "file" {
				cfg.AgentConfig = write("agent.yaml", yml)
			} else {
				cfg.AgentConfigBase64 = base64.StdEncoding.EncodeToString([]byte(yml))
			}
			mnt := mkMount(t, tmp)
			notice := &testutil.Buffer{}
			logs := &testutil.Buffer{}
			d, err := Start(context.Background(), Options{Config: cfg, Mountpoint: mnt, Retry: &fastRetry, Notice: notice, Logger: newTextLogger(logs)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Stop(context.Background()) })

			for path, want := range map[string]string{
				"app.env":     "A_KEY=ay\nB_KEY=bee\n",
				"db/url.yaml": "url: postgres://dev",
				"numbers":     "42 -2",
			} {
				if got := readFile(t, filepath.Join(mnt, path)); got != want {
					t.Errorf("%s: %q, want %q", path, got, want)
				}
			}
			if !strings.Contains(notice.String(), "/run/secrets") {
				t.Errorf("notice does not say where the templates belong: %q", notice)
			}
			if n := strings.Count(logs.String(), "not supported by infisicalfs"); n != 1 || !strings.Contains(logs.String(), "retry-strategy") {
				t.Errorf("want one line naming retry-strategy as unsupported, got %d:\n%s", n, logs)
			}
			fi, err := os.Stat(sink)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("sink mode %v, want 0600", fi.Mode().Perm())
			}
			tok := readFile(t, sink)
			c, err := infisical.New(infisical.Config{SiteURL: srv.URL(), AuthMethod: infisical.AuthToken, Token: tok, Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			if ps, err := c.ListProjects(context.Background()); err != nil || len(ps) != 1 {
				t.Errorf("the sink's token does not work: %d projects, %v", len(ps), err)
			}
			if _, err := os.Stat(secretFile); remove != os.IsNotExist(err) {
				t.Errorf("remove_client_secret_on_read %v: secret file stat %v", remove, err)
			}

			srv.SetSecret(pid, "dev", "/app", "A_KEY", "ay2")
			syncNow(t, d)
			// Every cycle logs in afresh (token_policy per-cycle): the sink
			// follows, and the token it held before is revoked.
			if next := readFile(t, sink); next == tok {
				t.Error("the sink still holds the previous cycle's token")
			} else if _, err := c.ListProjects(context.Background()); err == nil {
				t.Error("the previous token still works after the cycle replaced it")
			}
			if got := readFile(t, filepath.Join(mnt, "app.env")); got != "A_KEY=ay2\nB_KEY=bee\n" {
				t.Errorf("after the change: %q", got)
			}
			hl.waitRuns(t, 1)
			if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), clientSecret) || strings.Contains(logs.String(), "postgres://") {
				t.Errorf("a token, the client secret or a value reached the log:\n%s", logs)
			}
		})
	}
}
