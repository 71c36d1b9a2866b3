package fs

import (
	"strings"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Invalidate drops exactly the kernel cache entries that ch names: content
// and attributes of changed secrets, names that appeared (the kernel may
// remember them as missing) or went, listings of directories whose entries
// changed, and the rendered views. It must be called from a goroutine of the
// caller's own, never from inside a FUSE request. ENOENT from a notify means
// the kernel had nothing cached, which is fine.
func (f *FS) Invalidate(ch tree.Changes) {
	if !f.mounted.Load() {
		return
	}
	if ch.Status {
		if st := f.root.GetChild(statusName); st != nil {
			st.NotifyContent(0, 0)
		}
	}
	if ch.Tree {
		f.invalidateTree()
	}
	dirs := map[*gofs.Inode]bool{}  // directories whose listing changed
	views := map[*gofs.Inode]bool{} // directories whose .env/.json changed
	for _, a := range ch.Updated {
		d := f.dirInode(a)
		if d == nil {
			continue
		}
		if c := d.GetChild(a.Key); c != nil {
			f.invalidateFile(c, a)
		}
		views[d] = true
	}
	for _, list := range [][]vault.Addr{ch.Added, ch.Removed} {
		for _, a := range list {
			d := f.dirInode(a)
			if d == nil {
				continue
			}
			if c := d.GetChild(a.Key); c != nil {
				f.invalidateFile(c, a)
			}
			d.NotifyEntry(a.Key)
			dirs[d], views[d] = true, true
		}
	}
	for _, a := range ch.Folders {
		if d := f.dirInode(a); d != nil {
			d.NotifyEntry(a.Key)
			dirs[d] = true
		}
	}
	for d := range dirs {
		d.NotifyContent(0, 0)
	}
	for d := range views {
		for _, v := range []string{envName, jsonName} {
			if c := d.GetChild(v); c != nil {
				c.NotifyContent(0, 0)
			}
		}
	}
}

// dirInode finds the kernel-known directory inode holding a; nil when the
// kernel has not looked it up (then it has nothing cached below it either).
func (f *FS) dirInode(a vault.Addr) *gofs.Inode {
	var d *gofs.Inode
	if f.opt.Flat {
		if a.Project != f.opt.FlatProject || a.Env != f.opt.FlatEnv {
			return nil
		}
		d = f.root.EmbeddedInode()
	} else {
		d = f.root.GetChild(f.projectDir(a.Project))
		if d == nil {
			return nil
		}
		if d = d.GetChild(a.Env); d == nil {
			return nil
		}
	}
	for _, seg := range strings.Split(strings.Trim(a.Path, "/"), "/") {
		if seg == "" {
			continue
		}
		if d = d.GetChild(seg); d == nil {
			return nil
		}
	}
	return d
}

func (f *FS) projectDir(id string) string {
	for _, p := range f.opt.Backend.Projects() {
		if p.ID == id {
			return p.Dir
		}
	}
	return id
}

// invalidateTree refreshes the project and environment levels: every name
// the kernel knows or should now know, and the listings.
func (f *FS) invalidateTree() {
	if f.opt.Flat {
		return
	}
	root := f.root.EmbeddedInode()
	names := map[string]bool{}
	for n := range root.Children() {
		names[n] = true
	}
	for _, p := range f.opt.Backend.Projects() {
		names[p.Dir] = true
		if pd := root.GetChild(p.Dir); pd != nil {
			envs := map[string]bool{}
			for n := range pd.Children() {
				envs[n] = true
			}
			for _, e := range p.Envs {
				envs[e] = true
			}
			for e := range envs {
				pd.NotifyEntry(e)
			}
			pd.NotifyContent(0, 0)
		}
	}
	for n := range names {
		if n != statusName {
			root.NotifyEntry(n)
		}
	}
	root.NotifyContent(0, 0)
}

// invalidateFile is also called from inside FLUSH, FSYNC, SETATTR and
// RENAME after a push, so that the writer's close() returns only once every
// reader will see the pushed value. That is safe where the rest is not: an
// inode invalidation takes page locks, which those requests do not hold,
// and no directory lock (entry invalidations do, and stay on the notifier
// goroutine).
//
// invalidateFile drops a file's pages and attributes, and moves the node
// to the vault's current version. Until it is moved, getattr and reads
// serve the version the kernel had, so anything the kernel caches while
// the notify is on its way is consistent; if anything was served
// meanwhile, the kernel may have cached it again, so the notify is sent
// again. The generation is read first: a change landing meanwhile gets its
// own invalidation.
func (f *FS) invalidateFile(c *gofs.Inode, a vault.Addr) {
	n, ok := c.Operations().(*fileNode)
	if !ok {
		c.NotifyContent(0, 0)
		return
	}
	m, _ := f.opt.Vault.Stat(a)
	for i := 0; i < 64; i++ {
		n.beginInvalidate()
		c.NotifyContent(0, 0)
		if n.settle(m.Gen, false) {
			return
		}
	}
	// Reads keep coming: move on, and drop what they cached once more.
	n.settle(m.Gen, true)
	c.NotifyContent(0, 0)
}
