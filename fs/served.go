package fs

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Writes derived from a read are checked against the version the mount
// served (issue 18): an append or in-place edit through an open without
// O_TRUNC (checked against that open's snapshot), and a scratch file
// renamed onto the key or written in its place after the key was moved
// aside (sed -i, vim), checked against what the mount last served of the
// key. Such a write carries that version as its base, and the backend
// pushes it only if Infisical still holds it. A truncating write (echo v >
// KEY, cp, tee, or emptying an open file) is blind: base 0, last writer
// wins, as with files.

// maxReaders bounds the reader threads a file remembers.
const maxReaders = 32

// recordServed notes that thread tid was given version v.
func (n *fileNode) recordServed(tid uint32, v int) {
	if v <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.served = v
	if n.readers == nil || len(n.readers) >= maxReaders {
		n.readers = map[uint32]int{}
	}
	n.readers[tid] = v
}

// readByProcessOf is the version that the process of thread tid was last
// served, 0 if it read nothing through the mount. Threads are mapped to
// their process only here, on a truncating write, so reads pay nothing.
func (n *fileNode) readByProcessOf(tid uint32) int {
	n.mu.Lock()
	readers := make(map[uint32]int, len(n.readers))
	for t, v := range n.readers {
		readers[t] = v
	}
	n.mu.Unlock()
	if v, ok := readers[tid]; ok {
		return v
	}
	tg := tgid(tid)
	if tg == 0 {
		return 0
	}
	best := 0
	for t, v := range readers {
		if tgid(t) == tg && v > best {
			best = v
		}
	}
	return best
}

// tgid is the process of thread tid (FUSE names callers by thread), 0 if
// it is gone.
func tgid(tid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Tgid:"); ok {
			v, _ := strconv.ParseUint(strings.TrimSpace(rest), 10, 32)
			return uint32(v)
		}
	}
	return 0
}

// refuseRetry remembers that an operation on name was refused with
// ESTALE, so that the kernel's retry of it is refused too.
func (d *dirNode) refuseRetry(name string, errno syscall.Errno) syscall.Errno {
	if errno == syscall.ESTALE {
		d.refuseNext(name, 1)
	}
	return errno
}

// refuseNext makes the next n destructive operations on name (unlink,
// rename, open for writing) fail with ESTALE without reaching Infisical.
func (d *dirNode) refuseNext(name string, n int) {
	d.mu.Lock()
	if d.refused == nil {
		d.refused = map[string]int{}
	}
	d.refused[name] = n
	d.mu.Unlock()
}

// refusing reports whether this operation on name is one of those, and
// counts it.
func (d *dirNode) refusing(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refused[name] == 0 {
		return false
	}
	d.refused[name]--
	if d.refused[name] == 0 {
		delete(d.refused, name)
	}
	return true
}

// checkBase asks the backend whether Infisical still holds version base.
func (n *fileNode) checkBase(base int) syscall.Errno {
	d, name, ok := n.where()
	if !ok {
		return syscall.ENOENT
	}
	return d.refuseRetry(name, toErrno(n.fsys.opt.Backend.CheckBase(d.addr(name), base)))
}

// display is the file's mount-relative name for log lines.
func (n *fileNode) display() string {
	d, name, ok := n.where()
	if !ok {
		return "(unlinked)"
	}
	return d.display(name)
}

// lastServed is the version last served of the secret, 0 if none.
func (n *fileNode) lastServed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served
}

// baseFor is the version a change of the secret at d/name derives from:
// what the mount last served of it, else what the mount shows now (0 when
// it shows nothing: a create).
func (d *dirNode) baseFor(name string, n *fileNode) int {
	if n != nil {
		if v := n.lastServed(); v > 0 {
			return v
		}
	}
	if m, ok := d.fsys.opt.Vault.Stat(d.addr(name)); ok {
		return m.Version
	}
	return 0
}

// version is the vault's version of the secret now (0 for a local or
// unlinked file).
func (n *fileNode) version() int {
	d, name, ok := n.where()
	if !ok {
		return 0
	}
	m, _ := n.fsys.opt.Vault.Stat(d.addr(name))
	return m.Version
}
