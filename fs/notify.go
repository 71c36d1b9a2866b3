package fs

import (
	"strings"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/infisicalfs/infisicalfs/access"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// The one invalidation path. Whatever changes what the mount shows (a
// refresh, a push, a created file dropped after its push failed) hands the
// change to Invalidate, which only queues it; one goroutine delivers the
// queue to the kernel, in order, each change once. Callers run inside FUSE
// requests too (a push in FLUSH, a rename that holds its directories'
// locks), and a notify sent from there, or a caller waiting on the
// notifier, can deadlock against the kernel (libfuse documents it), so the
// queue never blocks a caller and never drops an item: it is unbounded.

// queue is the ordered, unbounded queue of invalidations and its goroutine.
type queue struct {
	mu     sync.Mutex
	items  []queued
	closed bool
	wake   chan struct{} // one pending wake-up
	end    chan struct{} // closed when the goroutine is done
}

type queued struct {
	ch   tree.Changes
	done chan struct{} // a Flush marker: closed when reached
	// Template files (templates.go): paths whose bytes changed, and
	// whether the set of template paths changed.
	tmpl     []string
	tmplTree bool
	// access: the rules changed; drop the attributes they moved.
	access *access.Change
}

func newQueue() *queue {
	return &queue{wake: make(chan struct{}, 1), end: make(chan struct{})}
}

func (q *queue) put(it queued) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		if it.done != nil {
			close(it.done)
		}
		return
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run(deliver func(queued)) {
	defer close(q.end)
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		for _, it := range items {
			if it.done != nil {
				close(it.done)
			} else {
				deliver(it)
			}
		}
		if closed {
			return
		}
		if len(items) == 0 {
			<-q.wake
		}
	}
}

// close delivers what is queued and ends the goroutine.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.end
}

// Invalidate queues the kernel cache invalidations that ch calls for. It
// never blocks and may be called from anywhere, FUSE requests included.
func (f *FS) Invalidate(ch tree.Changes) {
	if ch.Empty() || !f.mounted.Load() {
		return
	}
	f.queue.put(queued{ch: ch})
}

// Flush waits until every invalidation queued so far reached the kernel.
func (f *FS) Flush() {
	if !f.mounted.Load() {
		return
	}
	done := make(chan struct{})
	f.queue.put(queued{done: done})
	<-done
}

// deliverQueued delivers one queued item.
func (f *FS) deliverQueued(it queued) {
	if len(it.tmpl) > 0 || it.tmplTree {
		f.deliverTemplates(it.tmpl, it.tmplTree)
	}
	if it.access != nil {
		f.deliverAccess(*it.access)
	}
	f.deliver(it.ch)
}

// deliver drops exactly the kernel cache entries that ch names: content
// and attributes of changed secrets, names that appeared (the kernel may
// remember them as missing) or went, listings of directories whose entries
// changed, and the views that the change invalidates. ENOENT from a notify
// means the kernel had nothing cached, which is fine.
func (f *FS) deliver(ch tree.Changes) {
	if ch.Tree {
		f.invalidateTree()
	}
	dirs := map[*gofs.Inode]bool{}    // directories whose listing changed
	folders := map[*gofs.Inode]bool{} // directories whose secrets changed
	for _, a := range ch.Updated {
		f.invalidateHistory(a, false)
		for _, d := range f.dirInodes(a) {
			if c := d.GetChild(a.Key); c != nil {
				f.invalidateFile(c, a)
			}
			folders[d] = true
		}
	}
	for _, list := range [][]vault.Addr{ch.Added, ch.Removed} {
		for _, a := range list {
			f.invalidateHistory(a, true)
			for _, d := range f.dirInodes(a) {
				if c := d.GetChild(a.Key); c != nil {
					f.invalidateFile(c, a)
				}
				d.NotifyEntry(a.Key)
				dirs[d], folders[d] = true, true
			}
		}
	}
	for _, a := range ch.Folders {
		for _, d := range f.dirInodes(a) {
			d.NotifyEntry(a.Key)
			dirs[d] = true
		}
	}
	for d := range dirs {
		d.NotifyContent(0, 0)
	}
	for d := range folders {
		f.invalidateViews(d, bySecrets)
	}
	if ch.Status {
		f.invalidateViews(f.root.EmbeddedInode(), byStatus)
	}
}

// invalidateViews drops the content of d's views that changes of kind by
// invalidate.
func (f *FS) invalidateViews(d *gofs.Inode, by invalidatedBy) {
	for i := range views {
		if views[i].by != by || views[i].render == nil {
			continue
		}
		if c := d.GetChild(views[i].name); c != nil {
			if _, ok := c.Operations().(*viewNode); ok {
				c.NotifyContent(0, 0)
			}
		}
	}
}

// dirInodes are the kernel-known directory inodes showing a: its folder in
// the expanded view and in the .raw mirror, where the kernel looked them up
// (a directory it never looked up has nothing cached below it either).
func (f *FS) dirInodes(a vault.Addr) []*gofs.Inode {
	var out []*gofs.Inode
	for _, mirror := range []string{"", rawName} {
		if d := f.dirInode(a, mirror); d != nil {
			out = append(out, d)
		}
	}
	return out
}

// dirInode finds the kernel-known directory inode holding a, below the
// environment's root or, when mirror is not "", below that view of it.
func (f *FS) dirInode(a vault.Addr, mirror string) *gofs.Inode {
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
	if mirror != "" {
		if d = d.GetChild(mirror); d == nil {
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
		if viewNamed(f.root, n) == nil {
			root.NotifyEntry(n)
		}
	}
	root.NotifyContent(0, 0)
}

// invalidateFile drops a file's attributes and, where the kernel keeps its
// pages (read-only mounts), its pages, moving the pinned version to the
// vault's current one (see coherence). A file whose reads keep racing the
// delivery stays at its pinned version, whole, and is retried after
// redeliverAfter: never moved while the kernel may hold old pages.
func (f *FS) invalidateFile(c *gofs.Inode, a vault.Addr) {
	n, ok := c.Operations().(*fileNode)
	if !ok || !f.pageCache() {
		c.NotifyContent(0, 0)
		return
	}
	form := vault.Served
	if _, p := c.Parent(); p != nil {
		if d, ok := p.Operations().(*dirNode); ok {
			form = d.form()
		}
	}
	next, _ := f.opt.Vault.SealForm(a, form)
	for i := 0; i < maxDeliveries; i++ {
		n.coh.begin()
		c.NotifyContent(0, 0)
		if n.coh.settle(next) {
			return
		}
	}
	next.Wipe()
	n.coh.abandon()
	time.AfterFunc(redeliverAfter, func() { f.Invalidate(tree.Changes{Updated: []vault.Addr{a}}) })
}

const (
	// maxDeliveries bounds the deliveries of one invalidation while reads
	// keep racing it, so a busy file cannot hold up the queue.
	maxDeliveries = 64
	// redeliverAfter is when such an invalidation is tried again.
	redeliverAfter = 20 * time.Millisecond
)
