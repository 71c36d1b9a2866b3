package fs

import (
	"context"
	"errors"
	"syscall"
)

// toErrno is the one place errors become errnos. go-fuse's own ToErrno turns
// unknown errors into ENOSYS, and an ENOSYS from FLUSH or FSYNC makes the
// kernel stop sending that operation for the whole mount; so anything not
// recognised here is EIO.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e interface{ Errno() syscall.Errno }
	if errors.As(err, &e) {
		if n := e.Errno(); n != 0 && n != syscall.ENOSYS {
			return n
		}
		return syscall.EIO
	}
	var n syscall.Errno
	if errors.As(err, &n) && n != syscall.ENOSYS {
		return n
	}
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	return syscall.EIO
}
