package harden

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const hardenChildEnv = "HARDEN_TEST_CHILD"

// dumpable reads the Dumpable: line of /proc/self/status where the kernel has
// one, else asks prctl(PR_GET_DUMPABLE), which reports the same flag.
func dumpable() string {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "Dumpable:"); ok {
				return strings.TrimSpace(rest)
			}
		}
	}
	n, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(n)
}

// TestDisableCoreDumps runs DisableCoreDumps in a re-executed test binary, so
// this process stays dumpable, and reports the flags before and after.
func TestDisableCoreDumps(t *testing.T) {
	if os.Getenv(hardenChildEnv) == "1" {
		// memguard's init already zeroes RLIMIT_CORE; raise it again where
		// allowed (root) so the check below shows our call lowering it.
		raised := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}) == nil
		before := dumpable()
		err := DisableCoreDumps()
		var rl unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_CORE, &rl)
		fmt.Printf("raised=%t\nbefore=%s\nafter=%s\nerr=%v\nrlimit=%d/%d\n", raised, before, dumpable(), err, rl.Cur, rl.Max)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisableCoreDumps$")
	// The race detector otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), hardenChildEnv+"=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"before=1\n", "after=0\n", "err=<nil>\n", "rlimit=0/0\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("child output lacks %q:\n%s", want, s)
		}
	}
	t.Logf("child: %s", strings.ReplaceAll(strings.TrimSpace(s), "\n", " "))
}
