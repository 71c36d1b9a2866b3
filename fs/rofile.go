package fs

import (
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The read-only files whose bytes are computed (views, template files,
// history versions) share these: a read comes from the open's snapshot,
// or, on a read-only mount where opens never reach the daemon, from the
// bytes computed now.

// readComputed serves a READ from fh's snapshot, else from content().
func readComputed(fh gofs.FileHandle, dest []byte, off int64, content func() ([]byte, syscall.Errno)) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.read(dest, off)
	}
	b, errno := content()
	if errno != 0 {
		return nil, errno
	}
	defer clear(b)
	k := 0
	if off < int64(len(b)) {
		k = copy(dest, b[off:])
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// flushComputed: nothing to push. A read-only mount answers ENOSYS so
// the kernel stops sending FLUSH there.
func (f *FS) flushComputed() syscall.Errno {
	if f.opt.ReadOnly {
		return syscall.ENOSYS
	}
	return 0
}

// releaseComputed wipes the open's snapshot.
func releaseComputed(fh gofs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		h.wipe()
	}
	return 0
}
