package csi

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infisicalfs/infisicalfs/internal/daemon"
)

const sampleMountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount rw,nosuid,nodev - fuse.infisicalfs infisicalfs rw,user_id=0,group_id=0
31 22 0:41 / /var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/my\040vol/mount rw shared:5 master:2 - fuse.infisicalfs infisicalfs rw
32 22 0:42 / /var/lib/kubelet/pods/u3/volumes/kubernetes.io~empty-dir/secrets rw - fuse.infisicalfs infisicalfs rw
33 22 0:43 / /var/lib/kubelet/pods/u4/volumes/kubernetes.io~csi/other/mount rw - fuse.gcsfuse bucket rw
34 22 0:44 / /var/lib/kubelet/podsX/volumes/kubernetes.io~csi/x/mount rw - fuse.infisicalfs infisicalfs rw
`

func TestMountinfo(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(f, []byte(sampleMountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := ourMounts(f, "/var/lib/kubelet/pods")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ // in reverse mount order; not gcsfuse, not podsX
		"/var/lib/kubelet/pods/u3/volumes/kubernetes.io~empty-dir/secrets",
		"/var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/my vol/mount",
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount",
	}
	if !slices.Equal(ms, want) {
		t.Fatalf("got %q\nwant %q", ms, want)
	}
	ok, err := isOurMount(f, "/var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/my vol/mount/")
	if err != nil || !ok {
		t.Fatalf("isOurMount with a space and a trailing slash: %v %v", ok, err)
	}
	if ok, _ := isOurMount(f, "/var/lib/kubelet/pods/u4/volumes/kubernetes.io~csi/other/mount"); ok {
		t.Fatal("another driver's FUSE mount counted as ours")
	}
}

// FuzzMountinfo: any mount table parses without panicking, and every
// entry it returns came from a line with the " - " separator.
func FuzzMountinfo(f *testing.F) {
	f.Add(sampleMountinfo)
	f.Add("1 2 3 4 /a\\040b - fuse.infisicalfs x rw\n- - - - - - -\n")
	f.Add("30 22 0:40 / / rw - \n")
	f.Fuzz(func(t *testing.T, table string) {
		p := filepath.Join(t.TempDir(), "mi")
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
		ms, err := daemon.ReadMountinfo(p)
		if err != nil {
			return // a line over the scanner's limit
		}
		for _, m := range ms {
			if m.FSType == "" || m.Target == "" {
				t.Fatalf("entry %+v", m)
			}
		}
	})
}
