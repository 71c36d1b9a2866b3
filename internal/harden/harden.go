// Package harden keeps secrets out of core dumps and away from other
// processes of the same user.
package harden

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DisableCoreDumps stops the process from writing core dumps (RLIMIT_CORE 0)
// and marks it non-dumpable (PR_SET_DUMPABLE 0), which also keeps other
// processes of the same user from ptrace-attaching or reading /proc/PID/mem.
// Both are attempted; the errors of those that failed are joined.
func DisableCoreDumps() error {
	var errs []error
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		errs = append(errs, fmt.Errorf("setrlimit RLIMIT_CORE: %w", err))
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		errs = append(errs, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err))
	}
	return errors.Join(errs...)
}
