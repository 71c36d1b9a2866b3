package daemon

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// catAs runs cat on file as uid:gid (no supplementary groups).
func catAs(uid, gid, file string) (string, bool) {
	cmd := exec.Command("setpriv", "--reuid="+uid, "--regid="+gid, "--clear-groups", "--", "cat", file)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return errb.String(), false
	}
	return out.String(), true
}

// [[access]] rules reload with the config file, through the watcher, and
// the running mount's answer to another user changes at once, without a
// remount; rules a read-only mount cannot apply live (an executable rule
// on a mount whose opens the kernel answers) keep the running ones and say
// that a remount is needed.
func TestAccessRulesReloadWithConfig(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("runs cat as another user: needs root")
	}
	srv, _ := testServer(t)
	tmp := t.TempDir()
	for d := tmp; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	path := filepath.Join(tmp, "config.toml")
	writeConfig := func(rule string) {
		t.Helper()
		toml := `url = "` + srv.URL() + `"
client_id = "` + clientID + `"
refresh_interval = "1h"
state_file = "` + filepath.Join(tmp, "state.json") + `"
read_only = true
allow_other = true

[[access]]
path = "webshop/dev/**"
` + rule + `
allow = "read"
`
		if err := os.WriteFile(path+".new", []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("uids = [1001]")
	_, logs, mnt := startFromFile(t, path, tmp)
	file := filepath.Join(mnt, "webshop/dev/DATABASE_URL")
	if got, ok := catAs("1001", "1001", file); !ok || got != "postgres://dev" {
		t.Fatalf("uid 1001 under its rule: %q", got)
	}
	if got, ok := catAs("1002", "1002", file); ok {
		t.Fatalf("uid 1002 read %q before the reload", got)
	}
	writeConfig("uids = [1002]")
	// The refused user first: the kernel would admit it on its cached
	// attributes for an hour unless the reload invalidated them.
	waitFor(t, logs, "uid 1001 refused after the reload", func() bool { _, ok := catAs("1001", "1001", file); return !ok })
	if got, ok := catAs("1002", "1002", file); !ok || got != "postgres://dev" {
		t.Errorf("uid 1002 after the reload: %q", got)
	}
	writeConfig(`executables = ["/usr/bin/cat"]`)
	waitFor(t, logs, "the remount is logged", func() bool { return strings.Contains(logs.String(), "remount to apply them") })
	if got, ok := catAs("1002", "1002", file); !ok || got != "postgres://dev" {
		t.Errorf("after a refused reload the running rule no longer applies: %q", got)
	}
}
