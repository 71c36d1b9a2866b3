package access

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRoot: these tests start processes as other users and move them
// between cgroups. CI runs as root, so there they never skip.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") == "1" {
			t.Fatal("this test runs real processes as other users: it needs root")
		}
		t.Skip("needs root to run processes as other users")
	}
}

// binCopies copies /bin/sleep into dir under each name; extra[name] bytes
// are appended (an ELF file runs the same with trailing bytes), so that
// copies differ in hash. Returns absolute paths by name.
func binCopies(t testing.TB, extra map[string]string, names ...string) map[string]string {
	t.Helper()
	return progCopies(t, "sleep", extra, names...)
}

// progCopies is binCopies of program prog.
func progCopies(t testing.TB, prog string, extra map[string]string, names ...string) map[string]string {
	t.Helper()
	src, err := exec.LookPath(prog)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Other users must reach the copies: open the temp dirs up.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(append([]byte(nil), b...), extra[n]...), 0o755); err != nil {
			t.Fatal(err)
		}
		out[n] = p
	}
	return out
}

// proc is a real process started through setpriv as another user.
type proc struct {
	cmd *exec.Cmd
	c   Caller
}

// startAs runs exe (a sleep copy) as uid:gid with the supplementary
// groups given, through setpriv, and waits until the exec is done (its
// /proc/PID/exe is exe), so that the caller is what the test claims.
func startAs(t testing.TB, uid, gid uint32, groups []uint32, exe string) *proc {
	t.Helper()
	args := []string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid)}
	if len(groups) == 0 {
		args = append(args, "--clear-groups")
	} else {
		var gs []string
		for _, g := range groups {
			gs = append(gs, fmt.Sprint(g))
		}
		args = append(args, "--groups="+strings.Join(gs, ","))
	}
	args = append(args, "--", exe, "300")
	cmd := exec.Command("setpriv", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, c: Caller{PID: uint32(cmd.Process.Pid), UID: uid, GID: gid}}
	t.Cleanup(p.stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		if got == exe {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never became %s (exe %q)", cmd.Process.Pid, exe, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop kills and reaps the process; safe to call twice.
func (p *proc) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// testCgroup makes a cgroup v2 group for the test and returns its path on
// disk and the path a member's /proc/PID/cgroup will show.
func testCgroup(t testing.TB) (dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if fs := strings.Fields(sc.Text()); len(fs) > 2 && fs[2] == "cgroup2" {
			root = fs[1]
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 filesystem mounted")
	}
	dir = filepath.Join(root, fmt.Sprintf("infisicalfs-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			// A container with a read-only cgroupfs: nothing to move
			// processes into here.
			t.Skipf("cannot make a cgroup under %s: %v", root, err)
		}
		t.Fatalf("make a test cgroup: %v", err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100; i++ {
			if err := syscall.Rmdir(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(10 * time.Millisecond) // killed members leave asynchronously
		}
	})
	return dir
}

func joinCgroup(t testing.TB, dir string, pid uint32) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0); err != nil {
		t.Fatalf("move %d into %s: %v", pid, dir, err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return parseCgroup(b)
}
