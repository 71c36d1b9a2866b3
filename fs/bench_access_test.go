package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// benchUID is the reader's fsuid in BenchmarkAccessRead: not root, whom
// modes do not bind.
const benchUID = 1001

// asUser runs fn on a thread whose fsuid and fsgid are benchUID, which is
// what FUSE and the kernel's permission check take as the caller. The
// thread stays locked and ends with the goroutine, so no other goroutine
// ever runs with that identity.
func asUser(b *testing.B, fn func()) {
	b.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		// setfsgid/setfsuid answer the previous id, not an error.
		syscall.RawSyscall(syscall.SYS_SETFSGID, benchUID, 0, 0)
		syscall.RawSyscall(syscall.SYS_SETFSUID, benchUID, 0, 0)
		if got, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0); got != benchUID {
			done <- fmt.Errorf("fsuid is %d, want %d", got, benchUID)
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAccessRead: open+read+close of a cached secret by uid 1001 on
// a read-only mount, under a uid rule (owner and mode: the kernel checks
// it, no request reaches the daemon) and under an executable rule (every
// open reaches the daemon, which reads /proc/PID/exe and decides), against
// the same file on tmpfs owned by that uid.
func BenchmarkAccessRead(b *testing.B) {
	requireRoot(b)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		b.Fatal(err)
	}
	tmp := benchTmpfs(b)
	local := filepath.Join(tmp, "DATABASE_URL")
	if err := os.WriteFile(local, []byte(benchValue), 0o400); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(local, benchUID, benchUID); err != nil {
		b.Fatal(err)
	}
	openUp(local)
	seed := func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "DATABASE_URL", benchValue)
	}
	rules := map[string][]access.Spec{
		"uid-rule": {{Path: "webshop/dev/**", UIDs: []int64{benchUID}, Allow: "read"}},
		"exe-rule": {
			{Path: "webshop/dev/**", Executables: []string{self}, Allow: "read"},
			{Path: "webshop/dev/**", Allow: "none"},
		},
	}
	for _, name := range []string{"uid-rule", "exe-rule"} {
		m := mountForTest(b, withSeed(seed), func(c *mountConfig) {
			c.readOnly = true
			c.configure = func(c *config.Config) { c.AllowOther, c.Access = true, rules[name] }
		})
		openUp(m.dir)
		p := m.path("webshop/dev/DATABASE_URL")
		read := func(b *testing.B, path string, reqs func() uint64) {
			asUser(b, func() {
				buf := make([]byte, 4096)
				for range 3 { // warm the kernel caches
					if err := readOnce(path, buf); err != nil {
						b.Error(err)
						return
					}
				}
				before := reqs()
				b.ResetTimer()
				for range b.N {
					if err := readOnce(path, buf); err != nil {
						b.Error(err)
						return
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(reqs()-before)/float64(b.N), "fuse-reqs/op")
			})
		}
		b.Run(name+"/fs", func(b *testing.B) { read(b, p, m.fsys.Requests) })
		b.Run(name+"/base", func(b *testing.B) { read(b, local, func() uint64 { return 0 }) })
	}
}
