package fs

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/vault"
)

// History: MOUNT/<project>/<env>/.history/<folder...>/<KEY>/ lists the
// versions 1 to current as files named by number. Listing costs nothing;
// looking one up fetches it from Infisical (GET ?version=N) once, and the
// vault keeps it sealed. A pruned version answers ENOENT. Everything here
// is read-only; `cp .history/KEY/3 KEY` restores version 3 as a new one.

// Historian is a Backend that can fetch an earlier version of a secret
// into the vault (Vault.Version reads it after).
type Historian interface {
	FetchVersion(a vault.Addr, n int) error
}

// historyRoot is the .history directory of environment root d.
func historyRoot(d *dirNode) gofs.InodeEmbedder {
	return &histDir{fsys: d.fsys, project: d.project, env: d.env, path: "/"}
}

// histDir mirrors a folder (key empty: sub-folders and secrets, each a
// directory) or lists one secret's versions (key set).
type histDir struct {
	gofs.Inode
	fsys               *FS
	project, env, path string
	key                string
}

func (h *histDir) addr() vault.Addr {
	return vault.Addr{Project: h.project, Env: h.env, Path: h.path, Key: h.key}
}

func (h *histDir) childPath(name string) string { return vault.ChildPath(h.path, name) }

func (h *histDir) attr(a *fuse.Attr) {
	h.fsys.dirAttr(a)
	a.Mode &^= 0o222
	// Directory modes follow the rules as a whole, not the path (access
	// opens directories up when any rule allows anything).
	h.fsys.applyAccess(a, nil) // access.go
}

func (h *histDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	h.attr(&out.Attr)
	return 0
}

// versions is the secret's current version number (0 when gone).
func (h *histDir) versions() int {
	m, ok := h.fsys.opt.Vault.Stat(h.addr())
	if !ok || m.Hidden {
		return 0
	}
	return m.Version
}

func (h *histDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var es []fuse.DirEntry
	if h.key != "" {
		for i, n := 1, h.versions(); i <= n; i++ {
			es = append(es, fuse.DirEntry{Name: strconv.Itoa(i), Mode: syscall.S_IFREG})
		}
		return gofs.NewListDirStream(es), 0
	}
	l := h.fsys.opt.Vault.List(h.project, h.env, h.path)
	for _, f := range l.Folders {
		es = append(es, fuse.DirEntry{Name: f, Mode: syscall.S_IFDIR})
	}
	for _, k := range l.Keys {
		if m, ok := h.fsys.opt.Vault.Stat(vault.Addr{Project: h.project, Env: h.env, Path: h.path, Key: k}); ok && !m.ReadOnly {
			es = append(es, fuse.DirEntry{Name: k, Mode: syscall.S_IFDIR})
		}
	}
	slices.SortFunc(es, func(a, b fuse.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return gofs.NewListDirStream(es), 0
}

func (h *histDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if h.key != "" {
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 || n > h.versions() || strconv.Itoa(n) != name {
			return nil, syscall.ENOENT
		}
		var vn *versionNode
		if ch := h.GetChild(name); ch != nil {
			vn, _ = ch.Operations().(*versionNode)
		}
		if vn == nil {
			vn = &versionNode{fsys: h.fsys, a: h.addr(), n: n, mpath: joinPath(inodePath(h.EmbeddedInode()), name)}
		}
		// No fetch here: the kernel looks up every entry of a listing
		// (READDIRPLUS), and listing must cost nothing. Until the version
		// is fetched its size is unknown: it is given as the largest a
		// value can be, with attributes that expire at once. A read then
		// fetches and returns the real bytes, and the kernel takes the
		// short read as the end of the file (fuse_read_update_size); a
		// stat asks Getattr, which fetches and gives the real size.
		if kept := vn.attr(&out.Attr); !kept {
			out.Attr.Size = maxValue
			out.SetAttrTimeout(time.Nanosecond)
		}
		return h.NewInode(ctx, vn, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	child := &histDir{fsys: h.fsys, project: h.project, env: h.env}
	switch {
	case h.fsys.opt.Vault.HasFolder(h.project, h.env, h.childPath(name)):
		child.path = h.childPath(name)
	default:
		m, ok := h.fsys.opt.Vault.Stat(vault.Addr{Project: h.project, Env: h.env, Path: h.path, Key: name})
		if !ok || m.ReadOnly {
			return nil, syscall.ENOENT // imports have their history where they are defined
		}
		child.path, child.key = h.path, name
	}
	if ch := h.GetChild(name); ch != nil {
		if old, ok := ch.Operations().(*histDir); ok && old.path == child.path && old.key == child.key {
			old.attr(&out.Attr)
			return ch, 0
		}
	}
	child.attr(&out.Attr)
	return h.NewInode(ctx, child, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// versionNode is one earlier version of a secret, read-only.
type versionNode struct {
	gofs.Inode
	fsys *FS
	a    vault.Addr
	n    int
	// mpath is its mount path, for the access rules (known before the
	// kernel has the inode).
	mpath string

	// mu guards inflight, the fetch in progress (never held across it).
	mu       sync.Mutex
	inflight chan struct{}
	err      error // the last fetch's
}

// value returns the version's bytes, fetching them the first time; the
// caller wipes them.
func (v *versionNode) value() ([]byte, syscall.Errno) {
	for {
		val, ok, err := v.fsys.opt.Vault.Version(v.a, v.n)
		if err != nil {
			return nil, syscall.EIO
		}
		if ok {
			b := append([]byte(nil), val.Bytes()...)
			val.Wipe()
			return b, 0
		}
		v.mu.Lock()
		if wait := v.inflight; wait != nil {
			v.mu.Unlock()
			<-wait
			v.mu.Lock()
			err := v.err
			v.mu.Unlock()
			if err != nil {
				return nil, toErrno(err)
			}
			continue
		}
		done := make(chan struct{})
		v.inflight = done
		v.mu.Unlock()
		err = syscall.ENOTSUP
		if h, ok := v.fsys.opt.Backend.(Historian); ok {
			err = h.FetchVersion(v.a, v.n)
		}
		v.mu.Lock()
		v.inflight, v.err = nil, err
		close(done)
		v.mu.Unlock()
		if err != nil {
			return nil, toErrno(err)
		}
		// A fetch that succeeded but was not kept (the secret was
		// replaced meanwhile) must not loop.
		if val, ok, _ := v.fsys.opt.Vault.Version(v.a, v.n); ok {
			b := append([]byte(nil), val.Bytes()...)
			val.Wipe()
			return b, 0
		}
		return nil, syscall.ENOENT
	}
}

func (v *versionNode) getattr(a *fuse.Attr) syscall.Errno {
	b, errno := v.value()
	if errno != 0 {
		return errno
	}
	v.setAttr(a, len(b))
	clear(b)
	return 0
}

// attr fills a without fetching: the size is the kept version's, or 0
// (kept false) when it was not fetched yet.
func (v *versionNode) attr(a *fuse.Attr) (kept bool) {
	val, ok, _ := v.fsys.opt.Vault.Version(v.a, v.n)
	v.setAttr(a, len(val.Bytes()))
	val.Wipe()
	return ok
}

func (v *versionNode) setAttr(a *fuse.Attr, size int) {
	a.Size = uint64(size)
	a.Blocks = (a.Size + 511) / 512
	a.Mode = syscall.S_IFREG | (v.fsys.opt.FileMode &^ 0o222)
	a.Nlink = 1
	a.SetTimes(&v.fsys.start, &v.fsys.start, &v.fsys.start)
	v.fsys.setAttrCommon(a)
	v.fsys.applyAccess(a, v.paths) // access.go
}

func (v *versionNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return v.getattr(&out.Attr)
}

func (v *versionNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	p, keys := v.paths()
	return v.fsys.openComputed(ctx, flags, p, func() []string { return keys }, v.value)
}

func (v *versionNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readComputed(fh, dest, off, v.value)
}

func (v *versionNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return v.fsys.flushComputed()
}

func (v *versionNode) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return releaseComputed(fh)
}

func (v *versionNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if v.fsys.opt.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EACCES
	}
	if errno := v.getattr(&out.Attr); errno != 0 {
		return errno
	}
	return v.fsys.checkModeOwner(in, out.Attr.Uid, out.Attr.Gid, out.Attr.Mode)
}

// invalidateHistory drops what the kernel remembers of a secret's history
// after it changed: the listing of its versions, the name of the new
// version (it may be remembered as missing), and, when the secret went or
// is another one now, every version it had. Called from deliver only.
func (f *FS) invalidateHistory(a vault.Addr, gone bool) {
	d := f.dirInode(a, historyName) // .history/<folders…>, as the kernel knows it
	if d == nil {
		return
	}
	if gone {
		d.NotifyEntry(a.Key)
	}
	k := d.GetChild(a.Key)
	if k == nil {
		return
	}
	if gone {
		for name, c := range k.Children() {
			c.NotifyContent(0, 0)
			k.NotifyEntry(name)
		}
	}
	if m, ok := f.opt.Vault.Stat(a); ok {
		k.NotifyEntry(strconv.Itoa(m.Version))
	}
	k.NotifyContent(0, 0)
}

// historyName is the history view's directory in an environment's root.
const historyName = ".history"
