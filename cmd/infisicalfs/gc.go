package main

import (
	"os"
	"runtime/debug"
)

// daemonGCPercent is the garbage collector's target (GOGC) of a process
// that serves mounts, unless the GOGC environment variable sets one. Its
// heap is nearly all long-lived (the vault, one node per file the kernel
// holds) and it allocates in bursts (a listing, a walk of the mount) and
// little between them; Go's default of 100 lets the heap reach twice what
// is live before collecting, which for this shape is the secrets' memory
// again for nothing. The cost is more collections in the bursts, measured
// in `make bench` (docs/bench.md): see issue 12's figures.
const daemonGCPercent = 50

// tuneGC applies daemonGCPercent unless GOGC is set, and returns the
// percentage in effect.
func tuneGC() int {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(daemonGCPercent)
	return daemonGCPercent
}
