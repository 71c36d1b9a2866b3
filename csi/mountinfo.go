package csi

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/infisicalfs/infisicalfs/internal/daemon"
)

// FSType is the type every infisicalfs mount shows in mountinfo.
const FSType = "fuse.infisicalfs"

// ourMounts lists infisicalfs mounts at or under root, deepest first so
// that nested ones go before their parents.
func ourMounts(file, root string) ([]string, error) {
	ms, err := daemon.ReadMountinfo(file)
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
