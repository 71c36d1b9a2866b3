package fs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// fakeBackend is an fs.Backend over a vault, with no Infisical behind it:
// it records every call and fails the operations it is told to, so the
// filesystem's own logic (errno mapping, scratch files, renames) is tested
// fast, on a real kernel mount, without the HTTP stack.
type fakeBackend struct {
	v    *vault.Vault
	fsys *fs.FS

	mu    sync.Mutex
	calls []string
	fail  map[string]error // operation → the error it returns
}

const fakeProject = "p-fake"

func (b *fakeBackend) record(call string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
	op, _, _ := strings.Cut(call, " ")
	return b.fail[op]
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) Projects() []tree.Project {
	return []tree.Project{{ID: fakeProject, Dir: "proj", Envs: []string{"dev"}}}
}
func (b *fakeBackend) WriteCheck(project, env string) error { return b.record("writecheck " + env) }
func (b *fakeBackend) CheckBase(a vault.Addr, base int) error {
	return b.record(fmt.Sprintf("checkbase %s %d", a.Key, base))
}
func (b *fakeBackend) Push(a vault.Addr, value []byte, base int) error {
	if err := b.record(fmt.Sprintf("push %s %q %d", a.Key, value, base)); err != nil {
		return err
	}
	m, known := b.v.Stat(a)
	if err := b.v.Set(a, value, vault.Meta{Version: m.Version + 1}); err != nil {
		return err
	}
	ch := tree.Changes{Added: []vault.Addr{a}}
	if known {
		ch = tree.Changes{Updated: []vault.Addr{a}}
	}
	b.fsys.Invalidate(ch)
	return nil
}
func (b *fakeBackend) Delete(a vault.Addr, base int) error {
	if err := b.record(fmt.Sprintf("delete %s %d", a.Key, base)); err != nil {
		return err
	}
	b.v.Delete(a)
	b.fsys.Invalidate(tree.Changes{Removed: []vault.Addr{a}})
	return nil
}
func (b *fakeBackend) Rename(from, to vault.Addr, base int) error {
	if err := b.record(fmt.Sprintf("rename %s %s %d", from.Key, to.Key, base)); err != nil {
		return err
	}
	val, m, err := b.v.Get(from)
	if err != nil {
		return err
	}
	defer val.Wipe()
	b.v.Set(to, val.Bytes(), vault.Meta{Version: m.Version + 1})
	b.v.Delete(from)
	b.fsys.Invalidate(tree.Changes{Removed: []vault.Addr{from}, Added: []vault.Addr{to}})
	return nil
}
func (b *fakeBackend) Mkdir(project, env, path string) error {
	if err := b.record("mkdir " + path); err != nil {
		return err
	}
	b.v.AddFolder(project, env, path)
	return nil
}
func (b *fakeBackend) Rmdir(project, env, path string) error {
	if err := b.record("rmdir " + path); err != nil {
		return err
	}
	b.v.RemoveFolder(project, env, path)
	return nil
}
func (b *fakeBackend) CheckKey(name string) error {
	if strings.Contains(name, ":") {
		return errnoError{syscall.EINVAL}
	}
	return nil
}
func (b *fakeBackend) CheckFolder(name string) error { return nil }

// errnoError is an error that carries its errno, as the syncer's do.
type errnoError struct{ errno syscall.Errno }

func (e errnoError) Error() string        { return "fake: " + e.errno.Error() }
func (e errnoError) Errno() syscall.Errno { return e.errno }

// fakeMount mounts fs over a fakeBackend seeded with dev/KEY = "value".
func fakeMount(t *testing.T) (dir string, b *fakeBackend) {
	t.Helper()
	testutil.RequireFUSE(t)
	v, err := vault.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Destroy)
	if err := v.Set(vault.Addr{Project: fakeProject, Env: "dev", Path: "/", Key: "KEY"}, []byte("value"), vault.Meta{Version: 1}); err != nil {
		t.Fatal(err)
	}
	b = &fakeBackend{v: v, fail: map[string]error{}}
	b.fsys = fs.New(fs.Options{Vault: v, Backend: b, TrimNewline: true, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := b.fsys.Mount(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		b.fsys.Close()
	})
	return filepath.Join(mnt, "proj", "dev"), b
}

// Every backend error reaches the caller as its errno; anything without
// one, and ENOSYS (which would make the kernel stop sending FLUSH for the
// whole mount), becomes EIO.
func TestBackendErrnoReachesTheCaller(t *testing.T) {
	t.Parallel()
	dir, b := fakeMount(t)
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{errnoError{syscall.EACCES}, syscall.EACCES},
		{errnoError{syscall.EINPROGRESS}, syscall.EINPROGRESS},
		{errnoError{syscall.ESTALE}, syscall.ESTALE},
		{errnoError{syscall.EINVAL}, syscall.EINVAL},
		{errnoError{syscall.ENOSYS}, syscall.EIO},
		{errors.New("no errno at all"), syscall.EIO},
	} {
		b.mu.Lock()
		b.fail["push"] = tc.err
		b.mu.Unlock()
		err := os.WriteFile(filepath.Join(dir, "KEY"), []byte("new"), 0o600)
		if !errors.Is(err, tc.want) {
			t.Errorf("push failing with %v: write = %v, want %v", tc.err, err, tc.want)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "KEY")); string(got) != "value" {
			t.Errorf("after a failed push the file reads %q", got)
		}
	}
	// A flush that failed must not have turned FLUSH off: the next
	// write's failure still reaches close().
	b.mu.Lock()
	b.fail["push"] = errnoError{syscall.EACCES}
	b.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "KEY"), []byte("x"), 0o600); !errors.Is(err, syscall.EACCES) {
		t.Errorf("after ENOSYS from the backend, FLUSH no longer reports: %v", err)
	}
}

// Editor and tool scratch names stay local: readable and writable, never a
// backend call, gone when unlinked.
func TestScratchFilesNeverReachTheBackend(t *testing.T) {
	t.Parallel()
	dir, b := fakeMount(t)
	for _, name := range []string{".KEY.swp", "KEY~", "4913", "sedAb12Cd", "x.tmp"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("scratch"), 0o600); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != "scratch" {
			t.Errorf("%s reads %q %v", name, got, err)
		}
		if err := os.Remove(p); err != nil {
			t.Errorf("rm %s: %v", name, err)
		}
	}
	for _, c := range b.Calls() {
		if !strings.HasPrefix(c, "writecheck") {
			t.Errorf("a scratch file reached the backend: %s", c)
		}
	}
}

// Renames: a scratch file onto a key is one checked push of its content
// (how sed -i saves); a key onto a scratch name touches nothing until the
// copy is dropped; a key onto a key is one rename.
func TestRenameLogic(t *testing.T) {
	t.Parallel()
	dir, b := fakeMount(t)
	if _, err := os.ReadFile(filepath.Join(dir, "KEY")); err != nil { // served: version 1
		t.Fatal(err)
	}
	scratch := filepath.Join(dir, "sedXy12Zq")
	if err := os.WriteFile(scratch, []byte("edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(scratch, filepath.Join(dir, "KEY")); err != nil {
		t.Fatal(err)
	}
	if want := `push KEY "edited" 1`; !slices.Contains(b.Calls(), want) {
		t.Errorf("scratch onto key: calls %q, want %q (trimmed, checked against version 1)", b.Calls(), want)
	}
	before := len(b.Calls())
	if err := os.Rename(filepath.Join(dir, "KEY"), filepath.Join(dir, "KEY~")); err != nil {
		t.Fatal(err)
	}
	if calls := b.Calls()[before:]; len(calls) != 0 {
		t.Errorf("key onto a scratch name reached the backend: %q", calls)
	}
	if _, err := os.Stat(filepath.Join(dir, "KEY")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("KEY still shows after moving it aside: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "KEY~"), filepath.Join(dir, "KEY")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "KEY"), filepath.Join(dir, "NEW")); err != nil {
		t.Fatal(err)
	}
	if got := b.Calls()[len(b.Calls())-1]; !strings.HasPrefix(got, "rename KEY NEW ") {
		t.Errorf("key onto a new name: last call %q, want a rename", got)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "NEW")); err != nil || string(got) != "edited" {
		t.Errorf("NEW reads %q %v", got, err)
	}
	if err := os.Rename(filepath.Join(dir, "NEW"), filepath.Join(dir, "BAD:NAME")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename onto an invalid name: %v, want EINVAL", err)
	}
}
