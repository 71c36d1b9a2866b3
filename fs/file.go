package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// fileNode is a secret, or a scratch file. It keeps no value of a secret: it
// reads the vault at its current address, worked out from its parent and name
// at each call, so a rename needs no bookkeeping here.
type fileNode struct {
	gofs.Inode
	fsys *FS
	coh  coherence // what the kernel caches of it (read-only mounts)

	// mu guards the fields below and ed's. Lock order: dirNode.mu, then
	// fileNode.mu, then handle.mu; none is held across a Backend call.
	mu sync.Mutex
	// ed is what only a file written through the mount needs; nil for
	// the many that are only read (one fileNode per file the kernel
	// holds). Read it with rd, set it with wr.
	ed *edit
	// served is the version last read of it, for the version check of
	// writes derived from a read (served.go).
	served int
	// scratch files are local: their content lives in ed.local only.
	scratch bool
	// pending: created through the mount and not yet pushed.
	pending bool
}

// edit is a fileNode's state as a file being written through the mount.
type edit struct {
	// local is a scratch or pending file's content, in memory only.
	local []byte
	mtime time.Time
	// origin is the secret name a scratch file was moved from (hidden in
	// its directory until it is written again or the scratch copy dropped).
	origin    string
	originDir *dirNode
	// copyOf is the version a scratch copy of a secret was taken from
	// (vim's backup), 0 for a scratch file written afresh.
	copyOf int
	// replaced is the secret's node moved aside to a scratch name that
	// this created file stands in for (vim: rename KEY KEY~, create KEY).
	// If the first push fails, the move is undone in the mount (see
	// dropPending), never in Infisical.
	replaced *fileNode
	// truncOpens are the write opens whose O_TRUNC may still come: the
	// kernel sends it next as a SETATTR without a handle, from the same
	// thread, so they are kept by the caller's thread id (one per open in
	// flight; concurrent opens of one file come from different threads).
	truncOpens map[uint32]*handle
	// movedBy is the process that moved the secret aside to make this
	// scratch copy; owner is the process saving a file that replaced one.
	movedBy, owner uint32
}

// rd is a copy of n's edit state, for reading (the zero one when it has
// none; a copy, so nothing can be set through it). Called with n.mu held.
func (n *fileNode) rd() edit {
	if n.ed == nil {
		return edit{}
	}
	return *n.ed
}

// dropLocal wipes and forgets a local file's content. Nil-safe, as are
// dropScratch and forgetReplaced; called with the node's mu held.
func (e *edit) dropLocal() {
	if e != nil {
		clear(e.local)
		e.local = nil
	}
}

// dropScratch is dropLocal, and forgets where a scratch copy came from.
func (e *edit) dropScratch() {
	if e != nil {
		e.dropLocal()
		e.origin, e.originDir, e.copyOf = "", nil, 0
	}
}

// forgetReplaced: the file no longer stands in for a key moved aside.
func (e *edit) forgetReplaced() {
	if e != nil {
		e.replaced = nil
	}
}

// wr is n's edit state for setting, made on first use. Called with n.mu
// held.
func (n *fileNode) wr() *edit {
	if n.ed == nil {
		n.ed = &edit{}
	}
	return n.ed
}

// where is the node's directory and name now; ok is false once unlinked.
func (n *fileNode) where() (d *dirNode, name string, ok bool) {
	name, p := n.Parent()
	if p == nil {
		return nil, "", false
	}
	d, ok = p.Operations().(*dirNode)
	return d, name, ok
}

// opensAsSecret reports whether an open by thread tid is of a secret: the
// node is one, or it is a secret that a running editor other than tid's
// process has just moved aside to save it (vim: rename KEY KEY~). The
// kernel resolves the path before the move and opens after it, so a `>>
// KEY` can land on the backup; its writes must not go there unnoticed.
func (n *fileNode) opensAsSecret(tid uint32) bool {
	if !n.isScratch() {
		return true
	}
	// Not origin: the editor's new file clears it as soon as it is
	// created, while an open resolved before the move may still come.
	return n.movedByOther(tid)
}

// movedByOther reports whether a running process other than thread tid's
// moved this secret aside (an editor saving it).
func (n *fileNode) movedByOther(tid uint32) bool {
	n.mu.Lock()
	mover := n.rd().movedBy
	n.mu.Unlock()
	return mover != 0 && tgid(tid) != mover && alive(mover)
}

func (n *fileNode) isScratch() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.scratch
}

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d, name, ok := n.where()
	if !ok {
		// Unlinked but still open: what the handle holds is all there is.
		if h, ok := fh.(*handle); ok {
			h.attr(&out.Attr)
			return 0
		}
		return syscall.ENOENT
	}
	return n.getattrAt(d, name, &out.Attr)
}

func (n *fileNode) getattrAt(d *dirNode, name string, a *fuse.Attr) syscall.Errno {
	n.fsys.setAttrCommon(a)
	a.Nlink = 1
	n.mu.Lock()
	scratch, pending, size, mt := n.scratch, n.pending, len(n.rd().local), n.rd().mtime
	n.mu.Unlock()
	switch {
	case scratch:
		a.Mode = syscall.S_IFREG | n.fsys.fileMode(false)
		a.Size = uint64(size)
		n.setTime(a, mt)
	case pending:
		a.Mode = syscall.S_IFREG | n.fsys.fileMode(false)
		n.setTime(a, mt)
	default:
		addr := d.addr(name)
		m, ok := n.fsys.opt.Vault.Stat(addr)
		if !ok {
			return syscall.ENOENT
		}
		if d.raw {
			m.Size = m.RawSize
		}
		if n.fsys.pageCache() {
			// Report the version the kernel caches; the invalidation on
			// its way moves it to the new one (see coherence).
			n.coh.waitDelivery()
			if m, ok = n.coh.attr(func() (vault.Sealed, bool) { return n.fsys.opt.Vault.SealForm(addr, d.form()) }); !ok {
				return syscall.ENOENT
			}
		}
		a.Mode = syscall.S_IFREG | d.secretMode(m)
		a.Size = uint64(m.Size)
		n.setTime(a, m.UpdatedAt)
	}
	n.fsys.applyAccess(a, func() (string, []string) { return d.filePaths(name) }) // access.go
	a.Blocks = (a.Size + 511) / 512
	return 0
}

func (n *fileNode) setTime(a *fuse.Attr, t time.Time) {
	if t.IsZero() {
		t = n.fsys.start // imported secrets come without times
	}
	a.SetTimes(&t, &t, &t)
}

// content returns a copy of the file's bytes now and their version (0 for
// a local file); the caller wipes the bytes.
func (n *fileNode) content() ([]byte, int, syscall.Errno) {
	var b []byte
	var version int
	errno := n.use(false, func(v []byte, ver int) { b, version = append([]byte(nil), v...), ver })
	return b, version, errno
}

// use runs fn on the file's plaintext and wipes the vault's copy after.
// pageRead serves the version the kernel's page cache holds (see
// coherence); otherwise the current one. fn gets the bytes and their
// version (0 for a local file) and must not keep v.
func (n *fileNode) use(pageRead bool, fn func(v []byte, version int)) syscall.Errno {
	n.mu.Lock()
	if n.scratch || n.pending {
		defer n.mu.Unlock()
		fn(n.rd().local, 0)
		return 0
	}
	n.mu.Unlock()
	d, name, ok := n.where()
	if !ok {
		return syscall.ENOENT
	}
	addr := d.addr(name)
	if errno := d.readRefused(name); errno != 0 {
		return errno
	}
	var v *vault.Value
	var m vault.Meta
	var err error
	if pageRead {
		n.coh.read(func(s vault.Sealed) {
			if s.Empty() {
				v, m, err = n.fsys.opt.Vault.GetForm(addr, d.form())
			} else {
				v, err = n.fsys.opt.Vault.Open(addr, s)
				m = s.Meta()
			}
		})
	} else {
		v, m, err = n.fsys.opt.Vault.GetForm(addr, d.form())
	}
	if err != nil {
		return syscall.ENOENT
	}
	fn(v.Bytes(), m.Version)
	v.Wipe()
	return 0
}

// OnForget wipes the pinned copy once the kernel forgot the file.
func (n *fileNode) OnForget() { n.coh.forget() }

// Open serves read-write mounts. Read-only mounts answer ENOSYS: the kernel
// then stops sending OPEN, FLUSH and RELEASE for the whole mount and keeps
// the page cache, so a repeat read costs no request at all.
//
// On a read-write mount every open gets a snapshot of the value and direct
// I/O: no byte of the page cache is shared between opens, so a reader never
// sees a writer's unpushed bytes, a size the kernel took from a writer, or
// half of two versions; each read() returns bytes of the one value the
// open saw. That costs a READ round trip per read (measured in make bench).
func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	p, keys := n.mountPaths()
	if skip, errno := n.fsys.openHook(ctx, p, flags, func() []string { return keys }); skip || errno != 0 {
		return nil, 0, orENOSYS(skip, errno) // access.go
	}
	if n.fsys.opt.ReadOnly {
		return nil, roOpen, 0 // reads go to the node, through coherence
	}
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write {
		if errno := n.writable(); errno != 0 {
			return nil, 0, errno
		}
	}
	tid := callerPid(ctx)
	od, oname, ok := n.where()
	if ok && write && od.refusing(oname, tid, opWrite) {
		return nil, 0, syscall.ESTALE // the kernel's retry of a refused open
	}
	// ofSecret matters to writes only (commit); for a moved-aside backup
	// it costs /proc reads.
	h := &handle{n: n, write: write, pid: tid, appending: write && flags&syscall.O_APPEND != 0,
		ofSecret: write && n.opensAsSecret(tid), openDir: od, openName: oname}
	if busy, d, name := n.savedByOther(h.pid); busy {
		// An editor is saving this key: another program may not write
		// its unpushed bytes, and reads what Infisical holds.
		if write {
			return nil, 0, d.deny(syscall.ESTALE, name, "another program is saving this key right now; retry")
		}
		if errno := d.readRefused(name); errno != 0 {
			return nil, 0, errno
		}
		v, m, err := n.fsys.opt.Vault.GetForm(d.addr(name), d.form())
		if err != nil {
			return nil, 0, syscall.ENOENT
		}
		h.buf = append([]byte(nil), v.Bytes()...)
		h.base = m.Version // what this reader's own edit will derive from
		v.Wipe()
		return h, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
	}
	if !write || flags&syscall.O_TRUNC == 0 {
		buf, version, errno := n.content()
		if errno != 0 {
			return nil, 0, errno
		}
		h.buf = buf
		// What is written through this open derives from this snapshot
		// (an append, an edit in place); a later truncation to 0 may
		// make it blind (see handle.truncate).
		h.base = version
		if write && flags&syscall.O_APPEND != 0 && version > 0 {
			// bash ignores close() errors on `>>`: check now, where the
			// shell reports it; the push then only compares with the
			// vault (no second request).
			if errno := n.checkBase(version, h.pid); errno != 0 {
				clear(h.buf)
				return nil, 0, errno
			}
			h.checked = true
		}
	} else {
		h.truncated = true
	}
	if !write {
		return h, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
	}
	// The kernel strips O_TRUNC from OPEN and sends it next as a
	// handle-less SETATTR from the same process: remember who opened.
	n.mu.Lock()
	e := n.wr()
	if e.truncOpens == nil {
		e.truncOpens = map[uint32]*handle{}
	}
	e.truncOpens[h.pid] = h
	n.mu.Unlock()
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// callerPid is the process a request comes from (0 when unknown).
func callerPid(ctx context.Context) uint32 {
	if fc, ok := ctx.(*fuse.Context); ok {
		return fc.Caller.Pid
	}
	return 0
}

// writable fails an open-for-write whose push is already known to fail.
func (n *fileNode) writable() syscall.Errno {
	if n.isScratch() {
		return 0
	}
	d, name, ok := n.where()
	if !ok {
		return 0
	}
	if m, ok := n.fsys.opt.Vault.Stat(d.addr(name)); ok && m.ReadOnly {
		n.fsys.log.Warn("imported secrets are read-only; edit them in the environment they are imported from", "path", d.display(name))
		return syscall.EACCES
	}
	if errno := d.flattens(name); errno != 0 {
		return errno
	}
	if errno := d.readRefused(name); errno != 0 {
		return errno // a hidden value: nothing to edit from here
	}
	if err := n.fsys.opt.Backend.WriteCheck(d.project, d.env); err != nil {
		return toErrno(err)
	}
	return 0
}

// Read serves a handle's snapshot, or, on a read-only mount where there is
// no open, the vault directly.
func (n *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.read(dest, off)
	}
	k := 0
	errno := n.use(true, func(v []byte, _ int) {
		if off < int64(len(v)) {
			k = copy(dest, v[off:])
		}
	})
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *fileNode) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	return h.writeAt(data, off)
}

func (n *fileNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if n.fsys.opt.ReadOnly {
		return syscall.ENOSYS
	}
	if h, ok := fh.(*handle); ok {
		return h.commit()
	}
	return 0
}

// Fsync pushes like close: vim fsyncs and fails its write (E667) otherwise.
func (n *fileNode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return h.commit()
	}
	return 0
}

func (n *fileNode) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		h.release()
	}
	return 0
}

// Setattr truncates (through the open handle, or by an immediate push for
// truncate(2) on a path), accepts chmod/chown that change nothing and
// utimes, and refuses real mode and owner changes with EPERM.
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.fsys.opt.ReadOnly {
		return syscall.EROFS
	}
	d, name, ok := n.where()
	mode := n.fsys.fileMode(false)
	if ok {
		if m, found := n.fsys.opt.Vault.Stat(d.addr(name)); found && !n.isScratch() {
			mode = d.secretMode(m)
		}
	}
	p, keys := n.mountPaths()
	uid, gid, mode := n.fsys.accessMode(p, false, mode, keys) // access.go
	if errno := n.fsys.checkModeOwner(in, uid, gid, mode); errno != 0 {
		return errno
	}
	if _, sized := in.GetSize(); sized && fh == nil {
		if errno := n.fsys.checkCall(ctx, p, keys, true); errno != 0 { // access.go
			return errno
		}
	}
	if sz, ok := in.GetSize(); ok && sz == 0 && fh == nil && n.takeTruncOpen(ctx) != nil {
		// The O_TRUNC of the caller's own write open: the handle starts
		// empty, but Infisical still holds the old value until close, so
		// the kernel is told the old size and keeps the old pages.
	} else if ok {
		if h, isH := fh.(*handle); isH && h.write {
			if errno := h.truncate(sz); errno != 0 {
				return errno
			}
		} else if errno := n.truncatePath(sz); errno != 0 {
			return errno
		}
	}
	if h, isH := fh.(*handle); isH && !ok {
		h.attr(&out.Attr)
		return 0
	}
	if !ok {
		return syscall.ENOENT
	}
	if errno := n.getattrAt(d, name, &out.Attr); errno != 0 {
		return errno
	}
	if h, isH := fh.(*handle); isH && h.write {
		h.mu.Lock()
		out.Attr.Size = uint64(len(h.buf))
		h.mu.Unlock()
	}
	return 0
}

// takeTruncOpen matches a handle-less truncate to 0 with the write open the
// same thread just made, and empties that handle.
func (n *fileNode) takeTruncOpen(ctx context.Context) *handle {
	fc, ok := ctx.(*fuse.Context)
	if !ok {
		return nil
	}
	n.mu.Lock()
	h := n.rd().truncOpens[fc.Caller.Pid]
	if h == nil {
		n.mu.Unlock()
		return nil
	}
	delete(n.rd().truncOpens, fc.Caller.Pid)
	n.mu.Unlock()
	// The open's O_TRUNC: the value is replaced, not edited, unless the
	// file stands in for a key moved aside (served.go).
	h.mu.Lock()
	base := h.editOf
	clear(h.buf)
	h.buf = h.buf[:0]
	h.truncated = true
	h.base = base
	h.mu.Unlock()
	return h
}

func (n *fileNode) forgetTruncOpen(h *handle) {
	n.mu.Lock()
	if e := n.rd(); e.truncOpens[h.pid] == h {
		delete(e.truncOpens, h.pid)
	}
	n.mu.Unlock()
}

// truncatePath is truncate(2) without an open file: push the cut value now.
func (n *fileNode) truncatePath(sz uint64) syscall.Errno {
	if sz > maxValue {
		return syscall.EFBIG
	}
	if errno := n.writable(); errno != 0 {
		return errno
	}
	b, version, errno := n.content()
	if errno != 0 {
		return errno
	}
	defer func() { clear(b) }()
	if uint64(len(b)) > sz {
		b = b[:sz]
	} else {
		b = append(b, make([]byte, int(sz)-len(b))...)
	}
	return n.store(b, version) // the cut value derives from this version
}

// store makes b the file's content: local for a scratch file, a push for a
// secret, checked against version base when above 0. b is the caller's
// (and still wiped by it).
func (n *fileNode) store(b []byte, base int) syscall.Errno {
	d, name, ok := n.where()
	if !ok {
		n.mu.Lock()
		scratch := n.scratch
		n.mu.Unlock()
		if scratch {
			return 0 // a local file unlinked while open: nothing to push
		}
		// A secret removed or replaced while open for writing (sed -i's
		// rename onto it beside a `>>`): the bytes would go nowhere, as on
		// a local disk, but its writer must not believe they landed.
		n.fsys.log.Warn("refused: the secret was removed or replaced while open for writing; this write reached nothing; re-read and retry", "errno", syscall.ESTALE.Error())
		return syscall.ESTALE
	}
	n.mu.Lock()
	if n.scratch {
		e := n.wr()
		clear(e.local)
		e.local = append([]byte(nil), b...)
		e.mtime = time.Now()
		n.mu.Unlock()
		return 0
	}
	n.mu.Unlock()
	if err := n.fsys.push(d.addr(name), b, base); err != nil {
		errno := toErrno(err)
		if n.dropPending(d, name, errno) {
			n.fsys.log.Info("created file removed: its first push failed", "path", d.display(name), "errno", errno)
		}
		return errno
	}
	n.mu.Lock()
	n.pending = false
	n.ed.forgetReplaced()
	n.mu.Unlock()
	d.settle(name, n)
	return 0
}

// dropPending forgets a created-but-never-pushed file after a failed push,
// so the name does not look written.
//
// The name then shows the secret again, as Infisical now holds it. If the
// file stood in for a key moved aside (vim's save: rename KEY KEY~, create
// KEY) and its push was refused as stale, the editor's recovery follows:
// unlink KEY (its failed file, it believes) and the kernel's retry of that
// unlink are refused, so they cannot delete the secret; the backup is a
// plain scratch copy that a rename back is checked against (copyOf).
func (n *fileNode) dropPending(d *dirNode, name string, errno syscall.Errno) bool {
	n.mu.Lock()
	e := n.rd()
	p, replaced, owner := n.pending, e.replaced, e.owner
	n.ed.forgetReplaced()
	if p {
		// The kernel may still reach this inode through a cached entry:
		// from now on it reads the vault at its name like any secret
		// (the value Infisical holds, or ENOENT), not its unpushed bytes.
		n.pending = false
		n.ed.dropLocal()
	}
	n.mu.Unlock()
	if !p {
		return false
	}
	d.mu.Lock()
	if d.local[name] == n {
		delete(d.local, name)
	}
	d.mu.Unlock()
	if replaced != nil && errno == syscall.ESTALE {
		d.refuseProcess(name, owner, false) // the editor's recovery comes next
	}
	d.fsys.Invalidate(tree.Changes{Removed: []vault.Addr{d.addr(name)}})
	return true
}

// checkModeOwner accepts a chmod or chown that changes nothing (sed -i
// re-applies the mode and owner it read) and refuses real changes.
func (f *FS) checkModeOwner(in *fuse.SetAttrIn, uid, gid, mode uint32) syscall.Errno {
	if m, ok := in.GetMode(); ok && m&0o7777 != mode&0o7777 {
		return syscall.EPERM
	}
	if u, ok := in.GetUID(); ok && u != uid {
		return syscall.EPERM
	}
	if g, ok := in.GetGID(); ok && g != gid {
		return syscall.EPERM
	}
	return 0
}

// maxValue is Infisical's request body limit (1 MiB).
const maxValue = 1 << 20
