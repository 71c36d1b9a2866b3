package fs_test

import (
	"os"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// `rm -r DIR` and `mv DIR1 DIR2` with the real coreutils: the read-only
// views inside each folder (.env, .json, .yaml) made both fail ("cannot
// remove 'DIR/.env': Permission denied"; mv's copy after EXDEV: "preserving
// permissions ... No data available"). Both must succeed, the secrets must
// move or go in Infisical, and no view may be deleted or overwritten.
func TestRmRAndMvOfFolders(t *testing.T) {
	m := mountForTest(t, func(mc *mountConfig) {
		mc.seed = func(srv *infisicaltest.Server, pid string) {
			srv.SetSecret(pid, "dev", "/gone", "A", "a-value")
			srv.SetSecret(pid, "dev", "/gone/sub", "B", "b-value")
			srv.SetSecret(pid, "dev", "/old", "C", "c-value")
			srv.SetSecret(pid, "dev", "/old", "D", "d-value")
			srv.SetSecret(pid, "dev", "/keep", "E", "e-value")
		}
	})
	dev := m.path("webshop", "dev")
	if out, err := m.sh("cd webshop/dev && rm -r gone"); err != nil {
		t.Fatalf("rm -r: %v\n%s", err, out)
	}
	if _, err := os.Stat(dev + "/gone"); !os.IsNotExist(err) {
		t.Errorf("gone after rm -r: %v", err)
	}
	for _, k := range []struct{ path, key string }{{"/gone", "A"}, {"/gone/sub", "B"}} {
		if _, ok := m.serverValue("dev", k.path, k.key); ok {
			t.Errorf("%s/%s still in Infisical after rm -r", k.path, k.key)
		}
	}
	if out, err := m.sh("cd webshop/dev && mv old new"); err != nil {
		t.Fatalf("mv: %v\n%s", err, out)
	}
	for k, want := range map[string]string{"C": "c-value", "D": "d-value"} {
		if v, ok := m.serverValue("dev", "/new", k); !ok || v != want {
			t.Errorf("/new/%s in Infisical: %q %v", k, v, ok)
		}
		if _, ok := m.serverValue("dev", "/old", k); ok {
			t.Errorf("/old/%s still in Infisical after mv", k)
		}
	}
	m.refresh()
	env := m.readFile("webshop", "dev", "new", ".env")
	if !strings.Contains(env, "C=") || !strings.Contains(env, "D=") {
		t.Errorf("new/.env renders the moved secrets, not the copied bytes: %q", env)
	}
	// The views themselves stay: unlinking one deletes nothing, writing one is refused.
	if err := os.Remove(dev + "/keep/.env"); err != nil {
		t.Errorf("rm keep/.env: %v, want success that changes nothing", err)
	}
	if b, err := os.ReadFile(dev + "/keep/.env"); err != nil || !strings.Contains(string(b), "E=") {
		t.Errorf("keep/.env after rm: %q %v", b, err)
	}
	if v, ok := m.serverValue("dev", "/keep", "E"); !ok || v != "e-value" {
		t.Errorf("/keep/E after rm keep/.env: %q %v", v, ok)
	}
	if err := os.WriteFile(dev+"/keep/.env", []byte("X=1\n"), 0o600); err == nil {
		t.Error("writing keep/.env succeeded, want it refused")
	}
	if _, ok := m.serverValue("dev", "/keep", "X"); ok {
		t.Error("a write to .env created a secret")
	}
}
