package access

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// fileKey names one version of a file. The issue asks for inode, size and
// mtime; ctime is added because an owner can set mtime back after
// rewriting a binary (touch -d), while ctime moves on every change and
// cannot be set.
type fileKey struct {
	dev, ino, size      uint64
	mtimeSec, mtimeNsec int64
	ctimeSec, ctimeNsec int64
}

func keyOf(st *unix.Stat_t) fileKey {
	return fileKey{
		dev: st.Dev, ino: st.Ino, size: uint64(st.Size),
		mtimeSec: st.Mtim.Sec, mtimeNsec: st.Mtim.Nsec,
		ctimeSec: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec,
	}
}

// hashCacheMax bounds the cache; when full it starts over (executables on a
// machine are few, so this is a guard, not a policy).
const hashCacheMax = 4096

// hashCache remembers executables' SHA-256 by file version, so that a rule
// with sha256 costs one hash per binary, not one per open.
type hashCache struct {
	mu sync.Mutex // guards m; never held while hashing
	m  map[fileKey][32]byte
}

func newHashCache() *hashCache { return &hashCache{m: make(map[fileKey][32]byte)} }

// sum returns the hash of the opened executable f whose version is k.
func (c *hashCache) sum(f *os.File, k fileKey) ([32]byte, error) {
	c.mu.Lock()
	h, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	d := sha256.New()
	if _, err := io.Copy(d, io.NewSectionReader(f, 0, int64(k.size))); err != nil {
		return h, fmt.Errorf("hash executable: %w", err)
	}
	copy(h[:], d.Sum(nil))
	// The file may have changed while it was read: keep the hash only if
	// its version is still the one we were given.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || keyOf(&st) != k {
		return h, fmt.Errorf("hash executable: it changed while being read")
	}
	c.mu.Lock()
	if len(c.m) >= hashCacheMax {
		c.m = make(map[fileKey][32]byte)
	}
	c.m[k] = h
	c.mu.Unlock()
	return h, nil
}
