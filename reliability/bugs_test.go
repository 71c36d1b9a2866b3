package reliability_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// TestReadDuringTruncatingWrite: while a program has KEY open with O_TRUNC
// and has not closed it yet (nothing pushed), and after a push failed,
// readers still see the last pushed value. The soak's empty reads are not
// these single-threaded cases; this pins them down.
func TestReadDuringTruncatingWrite(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := newServer(t)
	srv.SetSecret(pid, "dev", "/", "KEY", "old-value")
	mnt, _, _, _, unmount := mountInProcess(t, srv, slog.New(slog.DiscardHandler))
	defer unmount()
	p := filepath.Join(mnt, "webshop", "dev", "KEY")
	if b, err := os.ReadFile(p); err != nil || string(b) != "old-value" {
		t.Fatalf("before: %q %v", b, err)
	}
	r, err := os.Open(p) // a reader that opened before the writer
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "old-value" {
		t.Errorf("new open while a truncating write is open = %q (%v), want the pushed value", got, err)
	}
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "old-value" {
		t.Errorf("read from an earlier open while a truncating write is open = %q (%v), want the pushed value", buf[:n], err)
	}
	if _, err := w.WriteString("new-value"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "new-value" {
		t.Errorf("after close = %q", got)
	}
	// A push that fails leaves the pushed value readable.
	srv.FailPath("", "/api/v4/secrets/", 500, -1)
	if err := goWrite(p, "failed-value"); err == nil {
		t.Fatal("write with failing pushes: close succeeded")
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "new-value" {
		t.Errorf("after a failed push = %q (%v), want the last pushed value", got, err)
	}
}

// TestReadWhileWriterExtends: a reader that read the old, shorter value
// reads again after a writer (not yet closed) wrote a longer one. The
// kernel grew its size with the WRITE; the reader must still get the old
// value whole, not the old value padded with zeros to the new length. Each
// open reads the snapshot it took (read-write mounts use direct I/O per
// open), so the earlier open keeps "short" even after the push, and a new
// open sees the pushed value.
func TestReadWhileWriterExtends(t *testing.T) {
	testutil.RequireFUSE(t)
	srv, pid := newServer(t)
	srv.SetSecret(pid, "dev", "/", "KEY", "short")
	mnt, _, _, _, unmount := mountInProcess(t, srv, slog.New(slog.DiscardHandler))
	defer unmount()
	p := filepath.Join(mnt, "webshop", "dev", "KEY")
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	if n, err := r.ReadAt(buf, 0); string(buf[:n]) != "short" {
		t.Fatalf("before: %q %v", buf[:n], err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("a much longer value"), 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.ReadAt(buf, 0); string(buf[:n]) != "short" {
		t.Errorf("earlier open, read while the writer is open = %q, want %q", buf[:n], "short")
	}
	if got, _ := os.ReadFile(p); string(got) != "short" {
		t.Errorf("new open while the writer is open = %q, want %q", got, "short")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.ReadAt(buf, 0); string(buf[:n]) != "short" {
		t.Errorf("earlier open, read after the push = %q, want its snapshot %q", buf[:n], "short")
	}
	if got, _ := os.ReadFile(p); string(got) != "a much longer value" {
		t.Errorf("new open after the push = %q", got)
	}
}
