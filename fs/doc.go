// Package fs turns file operations on the mount into vault reads and backend
// writes: it is the FUSE adapter between the kernel and the syncer.
//
// Who owns truth: the vault holds every secret's current value; a node holds
// no value of its own (except a scratch file, which is local by design) and
// works out its address from its parent directory and its current name, so a
// rename moves it without bookkeeping.
//
// Caching: entries, attributes and negative lookups are cached by the kernel
// for an hour, and content is kept in the page cache. Freshness is the
// syncer's job: after every change it calls Invalidate from its own
// goroutine, which drops exactly the changed kernel entries.
//
// Lock order: dirNode.mu, then fileNode.mu, then handle.mu. The vault and the
// backend take their own locks and never call back into this package.
package fs
