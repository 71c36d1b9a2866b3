package fs

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// recordServed notes that version v was given out of the secret.
func (n *fileNode) recordServed(v int) {
	if v <= 0 {
		return
	}
	n.mu.Lock()
	n.served = v
	n.mu.Unlock()
}

// noteReader records that thread tid read version v of name. Kept by name
// in the directory, not in the node: another program's sed -i or vim save
// replaces the node between this process's read and its own rename onto
// the name, and the replacement must not lend it a newer base.
func (d *dirNode) noteReader(name string, tid uint32, v int) {
	if v <= 0 || tid == 0 {
		return
	}
	d.mu.Lock()
	if d.readers == nil {
		d.readers = map[readerKey]int{}
	}
	d.readers[readerKey{name, tid}] = v
	var threads []uint32
	if len(d.readers) > d.readersPruneAt {
		// Readers of a walk (cat of every key) are gone a moment later:
		// sweep out the dead ones once the map has doubled since the last
		// sweep, which keeps it near the live readers at amortized O(1).
		seen := map[uint32]bool{}
		for k := range d.readers {
			if !seen[k.tid] {
				seen[k.tid] = true
				threads = append(threads, k.tid)
			}
		}
		d.readersPruneAt = max(2*len(d.readers), 64) // no second sweep meanwhile
	}
	d.mu.Unlock()
	if threads == nil {
		return
	}
	dead := map[uint32]bool{}
	for _, t := range threads { // /proc lookups, outside the lock
		if !alive(t) {
			dead[t] = true
		}
	}
	d.mu.Lock()
	for k := range d.readers {
		if dead[k.tid] {
			delete(d.readers, k)
		}
	}
	d.readersPruneAt = max(2*len(d.readers), 64)
	d.mu.Unlock()
}

// readerKey is one thread's read of one name.
type readerKey struct {
	name string
	tid  uint32
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

// refusalLasts is how long a refusal covers its process's next operations
// on the name: the kernel's retry comes at once, an editor's recovery
// within milliseconds; a program retrying on purpose later goes through.
const refusalLasts = time.Second

// refusal is a process's last ESTALE refusal on a name: whether its later
// writes are refused too (a path operation's, for the kernel's retry) or
// only its unlinks and creates (a close's or fsync's: an editor's recovery
// deletes and recreates the key, while a program re-opening to retry its
// edit must go through).
type refusal struct {
	until  time.Time
	writes bool
}

// refusalKey is one process's refusals on one name. Keyed by both: with
// one entry per name, a sed refused on KEY replaced vim's refusal, and
// vim's recovery (unlink KEY) then deleted the secret in Infisical.
type refusalKey struct {
	name string
	tgid uint32
}

// Operations a refusal may cover.
const (
	opWrite   = iota // open for writing, rename
	opReplace        // unlink, create
)

// refuseRetry records an ESTALE refusal of thread tid's operation on name,
// so that the same process's next destructive operations on it within
// refusalLasts are refused too: the kernel's retry of a path operation
// (retry_estale), and an editor's recovery from a refused save (vim
// unlinks the key, then writes its backup back).
func (d *dirNode) refuseRetry(name string, errno syscall.Errno, tid uint32) syscall.Errno {
	if errno == syscall.ESTALE {
		d.refuseProcess(name, tgid(tid), true)
	}
	return errno
}

func (d *dirNode) refuseProcess(name string, tg uint32, writes bool) {
	if tg == 0 {
		return
	}
	now := time.Now()
	d.mu.Lock()
	if d.refused == nil {
		d.refused = map[refusalKey]refusal{}
	}
	for k, r := range d.refused { // expired ones go; there are few
		if now.After(r.until) {
			delete(d.refused, k)
		}
	}
	k := refusalKey{name, tg}
	r := d.refused[k]
	r.until, r.writes = now.Add(refusalLasts), r.writes || writes
	d.refused[k] = r
	d.mu.Unlock()
}

// refusing reports whether thread tid's operation op on name falls under
// a refusal.
func (d *dirNode) refusing(name string, tid uint32, op int) bool {
	d.mu.Lock()
	none := len(d.refused) == 0
	d.mu.Unlock()
	if none {
		return false // the common case: no /proc lookup on every write open
	}
	k := refusalKey{name, tgid(tid)}
	d.mu.Lock()
	r, ok := d.refused[k]
	if ok && time.Now().After(r.until) {
		delete(d.refused, k)
		ok = false
	}
	d.mu.Unlock()
	return ok && (r.writes || op == opReplace)
}

// checkBase asks the backend whether Infisical still holds version base.
func (n *fileNode) checkBase(base int, tid uint32) syscall.Errno {
	d, name, ok := n.where()
	if !ok {
		return syscall.ENOENT
	}
	return d.refuseRetry(name, toErrno(n.fsys.opt.Backend.CheckBase(d.addr(name), base)), tid)
}

// display is the file's mount-relative name for log lines.
func (n *fileNode) display() string {
	d, name, ok := n.where()
	if !ok {
		return "(unlinked)"
	}
	return d.display(name)
}

// readBy is the version of name that thread tid's process last read
// through this directory; ok is false if it read none.
func (d *dirNode) readBy(name string, tid uint32) (int, bool) {
	if tid == 0 {
		return 0, false
	}
	d.mu.Lock()
	if v, ok := d.readers[readerKey{name, tid}]; ok {
		d.mu.Unlock()
		return v, true // the same thread (sed, vim and dd are single-threaded)
	}
	rs := map[uint32]int{}
	for k, v := range d.readers {
		if k.name == name {
			rs[k.tid] = v
		}
	}
	d.mu.Unlock()
	// Another thread of the same process: /proc lookups, outside the lock.
	if tg := tgid(tid); tg != 0 {
		for t, v := range rs {
			if tgid(t) == tg {
				return v, true
			}
		}
	}
	return 0, false
}

// lastServed is the version last served of the secret to anyone, 0 if none.
func (n *fileNode) lastServed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served
}

// baseFor is the version a change of the secret at d/name by thread tid
// derives from: what the mount last served of it to that process (sed -i
// and vim read it before they write it back; another reader may have been
// served a newer version since, which their edit does not hold), else to
// anyone, else what the mount shows now (0 when it shows nothing: a
// create).
func (d *dirNode) baseFor(name string, n *fileNode, tid uint32) int {
	if v, ok := d.readBy(name, tid); ok {
		return v
	}
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

// alive reports whether process pid still runs.
func alive(pid uint32) bool {
	_, err := os.Stat("/proc/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// savedByOther reports whether the file is a created file standing in for
// a key that a running process other than tid's is saving (vim between
// creating KEY and pushing it).
func (n *fileNode) savedByOther(tid uint32) (bool, *dirNode, string) {
	n.mu.Lock()
	e := n.rd()
	owner, standsIn := e.owner, n.pending && e.replaced != nil
	n.mu.Unlock()
	if !standsIn || owner == 0 {
		return false, nil, ""
	}
	d, name, ok := n.where()
	if !ok || tgid(tid) == owner || !alive(owner) {
		return false, nil, ""
	}
	return true, d, name
}
