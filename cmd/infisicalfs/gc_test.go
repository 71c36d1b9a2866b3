package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: a mounting process collects at daemonGCPercent unless GOGC
// is set, which it then leaves alone.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	t.Setenv("GOGC", "80")
	debug.SetGCPercent(77) // as the runtime would have set it from GOGC
	if got := tuneGC(); got != 77 || debug.SetGCPercent(77) != 77 {
		t.Fatalf("with GOGC set, tuneGC = %d and changed the percentage", got)
	}

	os.Unsetenv("GOGC") // t.Setenv restores it
	if got := tuneGC(); got != daemonGCPercent || debug.SetGCPercent(100) != daemonGCPercent {
		t.Fatalf("without GOGC, tuneGC = %d; want %d in effect", got, daemonGCPercent)
	}
}
