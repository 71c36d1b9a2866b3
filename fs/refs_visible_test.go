package fs_test

import (
	"os"
	"strings"
	"testing"
)

// `echo '${NOPE_MISSING}' > REF1`: Infisical refuses the reference when the
// value is pushed at close, and the shell ignores close's error (its
// builtins exit 0). What stays visible, as docs/behaviour.md says: close
// fails for every other writer (cat, tee, cp), the name is gone from the
// listing (no phantom file) and the log's warning names the reference.
func TestUnresolvableReferenceIsVisible(t *testing.T) {
	m := mountForTest(t)
	if out, err := m.sh(`cd webshop/dev && echo '${NOPE_MISSING}' | cat > REF1`); err == nil {
		t.Errorf("cat > REF1 exited 0 though the push was refused: %s", out)
	}
	m.mustSh(`cd webshop/dev && echo '${NOPE_MISSING}' > REF2`) // the builtin: exit 0, as documented
	for _, k := range []string{"REF1", "REF2"} {
		if _, ok := m.serverValue("dev", "/", k); ok {
			t.Errorf("%s reached Infisical", k)
		}
		if _, err := os.Stat(m.path("webshop/dev", k)); !os.IsNotExist(err) {
			t.Errorf("%s still listed after the refused push: %v", k, err)
		}
	}
	var warned int
	for _, line := range strings.Split(m.logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "NOPE_MISSING") {
			warned++
		}
	}
	if warned < 2 {
		t.Errorf("want a warning naming NOPE_MISSING for each file, got %d:\n%s", warned, m.logs.String())
	}
}
