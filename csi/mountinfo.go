package csi

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FSType is the type every infisicalfs mount shows in mountinfo.
const FSType = "fuse.infisicalfs"

// mountEntry is one line of /proc/self/mountinfo that matters here.
type mountEntry struct {
	Target string
	FSType string
	Source string
}

// readMountinfo parses mountinfo (proc(5)): field 5 is the mount point,
// after the " - " separator come the type and the source.
func readMountinfo(file string) ([]mountEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []mountEntry
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
		if sep < 0 || len(fields) < sep+3 || len(fields) < 5 {
			continue
		}
		out = append(out, mountEntry{Target: unescapeMount(fields[4]), FSType: fields[sep+1], Source: unescapeMount(fields[sep+2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes of space, tab, newline
// and backslash.
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// ourMounts lists infisicalfs mounts at or under root, deepest first so
// that nested ones go before their parents.
func ourMounts(file, root string) ([]string, error) {
	ms, err := readMountinfo(file)
	if err != nil {
		return nil, err
	}
	root = filepath.Clean(root)
	var out []string
	for _, m := range ms {
		if m.FSType != FSType {
			continue
		}
		if m.Target == root || strings.HasPrefix(m.Target, root+"/") || root == "/" {
			out = append(out, m.Target)
		}
	}
	// Reverse mount order is a safe unmount order.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// isOurMount reports whether target is an infisicalfs mount point.
func isOurMount(file, target string) (bool, error) {
	ms, err := ourMounts(file, target)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m == filepath.Clean(target) {
			return true, nil
		}
	}
	return false, nil
}

// unmountStale detaches an infisicalfs mount at target, if any. MNT_DETACH
// because the daemon behind a stale mount is gone and a plain unmount of a
// mount some process still has open would fail.
func unmountStale(file, target string) error {
	for range 8 { // mounts can stack; a bound keeps a table we misread from spinning
		ok, err := isOurMount(file, target)
		if err != nil || !ok {
			return err
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount stale %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount stale %s: still mounted after 8 unmounts", target)
}

// csiVolumeDir is the directory kind kubelet puts CSI volume targets in
// (pods/<uid>/volumes/kubernetes.io~csi/<name>/mount). A sidecar's own
// infisicalfs mount, propagated to the host from an emptyDir, lives under
// kubernetes.io~empty-dir and is not ours to remove.
const csiVolumeDir = "/volumes/kubernetes.io~csi/"

// CleanupStale unmounts every infisicalfs mount in a CSI volume directory
// under root: at start the driver owns none, so any found there were left
// by an earlier driver process and are dead. It returns those it cleared.
func CleanupStale(file, root string) ([]string, error) {
	ms, err := ourMounts(file, root)
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, t := range ms {
		if !strings.Contains(t, csiVolumeDir) {
			continue
		}
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount stale %s: %w", t, err))
			continue
		}
		done = append(done, t)
	}
	return done, errors.Join(errs...)
}
