package fs

import (
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// counting counts the kernel's requests on the paths a read or a listing
// takes, so that benchmarks and tests can show how many round trips a
// cached read costs (zero on a read-only mount). RELEASE is not counted:
// the kernel sends it after close() has returned, so no caller waits for
// it. Everything else passes through the embedded file system untouched.
type counting struct {
	fuse.RawFileSystem
	n *atomic.Uint64
}

func (c counting) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.Lookup(cancel, h, name, out)
}

func (c counting) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.GetAttr(cancel, in, out)
}

func (c counting) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.Open(cancel, in, out)
}

func (c counting) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	c.n.Add(1)
	return c.RawFileSystem.Read(cancel, in, buf)
}

func (c counting) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.Flush(cancel, in)
}

func (c counting) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.OpenDir(cancel, in, out)
}

func (c counting) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.ReadDir(cancel, in, out)
}

func (c counting) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.ReadDirPlus(cancel, in, out)
}

// Requests is how many lookup, getattr, open, read, flush, opendir,
// readdir, getxattr and listxattr requests the kernel has sent so far.
func (f *FS) Requests() uint64 { return f.reqs.Load() }

func (c counting) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	c.n.Add(1)
	return c.RawFileSystem.GetXAttr(cancel, h, attr, dest)
}

func (c counting) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	c.n.Add(1)
	return c.RawFileSystem.ListXAttr(cancel, h, dest)
}
