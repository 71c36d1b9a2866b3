package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The read-only files whose bytes are computed (views, template files,
// history versions) share these: a read comes from the open's snapshot,
// or, on a read-only mount where opens never reach the daemon, from the
// bytes computed now.

// openComputed opens a computed file: read-only (EACCES for writers on a
// read-write mount; the kernel refuses them on a read-only one), decided
// by the access rules for path and the keys it holds (keys may be nil),
// and on a read-write mount a snapshot of content() with direct I/O, since
// the size the kernel took may be stale by the time it reads.
func (f *FS) openComputed(ctx context.Context, flags uint32, path string, keys func() []string, content func() ([]byte, syscall.Errno)) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY && !f.opt.ReadOnly {
		return nil, 0, syscall.EACCES
	}
	if skip, errno := f.openHook(ctx, path, flags, keys); skip || errno != 0 {
		return nil, 0, orENOSYS(skip, errno) // access.go
	}
	if f.opt.ReadOnly {
		return nil, roOpen, 0
	}
	b, errno := content()
	if errno != 0 {
		return nil, 0, errno
	}
	return &handle{buf: b}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
}

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
