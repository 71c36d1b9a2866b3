package access

// A real FUSE mount wired the way the package comment tells fs to wire it,
// driven by real programs as other users: it checks that the modes from
// Attr are what the kernel enforces, that Decide's denials reach callers as
// EACCES, and that a reload reaches the kernel through attribute
// invalidation without a remount. Only exported API is used below (audit
// is imported for its records), so this is also the API's proof.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// miniFS serves fixed files; every attribute and open goes through eng.
type miniFS struct {
	noOpen bool // answer OPEN with ENOSYS: the kernel stops sending it (read-only fast path)
	eng    *Engine
	record func(path string, flags uint32, c Caller, d Decision)
	mu     sync.Mutex
	opens  map[string]int // opens that reached the daemon, by path
	nodes  map[string]*gofs.Inode
}

type miniDir struct {
	gofs.Inode
	fs   *miniFS
	path string
}

type miniFile struct {
	gofs.Inode
	fs    *miniFS
	path  string
	value []byte
}

var (
	_ gofs.NodeGetattrer = (*miniDir)(nil)
	_ gofs.NodeGetattrer = (*miniFile)(nil)
	_ gofs.NodeOpener    = (*miniFile)(nil)
	_ gofs.NodeReader    = (*miniFile)(nil)
	_ gofs.NodeFlusher   = (*miniFile)(nil)
)

func (d *miniDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a := d.fs.eng.Attr(d.path, true)
	out.Mode, out.Uid, out.Gid = syscall.S_IFDIR|a.Mode, a.UID, a.GID
	return 0
}

func (f *miniFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a := f.fs.eng.Attr(f.path, false)
	out.Mode, out.Uid, out.Gid = syscall.S_IFREG|a.Mode, a.UID, a.GID
	out.Size = uint64(len(f.value))
	return 0
}

func (f *miniFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if f.fs.noOpen {
		return nil, 0, syscall.ENOSYS
	}
	c, _ := fuse.FromContext(ctx)
	caller := Caller{PID: c.Pid, UID: c.Uid, GID: c.Gid}
	d := f.fs.eng.Decide(f.path, caller, flags&syscall.O_ACCMODE != syscall.O_RDONLY)
	f.fs.mu.Lock()
	f.fs.opens[f.path]++
	f.fs.mu.Unlock()
	f.fs.record(f.path, flags, caller, d)
	if !d.Allowed {
		return nil, 0, syscall.EACCES
	}
	// As fs answers read opens: keep the page cache, no FLUSH at close.
	return nil, fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH, 0
}

// Flush: with OPEN gone, FLUSH would still cost a round trip per close;
// ENOSYS stops it mount-wide, as fs does on read-only mounts.
func (f *miniFile) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if f.fs.noOpen {
		return syscall.ENOSYS
	}
	return 0
}

func (f *miniFile) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(f.value)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(f.value[off:]), 0
}

func (m *miniFS) opened(p string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opens[p]
}

// mountMini mounts files (path → value) at a fresh directory that other
// users can reach.
func mountMini(t testing.TB, eng *Engine, files map[string]string, record func(string, uint32, Caller, Decision), noOpen bool) (string, *miniFS) {
	t.Helper()
	testutil.RequireFUSE(t)
	m := &miniFS{noOpen: noOpen, eng: eng, record: record, opens: map[string]int{}, nodes: map[string]*gofs.Inode{}}
	root := &miniDir{fs: m}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	hour := time.Hour
	opts := &gofs.Options{
		EntryTimeout: &hour, AttrTimeout: &hour, NegativeTimeout: &hour, // invalidation, not timeouts
		MountOptions: fuse.MountOptions{AllowOther: true, DirectMount: true, Options: []string{"default_permissions"}, FsName: "access-test"},
		OnAdd: func(ctx context.Context) {
			for p, v := range files {
				parent := &root.Inode
				parts := strings.Split(p, "/")
				for i, name := range parts[:len(parts)-1] {
					ch := parent.GetChild(name)
					if ch == nil {
						dp := strings.Join(parts[:i+1], "/")
						ch = parent.NewPersistentInode(ctx, &miniDir{fs: m, path: dp}, gofs.StableAttr{Mode: syscall.S_IFDIR})
						parent.AddChild(name, ch, false)
						m.nodes[dp] = ch
					}
					parent = ch
				}
				ch := parent.NewPersistentInode(ctx, &miniFile{fs: m, path: p, value: []byte(v)}, gofs.StableAttr{Mode: syscall.S_IFREG})
				parent.AddChild(parts[len(parts)-1], ch, false)
				m.nodes[p] = ch
			}
		},
	}
	srv, err := gofs.Mount(dir, root, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { srv.Unmount() })
	return dir, m
}

// catAs runs the program at prog (a copy of cat) as uid:gid on file.
func catAs(t *testing.T, uid, gid int, prog, file string) (string, error) {
	t.Helper()
	cmd := exec.Command("setpriv", "--reuid="+itoa(uid), "--regid="+itoa(gid), "--clear-groups", "--", prog, file)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func copyCat(t *testing.T) (app, other string) {
	t.Helper()
	c := progCopies(t, "cat", map[string]string{"other-cat": "x"}, "app-cat", "other-cat")
	return c["app-cat"], c["other-cat"]
}

func TestMountEnforcement(t *testing.T) {
	requireRoot(t)
	app, other := copyCat(t)
	rules, err := Compile([]Spec{
		{Path: "kern/**", UIDs: []int64{1}, Allow: "read"},             // 0: the kernel's
		{Path: "daemon/**", Executables: []string{app}, Allow: "read"}, // 1: the daemon's
		{Path: "daemon/**", Allow: "none"},                             // 2
	}, Defaults{UID: 0, GID: 0, FileMode: 0o600, DirMode: 0o700})
	if err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(rules)
	var recMu sync.Mutex
	var recs []string
	record := func(p string, flags uint32, c Caller, d Decision) {
		recMu.Lock()
		defer recMu.Unlock()
		recs = append(recs, p+" "+itoa(int(c.UID))+" "+d.Exe+" "+map[bool]string{true: "allow", false: "deny"}[d.Allowed])
	}
	mnt, m := mountMini(t, eng, map[string]string{"kern/K": "kernel-value", "daemon/K": "daemon-value", "free/K": "root-only"}, record, false)

	st, err := os.Stat(filepath.Join(mnt, "kern/K"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1 || st.Mode().Perm() != 0o400 {
		t.Fatalf("kern/K: owner %d mode %v, want 1 and 0400", sys.Uid, st.Mode().Perm())
	}
	// The kernel's rule: uid 1 reads; uid 2 is refused before the daemon
	// hears of it.
	if out, err := catAs(t, 1, 1, app, filepath.Join(mnt, "kern/K")); err != nil || out != "kernel-value" {
		t.Fatalf("uid 1 cat kern/K: %q %v", out, err)
	}
	before := m.opened("kern/K")
	if out, err := catAs(t, 2, 2, app, filepath.Join(mnt, "kern/K")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("uid 2 cat kern/K: %q %v, want Permission denied", out, err)
	}
	if got := m.opened("kern/K"); got != before {
		t.Fatalf("uid 2's refused open reached the daemon (%d → %d opens): the kernel should refuse it", before, got)
	}
	// No rule: today's 0600 root, enforced by the kernel.
	if out, err := catAs(t, 1, 1, app, filepath.Join(mnt, "free/K")); err == nil {
		t.Fatalf("uid 1 read free/K: %q", out)
	}
	// The daemon's rule: the copy named in the rule reads, another copy
	// (other content, other path) gets EACCES from Decide, any uid.
	if !eng.NeedsDaemon("daemon/K") {
		t.Fatal("daemon/K should need the daemon")
	}
	for _, uid := range []int{1, 2} {
		if out, err := catAs(t, uid, uid, app, filepath.Join(mnt, "daemon/K")); err != nil || out != "daemon-value" {
			t.Fatalf("uid %d app-cat daemon/K: %q %v", uid, out, err)
		}
		if out, err := catAs(t, uid, uid, other, filepath.Join(mnt, "daemon/K")); err == nil || !strings.Contains(out, "Permission denied") {
			t.Fatalf("uid %d other-cat daemon/K: %q %v, want Permission denied", uid, out, err)
		}
	}
	recMu.Lock()
	got := strings.Join(recs, "\n")
	recMu.Unlock()
	for _, want := range []string{"daemon/K 1 " + app + " allow", "daemon/K 2 " + other + " deny"} {
		if !strings.Contains(got, want) {
			t.Errorf("records:\n%s\nlack %q", got, want)
		}
	}

	// Reload: kern/** now belongs to uid 2. Invalidate what changed, as fs
	// will, and the kernel enforces the new owner without a remount.
	next, err := Compile([]Spec{{Path: "kern/**", UIDs: []int64{2}, Allow: "read"}}, Defaults{UID: 0, GID: 0, FileMode: 0o600, DirMode: 0o700})
	if err != nil {
		t.Fatal(err)
	}
	ch := eng.Swap(next)
	for p, ino := range m.nodes {
		isDir := ino.IsDir()
		if ch.AttrChanged(p, isDir) {
			if errno := ino.NotifyContent(-1, 0); errno != 0 && errno != syscall.ENOENT {
				t.Fatalf("notify %s: %v", p, errno)
			}
		}
	}
	// uid 1 first: the kernel would let it in on stale attributes (a
	// refusal makes the kernel refetch them, an admission does not), and
	// the refusal must be the kernel's, not Decide's.
	before = m.opened("kern/K")
	if out, err := catAs(t, 1, 1, app, filepath.Join(mnt, "kern/K")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("after reload, uid 1 cat kern/K: %q %v, want Permission denied", out, err)
	}
	if got := m.opened("kern/K"); got != before {
		t.Fatalf("after reload uid 1's open reached the daemon: the kernel kept the old attributes")
	}
	if out, err := catAs(t, 2, 2, app, filepath.Join(mnt, "kern/K")); err != nil || out != "kernel-value" {
		t.Fatalf("after reload, uid 2 cat kern/K: %q %v", out, err)
	}
}

// BenchmarkRepeatRead: open+read+close of one small file, repeated, on
// tmpfs (the baseline), under a uid rule (kernel-enforced; OPEN answered
// ENOSYS once, so repeats cost the daemon nothing) and under an executable
// rule (every open reaches Decide). Read the ratios to tmpfs:
// go test -run '^$' -bench RepeatRead ./access/
func BenchmarkRepeatRead(b *testing.B) {
	requireRoot(b)
	value := strings.Repeat("v", 64)
	read := func(b *testing.B, p string) {
		if got, err := os.ReadFile(p); err != nil || string(got) != value {
			b.Fatalf("read %s: %q %v", p, got, err)
		}
		b.ResetTimer()
		for b.Loop() {
			os.ReadFile(p)
		}
	}
	b.Run("tmpfs", func(b *testing.B) {
		dir, err := os.MkdirTemp("/dev/shm", "access-bench")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "K")
		os.WriteFile(p, []byte(value), 0o400)
		read(b, p)
	})
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for _, c := range []struct {
		name   string
		rule   Spec
		noOpen bool
	}{
		{"uid-rule", Spec{Path: "**", UIDs: []int64{0}, Allow: "write"}, true},
		// The same rule with every open sent to the daemon (a read-write
		// mount, or audit = all-opens): the round trips without /proc.
		{"uid-rule-daemon-opens", Spec{Path: "**", UIDs: []int64{0}, Allow: "write"}, false},
		{"executable-rule", Spec{Path: "**", Executables: []string{self}, Allow: "read"}, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			rules, err := Compile([]Spec{c.rule}, Defaults{FileMode: 0o600, DirMode: 0o700})
			if err != nil {
				b.Fatal(err)
			}
			eng := NewEngine(rules)
			if want := c.rule.Executables != nil; eng.NeedsDaemon("p/K") != want {
				b.Fatalf("%s: NeedsDaemon %v", c.name, !want)
			}
			mnt, m := mountMini(b, eng, map[string]string{"p/K": value}, func(string, uint32, Caller, Decision) {}, c.noOpen)
			read(b, filepath.Join(mnt, "p/K"))
			b.StopTimer()
			opens := m.opened("p/K")
			if c.noOpen && opens != 0 || !c.noOpen && opens < b.N {
				b.Fatalf("%s: %d opens reached the daemon for %d reads", c.name, opens, b.N)
			}
			b.ReportMetric(float64(opens)/float64(b.N), "daemon-opens/op")
		})
	}
}
