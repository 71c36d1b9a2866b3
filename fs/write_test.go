package fs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

func seedWrite(srv *infisicaltest.Server, pid string) {
	srv.SetSecret(pid, "dev", "/", "KEY", "old")
	srv.SetSecret(pid, "dev", "/", "TEXT", "alpha beta")
	srv.SetSecret(pid, "dev", "/app", "PORT", "8080")
	srv.SetSecret(pid, "prod", "/", "KEY", "prod-old")
}

// both asserts the two views agree: the file through the mount and the
// secret on the server.
func (m *testMount) both(env, path, key, want string) {
	m.t.Helper()
	got, ok := m.serverValue(env, path, key)
	if !ok || got != want {
		m.t.Errorf("server %s%s/%s = %q (exists %v), want %q", env, path, key, got, ok, want)
	}
	file := filepath.Join("webshop", env, strings.TrimPrefix(path, "/"), key)
	if b, err := os.ReadFile(m.path(file)); err != nil || string(b) != want {
		m.t.Errorf("file %s = %q (%v), want %q", file, b, err, want)
	}
}

func (m *testMount) goneBoth(env, path, key string) {
	m.t.Helper()
	if _, ok := m.serverValue(env, path, key); ok {
		m.t.Errorf("server still has %s%s/%s", env, path, key)
	}
	file := filepath.Join("webshop", env, strings.TrimPrefix(path, "/"), key)
	if _, err := os.Stat(m.path(file)); !os.IsNotExist(err) {
		m.t.Errorf("file %s still there: %v", file, err)
	}
}

func TestShellWrites(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	d := "cd webshop/dev && "
	m.mustSh(d + "echo new-value > KEY")
	m.both("dev", "/", "KEY", "new-value")

	m.mustSh(d + "printf 'no-newline' > KEY")
	m.both("dev", "/", "KEY", "no-newline")

	m.mustSh(d + "echo -more >> KEY")
	m.both("dev", "/", "KEY", "no-newline-more")

	src := t.TempDir() + "/src"
	os.WriteFile(src, []byte("from-cp\n"), 0o600)
	m.mustSh(d + "cp " + src + " CP_KEY")
	m.both("dev", "/", "CP_KEY", "from-cp")

	m.mustSh(d + "echo teed | tee TEE_KEY >/dev/null")
	m.both("dev", "/", "TEE_KEY", "teed")

	m.mustSh(d + "printf dd-bytes | dd of=DD_KEY status=none")
	m.both("dev", "/", "DD_KEY", "dd-bytes")

	// A file created and never written is pushed at release, which the
	// kernel sends just after close returns.
	m.mustSh(d + "touch EMPTY_KEY")
	m.eventually(func() bool { _, ok := m.serverValue("dev", "/", "EMPTY_KEY"); return ok })
	m.both("dev", "/", "EMPTY_KEY", "")

	m.mustSh(d + "rm CP_KEY")
	m.goneBoth("dev", "/", "CP_KEY")
}

func TestUpsertRequestCounts(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	m.srv.ResetRequests()
	m.mustSh("printf v1 > webshop/dev/KEY")
	if n := m.srv.Count("PATCH", "/api/v4/secrets/"); n != 1 || m.srv.Count("POST", "/api/v4/secrets/") != 0 {
		t.Errorf("update of a known secret: %d PATCH, %d POST; want 1 PATCH", n, m.srv.Count("POST", "/api/v4/secrets/"))
	}
	m.srv.ResetRequests()
	m.mustSh("printf v2 > webshop/dev/BRAND_NEW")
	if n := m.srv.Count("POST", "/api/v4/secrets/"); n != 1 || m.srv.Count("PATCH", "/api/v4/secrets/") != 0 {
		t.Errorf("create of a new secret: %d POST, %d PATCH; want 1 POST", n, m.srv.Count("PATCH", "/api/v4/secrets/"))
	}
	m.both("dev", "/", "BRAND_NEW", "v2")
}

func TestTrimNewlineOff(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite), func(c *mountConfig) { c.trimNewline = false })
	m.mustSh("echo kept > webshop/dev/KEY")
	m.both("dev", "/", "KEY", "kept\n")
}

func TestSedInPlace(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	m.mustSh("sed -i 's/alpha/gamma/' webshop/dev/TEXT")
	m.both("dev", "/", "TEXT", "gamma beta")
	if out := m.mustSh("ls -A webshop/dev"); strings.Contains(out, "sed") {
		t.Errorf("sed's scratch file left behind: %q", out)
	}
	if strings.Contains(m.logs.String(), "level=WARN") {
		t.Logf("warnings during sed -i:\n%s", m.logs.String())
	}
}

func TestVim(t *testing.T) {
	if _, err := exec.LookPath("vim"); err != nil {
		if os.Getenv("REQUIRE_FUSE") == "1" {
			t.Fatal("vim not installed")
		}
		t.Skip("vim not installed")
	}
	for _, bc := range []string{"auto", "yes"} {
		t.Run("backupcopy="+bc, func(t *testing.T) {
			m := mountForTest(t, withSeed(seedWrite))
			script := fmt.Sprintf("vim -u NONE -i NONE -N -es -c 'set backupcopy=%s backupskip= nobackup writebackup' -c '%%s/alpha/delta/' -c 'wq' webshop/dev/TEXT", bc)
			m.mustSh(script)
			m.both("dev", "/", "TEXT", "delta beta")
			if out := m.mustSh("ls -A webshop/dev"); strings.Contains(out, "~") || strings.Contains(out, ".swp") || strings.Contains(out, "4913") {
				t.Errorf("vim's scratch files left behind: %q", out)
			}
			if _, ok := m.serverValue("dev", "/", "TEXT~"); ok {
				t.Error("vim's backup reached the server")
			}
		})
	}
}

func TestFoldersAndMoves(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	d := "cd webshop/dev && "
	m.mustSh(d + "mkdir -p a/b && echo deep > a/b/DEEP")
	m.both("dev", "/a/b", "DEEP", "deep")

	out, err := m.sh(d + "rmdir a")
	if err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("rmdir of a non-empty folder: %v %q, want ENOTEMPTY", err, out)
	}
	m.mustSh(d + "mkdir empty && rmdir empty")
	if _, err := os.Stat(m.path("webshop/dev/empty")); !os.IsNotExist(err) {
		t.Errorf("rmdir left the folder: %v", err)
	}

	// mv in one folder renames, keeping the secret.
	m.mustSh(d + "mv TEXT RENAMED")
	m.both("dev", "/", "RENAMED", "alpha beta")
	m.goneBoth("dev", "/", "TEXT")

	// mv across folders and environments moves.
	m.mustSh(d + "mv RENAMED app/MOVED")
	m.both("dev", "/app", "MOVED", "alpha beta")
	m.goneBoth("dev", "/", "RENAMED")
	m.mustSh("mv webshop/dev/app/MOVED webshop/prod/CROSS")
	m.both("prod", "/", "CROSS", "alpha beta")
	m.goneBoth("dev", "/app", "MOVED")

	// Renaming onto an existing key replaces it.
	m.mustSh(d + "mv app/PORT KEY")
	m.both("dev", "/", "KEY", "8080")
	m.goneBoth("dev", "/app", "PORT")
}

func TestInvalidNamesAndSizes(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	for _, name := range []string{"A:B", " LEADING", "TRAILING "} {
		err := os.WriteFile(m.path("webshop/dev", name), []byte("x"), 0o600)
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("create %q: %v, want EINVAL", name, err)
		}
		if _, ok := m.serverValue("dev", "/", strings.TrimSpace(name)); ok {
			t.Errorf("%q reached the server", name)
		}
	}
	if err := os.Mkdir(m.path("webshop/dev/bad.name"), 0o700); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mkdir bad.name: %v, want EINVAL", err)
	}
	big := make([]byte, 1<<20+1)
	f, err := os.OpenFile(m.path("webshop/dev/KEY"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.Write(big)
	f.Close()
	if !errors.Is(werr, syscall.EFBIG) {
		t.Errorf("oversized write: %v, want EFBIG", werr)
	}
	if v, _ := m.serverValue("dev", "/", "KEY"); v != "old" {
		t.Errorf("server KEY = %q after a refused oversized write, want old", v)
	}
}

func TestReadOnlyMount(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite), func(c *mountConfig) { c.readOnly = true })
	if got := m.readFile("webshop/dev/KEY"); got != "old" {
		t.Fatalf("KEY = %q", got)
	}
	st, _ := os.Stat(m.path("webshop/dev/KEY"))
	if st.Mode().Perm() != 0o400 {
		t.Errorf("mode %v, want 0400", st.Mode())
	}
	for _, op := range []func() error{
		func() error { return os.WriteFile(m.path("webshop/dev/KEY"), []byte("x"), 0o600) },
		func() error { return os.WriteFile(m.path("webshop/dev/NEW"), []byte("x"), 0o600) },
		func() error { return os.Remove(m.path("webshop/dev/KEY")) },
		func() error { return os.Mkdir(m.path("webshop/dev/d"), 0o700) },
	} {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write on a read-only mount: %v, want EROFS", err)
		}
	}
	if v, _ := m.serverValue("dev", "/", "KEY"); v != "old" {
		t.Errorf("server changed: %q", v)
	}
}

// writeErr writes through Go (which reports close errors) and returns the
// error of the whole write.
func writeErr(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestPushFailuresSurface(t *testing.T) {
	cases := []struct {
		name  string
		fault func(*infisicaltest.Server)
		want  syscall.Errno
	}{
		{"500", func(s *infisicaltest.Server) { s.FailPath("PATCH", "/api/v4/secrets/", 500, -1) }, syscall.EIO},
		{"429", func(s *infisicaltest.Server) { s.FailPath("PATCH", "/api/v4/secrets/", 429, -1) }, syscall.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mountForTest(t, withSeed(seedWrite))
			c.fault(m.srv)
			err := writeErr(m.path("webshop/dev/KEY"), "lost?")
			if !errors.Is(err, c.want) {
				t.Errorf("close: %v, want %v", err, c.want)
			}
			out, terr := m.sh("echo via-tee | tee webshop/dev/KEY")
			if terr == nil {
				t.Errorf("tee succeeded on a failing push: %q", out)
			}
			m.srv.ClearFaults()
			m.both("dev", "/", "KEY", "old")
			if !strings.Contains(m.logs.String(), "push failed") {
				t.Error("no log line for the failed push")
			}
		})
	}
}

func TestPermissionDeniedAndOutageFailAtOpen(t *testing.T) {
	var payments string
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		seedWrite(srv, pid)
		payments = srv.AddProject("payments", "Payments", "dev")
		srv.SetSecret(payments, "dev", "/", "KEY", "pay-old")
		srv.Grant(clientID, payments, infisicaltest.PermRead)
	}))
	// The first push learns the environment refuses writes...
	if err := writeErr(m.path("payments/dev/KEY"), "x"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write to a read-only environment: %v, want EACCES", err)
	}
	// ...so the shell's own redirection, which ignores close(), fails at open.
	if out, err := m.sh("echo y > payments/dev/KEY"); err == nil {
		t.Errorf("echo > KEY succeeded on a refused environment: %q", out)
	}
	if v, _, _ := m.srv.Secret(payments, "dev", "/", "KEY"); v != "pay-old" || m.readFile("payments/dev/KEY") != "pay-old" {
		t.Errorf("server %q, file %q after refused writes", v, m.readFile("payments/dev/KEY"))
	}

	m.srv.SetOutage(true)
	if err := writeErr(m.path("webshop/dev/KEY"), "x"); !errors.Is(err, syscall.EIO) {
		t.Errorf("write during an outage: %v, want EIO", err)
	}
	if out, err := m.sh("echo y > webshop/dev/KEY"); err == nil {
		t.Errorf("echo > KEY succeeded during a known outage: %q", out)
	}
	m.srv.SetOutage(false)
	m.refresh()
	m.mustSh("echo back > webshop/dev/KEY")
	m.both("dev", "/", "KEY", "back")
}

func TestApprovalPending(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	m.srv.SetApprovalRequired(m.project, "dev", true)
	if err := writeErr(m.path("webshop/dev/KEY"), "needs-approval"); !errors.Is(err, syscall.EINPROGRESS) {
		t.Errorf("write under an approval policy: %v, want EINPROGRESS", err)
	}
	m.both("dev", "/", "KEY", "old")
	if !strings.Contains(m.logs.String(), "awaits approval") {
		t.Error("no log line saying the change awaits approval")
	}
}

func TestConcurrentWritersOneKey(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	pushed := map[string]bool{"old": true}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bad := make(chan string, 10)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(m.path("webshop/dev/KEY"))
			if err != nil {
				continue
			}
			mu.Lock()
			ok := pushed[string(b)]
			mu.Unlock()
			if !ok && len(b) > 0 {
				// A value read must have been pushed (or be in flight:
				// the writer registers before writing).
				select {
				case bad <- string(b):
				default:
				}
			}
		}
	}()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				v := fmt.Sprintf("writer-%d-%d", w, i)
				mu.Lock()
				pushed[v] = true
				mu.Unlock()
				// Other processes: writes by the process that reads
				// the key would count as edits of what it read.
				cmd := exec.Command("dd", "of="+m.path("webshop/dev/KEY"), "status=none")
				cmd.Stdin = strings.NewReader(v)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("write %s: %v %s", v, err, out)
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	close(bad)
	for b := range bad {
		t.Errorf("reader saw %q, never written", b)
	}
	final, _ := m.serverValue("dev", "/", "KEY")
	if got := m.readFile("webshop/dev/KEY"); got != final {
		t.Errorf("file %q, server %q after concurrent writes", got, final)
	}
}

func TestCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-7d1e0b9f-value"
	m := mountForTest(t, withSeed(seedWrite))
	m.mustSh("printf " + canary + " > webshop/dev/CANARY_KEY")
	m.both("dev", "/", "CANARY_KEY", canary)
	m.srv.FailPath("PATCH", "/api/v4/secrets/", 500, -1)
	_ = writeErr(m.path("webshop/dev/CANARY_KEY"), canary+"-2")
	m.srv.ClearFaults()
	m.refresh()
	if strings.Contains(m.logs.String(), canary) {
		t.Error("canary value in the daemon log")
	}
	filepath.Walk(filepath.Dir(m.stateF), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), canary) {
				t.Errorf("canary value on disk in %s", p)
			}
		}
		return nil
	})
	if !strings.Contains(m.readFile(".status"), "pushes") || strings.Contains(m.readFile(".status"), canary) {
		t.Error(".status shows a value or no counts")
	}
}

func TestImportedSecretsAreReadOnly(t *testing.T) {
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		seedWrite(srv, pid)
		srv.SetSecret(pid, "prod", "/shared", "SMTP_HOST", "smtp.internal")
		srv.AddImport(pid, "dev", "/", "prod", "/shared")
	}))
	if got := m.readFile("webshop/dev/SMTP_HOST"); got != "smtp.internal" {
		t.Fatalf("imported secret reads %q", got)
	}
	st, _ := os.Stat(m.path("webshop/dev/SMTP_HOST"))
	if st.Mode().Perm() != 0o400 {
		t.Errorf("imported secret mode %v, want 0400", st.Mode())
	}
	// The mount is root-run with default_permissions, so the kernel lets
	// root open a 0400 file for writing: the daemon must refuse it.
	if err := writeErr(m.path("webshop/dev/SMTP_HOST"), "x"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write to an imported secret: %v, want EACCES", err)
	}
	if err := os.Remove(m.path("webshop/dev/SMTP_HOST")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("rm of an imported secret: %v, want EACCES", err)
	}
	if v, _, _ := m.srv.Secret(m.project, "prod", "/shared", "SMTP_HOST"); v != "smtp.internal" {
		t.Errorf("source changed: %q", v)
	}
	if !strings.Contains(m.logs.String(), "read-only") {
		t.Error("no log line naming where to edit the imported secret")
	}
}

func TestExpiredTokenOnPushIsTransparent(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	m.srv.ExpireAllTokens()
	m.mustSh("echo after-expiry > webshop/dev/KEY")
	m.both("dev", "/", "KEY", "after-expiry")
	m.srv.RevokeAllTokens()
	m.mustSh("echo after-revoke > webshop/dev/KEY")
	m.both("dev", "/", "KEY", "after-revoke")
}

// TestReadAfterWriteIsFresh: once close() returned, every reader sees the
// pushed value, even with the old one in the page cache.
func TestReadAfterWriteIsFresh(t *testing.T) {
	m := mountForTest(t, withSeed(seedWrite))
	for i := 0; i < 30; i++ {
		want := fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i*50))
		m.readFile("webshop/dev/KEY") // cache the old value
		if err := writeErr(m.path("webshop/dev/KEY"), want+"\n"); err != nil {
			t.Fatal(err)
		}
		if got := m.readFile("webshop/dev/KEY"); got != want {
			t.Fatalf("read after write %d = %q, want %q", i, got, want)
		}
		m.mustSh("sed -i 's/value/edited/' webshop/dev/KEY")
		if got, want := m.readFile("webshop/dev/KEY"), strings.Replace(want, "value", "edited", 1); got != want {
			t.Fatalf("read after sed -i %d = %q, want %q", i, got, want)
		}
	}
}
