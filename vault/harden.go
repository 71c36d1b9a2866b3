package vault

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DisableCoreDumps sets RLIMIT_CORE to 0 and marks the process non-dumpable,
// so that neither a crash nor another process of the same user (ptrace,
// /proc/PID/mem) can copy secret values out of memory.
func DisableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_CORE: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	return nil
}
