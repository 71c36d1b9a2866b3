package fs

import (
	"context"
	"sort"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/vault"
)

type dirKind int

const (
	kindRoot    dirKind = iota // lists projects
	kindProject                // lists environments
	kindFolder                 // an Infisical folder (an environment's root is "/")
)

// dirNode is a directory: the mount root, a project, or a folder of an
// environment. Its identity (project, env, path) is fixed; directories are
// never renamed in place (rename answers EXDEV, and mv copies instead).
type dirNode struct {
	gofs.Inode
	fsys    *FS
	kind    dirKind
	project string // project ID
	env     string
	path    string // canonical folder path
	raw     bool   // under .raw/: files show raw values, and no views

	// mu guards local and hidden; it comes first in the lock order
	// (dirNode.mu, fileNode.mu, handle.mu) and is never held across a
	// Backend call.
	mu sync.Mutex
	// local holds files that exist here but not (or not yet) in the vault:
	// scratch files, and secrets created but not yet pushed.
	local map[string]*fileNode
	// refused is each process's last ESTALE refusal per name: the
	// kernel's retry of a refused operation and an editor's recovery
	// after a refused save are refused too (served.go).
	refused map[refusalKey]refusal
	// readers is the version each reading thread last read of each name
	// (served.go): a derived write is checked against its own read.
	readers        map[readerKey]int
	readersPruneAt int
	// hidden are secret names moved onto a scratch name (vim renames KEY to
	// KEY~ before writing a new KEY): the server copy is kept until the
	// scratch copy is dropped, but the name is gone from the directory.
	hidden map[string]*fileNode
}

func (f *FS) newDir(kind dirKind, project, env, path string) *dirNode {
	return &dirNode{fsys: f, kind: kind, project: project, env: env, path: path,
		local: map[string]*fileNode{}, hidden: map[string]*fileNode{}}
}

func (d *dirNode) addr(name string) vault.Addr {
	return vault.Addr{Project: d.project, Env: d.env, Path: d.path, Key: name}
}

func (d *dirNode) childPath(name string) string { return vault.ChildPath(d.path, name) }

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(&out.Attr)
	d.fsys.applyAccess(&out.Attr, nil)
	return 0
}

func (f *FS) dirAttr(a *fuse.Attr) {
	a.SetTimes(&f.start, &f.start, &f.start)
	a.Mode = syscall.S_IFDIR | f.dirMode()
	a.Nlink = 2
	f.setAttrCommon(a)
}

// Setattr accepts what changes nothing (tools re-apply modes they read) and
// refuses real changes of mode or owner.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(&out.Attr)
	d.fsys.applyAccess(&out.Attr, nil)
	if errno := d.fsys.checkModeOwner(in, out.Attr.Uid, out.Attr.Gid, out.Attr.Mode); errno != 0 {
		return errno
	}
	return 0
}

// entry is one name in a directory.
type entry struct {
	name string
	mode uint32
}

// entries lists the directory: views, folders, secrets and local files,
// sorted so that concurrent readers see a stable order.
func (d *dirNode) entries() []entry {
	var out []entry
	for i := range views {
		if views[i].shownIn(d) {
			mode := uint32(syscall.S_IFREG)
			if views[i].dir != nil {
				mode = syscall.S_IFDIR
			}
			out = append(out, entry{views[i].name, mode})
		}
	}
	if d.IsRoot() {
		out = append(out, d.fsys.tmplChildren("")...) // templates.go
	}
	switch d.kind {
	case kindRoot:
		for _, p := range d.fsys.opt.Backend.Projects() {
			out = append(out, entry{p.Dir, syscall.S_IFDIR})
		}
	case kindProject:
		for _, e := range d.envs() {
			out = append(out, entry{e, syscall.S_IFDIR})
		}
	case kindFolder:
		l := d.fsys.opt.Vault.List(d.project, d.env, d.path)
		for _, f := range l.Folders {
			out = append(out, entry{f, syscall.S_IFDIR})
		}
		var shadowed []string
		d.mu.Lock()
		for _, k := range l.Keys {
			if _, gone := d.hidden[k]; gone {
				continue
			}
			if !d.raw && reserved(k) { // what shadowed says of a listed key
				shadowed = append(shadowed, k)
				continue
			}
			out = append(out, entry{k, syscall.S_IFREG})
		}
		for name := range d.local {
			if _, ok := d.fsys.opt.Vault.Stat(d.addr(name)); !ok {
				out = append(out, entry{name, syscall.S_IFREG})
			}
		}
		d.mu.Unlock()
		for _, k := range shadowed {
			d.shadowed(k) // its one log line, outside dirNode.mu
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (d *dirNode) envs() []string {
	for _, p := range d.fsys.opt.Backend.Projects() {
		if p.ID == d.project {
			return p.Envs
		}
	}
	return nil
}

// OpendirHandle lets the kernel cache listings (FOPEN_CACHE_DIR); the
// syncer's invalidation drops them when a listing changes, and the kernel
// drops them itself on changes made through the mount.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	es := d.entries()
	list := make([]fuse.DirEntry, len(es))
	for i, e := range es {
		list[i] = fuse.DirEntry{Name: e.name, Mode: e.mode}
	}
	return &dirHandle{entries: list}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is one open directory: a listing taken at opendir.
type dirHandle struct {
	mu      sync.Mutex
	idx     int
	entries []fuse.DirEntry
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idx >= len(h.entries) {
		return nil, 0
	}
	e := h.entries[h.idx]
	h.idx++
	e.Off = uint64(h.idx)
	return &e, 0
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off > uint64(len(h.entries)) {
		return syscall.EINVAL
	}
	h.idx = int(off)
	return 0
}

func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {}

// Fsyncdir has nothing to do: every change was pushed when it was made.
func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// Lookup finds a child by name.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if v := viewNamed(d, name); v != nil {
		return d.viewChild(ctx, v, out)
	}
	if d.IsRoot() {
		if ino, ok := d.fsys.tmplLookup(ctx, d.EmbeddedInode(), "", name, out); ok { // templates.go
			return ino, 0
		}
	}
	switch d.kind {
	case kindRoot:
		for _, p := range d.fsys.opt.Backend.Projects() {
			if p.Dir == name {
				return d.dirChild(ctx, name, d.fsys.newDir(kindProject, p.ID, "", ""), out)
			}
		}
	case kindProject:
		for _, e := range d.envs() {
			if e == name {
				return d.dirChild(ctx, name, d.fsys.newDir(kindFolder, d.project, e, "/"), out)
			}
		}
	case kindFolder:
		if d.shadowed(name) {
			// A secret with a view's name is shadowed by the view.
			return nil, syscall.ENOENT
		}
		if d.fsys.opt.Vault.HasFolder(d.project, d.env, d.childPath(name)) {
			return d.dirChild(ctx, name, d.folder(d.childPath(name)), out)
		}
		d.mu.Lock()
		n, isLocal := d.local[name]
		_, isHidden := d.hidden[name]
		d.mu.Unlock()
		if isLocal {
			return d.fileChild(ctx, name, n, out)
		}
		if _, ok := d.fsys.opt.Vault.Stat(d.addr(name)); ok && !isHidden {
			return d.fileChild(ctx, name, &fileNode{fsys: d.fsys}, out)
		}
	}
	return nil, syscall.ENOENT
}

// dirChild returns the existing child inode for name when it is still the
// right kind, else a new one.
func (d *dirNode) dirChild(ctx context.Context, name string, n *dirNode, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.fsys.dirAttr(&out.Attr)
	d.fsys.applyAccess(&out.Attr, nil)
	if ch := d.GetChild(name); ch != nil {
		if old, ok := ch.Operations().(*dirNode); ok && old.project == n.project && old.env == n.env && old.path == n.path && old.raw == n.raw {
			return ch, 0
		}
	}
	return d.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dirNode) fileChild(ctx context.Context, name string, n *fileNode, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if ch := d.GetChild(name); ch != nil {
		if old, ok := ch.Operations().(*fileNode); ok {
			n = old
		}
	}
	ch := d.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG}) // an existing node is returned as is
	if errno := n.getattrAt(d, name, &out.Attr); errno != 0 {
		return nil, errno
	}
	return ch, 0
}

func (d *dirNode) viewChild(ctx context.Context, v *view, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if v.dir != nil {
		return d.dirViewChild(ctx, v, out)
	}
	if ch := d.GetChild(v.name); ch != nil {
		if vn, ok := ch.Operations().(*viewNode); ok && vn.v == v {
			vn.getattr(&out.Attr)
			return ch, 0
		}
	}
	vn := &viewNode{v: v, dir: d}
	vn.getattr(&out.Attr)
	return d.NewInode(ctx, vn, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
}
