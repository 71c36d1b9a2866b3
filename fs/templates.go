package fs

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Templates is what the filesystem needs to show [[template]] files: the
// daemon renders them from the vault (package templates) and says which
// changed through InvalidateTemplates; the filesystem only serves the
// bytes. Paths are mount-relative ("rendered/app.env"). Implementations are
// safe for concurrent use and never call back into this package.
type Templates interface {
	// Paths lists every template file's path.
	Paths() []string
	// Stat describes the file at path: its size, its mode (0 = the mount's
	// read-only file mode) and when its bytes last changed.
	Stat(path string) (size int, mode uint32, mtime time.Time, ok bool)
	// Content returns the file's current bytes, which the caller wipes.
	Content(path string) ([]byte, error)
}

// Template files live at the mount root and in directories of their own
// (tmplDir), never inside a project directory: the daemon refuses a
// template whose first path segment is a project directory's name or a
// view's. Every template file is read-only.

// tmplChildren lists the names directly under prefix ("" = the root) that
// template paths make, each a file or a directory.
func (f *FS) tmplChildren(prefix string) []entry {
	if f.opt.Templates == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []entry
	for _, p := range f.opt.Templates.Paths() {
		rest, ok := p, true
		if prefix != "" {
			rest, ok = strings.CutPrefix(p, prefix+"/")
		}
		if !ok || rest == "" {
			continue
		}
		name, _, dir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		mode := uint32(syscall.S_IFREG)
		if dir {
			mode = syscall.S_IFDIR
		}
		out = append(out, entry{name, mode})
	}
	return out
}

// tmplLookup finds name under prefix among the template paths: a file, a
// directory, or (ok false) nothing.
func (f *FS) tmplLookup(ctx context.Context, parent *gofs.Inode, prefix, name string, out *fuse.EntryOut) (ino *gofs.Inode, ok bool) {
	for _, e := range f.tmplChildren(prefix) {
		if e.name != name {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "/" + name
		}
		if e.mode == syscall.S_IFDIR {
			f.dirAttr(&out.Attr)
			if ch := parent.GetChild(name); ch != nil {
				if _, ok := ch.Operations().(*tmplDir); ok {
					return ch, true
				}
			}
			return parent.NewInode(ctx, &tmplDir{fsys: f, prefix: p}, gofs.StableAttr{Mode: syscall.S_IFDIR}), true
		}
		n := &tmplFile{fsys: f, path: p}
		if ch := parent.GetChild(name); ch != nil {
			if old, ok := ch.Operations().(*tmplFile); ok {
				n = old
			}
		}
		n.getattr(&out.Attr)
		return parent.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG}), true
	}
	return nil, false
}

// tmplDir is a directory that only template paths make.
type tmplDir struct {
	gofs.Inode
	fsys   *FS
	prefix string // mount-relative path of this directory
}

func (d *tmplDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(&out.Attr)
	out.Mode &^= 0o222
	return 0
}

func (d *tmplDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if ino, ok := d.fsys.tmplLookup(ctx, d.EmbeddedInode(), d.prefix, name, out); ok {
		return ino, 0
	}
	return nil, syscall.ENOENT
}

func (d *tmplDir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	es := d.fsys.tmplChildren(d.prefix)
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	list := make([]fuse.DirEntry, len(es))
	for i, e := range es {
		list[i] = fuse.DirEntry{Name: e.name, Mode: e.mode}
	}
	return &dirHandle{entries: list}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// Writes into a template directory are refused: its content is the config's.
func (d *tmplDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, d.fsys.roErrno()
}

func (d *tmplDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.roErrno()
}

func (d *tmplDir) Unlink(ctx context.Context, name string) syscall.Errno { return d.fsys.roErrno() }
func (d *tmplDir) Rmdir(ctx context.Context, name string) syscall.Errno  { return d.fsys.roErrno() }

func (f *FS) roErrno() syscall.Errno {
	if f.opt.ReadOnly {
		return syscall.EROFS
	}
	return syscall.EACCES
}

// tmplFile is one template file. It holds no bytes: every read asks the
// daemon's rendered content, so a re-render shows at the next read after
// its invalidation.
type tmplFile struct {
	gofs.Inode
	fsys *FS
	path string
}

func (n *tmplFile) mode(m uint32) uint32 {
	if m == 0 {
		m = n.fsys.opt.FileMode
	}
	return m &^ 0o222
}

func (n *tmplFile) getattr(a *fuse.Attr) {
	f := n.fsys
	size, m, mtime, ok := f.opt.Templates.Stat(n.path)
	if !ok {
		mtime = f.start
	}
	if mtime.IsZero() {
		mtime = f.start
	}
	a.Size = uint64(size)
	a.Mode = syscall.S_IFREG | n.mode(m)
	a.Nlink = 1
	a.SetTimes(&mtime, &mtime, &mtime)
	f.setAttrCommon(a)
}

func (n *tmplFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.getattr(&out.Attr)
	return 0
}

// content is the file's bytes now; nil with EIO before a first good
// render (the daemon refuses to start without one, so only a reload that
// added a failing template gets here).
func (n *tmplFile) content() ([]byte, syscall.Errno) {
	b, err := n.fsys.opt.Templates.Content(n.path)
	if err != nil {
		n.fsys.log.Warn("reading a template file failed", "template", n.path, "err", err)
		return nil, syscall.EIO
	}
	return b, 0
}

// Open snapshots the rendering on read-write mounts (read-only mounts have
// no opens: the kernel keeps the pages until InvalidateTemplates drops
// them). Direct I/O there: a rendering's size can change between stat and
// read.
func (n *tmplFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return n.fsys.openComputed(ctx, flags, n.path, nil, n.content)
}

func (n *tmplFile) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readComputed(fh, dest, off, n.content)
}

func (n *tmplFile) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return n.fsys.flushComputed()
}

func (n *tmplFile) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return releaseComputed(fh)
}

func (n *tmplFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	if f.opt.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EACCES
	}
	_, m, _, _ := f.opt.Templates.Stat(n.path)
	if errno := f.checkModeOwner(in, f.opt.UID, f.opt.GID, n.mode(m)); errno != 0 {
		return errno
	}
	n.getattr(&out.Attr)
	return 0
}

// InvalidateTemplates queues, on the one invalidation queue, the kernel
// cache drops for template files whose bytes changed (paths) and, with
// tree, for template paths that appeared or went (a reload).
func (f *FS) InvalidateTemplates(paths []string, tree bool) {
	if (len(paths) == 0 && !tree) || !f.mounted.Load() {
		return
	}
	f.queue.put(queued{tmpl: append([]string(nil), paths...), tmplTree: tree})
}

// deliverTemplates drops the content of the named template files the
// kernel knows, and with tree the names and listings of the root and of
// every template directory it knows.
func (f *FS) deliverTemplates(paths []string, tree bool) {
	root := f.root.EmbeddedInode()
	for _, p := range paths {
		d := root
		segs := strings.Split(p, "/")
		for _, s := range segs[:len(segs)-1] {
			if d = d.GetChild(s); d == nil {
				break
			}
		}
		if d == nil {
			continue
		}
		if c := d.GetChild(segs[len(segs)-1]); c != nil {
			if _, ok := c.Operations().(*tmplFile); ok {
				c.NotifyContent(0, 0)
			}
		}
	}
	if tree {
		f.renotifyTemplates(root, "")
	}
}

// renotifyTemplates drops, under d, every name templates make now or the
// kernel knows as a template node, and the listing.
func (f *FS) renotifyTemplates(d *gofs.Inode, prefix string) {
	names := map[string]bool{}
	for _, e := range f.tmplChildren(prefix) {
		names[e.name] = true
	}
	for name, c := range d.Children() {
		switch c.Operations().(type) {
		case *tmplDir:
			p := name
			if prefix != "" {
				p = prefix + "/" + name
			}
			f.renotifyTemplates(c, p)
			names[name] = true
		case *tmplFile:
			names[name] = true
		}
	}
	for name := range names {
		d.NotifyEntry(name)
	}
	d.NotifyContent(0, 0)
}
