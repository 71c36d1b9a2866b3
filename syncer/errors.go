package syncer

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/infisicalfs/infisicalfs/infisical"
)

// Error is a failed push, delete, rename or folder change. It carries the
// errno the filesystem returns for it, so fs maps errors without knowing the
// API client's error kinds.
type Error struct {
	Op    string // "push", "delete", "rename", "mkdir", "rmdir"
	Path  string // mount-relative name (names are not secret)
	Err   error
	errno syscall.Errno
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errno is what the caller of the file operation sees.
func (e *Error) Errno() syscall.Errno { return e.errno }

// Local refusals that never reach Infisical.
var (
	ErrReadOnlyImport = errors.New("imported secrets are read-only; edit them where they are defined")
	ErrNotEmpty       = errors.New("folder is not empty")
)

// StaleError refuses a change derived from a version of a secret that
// Infisical no longer holds: the caller read it, someone else changed it,
// and writing it back would revert their change.
type StaleError struct {
	Key      string
	From, To int  // the version read, the version Infisical holds
	Deleted  bool // Infisical no longer holds the secret at all
}

func (e *StaleError) Error() string {
	if e.Deleted {
		return fmt.Sprintf("%s was deleted in Infisical (version %d was read); re-read and retry", e.Key, e.From)
	}
	return fmt.Sprintf("%s changed in Infisical (version %d → %d) since it was read; re-read and retry", e.Key, e.From, e.To)
}

// errnoOf maps an error to the errno of DESIGN's "Errors a caller sees".
func errnoOf(err error) syscall.Errno {
	var stale *StaleError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &stale):
		return syscall.ESTALE
	case errors.Is(err, ErrReadOnlyImport):
		return syscall.EACCES
	case errors.Is(err, ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, infisical.ErrValueTooLarge):
		return syscall.EFBIG
	case errors.Is(err, infisical.ErrApprovalPending):
		return syscall.EINPROGRESS
	case errors.Is(err, infisical.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, infisical.ErrAlreadyExists):
		return syscall.EEXIST
	case errors.Is(err, infisical.ErrValidation):
		return syscall.EINVAL
	case errors.Is(err, infisical.ErrPermissionDenied),
		errors.Is(err, infisical.ErrAuthFailed),
		errors.Is(err, infisical.ErrTokenExpired):
		return syscall.EACCES
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	default:
		// Unreachable, 5xx and 429 after the retry, timeouts: the push did
		// not happen.
		return syscall.EIO
	}
}

func opError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Path: path, Err: err, errno: errnoOf(err)}
}
