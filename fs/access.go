package fs

// Access rules and the audit log in the mount (issue 17). The access
// package decides; this file puts its answers where the kernel and the
// daemon look: owner, group and mode in every Lookup, Getattr and Setattr
// answer (the rules the kernel enforces with default_permissions), and
// Engine.Decide plus an audit record in every Open that reaches the daemon
// (the rules only the daemon can check: executables, hashes, cgroups).
//
// Which opens reach the daemon: every open on a read-write mount; on a
// read-only mount none (OPEN answers ENOSYS, and the kernel stops sending
// it for the whole mount: a repeat read costs no request), unless a rule
// needs the daemon or audit = "all-opens" asks for every open. Then a
// read-only mount answers OPEN normally, with FOPEN_KEEP_CACHE, so the
// kernel keeps the pages and a repeat read costs one OPEN round trip.
// That choice is made at mount: a reload adding the first daemon rule to a
// mount that answers ENOSYS is refused (the old rules stay) and needs a
// remount, because ENOSYS cannot be taken back.
//
// Aliases: a folder's views (.env, .json, .yaml) hold every value of the
// folder, .raw/KEY and .history/KEY/N hold KEY's. An alias is decided by
// its own path and by each key's path (deny if any denies), and where the
// keys' modes differ from the alias path's it gets only its owner's read
// bit, or none (accessMode): so a rule on one key cannot be read around
// through the folder's .env or the key's .raw/ copy.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/audit"
)

// AccessDefaults are the owner, group and modes where no rule matches:
// this mount's uid, gid, file mode and directory mode (Compile rules with
// them).
func (f *FS) AccessDefaults() access.Defaults {
	return access.Defaults{UID: f.opt.UID, GID: f.opt.GID, FileMode: f.opt.FileMode, DirMode: f.dirMode(), ReadOnly: f.opt.ReadOnly}
}

// Access is the engine deciding this mount's opens (.status reads its
// denial counts).
func (f *FS) Access() *access.Engine { return f.eng }

// ErrRemountNeeded: the rules need the daemon to see opens that this
// read-only mount told the kernel to stop sending.
var ErrRemountNeeded = errors.New("these access rules name executables, hashes or cgroups, which need every open to reach the daemon; this read-only mount was started without such rules and answers opens in the kernel: remount to apply them (the old rules stay)")

// SetAccess installs rules (compiled with AccessDefaults). Before Mount it
// decides whether a read-only mount sends opens to the daemon; after, it
// swaps the rules and queues the invalidation of every attribute the
// kernel holds that the new rules change, so the kernel applies them at
// its next permission check without a remount.
func (f *FS) SetAccess(r *access.Rules) error {
	if f.mounted.Load() && r.AnyDaemon() && !f.opensReach {
		return ErrRemountNeeded
	}
	ch := f.eng.Swap(r)
	if f.mounted.Load() {
		f.queue.put(queued{access: &ch})
	}
	return nil
}

// decidesOpens reports whether opens that reach the daemon go through
// Decide: with rules, or with an audit log that records every open. With
// neither, Decide would only repeat the kernel's mode check.
func (f *FS) decidesOpens() bool {
	return f.eng.Rules().Len() > 0 || f.opt.AuditOpens
}

// caller is the kernel-supplied identity of a request: nothing the
// process could set itself.
func caller(ctx context.Context) access.Caller {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return access.Caller{}
	}
	return access.Caller{PID: c.Pid, UID: c.Uid, GID: c.Gid}
}

// decide decides an open of path (and of the keys it is an alias of, deny
// if any denies), records it in the audit log, and answers EACCES on
// denial.
func (f *FS) decide(ctx context.Context, path string, m audit.Mode, aliasOf []string) syscall.Errno {
	c := caller(ctx)
	paths := []string{path}
	if len(aliasOf) > 0 {
		own := f.eng.Attr(path, false)
		for _, k := range aliasOf {
			// A key the kernel would judge exactly as the view, by rules
			// that need no daemon, cannot change the answer.
			if a := f.eng.Attr(k, false); a == own && !a.Daemon {
				continue
			}
			paths = append(paths, k)
		}
	}
	// One identification of the caller for the view and all its keys.
	ds := f.eng.DecideAll(paths, c, m.Wants())
	d := ds[0]
	if n := len(ds); n > 1 && !ds[n-1].Allowed {
		d = ds[n-1]
		d.Reason = fmt.Sprintf("%s holds %s: %s", path, paths[n-1], d.Reason)
	}
	if f.opt.Audit != nil {
		f.opt.Audit.Record(audit.Of(path, m, c, d))
	}
	if !d.Allowed {
		return syscall.EACCES
	}
	return 0
}

// openHook decides an open that reached the daemon. skip reports that a
// read-only mount answers it in the kernel (ENOSYS) instead; ro that the
// mount is read-only and the open, if allowed, keeps the kernel's pages.
func (f *FS) openHook(ctx context.Context, path string, flags uint32, aliasOf func() []string) (skip bool, errno syscall.Errno) {
	if f.opt.ReadOnly && !f.opensReach {
		return true, 0
	}
	if !f.decidesOpens() {
		return false, 0
	}
	var keys []string
	if aliasOf != nil {
		keys = aliasOf()
	}
	return false, f.decide(ctx, path, audit.ModeOf(flags), keys)
}

// roOpen is the answer of an allowed open on a read-only mount whose opens
// reach the daemon: no handle (reads go to the node), the kernel's pages
// kept across opens (coherence and invalidation keep them right), no
// FLUSH at close.
const roOpen = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH

// checkCall decides an operation that reads or changes a value without an
// open (truncate(2), a value-bearing xattr) where the kernel's mode check
// let through more than the rules do (Attr.Daemon, on the path or a key it
// is an alias of). Elsewhere the kernel already checked it against modes
// at least as tight as the rules.
func (f *FS) checkCall(ctx context.Context, path string, aliasOf []string, write bool) syscall.Errno {
	if f.eng.Rules().Len() == 0 {
		return 0
	}
	daemon := f.eng.Attr(path, false).Daemon
	for _, k := range aliasOf {
		daemon = daemon || f.eng.Attr(k, false).Daemon
	}
	if !daemon {
		return 0
	}
	m := audit.Read
	if write {
		m = audit.Write
	}
	return f.decide(ctx, path, m, aliasOf)
}

// inodePath is an inode's mount path ("project/env/folder", "" for the
// root).
func inodePath(n *gofs.Inode) string { return n.Path(nil) }

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// keyPath is the mount path of the secret that an alias path under .raw/
// or .history/ shows: the environment's mirror directory left out (and, for
// a history version, its number). "" when p is no such alias.
func (f *FS) keyPath(p string, mirror string, drop int) string {
	parts := strings.Split(p, "/")
	i := 2 // project/env/
	if f.opt.Flat {
		i = 0
	}
	if len(parts) <= i+1+drop || parts[i] != mirror {
		return ""
	}
	parts = append(parts[:i:i], parts[i+1:len(parts)-drop]...)
	return strings.Join(parts, "/")
}

// filePaths are a file's mount path in d and, under .raw/, the path of
// the key it shows (rules on either apply).
func (d *dirNode) filePaths(name string) (string, []string) {
	p := joinPath(inodePath(d.EmbeddedInode()), name)
	if d.raw {
		if k := d.fsys.keyPath(p, rawName, 0); k != "" {
			return p, []string{k}
		}
	}
	return p, nil
}

// accessMode is the owner, group and permission bits of path under the
// rules. base is the mode without rules: 0 (a value Infisical hides) stays
// 0, and a base without the mount's write bits (imports, views, versions)
// gets none. Where path is an alias of keys ruled otherwise than the path
// itself, only the owner may read it, and only if the owner may read each
// such key; else no one but root: tighter than needed, never looser.
func (f *FS) accessMode(path string, dir bool, base uint32, aliasOf []string) (uid, gid, mode uint32) {
	a := f.eng.Attr(path, dir)
	uid, gid, mode = a.UID, a.GID, a.Mode
	full := f.fileMode(false)
	if dir {
		full = f.dirMode()
	}
	if base&0o7777 == 0 {
		return uid, gid, 0
	}
	if f.opt.ReadOnly || base&0o7777 != full {
		mode &^= 0o222
	}
	if f.eng.Rules().Len() == 0 {
		return uid, gid, mode
	}
	for _, k := range aliasOf {
		ka := f.eng.Attr(k, false)
		if ka == a {
			continue
		}
		mode &^= 0o077
		if ka.UID != a.UID || ka.Mode&0o400 == 0 {
			return uid, gid, 0
		}
	}
	return uid, gid, mode
}

// applyAccess sets a's owner, group and permission bits (see accessMode),
// from the mode a holds without rules. paths gives a file's mount path and
// the keys it is an alias of; it is called only for a file under rules,
// since building the path walks up the inode tree on every lookup and
// getattr, and neither a directory's modes (they follow the rules as a
// whole) nor any mode without rules depends on it. nil for a directory.
func (f *FS) applyAccess(a *fuse.Attr, paths func() (string, []string)) {
	dir := a.Mode&syscall.S_IFMT == syscall.S_IFDIR
	path, aliasOf := "", []string(nil)
	if !dir && paths != nil && f.eng.Rules().Len() > 0 {
		path, aliasOf = paths()
	}
	a.Uid, a.Gid, a.Mode = f.accessMode(path, dir, a.Mode&0o7777, aliasOf)
	if dir {
		a.Mode |= syscall.S_IFDIR
	} else {
		a.Mode |= syscall.S_IFREG
	}
}

// viewKeys are the mount paths of the keys a folder view holds.
func (n *viewNode) keys() []string {
	d := n.dir
	if d.kind != kindFolder || n.v.by != bySecrets {
		return nil
	}
	dp := inodePath(d.EmbeddedInode())
	l := d.fsys.opt.Vault.List(d.project, d.env, d.path)
	out := make([]string, len(l.Keys))
	for i, k := range l.Keys {
		out[i] = joinPath(dp, k)
	}
	return out
}

func (n *viewNode) path() string { return joinPath(inodePath(n.dir.EmbeddedInode()), n.v.name) }

// viewAccess sets a view's owner, group and mode: a folder view holds
// every key of its folder, so it is an alias of all of them.
func (n *viewNode) viewAccess(a *fuse.Attr) {
	n.dir.fsys.applyAccess(a, func() (string, []string) { return n.path(), n.keys() })
}

// versionPaths are a history version's mount path and its key's.
func (v *versionNode) paths() (string, []string) {
	p := v.mpath
	if k := v.fsys.keyPath(p, historyName, 1); k != "" {
		return p, []string{k}
	}
	return p, nil
}

// deliverAccess drops the attributes of every node the kernel knows whose
// owner, group or mode the rule change moved (offset -1: attributes only,
// the pages stay), so the kernel refetches them at its next check. A
// refusal on stale attributes would make the kernel refetch and retry by
// itself, an admission would not: hence all of them.
func (f *FS) deliverAccess(ch access.Change) {
	var walk func(n *gofs.Inode, path string)
	walk = func(n *gofs.Inode, path string) {
		for name, c := range n.Children() {
			p := joinPath(path, name)
			changed := false
			switch op := c.Operations().(type) {
			case *dirNode:
				changed = ch.AttrChanged(p, true)
				walk(c, p)
			case *fileNode:
				changed = ch.AttrChanged(p, false)
				if d, ok := n.Operations().(*dirNode); ok {
					_, keys := d.filePaths(name)
					for _, k := range keys {
						changed = changed || ch.AttrChanged(k, false)
					}
				}
			case *versionNode:
				_, keys := op.paths()
				changed = ch.AttrChanged(p, false)
				for _, k := range keys {
					changed = changed || ch.AttrChanged(k, false)
				}
			case *histDir:
				changed = ch.AttrChanged(p, true)
				walk(c, p)
			case *viewNode:
				changed = ch.AttrChanged(p, false)
				for _, k := range op.keys() {
					changed = changed || ch.AttrChanged(k, false)
				}
			}
			if changed {
				c.NotifyContent(-1, 0)
			}
		}
	}
	root := f.root.EmbeddedInode()
	if ch.AttrChanged("", true) {
		root.NotifyContent(-1, 0)
	}
	walk(root, "")
}

// orENOSYS is openHook's answer as an errno: ENOSYS where the kernel
// answers opens itself.
func orENOSYS(skip bool, errno syscall.Errno) syscall.Errno {
	if skip {
		return syscall.ENOSYS
	}
	return errno
}

// mountPaths are the file's mount path now ("" once unlinked) and the
// keys it is an alias of.
func (n *fileNode) mountPaths() (string, []string) {
	d, name, ok := n.where()
	if !ok {
		return "", nil
	}
	return d.filePaths(name)
}

// createFlags: a create writes a key, whatever access mode it asks for.
func createFlags(flags uint32) uint32 {
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		flags |= syscall.O_WRONLY
	}
	return flags
}

// openGuard keeps a mount whose opens must reach the daemon from ever
// answering OPEN with ENOSYS: the kernel would stop sending every OPEN, for
// good, and rules the modes cannot express would go unchecked. A node that
// answers ENOSYS there (one not wired through openHook) is refused instead
// (fail closed), and the log says which.
type openGuard struct {
	fuse.RawFileSystem
	f *FS
}

func (g openGuard) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := g.RawFileSystem.Open(cancel, in, out)
	if st == fuse.ENOSYS && g.f.opensReach {
		g.f.log.Error("a node answered OPEN with ENOSYS on a mount whose opens must reach the daemon; refused", "inode", in.NodeId)
		return fuse.EACCES
	}
	return st
}

// checkValue is checkCall for an operation on n's value without an open
// (a value-bearing xattr).
func (n *fileNode) checkValue(ctx context.Context, write bool) syscall.Errno {
	p, keys := n.mountPaths()
	return n.fsys.checkCall(ctx, p, keys, write)
}
