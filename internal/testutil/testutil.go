// Package testutil holds what several packages' tests share: a log sink that
// is safe for concurrent writers, and the check that a real FUSE mount can
// be made here.
package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Buffer collects log output written from many goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RequireFUSE skips a test that needs a real mount where FUSE is not
// usable, or fails it when REQUIRE_FUSE=1 (as CI sets), so that a mount test
// never passes by being skipped there.
func RequireFUSE(t testing.TB) {
	t.Helper()
	why := ""
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		why = "cannot open /dev/fuse: " + err.Error()
	} else {
		f.Close()
		if os.Geteuid() != 0 {
			if _, err := exec.LookPath("fusermount3"); err != nil {
				why = "not root and no fusermount3 (apt-get install fuse3)"
			}
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("REQUIRE_FUSE") == "1" {
		t.Fatalf("REQUIRE_FUSE=1 but %s", why)
	}
	t.Skip(why)
}

// FileSHA256 is the hex SHA-256 of the file at p (an executable's hash,
// as access rules name it).
func FileSHA256(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
