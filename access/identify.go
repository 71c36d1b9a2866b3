package access

import (
	"bytes"
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

// procRoot is /proc; tests of the parsers may point it elsewhere.
var procRoot = "/proc"

// Test hooks: testHookAfterPin runs between pinning the pid and reading
// /proc, testHookAfterRead between reading and the liveness check, so that
// a test can end or replace the process there; testNoPidfd forces the
// start-time fallback.
var (
	testHookAfterPin  func()
	testHookAfterRead func()
	testNoPidfd       bool
)

// identify reads the caller's executable, cgroup and groups from /proc.
//
// A pid can be reused once its process is gone, so every read is bracketed:
//  1. pidfd_open(pid) pins whichever process has the pid now (falling
//     back, where pidfds are missing, to the start time in /proc/PID/stat);
//  2. read exe, cgroup and status (and open exe when the hash is wanted);
//  3. the fsuid and fsgid in status must be the request's: a pid reused by
//     another user's process is refused here;
//  4. the pidfd must still be alive (or the start time unchanged): if the
//     process exited during 2, what was read may be its successor's.
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
	dir := procRoot + "/" + strconv.FormatUint(uint64(c.PID), 10)
	alive, err := pin(int(c.PID), dir)
	if err != nil {
		return nil, err
	}
	defer alive.close()
	if testHookAfterPin != nil {
		testHookAfterPin()
	}

	p = &Process{}
	if n&(needExe|needExeFile) != 0 {
		if p.Exe, err = os.Readlink(dir + "/exe"); err != nil {
			return p, fmt.Errorf("read executable: %w", err)
		}
	}
	if n&needExeFile != 0 {
		f, err := os.Open(dir + "/exe")
		if err != nil {
			return p, fmt.Errorf("open executable: %w", err)
		}
		p.exe = f
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return p, fmt.Errorf("stat executable: %w", err)
		}
		p.exeKey = keyOf(&st)
	}
	if n&needCgroup != 0 {
		cg, err := os.ReadFile(dir + "/cgroup")
		if err != nil {
			return p, fmt.Errorf("read cgroup: %w", err)
		}
		p.Cgroup = parseCgroup(cg)
	}
	// Always read: the fsuid/fsgid check below is what tells a reused
	// pid apart. /proc/PID/status is the costliest read here (~20 µs).
	st, err := os.ReadFile(dir + "/status")
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

// liveness tells whether the process pinned at the start is still the one
// behind the pid.
type liveness struct {
	pidfd int    // -1 when the start time is used instead
	dir   string //
	start string // field 22 of /proc/PID/stat
}

func pin(pid int, dir string) (*liveness, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if testNoPidfd {
		fd, err = -1, unix.ENOSYS
	}
	if errors.Is(err, unix.EINVAL) {
		// Not a thread-group leader: FUSE stamps thread ids. Since Linux
		// 6.9 PIDFD_THREAD pins a single thread.
		fd, err = unix.PidfdOpen(pid, unix.PIDFD_THREAD)
	}
	switch {
	case err == nil:
		return &liveness{pidfd: fd}, nil
	case errors.Is(err, unix.ESRCH):
		return nil, errors.New("no such process (it exited)")
	}
	// No pidfds here (ENOSYS, EINVAL for a thread before 6.9, a seccomp
	// filter): compare start times instead.
	start, err := startTime(dir)
	if err != nil {
		return nil, err
	}
	return &liveness{pidfd: -1, dir: dir, start: start}, nil
}

func (l *liveness) check() error {
	if l.pidfd < 0 {
		s, err := startTime(l.dir)
		if err != nil {
			return err
		}
		if s != l.start {
			return errors.New("the pid changed hands while it was read")
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

func (l *liveness) close() {
	if l.pidfd >= 0 {
		unix.Close(l.pidfd)
	}
}

// startTime reads field 22 (starttime) of /proc/PID/stat. The comm field
// (2) is in parentheses and may itself hold ") ", so fields are counted
// from the last ')'.
func startTime(dir string) (string, error) {
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return "", errors.New("no such process (it exited)")
		}
		return "", fmt.Errorf("read stat: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return "", errors.New("short /proc stat")
	}
	return f[19], nil
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
