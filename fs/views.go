package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/vault"
)

// view is a rendered file, or a directory of another view of the secrets,
// that directories show besides their secrets. Every rendered file is
// read-only (writers get EACCES) and every view's name is reserved in every
// folder of the expanded view (a secret of that name is reachable through
// .raw/): lookup, readdir, name checks and invalidation all read the views
// table below, so a new view is one entry and one render function.
type view struct {
	name string
	// shownIn reports whether directory d shows the view.
	shownIn func(d *dirNode) bool
	// render returns the view's bytes now; the caller wipes them.
	render func(d *dirNode) []byte
	// dir, for a directory view, makes its node; render is then nil.
	dir func(d *dirNode) gofs.InodeEmbedder
	// by is the kind of change that invalidates it.
	by invalidatedBy
}

type invalidatedBy int

const (
	bySecrets invalidatedBy = iota // a secret of the view's folder was added, changed or removed
	byStatus                       // the sync status changed
	byNothing                      // a directory view: its entries are invalidated as themselves
)

var views = []view{
	{name: ".status", shownIn: (*dirNode).IsRoot, render: renderStatus, by: byStatus},
	{name: ".env", shownIn: isFolder, render: folderView(RenderEnv), by: bySecrets},
	{name: ".json", shownIn: isFolder, render: folderView(RenderJSON), by: bySecrets},
	{name: ".yaml", shownIn: isFolder, render: folderView(RenderYAML), by: bySecrets},
	// The environment's folders again with raw values (raw.go).
	{name: rawName, shownIn: isEnvRoot, dir: rawRoot, by: byNothing},
	// Earlier versions of every secret (history.go).
	{name: historyName, shownIn: isEnvRoot, dir: historyRoot, by: byNothing},
}

// viewNamed is the view of that name shown in d, or nil.
func viewNamed(d *dirNode, name string) *view {
	for i := range views {
		if views[i].name == name && views[i].shownIn(d) {
			return &views[i]
		}
	}
	return nil
}

// reserved reports whether name is a view's, anywhere.
func reserved(name string) bool { return reservedNames[name] }

// reservedNames is the views' names, filled from the table at start (a
// render function that checks names cannot read the table it is in).
var reservedNames = map[string]bool{}

func init() {
	for i := range views {
		reservedNames[views[i].name] = true
	}
}

// isFolder: rendered views show in the expanded view's folders (the raw
// mirror shows secrets only, so a secret named like a view is reachable).
func isFolder(d *dirNode) bool { return d.kind == kindFolder && !d.raw }

func isEnvRoot(d *dirNode) bool { return isFolder(d) && d.path == "/" }

func renderStatus(d *dirNode) []byte {
	if d.fsys.opt.Status == nil {
		return []byte("{}\n")
	}
	return d.fsys.opt.Status()
}

// folderView renders a folder's secrets from one vault snapshot.
func folderView(fn func([]vault.Entry) []byte) func(d *dirNode) []byte {
	return func(d *dirNode) []byte {
		es, _, err := d.fsys.opt.Vault.Snapshot(d.project, d.env, d.path)
		if err != nil {
			d.fsys.log.Warn("rendering a view failed", "path", d.display(""), "err", err)
			return nil
		}
		// A secret the file of which refuses reads (a hidden value,
		// references that cannot be expanded) is left out, never shown
		// as the placeholder or the unexpanded text; .status says why.
		kept := es[:0]
		for _, e := range es {
			if e.Meta.Hidden || e.Meta.ExpandErr != "" || (reserved(e.Key) && !d.raw) {
				e.Value.Wipe()
				continue
			}
			kept = append(kept, e)
		}
		return fn(kept)
	}
}

// viewNode is one view in one directory.
type viewNode struct {
	gofs.Inode
	v   *view
	dir *dirNode
}

// folder is the directory the view is in now: a rename (mv moving a
// folder's entries) moves the node, and it then renders its new folder.
func (n *viewNode) folder() *dirNode {
	if _, p := n.Parent(); p != nil {
		if d, ok := p.Operations().(*dirNode); ok {
			return d
		}
	}
	return n.dir
}

func (n *viewNode) render() []byte { return n.v.render(n.folder()) }

// Setxattr and Removexattr answer ENOTSUP, as on secrets: cp and mv then
// fall back to chmod instead of failing on go-fuse's default ENODATA.
func (n *viewNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

func (n *viewNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.ENOTSUP
}

func (n *viewNode) getattr(a *fuse.Attr) {
	f := n.dir.fsys
	b := n.render()
	a.Size = uint64(len(b))
	clear(b)
	a.Mode = syscall.S_IFREG | (f.opt.FileMode &^ 0o222)
	a.Nlink = 1
	now := time.Now()
	a.SetTimes(&now, &now, &now)
	f.setAttrCommon(a)
	n.viewAccess(a) // access.go
}

func (n *viewNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.getattr(&out.Attr)
	return 0
}

// Open snapshots the rendering (read-write mounts; read-only mounts have no
// opens). Direct I/O: a rendering's size can change between stat and read.
func (n *viewNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return n.dir.fsys.openComputed(ctx, flags, n.path(), n.keys, func() ([]byte, syscall.Errno) { return n.render(), 0 })
}

func (n *viewNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readComputed(fh, dest, off, func() ([]byte, syscall.Errno) { return n.render(), 0 })
}

func (n *viewNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return n.dir.fsys.flushComputed()
}

func (n *viewNode) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	return releaseComputed(fh)
}

func (n *viewNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.dir.fsys
	if f.opt.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EACCES
	}
	n.getattr(&out.Attr)
	if errno := f.checkModeOwner(in, out.Attr.Uid, out.Attr.Gid, out.Attr.Mode); errno != 0 {
		return errno
	}
	return 0
}
