package fs

import (
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// enosysFS answers every OPEN with ENOSYS, as a node not wired through
// openHook would on a read-only mount.
type enosysFS struct{ fuse.RawFileSystem }

func (enosysFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// Where opens must reach the daemon, an ENOSYS (which would stop every
// later OPEN) becomes a refusal; elsewhere it passes, as the read-only fast
// path needs.
func TestOpenGuard(t *testing.T) {
	for _, reach := range []bool{true, false} {
		f := New(Options{ReadOnly: true})
		f.opensReach = reach
		g := openGuard{enosysFS{fuse.NewDefaultRawFileSystem()}, f}
		got := g.Open(nil, &fuse.OpenIn{}, &fuse.OpenOut{})
		want := fuse.ENOSYS
		if reach {
			want = fuse.EACCES
		}
		if got != want {
			t.Errorf("opens reach the daemon %v: %v, want %v", reach, got, want)
		}
	}
}
