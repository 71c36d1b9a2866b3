package fs_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A new file whose write is refused with EFBIG is gone after close (it was
// a 0-byte phantom, in neither Infisical nor .env, until rm), and the log
// names the limit.
func TestOversizedNewFileLeavesNothing(t *testing.T) {
	m := mountForTest(t)
	p := m.path("webshop/dev/HUGE")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.Write(make([]byte, 1<<20+1))
	f.Close()
	if !errors.Is(werr, syscall.EFBIG) {
		t.Fatalf("oversized write: %v, want EFBIG", werr)
	}
	if _, ok := m.serverValue("dev", "/", "HUGE"); ok {
		t.Error("HUGE reached Infisical")
	}
	m.eventually(func() bool { _, err := os.Stat(p); return os.IsNotExist(err) })
	ents, _ := os.ReadDir(m.path("webshop/dev"))
	for _, e := range ents {
		if e.Name() == "HUGE" {
			t.Error("HUGE still listed after the refused write")
		}
	}
	m.refresh()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("HUGE after a refresh: %v", err)
	}
	if !strings.Contains(m.logs.String(), "at most 1 MiB") || !strings.Contains(m.logs.String(), "limit_bytes=1048576") {
		t.Errorf("the log does not name the limit:\n%s", m.logs.String())
	}
}
