// Package fs turns file operations on the mount into vault reads and backend
// writes: it is the FUSE adapter between the kernel and the syncer.
//
// Who owns truth: the vault holds every secret's current value; a node holds
// no value of its own (except a scratch file, which is local by design) and
// works out its address from its parent directory and its current name, so a
// rename moves it without bookkeeping.
//
// What a directory shows besides its secrets is the views table (views.go):
// one entry per rendered file or directory view (.raw, .history), read by
// lookup, readdir, name reservation and invalidation alike. Files show
// values with references expanded (the vault keeps that form); .raw/ the
// raw ones (raw.go); .history/ earlier versions (history.go); xattrs the
// metadata (xattr.go).
//
// Caching: entries, attributes and negative lookups are cached by the
// kernel for an hour. On a read-only mount the kernel also keeps secrets'
// pages and no open reaches the daemon; coherence (coherence.go) keeps the
// size and the pages it caches on one version. On a read-write mount each
// open reads its own snapshot with direct I/O, so no page is shared.
// Freshness is this package's job: every change, from a refresh or a push,
// reaches Invalidate, which queues it; one goroutine delivers the queue to
// the kernel in order, never from inside a FUSE request (notify.go).
//
// Access rules (access.go): owner, group and mode come from the rules in
// every Lookup, Getattr and Setattr answer; opens that reach the daemon are
// decided and audited there; a rule reload is one more kind of queued item.
//
// Lock order: dirNode.mu, then fileNode.mu, then handle.mu; coherence.mu is
// taken alone and held only around a vault read; versionNode.mu is a leaf
// that guards only which fetch is in flight. None is held across a
// Backend call or a kernel notification. The vault and the backend take their own locks and
// never call back into this package.
package fs
