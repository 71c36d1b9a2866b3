package fs

import (
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// handle is one open file. Reads come from a snapshot taken at open, so one
// open sees one version; writes go to the same buffer and are pushed on
// flush (close) and fsync, whose result is what close() and fsync() return.
// Release's result is discarded by the kernel, so nothing is pushed there.
type handle struct {
	n     *fileNode // nil for a view's snapshot
	write bool
	pid   uint32 // the process that opened it
	// ofSecret: opened as a secret, not a scratch file. If the node is
	// moved to a scratch name while open (vim renames KEY to KEY~ to save
	// it), this handle's writes would land in the editor's backup, which
	// the editor deletes: they are refused instead.
	ofSecret bool
	// openDir and openName are where it was opened, for a refusal after
	// the node was replaced or removed meanwhile.
	openDir  *dirNode
	openName string

	// mu guards the fields below; it is the last lock in the order
	// (dirNode.mu, fileNode.mu, handle.mu) and is never held across a
	// push: commit copies the bytes and pushes unlocked.
	mu  sync.Mutex
	buf []byte // plaintext; wiped at release
	seq uint64 // bumped by every change to buf, so a commit knows what it pushed
	// base is the version of the secret the bytes derive from (0: a
	// blind overwrite); see served.go. A push moves it to the version
	// pushed, so the handle's next commit is checked against its own.
	base int
	// checked: base was confirmed with Infisical at open (an append), so a
	// push compares it with the vault only.
	checked bool
	// readFrom: a READ was answered from this open (served.go).
	readFrom bool
	// appending: opened with O_APPEND. The kernel computes an append's
	// offset from its cached size, which can be a version behind the
	// snapshot; every write goes to the end of buf instead.
	appending bool
	// editOf is the version this file's new content is an edit of,
	// whatever is truncated later: set when a key moved aside is written
	// again (vim: rename KEY KEY~, open KEY, ftruncate, write).
	editOf int
	// dirty: written (or truncated through the handle) since the last
	// push; flush and fsync push it.
	dirty bool
	// truncated: opened with O_TRUNC or created, and not pushed since.
	// The shell opens, dup2s and closes the original fd before writing,
	// so a flush with nothing written must not push the empty value; a
	// handle that is never written (`: > KEY`, `touch NEW`) pushes it at
	// release instead, where only the log can report a failure.
	truncated bool
	// failed: a write was refused (EFBIG); nothing is pushed at release,
	// so a failed write loses nothing.
	failed bool
}

func (h *handle) read(dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	k := 0
	if off < int64(len(h.buf)) {
		k = copy(dest, h.buf[off:])
	}
	first := !h.readFrom
	h.readFrom = true
	version := h.base
	h.mu.Unlock()
	if first && h.n != nil {
		// What was read is what a later edit derives from: an open that
		// reads nothing (vim re-opening the key just before saving its
		// older buffer) serves nothing. fileNode.mu after handle.mu's
		// release: the lock order.
		h.n.recordServed(version)
		if h.openDir != nil {
			h.openDir.noteReader(h.openName, h.pid, version)
		}
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (h *handle) writeAt(data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	h.n.forgetTruncOpen(h) // a truncate after writing is not the open's
	n, tooBig, first := h.writeLocked(data, off)
	if tooBig > 0 && first { // logged after handle.mu: no lock across I/O
		h.n.fsys.log.Warn("refused: a secret's value is at most 1 MiB (Infisical's request limit)", "path", h.n.display(), "errno", syscall.EFBIG.Error(), "limit_bytes", maxValue, "write_end", tooBig)
	}
	if tooBig > 0 {
		return 0, syscall.EFBIG
	}
	return n, 0
}

// writeLocked stores data at off under handle.mu. A write past Infisical's
// limit is refused: tooBig is where it would have ended, first whether it
// is this handle's first refusal.
func (h *handle) writeLocked(data []byte, off int64) (n uint32, tooBig int64, first bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.appending {
		off = int64(len(h.buf))
	}
	end := off + int64(len(data))
	if end > maxValue {
		// Infisical takes at most 1 MiB in a request: refuse the write
		// itself so the caller learns it here, not at close.
		first = !h.failed
		h.failed = true
		return 0, end, first
	}
	if end > int64(cap(h.buf)) {
		nb := make([]byte, end, max(end, 2*int64(cap(h.buf))))
		copy(nb, h.buf)
		clear(h.buf)
		h.buf = nb
	} else if end > int64(len(h.buf)) {
		h.buf = h.buf[:end]
	}
	copy(h.buf[off:], data)
	h.dirty = true
	h.seq++
	return uint32(len(data)), 0, false
}

func (h *handle) truncate(sz uint64) syscall.Errno {
	if sz > maxValue {
		return syscall.EFBIG
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sz == 0 {
		// Emptied through the handle: a rewrite, not an edit, unless the
		// file stands in for a key moved aside (served.go).
		h.base = h.editOf
	}
	if int(sz) <= len(h.buf) {
		clear(h.buf[sz:])
		h.buf = h.buf[:sz]
	} else {
		h.buf = append(h.buf, make([]byte, int(sz)-len(h.buf))...)
	}
	h.dirty = true
	h.seq++
	return 0
}

// commit pushes what was written since the last commit. A failed push keeps
// the handle dirty, so a later flush of a dup'd descriptor tries again.
// The bytes are copied and pushed with no lock held: a push can take as
// long as the push timeout, and a read or write of the same handle must
// not wait for it.
func (h *handle) commit() syscall.Errno {
	if !h.write {
		return 0
	}
	// Before handle.mu: fileNode.mu comes first in the lock order.
	movedAside := h.ofSecret && h.n.isScratch()
	h.mu.Lock()
	if !h.dirty || h.failed {
		h.mu.Unlock()
		return 0
	}
	// Whatever the outcome, close() has now reported on this handle's
	// value: release must not push it again behind the caller's back.
	h.truncated = false
	if movedAside {
		h.mu.Unlock()
		h.n.fsys.log.Warn("refused: the secret was moved aside while open for writing (an editor saving it); this write reached nothing; re-read and retry",
			"path", h.n.display(), "errno", syscall.ESTALE.Error())
		return syscall.ESTALE
	}
	b, seq, base, checked := append([]byte(nil), h.buf...), h.seq, h.base, h.checked
	h.mu.Unlock()
	defer clear(b)
	push := base
	if checked && base != 0 {
		if v := h.n.version(); v != base {
			h.n.fsys.log.Warn("refused: changed in Infisical since it was opened; re-read and retry", "path", h.n.display(), "version_read", base, "version_now", v)
			return syscall.ESTALE
		}
		push = -base // checked at open: verify what Infisical returns only
	}
	if errno := h.n.store(b, push); errno != 0 {
		if errno == syscall.ESTALE {
			// An editor's recovery (unlink the key, create it again from
			// a backup) must not delete or replace what it was refused.
			d, name, ok := h.n.where()
			if !ok { // replaced or removed while open: the name it had
				d, name, ok = h.openDir, h.openName, h.openDir != nil
			}
			if ok {
				d.refuseProcess(name, tgid(h.pid), false)
			}
		}
		return errno
	}
	pushed := h.n.version()
	h.mu.Lock()
	if h.seq == seq { // nothing written meanwhile
		h.dirty = false
	}
	if base != 0 && h.base == base {
		h.base = pushed
	}
	h.mu.Unlock()
	return 0
}

// release pushes the empty value of a truncated or created file that was
// never written (`: > KEY`, `touch NEW`): only the log can report its
// failure, since release's result is discarded.
func (h *handle) release() {
	h.mu.Lock()
	var b []byte
	push := h.write && h.truncated && !h.failed
	base := h.base
	if push {
		b = append([]byte(nil), h.buf...)
	}
	clear(h.buf)
	h.buf = nil
	h.mu.Unlock()
	if push {
		if errno := h.n.store(b, base); errno != 0 {
			h.n.fsys.log.Warn("the empty value of a truncated or created file was not pushed", "errno", errno.Error())
		}
		clear(b)
	}
	if h.write {
		h.n.forgetTruncOpen(h)
	}
	if h.write && h.failed {
		// A created file whose only write was refused was never pushed:
		// drop it, or a 0-byte name that is in neither Infisical nor
		// .env would stay in the listing until rm.
		if d, name, ok := h.n.where(); ok {
			h.n.dropPending(d, name, syscall.EFBIG)
		}
	}
}

// wipe drops a read-only snapshot.
func (h *handle) wipe() {
	h.mu.Lock()
	clear(h.buf)
	h.buf = nil
	h.mu.Unlock()
}

func (h *handle) attr(a *fuse.Attr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a.Mode = syscall.S_IFREG | h.n.fsys.fileMode(false)
	a.Size = uint64(len(h.buf))
	a.Nlink = 0
	h.n.fsys.setAttrCommon(a)
}
