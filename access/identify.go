package access

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Caller is who made a FUSE request, as the kernel stamped it on the
// request (go-fuse's fuse.Caller): the thread id and its fsuid and fsgid.
// Nothing in it comes from the caller's own memory.
type Caller struct {
	PID, UID, GID uint32
}

// Process is what /proc says about a caller, read so that it is known to
// belong to that caller (see identify). Only kernel-kept facts are read:
// never argv, environ or comm, which the process itself can set.
type Process struct {
	Exe    string   // readlink /proc/PID/exe; " (deleted)" suffix when replaced
	Cgroup string   // the cgroup v2 path ("0::" line); "" on a v1-only system
	Groups []uint32 // supplementary groups (Groups: in /proc/PID/status)

	exe    *os.File // /proc/PID/exe opened, for the hash; nil unless asked
	exeKey fileKey
}

// need says what identify reads; status (uids, groups) is always read.
type need uint8

const (
	needExe     need = 1 << iota // readlink /proc/PID/exe
	needExeFile                  // and open it, for the hash
	needCgroup                   // /proc/PID/cgroup
)

// ErrUnknownCaller wraps every reason a caller could not be identified.
var ErrUnknownCaller = errors.New("caller unknown")

// procRoot is where /proc is mounted.
const procRoot = "/proc"

// Test hooks: testHookAfterPin runs between pinning the pid and reading
// /proc, testHookAfterRead between reading and the liveness check, so that
// a test can end or replace the process there; testNoPidfd pins with the
// /proc directory alone, as on kernels without pidfds.
var (
	testHookAfterPin  func()
	testHookAfterRead func()
	testNoPidfd       bool
)

// identify reads the caller's executable, cgroup and groups from /proc.
//
// A pid can be reused once its process is gone, so every read is pinned:
//  1. open /proc/PID as a directory: files opened through that descriptor
//     belong to the process it was opened for, and fail (ENOENT) once that
//     process is gone, even if the pid now names another; and open a pidfd
//     (PIDFD_THREAD for a thread: FUSE stamps thread ids) where the kernel
//     has them;
//  2. read exe, cgroup and status through the directory descriptor (and
//     open exe when the hash is wanted);
//  3. the fsuid and fsgid in status must be the request's: a pid taken by
//     another user's process before step 1 is refused here;
//  4. the pidfd must still be alive: a caller that exited during 2 is
//     refused rather than half-read.
//
// The FUSE kernel code waits uninterruptibly for the answer once the daemon
// has read a request (fs/fuse/dev.c, request_wait_answer: "Wait it out"),
// so the calling thread cannot exit while its OPEN is being decided; the
// checks above are what make that assumption safe to rely on.
func identify(c Caller, n need) (p *Process, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: pid %d: %w", ErrUnknownCaller, c.PID, err)
			if p != nil && p.exe != nil {
				p.exe.Close()
			}
			p = nil
		}
	}()
	if c.PID == 0 {
		return nil, errors.New("no pid (a kernel request, or a caller outside the mount's pid namespace)")
	}
	alive, err := pin(int(c.PID))
	if err != nil {
		return nil, err
	}
	defer alive.close()
	if testHookAfterPin != nil {
		testHookAfterPin()
	}
	d := alive.dirfd

	p = &Process{}
	if n&(needExe|needExeFile) != 0 {
		if p.Exe, err = readlinkAt(d, "exe"); err != nil {
			return p, fmt.Errorf("read executable: %w", err)
		}
	}
	if n&needExeFile != 0 {
		fd, err := unix.Openat(d, "exe", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return p, fmt.Errorf("open executable: %w", gone(err))
		}
		p.exe = os.NewFile(uintptr(fd), p.Exe)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return p, fmt.Errorf("stat executable: %w", err)
		}
		p.exeKey = keyOf(&st)
	}
	if n&needCgroup != 0 {
		cg, err := readAt(d, "cgroup")
		if err != nil {
			return p, fmt.Errorf("read cgroup: %w", err)
		}
		p.Cgroup = parseCgroup(cg)
	}
	// Always read: the fsuid/fsgid check below is what tells a reused
	// pid apart. /proc/PID/status is the costliest read here (~20 µs).
	st, err := readAt(d, "status")
	if err != nil {
		return p, fmt.Errorf("read status: %w", err)
	}
	fsuid, fsgid, groups, err := parseStatus(st)
	if err != nil {
		return p, err
	}
	p.Groups = groups
	if testHookAfterRead != nil {
		testHookAfterRead()
	}
	if fsuid != c.UID || fsgid != c.GID {
		return p, fmt.Errorf("pid now runs as uid %d gid %d, not the request's uid %d gid %d (pid reused?)", fsuid, fsgid, c.UID, c.GID)
	}
	if err := alive.check(); err != nil {
		return p, err
	}
	return p, nil
}

// close releases the opened executable.
func (p *Process) close() {
	if p != nil && p.exe != nil {
		p.exe.Close()
		p.exe = nil
	}
}

// pinned holds one process: its /proc directory and, where the kernel has
// them, its pidfd.
type pinned struct {
	dirfd int
	pidfd int // -1 without pidfds
}

func pin(pid int) (*pinned, error) {
	dirfd, err := unix.Open(procRoot+"/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc entry: %w", gone(err))
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if testNoPidfd {
		if err == nil {
			unix.Close(fd)
		}
		fd, err = -1, unix.ENOSYS
	}
	if errors.Is(err, unix.EINVAL) {
		// Not a thread-group leader. Since Linux 6.9 PIDFD_THREAD pins a
		// single thread.
		fd, err = unix.PidfdOpen(pid, unix.PIDFD_THREAD)
	}
	switch {
	case err == nil:
	case errors.Is(err, unix.ESRCH):
		unix.Close(dirfd)
		return nil, errors.New("no such process (it exited)")
	default:
		// No pidfds here (ENOSYS, EINVAL for a thread before 6.9, a
		// seccomp filter): the directory descriptor alone still pins.
		fd = -1
	}
	return &pinned{dirfd: dirfd, pidfd: fd}, nil
}

// check reports whether the pinned process is still alive.
func (l *pinned) check() error {
	if l.pidfd < 0 {
		// Lookups under a dead process's directory fail.
		var st unix.Stat_t
		if err := unix.Fstatat(l.dirfd, "stat", &st, 0); err != nil {
			return fmt.Errorf("the process exited while it was read: %w", err)
		}
		return nil
	}
	// A pidfd polls readable once its process has exited.
	fds := []unix.PollFd{{Fd: int32(l.pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return errors.New("the process exited while it was read")
		}
		return nil
	}
}

func (l *pinned) close() {
	unix.Close(l.dirfd)
	if l.pidfd >= 0 {
		unix.Close(l.pidfd)
	}
}

// gone turns the errors of a vanished process into one message.
func gone(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("no such process (it exited): %w", err)
	}
	return err
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", gone(err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// readAt reads a small /proc file under dirfd with as few syscalls as it
// can: open, read until EOF, close (os.ReadFile adds an fstat that says 0
// for /proc and grows its buffer from 512 bytes).
func readAt(dirfd int, name string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, gone(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, gone(err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// parseCgroup returns the cgroup v2 path: the line "0::PATH".
func parseCgroup(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

// parseStatus returns the fsuid, fsgid (the fourth of the Uid: and Gid:
// values, which is what FUSE stamps) and the supplementary groups.
func parseStatus(b []byte) (fsuid, fsgid uint32, groups []uint32, err error) {
	var haveUID, haveGID bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(f) != 4 {
				return 0, 0, nil, fmt.Errorf("status %s: want 4 ids", k)
			}
			id, err := strconv.ParseUint(f[3], 10, 32)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("status %s: %w", k, err)
			}
			if k == "Uid" {
				fsuid, haveUID = uint32(id), true
			} else {
				fsgid, haveGID = uint32(id), true
			}
		case "Groups":
			for _, s := range f {
				id, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return 0, 0, nil, fmt.Errorf("status Groups: %w", err)
				}
				groups = append(groups, uint32(id))
			}
		}
	}
	if !haveUID || !haveGID {
		return 0, 0, nil, errors.New("status: no Uid or Gid line")
	}
	return fsuid, fsgid, groups, nil
}
