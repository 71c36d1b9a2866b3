package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// display is a mount-relative name for log lines (names are not secret).
func (d *dirNode) display(name string) string {
	p := d.Path(nil)
	if p == "" {
		return name
	}
	return p + "/" + name
}

// settle forgets a created file once the vault holds it.
func (d *dirNode) settle(name string, n *fileNode) {
	d.mu.Lock()
	if d.local[name] == n {
		delete(d.local, name)
	}
	d.mu.Unlock()
}

// refuse logs why a name was refused, once, and returns the errno.
func (d *dirNode) refuse(name string, err error) syscall.Errno {
	errno := toErrno(err)
	d.fsys.log.Warn("refused", "path", d.display(name), "errno", errno.Error(), "err", err)
	return errno
}

// deny logs why an operation is not allowed here and returns errno.
func (d *dirNode) deny(errno syscall.Errno, name, why string) syscall.Errno {
	d.fsys.log.Warn("refused: "+why, "path", d.display(name), "errno", errno.Error())
	return errno
}

func (d *dirNode) inVault(name string) bool {
	_, ok := d.fsys.opt.Vault.Stat(d.addr(name))
	return ok
}

// scratchName reports whether a new file of this name would be local only.
func (d *dirNode) scratchName(name string) bool {
	return scratchPattern(name) && !d.inVault(name) && !d.shadowed(name)
}

func (d *dirNode) writableHere(name string) syscall.Errno {
	if d.fsys.opt.ReadOnly {
		return syscall.EROFS
	}
	if d.kind != kindFolder {
		return d.deny(syscall.EPERM, name, "projects and environments are made in Infisical, not here")
	}
	if d.shadowed(name) {
		return d.deny(syscall.EACCES, name, "a rendered view's name: views are read-only")
	}
	return 0
}

// Create makes a new file: a scratch file stays local; a secret is pushed
// when it is first flushed (an untouched `touch NEW` pushes the empty value).
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.writableHere(name); errno != 0 {
		return nil, nil, 0, errno
	}
	p, keys := d.filePaths(name)
	if _, errno := d.fsys.openHook(ctx, p, createFlags(flags), func() []string { return keys }); errno != 0 {
		return nil, nil, 0, errno // access.go
	}
	if d.refusing(name, callerPid(ctx), opReplace) {
		return nil, nil, 0, syscall.ESTALE // an editor's recovery after a refused save
	}
	d.mu.Lock()
	_, hidden := d.hidden[name]
	d.mu.Unlock()
	if !hidden && d.inVault(name) {
		// The kernel's negative entry was stale (a secret that appeared,
		// or showed again after a refused save): the name exists.
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		ch, errno := d.fileChild(ctx, name, &fileNode{fsys: d.fsys}, out)
		if errno != 0 {
			return nil, nil, 0, errno
		}
		fh, fuseFlags, errno := ch.Operations().(*fileNode).Open(ctx, flags)
		if errno != 0 {
			return nil, nil, 0, errno
		}
		if h, ok := fh.(*handle); ok {
			// Written as if new (an editor saving, a stale negative
			// entry): still an edit of what it opened, even once emptied.
			h.editOf = h.base
		}
		return ch, fh, fuseFlags, 0
	}
	n := &fileNode{fsys: d.fsys, ed: &edit{mtime: time.Now()}}
	// n's fields are set before it is published in d.local, where other
	// requests find it (a rename onto the name asks savedByOther).
	tid := callerPid(ctx)
	scratch := d.scratchName(name)
	if scratch {
		n.scratch = true
	} else {
		if err := d.fsys.opt.Backend.CheckKey(name); err != nil {
			return nil, nil, 0, d.refuse(name, err)
		}
		if errno := d.flattens(name); errno != 0 {
			return nil, nil, 0, errno
		}
		if err := d.fsys.opt.Backend.WriteCheck(d.project, d.env); err != nil {
			return nil, nil, 0, toErrno(err)
		}
		n.pending = true
	}
	base := 0
	d.mu.Lock()
	old := d.hidden[name]
	d.mu.Unlock()
	if !scratch {
		// Another program's create would replace the key with bytes
		// derived from nothing.
		if errno := d.refuseMovedAside(name, old, tid); errno != 0 {
			return nil, nil, 0, errno
		}
	}
	if old != nil {
		// Written again after being moved to a scratch name (vim's save):
		// the new value derives from what was read of the old one.
		base = d.baseFor(name, old, tid)
		n.ed.replaced, n.ed.owner = old, tgid(tid)
	}
	d.mu.Lock()
	delete(d.hidden, name)
	d.local[name] = n
	d.mu.Unlock()
	if old != nil {
		// The scratch copy no longer stands in for it.
		old.mu.Lock()
		e := old.wr()
		e.origin, e.originDir = "", nil
		old.mu.Unlock()
	}
	ch := d.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG})
	n.getattrAt(d, name, &out.Attr)
	h := &handle{n: n, write: true, truncated: !scratch, pid: tid, base: base, editOf: base, ofSecret: !scratch, openDir: d, openName: name}
	return ch, h, fuse.FOPEN_DIRECT_IO, 0
}

// refuseMovedAside refuses with ESTALE to replace name while a running
// program other than thread tid's has moved it aside (old, the key's node
// under its scratch name; nil: none) and is about to write it again: an
// editor saving it.
func (d *dirNode) refuseMovedAside(name string, old *fileNode, tid uint32) syscall.Errno {
	if old != nil && old.movedByOther(tid) {
		return d.deny(syscall.ESTALE, name, "another program is saving this key right now (it moved it aside); retry")
	}
	return 0
}

// Unlink deletes a secret in Infisical, or drops a local file.
//
// Unlinking a view succeeds and changes nothing: `rm -r DIR`, and mv's
// copy-then-delete after EXDEV, unlink every entry of a folder and stop
// at the first refusal, but a view is only a rendering of the folder's
// secrets, which those same tools delete one by one. The view shows again
// at the next lookup, rendered from what is left.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if !d.fsys.opt.ReadOnly && viewNamed(d, name) != nil {
		d.fsys.log.Debug("unlink of a view: nothing to delete", "path", d.display(name))
		return 0
	}
	if errno := d.writableHere(name); errno != 0 {
		return errno
	}
	d.mu.Lock()
	n, isLocal := d.local[name]
	_, isHidden := d.hidden[name]
	d.mu.Unlock()
	if isLocal {
		return d.unlinkLocal(name, n, callerPid(ctx))
	}
	m, inVault := d.fsys.opt.Vault.Stat(d.addr(name))
	if isHidden || !inVault {
		return syscall.ENOENT
	}
	if d.refusing(name, callerPid(ctx), opReplace) {
		return syscall.ESTALE // the kernel's retry of a refused unlink, or an editor's recovery
	}
	// Only the version the mount shows may be deleted.
	if err := d.fsys.opt.Backend.Delete(d.addr(name), m.Version); err != nil {
		return d.refuseRetry(name, toErrno(err), callerPid(ctx))
	}
	return 0
}

// unlinkLocal drops a scratch or pending file. A scratch file that a secret
// was moved onto completes that move now: the secret is deleted.
//
// That delete removes the version the copy was taken from, or nothing: if
// Infisical moved on, the move is abandoned (the key shows again with its
// new value, the copy goes) and unlink says ESTALE.
func (d *dirNode) unlinkLocal(name string, n *fileNode, tid uint32) syscall.Errno {
	n.mu.Lock()
	e := n.rd()
	origin, od, copyOf := e.origin, e.originDir, e.copyOf
	n.mu.Unlock()
	var errno syscall.Errno
	if origin != "" && od != nil {
		base := copyOf
		if base == 0 {
			base = od.baseFor(origin, nil, 0)
		}
		if err := d.fsys.opt.Backend.Delete(od.addr(origin), base); err != nil {
			if errno = toErrno(err); errno != syscall.ESTALE {
				return errno
			}
		}
		od.mu.Lock()
		delete(od.hidden, origin)
		od.mu.Unlock()
		if errno != 0 {
			d.fsys.Invalidate(tree.Changes{Added: []vault.Addr{od.addr(origin)}})
		}
	}
	d.mu.Lock()
	if d.local[name] == n {
		delete(d.local, name)
	}
	d.mu.Unlock()
	n.mu.Lock()
	n.ed.dropScratch()
	n.mu.Unlock()
	return d.refuseRetry(name, errno, tid)
}

// Mkdir creates an Infisical folder.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.writableHere(name); errno != 0 {
		return nil, errno
	}
	if err := d.fsys.opt.Backend.CheckFolder(name); err != nil {
		return nil, d.refuse(name, err)
	}
	if err := d.fsys.opt.Backend.WriteCheck(d.project, d.env); err != nil {
		return nil, toErrno(err)
	}
	p := d.childPath(name)
	if err := d.fsys.opt.Backend.Mkdir(d.project, d.env, p); err != nil {
		return nil, toErrno(err)
	}
	return d.dirChild(ctx, name, d.folder(p), out)
}

// Rmdir deletes an empty folder (never with Infisical's forceDelete).
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.writableHere(name); errno != 0 {
		return errno
	}
	p := d.childPath(name)
	if !d.fsys.opt.Vault.HasFolder(d.project, d.env, p) {
		return syscall.ENOENT
	}
	if err := d.fsys.opt.Backend.Rmdir(d.project, d.env, p); err != nil {
		return toErrno(err)
	}
	return 0
}

// Setxattr answers ENOTSUP on folders too: mv and cp -a preserve a
// folder's ACL with setxattr and fall back to chmod on ENOTSUP, while
// go-fuse's default ENODATA fails them ("preserving permissions ... No
// data available").
func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.ENOTSUP
}

const (
	renameNoReplace = 1 // RENAME_NOREPLACE
	renameExchange  = 2 // RENAME_EXCHANGE
)

// Rename moves a secret (a rename or move in Infisical), moves a scratch
// file locally, pushes a scratch file renamed onto a secret's name (how
// sed -i and vim save), or keeps a secret moved onto a scratch name as a
// local copy (vim's backup) without deleting it yet.
func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if nd, ok := newParent.(*dirNode); ok && !d.fsys.opt.ReadOnly && name == newName &&
		viewNamed(d, name) != nil && viewNamed(nd, newName) != nil && flags&renameExchange == 0 {
		// mv moving a folder's entries one by one (after EXDEV for the
		// folder): the destination's own view renders the secrets moved
		// with it, so moving the view is done by doing nothing. The view
		// node renders whichever folder it ends up in (viewNode.folder).
		d.fsys.log.Debug("rename of a view onto the same view: nothing to move", "from", d.display(name), "to", nd.display(newName))
		return 0
	}
	if errno := d.writableHere(name); errno != 0 {
		return errno
	}
	nd, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	if errno := nd.writableHere(newName); errno != 0 {
		return errno
	}
	if flags&renameExchange != 0 {
		return syscall.EINVAL
	}
	if d.refusing(name, callerPid(ctx), opWrite) {
		return syscall.ESTALE // the kernel's retry of a refused rename
	}
	if d.fsys.opt.Vault.HasFolder(d.project, d.env, d.childPath(name)) {
		// Folders are not renamed in place: EXDEV makes mv copy and delete.
		return syscall.EXDEV
	}
	d.mu.Lock()
	src, srcLocal := d.local[name]
	_, srcHidden := d.hidden[name]
	d.mu.Unlock()
	if !srcLocal && (srcHidden || !d.inVault(name)) {
		return syscall.ENOENT
	}
	if flags&renameNoReplace != 0 && (nd.inVault(newName) || nd.hasLocal(newName)) {
		return syscall.EEXIST
	}
	toScratch := nd.scratchName(newName)
	if !toScratch {
		if err := d.fsys.opt.Backend.CheckKey(newName); err != nil {
			return d.refuse(newName, err)
		}
		if errno := nd.flattens(newName); errno != 0 {
			return errno
		}
	}
	switch {
	case srcLocal && toScratch:
		d.moveLocal(name, nd, newName, src)
		return 0
	case srcLocal && src.isScratch():
		nd.mu.Lock()
		target, aside := nd.local[newName], nd.hidden[newName]
		nd.mu.Unlock()
		if target != nil {
			if busy, _, _ := target.savedByOther(callerPid(ctx)); busy {
				// An editor is saving the key (sed -i beside vim): the
				// rename would unlink its file mid-write, and its recovery
				// would then delete the secret.
				return nd.deny(syscall.ESTALE, newName, "another program is saving this key right now; retry")
			}
		}
		// Replacing it now would make the editor's next write an edit of
		// this one, which it does not hold.
		if errno := nd.refuseMovedAside(newName, aside, callerPid(ctx)); errno != 0 {
			return errno
		}
		return d.pushScratch(name, nd, newName, src, callerPid(ctx))
	case srcLocal: // pending secret, not pushed yet: its push goes to the new name
		d.moveLocal(name, nd, newName, src)
		return 0
	case toScratch:
		return d.secretToScratch(name, nd, newName, tgid(callerPid(ctx)))
	default:
		if err := d.fsys.opt.Backend.Rename(d.addr(name), nd.addr(newName), d.baseFor(name, nil, 0)); err != nil {
			return d.refuseRetry(name, toErrno(err), callerPid(ctx))
		}
		nd.dropLocal(newName)
		return 0
	}
}

func (d *dirNode) hasLocal(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.local[name]
	return ok
}

// dropLocal forgets a local file that a rename replaced.
func (d *dirNode) dropLocal(name string) {
	d.mu.Lock()
	n := d.local[name]
	delete(d.local, name)
	delete(d.hidden, name)
	d.mu.Unlock()
	if n != nil {
		n.mu.Lock()
		n.ed.dropLocal()
		n.mu.Unlock()
	}
}

func (d *dirNode) moveLocal(name string, nd *dirNode, newName string, n *fileNode) {
	nd.dropLocal(newName)
	d.mu.Lock()
	delete(d.local, name)
	d.mu.Unlock()
	nd.mu.Lock()
	nd.local[newName] = n
	nd.mu.Unlock()
}

// pushScratch saves an edited scratch file as a secret: the push is the
// rename's result, so a failed push fails the rename and sed -i exits
// non-zero with the secret unchanged.
func (d *dirNode) pushScratch(name string, nd *dirNode, newName string, n *fileNode, tid uint32) syscall.Errno {
	if err := nd.fsys.opt.Backend.WriteCheck(nd.project, nd.env); err != nil {
		return toErrno(err)
	}
	n.mu.Lock()
	e := n.rd()
	v := append([]byte(nil), e.local...)
	origin, od, copyOf := e.origin, e.originDir, e.copyOf
	n.mu.Unlock()
	defer clear(v)
	// The scratch file is an edit of the key it replaces (sed -i, vim):
	// checked against what the mount last served of that key, or, for a
	// copy of a key moved aside (vim restoring its backup), against the
	// version it was copied from.
	var target *fileNode
	if ch := nd.GetChild(newName); ch != nil {
		target, _ = ch.Operations().(*fileNode)
	}
	base := copyOf
	if base == 0 {
		base = nd.baseFor(newName, target, tid)
	}
	if err := d.fsys.push(nd.addr(newName), v, base); err != nil {
		errno := toErrno(err)
		nd.refuseRetry(newName, errno, tid) // the key: an editor may write the backup back
		return d.refuseRetry(name, errno, tid)
	}
	d.mu.Lock()
	delete(d.local, name)
	d.mu.Unlock()
	nd.dropLocal(newName)
	n.mu.Lock()
	n.scratch = false
	n.ed.dropScratch()
	n.mu.Unlock()
	if origin != "" && od != nil && (od != nd || origin != newName) {
		// The scratch copy stood in for another secret: that move is done.
		if err := d.fsys.opt.Backend.Delete(od.addr(origin), 0); err != nil {
			d.fsys.log.Warn("the secret this file was moved from could not be deleted", "path", od.display(origin), "err", err)
		}
	}
	if od != nil {
		od.mu.Lock()
		delete(od.hidden, origin)
		od.mu.Unlock()
	}
	return 0
}

// secretToScratch keeps a copy of the secret under the scratch name and
// hides the secret's name; Infisical is not changed until the copy is
// dropped (then the secret is deleted) or the name is written again.
func (d *dirNode) secretToScratch(name string, nd *dirNode, newName string, mover uint32) syscall.Errno {
	v, m, err := d.fsys.opt.Vault.GetForm(d.addr(name), d.form())
	if err != nil {
		return syscall.ENOENT
	}
	b := append([]byte(nil), v.Bytes()...)
	v.Wipe()
	var n *fileNode
	if ch := d.GetChild(name); ch != nil {
		n, _ = ch.Operations().(*fileNode)
	}
	if n == nil {
		n = &fileNode{fsys: d.fsys}
	}
	n.mu.Lock()
	e := n.wr()
	n.scratch, e.local, e.origin, e.originDir, e.mtime = true, b, name, d, time.Now()
	e.copyOf, e.movedBy = m.Version, mover
	n.mu.Unlock()
	nd.dropLocal(newName)
	d.mu.Lock()
	d.hidden[name] = n
	d.mu.Unlock()
	nd.mu.Lock()
	nd.local[newName] = n
	nd.mu.Unlock()
	return 0
}
