package fs

import (
	"sync"
	"time"

	"github.com/infisicalfs/infisicalfs/vault"
)

// coherence is what the kernel was last told about one file whose pages it
// keeps (read-only mounts, where reads come from the page cache and no
// open reaches the daemon).
//
// The kernel takes a file's size from getattr and fills its pages with
// READs, at different times. If a refresh lands between the two, a new
// value read under an old size is cut short or padded with zeros. So the
// file is served at one pinned version, the one the kernel caches, kept
// here sealed, until an invalidation has been delivered with no read
// served in between; only then does it move to the vault's version:
//
//  1. begin: a delivery starts; getattr waits for it (bounded by
//     deliveryWait), so the kernel never takes a new size while pages of
//     the pinned version may still be cached.
//  2. reads during the delivery serve the pinned version and mark it
//     touched: the kernel may have cached that version again.
//  3. settle: untouched, the pinned version becomes the new one; touched,
//     the caller delivers again, and after maxDeliveries gives up for now
//     (abandon) and retries later. It never moves the pin while the
//     kernel may hold pages of the old version: that is the torn read.
//
// Reads are not held back: the kernel locks the pages of a READ, and the
// delivery itself waits for those locks.
type coherence struct {
	mu         sync.Mutex
	pinned     vault.Sealed  // the version the kernel caches; empty before first contact
	delivering chan struct{} // closed when the delivery in progress ends; nil when none
	touched    bool          // a read was served during the delivery in progress
}

// deliveryWait bounds how long a getattr waits for a delivery: one that
// cannot finish must not hang stat(2).
const deliveryWait = 100 * time.Millisecond

// waitDelivery blocks, up to deliveryWait, while a delivery is in progress.
func (c *coherence) waitDelivery() {
	c.mu.Lock()
	wait := c.delivering
	c.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-time.After(deliveryWait):
		}
	}
}

// attr is the metadata getattr reports: the pinned version's, pinning the
// current one (from seal) at first contact. ok is false when there is
// nothing to pin.
func (c *coherence) attr(seal func() (vault.Sealed, bool)) (vault.Meta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pinned.Empty() {
		s, ok := seal()
		if !ok {
			return vault.Meta{}, false
		}
		c.pinned = s
	}
	return c.pinned.Meta(), true
}

// read runs open on the pinned version for a page-cache read, and marks a
// delivery in progress as touched. Before first contact nothing is pinned:
// open gets the zero Sealed and serves the current version.
func (c *coherence) read(open func(s vault.Sealed)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touched = true
	open(c.pinned)
}

// begin starts a delivery.
func (c *coherence) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touched = false
	if c.delivering == nil {
		c.delivering = make(chan struct{})
	}
}

// settle ends a delivery by pinning next, unless a read was served
// meanwhile: then it reports false, keeps the old pin, and next stays the
// caller's. An empty next (the secret is gone) unpins.
func (c *coherence) settle(next vault.Sealed) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.touched {
		return false
	}
	c.pinned.Wipe()
	c.pinned = next
	c.end()
	return true
}

// abandon ends a delivery without moving the pin.
func (c *coherence) abandon() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end()
}

func (c *coherence) end() {
	if c.delivering != nil {
		close(c.delivering)
		c.delivering = nil
	}
}

// forget wipes the pinned copy (the node is gone from the kernel).
func (c *coherence) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned.Wipe()
}
