package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MountEntry is one line of /proc/self/mountinfo, the fields used here.
type MountEntry struct {
	Target string // the mount point, unescaped
	FSType string // "fuse.infisicalfs", "tmpfs", …
	Source string
	Minor  string // the device's minor number: a FUSE connection's name in fusectl
}

// ReadMountinfo parses a mountinfo file (proc(5)): field 3 is major:minor,
// field 5 the mount point; after the " - " separator come the type and the
// source.
func ReadMountinfo(file string) ([]MountEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []MountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+3 {
			continue
		}
		_, minor, _ := strings.Cut(fields[2], ":")
		out = append(out, MountEntry{Target: mountUnescaper.Replace(fields[4]), FSType: fields[sep+1],
			Source: mountUnescaper.Replace(fields[sep+2]), Minor: minor})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// mountUnescaper undoes the kernel's octal escapes of space, tab, newline
// and backslash in mountinfo.
var mountUnescaper = strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)

// fuseMountsAt are the FUSE mounts at path (any FUSE file system), oldest
// first, from /proc/self/mountinfo: a dead mount (ENOTCONN) is one too.
func fuseMountsAt(path string) ([]MountEntry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ms, err := ReadMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []MountEntry
	for _, m := range ms {
		if m.Target == abs && strings.HasPrefix(m.FSType, "fuse") {
			out = append(out, m)
		}
	}
	return out, nil
}

// IsMounted reports whether path is a mount point of ours (any FUSE mount),
// reading /proc/self/mountinfo so that a dead mount (ENOTCONN) counts too.
func IsMounted(path string) (bool, error) {
	ms, err := fuseMountsAt(path)
	return len(ms) > 0, err
}

// abortConnection aborts the FUSE connection mounted at path through
// fusectl, best effort: the unmount that follows is what the caller checks.
// If fusectl is not mounted it is mounted for the write and unmounted after,
// so recovering a stale mount leaves no mount of its own behind.
func abortConnection(path string) {
	dev, ok := mountDevice(path)
	if !ok {
		return
	}
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(ctl + "/" + dev); errors.Is(err, os.ErrNotExist) {
		if unix.Mount("fusectl", ctl, "fusectl", 0, "") == nil {
			defer unix.Unmount(ctl, 0)
		}
	}
	_ = os.WriteFile(ctl+"/"+dev+"/abort", []byte("1"), 0)
}

// mountDevice is the minor device number of the FUSE mount at path (the
// fusectl connection's name), from /proc/self/mountinfo.
func mountDevice(path string) (string, bool) {
	ms, err := fuseMountsAt(path)
	if err != nil || len(ms) == 0 {
		return "", false
	}
	dev := ms[len(ms)-1].Minor // the last one mounted there wins
	return dev, dev != ""
}

// Stale reports whether path is a FUSE mount whose daemon is gone. statfs
// always reaches the daemon (stat of the root can be answered from the
// kernel's attribute cache), so a dead one shows as ENOTCONN.
func Stale(path string) bool {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

// ForceUnmount detaches a FUSE mount, live or dead: the umount syscall as root,
// else fusermount3 (lazily, so a dead mount goes too). As root a plain
// umount comes first: a live daemon sees it and exits cleanly, and the
// kernel fails whatever still waits on a dead connection. Only if the mount
// is busy (a file of it still open, perhaps by a daemon killed while it
// held one, which then can never exit) is the connection aborted and the
// mount detached.
func ForceUnmount(path string, stderr io.Writer) error {
	if os.Geteuid() == 0 {
		if unix.Unmount(path, 0) == nil {
			return nil
		}
		abortConnection(path)
		err := unix.Unmount(path, 0)
		if err == nil {
			return nil
		}
		if unix.Unmount(path, unix.MNT_DETACH) == nil {
			return nil
		}
		// An aborted live daemon unmounts by itself, which can win the race.
		if m, merr := IsMounted(path); merr == nil && !m {
			return nil
		}
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	for _, prog := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(prog); err == nil {
			cmd := exec.Command(p, "-u", "-z", path)
			cmd.Stderr = stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s -u %s: %w", prog, path, err)
			}
			return nil
		}
	}
	return fmt.Errorf("unmount %s: not root and no fusermount3 found (apt-get install fuse3)", path)
}

// CheckMountpoint makes sure path can be mounted on, before anything
// contacts Infisical: it exists, is a directory, is not a live mount, and
// is empty unless allowNonEmpty (a mount would hide its files). A mount
// left by a dead earlier process is cleared, so a restart after kill -9
// works; notice is told so.
func CheckMountpoint(path string, allowNonEmpty bool, notice io.Writer) error {
	mounted, err := IsMounted(path)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", path, err)
	}
	if mounted {
		if !Stale(path) {
			return fmt.Errorf("mountpoint %s is already mounted by a live filesystem; unmount it first", path)
		}
		fmt.Fprintf(notice, "infisicalfs: clearing the stale mount at %s left by a dead process\n", path)
		if err := ForceUnmount(path, notice); err != nil {
			return err
		}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist; create it with mkdir -p %s", path, path)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", path)
	}
	if allowNonEmpty {
		return nil
	}
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", path, err)
	}
	defer d.Close()
	if names, _ := d.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("mountpoint %s is not empty (it holds %q); mounting would hide its files: empty it, or pass --allow-non-empty", path, names[0])
	}
	return nil
}
