package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

const stateCanary = "CANARY-st4te-0ddba11"

// fileID is what tells one written file from another: a save renames a new
// file over the old, so the inode changes; mtime and size are checked too.
type fileID struct {
	ino   uint64
	mtime time.Time
	size  int64
}

func statFile(t *testing.T, path string) fileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileID{ino: fi.Sys().(*syscall.Stat_t).Ino, mtime: fi.ModTime(), size: fi.Size()}
}

// writeBytes is this process's write_bytes from /proc/self/io: bytes it
// caused to be sent to storage.
func writeBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no write_bytes in /proc/self/io")
	return 0
}

func readStateFile(t *testing.T, path string) state.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f state.File
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("state file: %v", err)
	}
	return f
}

func seedMany(n int) func(*infisicaltest.Server, string) {
	return func(s *infisicaltest.Server, p string) {
		for i := range n {
			s.SetSecret(p, "dev", fmt.Sprintf("/f%d", i%5), fmt.Sprintf("K_%03d", i), fmt.Sprintf("%s-%d", stateCanary, i))
		}
	}
}

// TestIdleRefreshWritesNothing: after the first sync, refreshes that change
// nothing (304s, and a full re-listing answered 200 with the same secrets)
// leave the state file alone; one changed secret rewrites it once; the
// counters reach the file at FlushState, as at unmount.
func TestIdleRefreshWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := newFixture(t, path, seedMany(200))
	f.syncNow(t)
	if n := f.state.Saves(); n != 1 {
		t.Fatalf("first sync saved %d times, want 1", n)
	}
	before := statFile(t, path)
	wrote0 := writeBytes(t)
	f.srv.ResetRequests()
	const idle = 12
	for range idle {
		f.syncNow(t)
	}
	if err := f.sync.Sync(context.Background(), true); err != nil { // a full re-list: 200, same records
		t.Fatal(err)
	}
	if got := f.srv.Count("GET", "/api/v4/secrets"); got != idle+1 {
		t.Fatalf("%d list requests, want %d: the idle cycles did not run", got, idle+1)
	}
	full := 0
	for _, r := range f.srv.Requests() {
		if r.Path == "/api/v4/secrets" && r.Status == 200 {
			full++
		}
	}
	if full != 1 {
		t.Fatalf("%d listings answered 200, want 1 (the forced one)", full)
	}
	if n := f.state.Saves(); n != 1 {
		t.Errorf("unchanged refreshes saved the state %d times", n-1)
	}
	if w := writeBytes(t) - wrote0; w != 0 {
		t.Errorf("the process wrote %d bytes to storage during unchanged refreshes (/proc/self/io)", w)
	}
	if after := statFile(t, path); after != before {
		t.Errorf("the state file changed on unchanged refreshes: %+v → %+v", before, after)
	}
	if onDisk := readStateFile(t, path); onDisk.PullCount != 1 {
		t.Errorf("pull_count on disk %d, want 1 (counters wait for the flush)", onDisk.PullCount)
	}

	// One secret changes in Infisical: one rewrite, with its new version.
	f.srv.SetSecret(f.project, "dev", "/f2", "K_007", "new value")
	f.syncNow(t)
	if n := f.state.Saves(); n != 2 {
		t.Fatalf("a changed secret saved %d times, want once", n-1)
	}
	changed := statFile(t, path)
	if changed.ino == before.ino {
		t.Error("the state file was not replaced")
	}
	id := state.SecretID(f.project, "dev", "/f2", "K_007")
	onDisk := readStateFile(t, path)
	if rec := onDisk.Secrets[id]; rec.Version != 2 || rec.Hash != f.hasher.Hash("K_007", []byte("new value")) {
		t.Errorf("record after the change: %+v", rec)
	}
	if onDisk.PullCount != idle+3 {
		t.Errorf("the rewrite carried pull_count %d, want %d", onDisk.PullCount, idle+3)
	}
	f.syncNow(t)
	if n := f.state.Saves(); n != 2 {
		t.Errorf("the refresh after the change saved again")
	}

	// Unmount: the counters and last sync reach the file.
	if err := f.sync.FlushState(); err != nil {
		t.Fatal(err)
	}
	onDisk = readStateFile(t, path)
	if onDisk.PullCount != idle+4 || onDisk.LastSync.IsZero() {
		t.Errorf("after FlushState: pull_count %d (want %d), last_sync %v", onDisk.PullCount, idle+4, onDisk.LastSync)
	}
	if err := f.sync.FlushState(); err != nil || f.state.Saves() != 3 {
		t.Errorf("a second FlushState with nothing new wrote again (%v, %d saves)", err, f.state.Saves())
	}
}

// TestCountersWaitForTheFlushInterval: without a record change, counters
// are written once they are StateFlushInterval old, not before.
func TestCountersWaitForTheFlushInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := serverFixture(t, seedMany(3))
	f.opt = func(o *Options) { o.StateFlushInterval = 300 * time.Millisecond }
	f.start(t, path)
	f.syncNow(t)
	f.syncNow(t)
	if n := f.state.Saves(); n != 1 {
		t.Fatalf("a counter change was written before its interval (%d saves)", n)
	}
	time.Sleep(350 * time.Millisecond)
	f.syncNow(t)
	if n := f.state.Saves(); n != 2 {
		t.Fatalf("counters older than the interval were not written (%d saves)", n)
	}
	if got := readStateFile(t, path).PullCount; got != 3 {
		t.Errorf("pull_count on disk %d, want 3", got)
	}
}

// TestStateFileHoldsNoValueNorPlainHash plants canaries: neither a value
// nor the plain SHA-256 of KEY:VALUE reaches the keyed file (nor the log);
// with state_hash = "sha256" the file holds the original design's hash.
func TestStateFileHoldsNoValueNorPlainHash(t *testing.T) {
	for _, scheme := range []string{state.HashHMAC, state.HashSHA256} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s.json")
			f := serverFixture(t, seedMany(20))
			if scheme == state.HashSHA256 {
				f.hasher = state.PlainHasher()
			}
			f.start(t, path)
			f.syncNow(t)
			a := vault.Addr{Project: f.project, Env: "dev", Path: "/", Key: "PUSHED"}
			if err := f.sync.Push(a, []byte(stateCanary+"-pushed"), 0); err != nil {
				t.Fatal(err)
			}
			if err := f.sync.FlushState(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(stateCanary)) || strings.Contains(f.logs.String(), stateCanary) {
				t.Fatal("a value reached the state file or the log")
			}
			plain := state.Hash("PUSHED", []byte(stateCanary+"-pushed"))
			onDisk := readStateFile(t, path)
			rec := onDisk.Secrets[state.SecretID(f.project, "dev", "/", "PUSHED")]
			switch scheme {
			case state.HashHMAC:
				if bytes.Contains(b, []byte(plain)) {
					t.Error("the keyed file holds a plain SHA-256 of KEY:VALUE")
				}
				for i := range 20 {
					k := fmt.Sprintf("K_%03d", i)
					if bytes.Contains(b, []byte(state.Hash(k, []byte(fmt.Sprintf("%s-%d", stateCanary, i))))) {
						t.Errorf("plain hash of %s in the keyed file", k)
					}
				}
				if rec.Hash != f.hasher.Hash("PUSHED", []byte(stateCanary+"-pushed")) || onDisk.HashScheme != state.HashHMAC || onDisk.HashKeyID != f.hasher.KeyID() {
					t.Errorf("record %+v, scheme %q, key id %q", rec, onDisk.HashScheme, onDisk.HashKeyID)
				}
			case state.HashSHA256:
				if rec.Hash != plain || onDisk.HashScheme != state.HashSHA256 || onDisk.HashKeyID != "" {
					t.Errorf("plain scheme: record %+v, scheme %q, key id %q", rec, onDisk.HashScheme, onDisk.HashKeyID)
				}
			}
		})
	}
}

// TestNewKeyRehashesAndStillSeesChanges: a restart under another key (a
// rotated client secret, a reboot without one) reports what changed while
// unmounted by version, and the first listing re-hashes every record under
// the new key; a restart under the same key compares hashes.
func TestNewKeyRehashesAndStillSeesChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := newFixture(t, path, func(s *infisicaltest.Server, p string) {
		s.SetSecret(p, "dev", "/", "KEEP", "1")
		s.SetSecret(p, "dev", "/", "EDIT", "1")
	})
	f.syncNow(t)
	_ = f.sync.FlushState()
	f.srv.SetSecret(f.project, "dev", "/", "EDIT", "2")

	key, _ := state.MountKey([]byte("rotated secret"), path)
	newHasher, _ := state.NewHasher(state.HashHMAC, key)
	g := (&fixture{srv: f.srv, project: f.project, logs: &bytes.Buffer{}, hasher: newHasher}).start(t, path)
	g.syncNow(t)
	log := g.logs.String()
	if !strings.Contains(log, "another key") || !strings.Contains(log, "changed in Infisical while not mounted") || !strings.Contains(log, "EDIT") || strings.Contains(log, "KEEP") {
		t.Fatalf("restart under a new key logged:\n%s", log)
	}
	onDisk := readStateFile(t, path)
	if onDisk.HashKeyID != newHasher.KeyID() {
		t.Fatalf("file names key %q, want %q", onDisk.HashKeyID, newHasher.KeyID())
	}
	for key, value := range map[string]string{"KEEP": "1", "EDIT": "2"} {
		rec := onDisk.Secrets[state.SecretID(f.project, "dev", "/", key)]
		if rec.Hash != newHasher.Hash(key, []byte(value)) {
			t.Errorf("%s not re-hashed under the new key: %+v", key, rec)
		}
	}

	// Same key again: a value changed with no version bump is still seen
	// by its hash; here, a delete and re-create at version 1.
	_ = g.sync.FlushState()
	f.srv.DeleteSecret(f.project, "dev", "/", "KEEP")
	f.srv.SetSecret(f.project, "dev", "/", "KEEP", "recreated")
	h := (&fixture{srv: f.srv, project: f.project, logs: &bytes.Buffer{}, hasher: newHasher}).start(t, path)
	h.syncNow(t)
	if log := h.logs.String(); strings.Contains(log, "another key") || !strings.Contains(log, "KEEP") {
		t.Fatalf("restart under the same key logged:\n%s", log)
	}
}

// A guarded push that cannot reach Infisical is one error, counted once,
// and marks the mount stale.
func TestUnreachableVersionCheckCountsOnce(t *testing.T) {
	f := serverFixture(t, seedMany(1))
	f.retry = infisical.RetryPolicy{ServerErrorWait: time.Millisecond}
	f.start(t, filepath.Join(t.TempDir(), "s.json"))
	f.syncNow(t)
	before := f.sync.Status().Counts
	f.srv.SetOutage(true)
	a := vault.Addr{Project: f.project, Env: "dev", Path: "/f0", Key: "K_000"}
	if err := f.sync.Push(a, []byte("v"), 1); err == nil {
		t.Fatal("a guarded push during an outage succeeded")
	}
	st := f.sync.Status()
	if got := st.Counts.Errors - before.Errors; got != 1 {
		t.Errorf("errors counted %d, want 1", got)
	}
	if got := st.Counts.PushErrors - before.PushErrors; got != 1 {
		t.Errorf("push errors counted %d, want 1", got)
	}
	if !st.Stale {
		t.Error("an unanswered version check did not mark the mount stale")
	}
}

// TestBackgroundFirstSave: with BackgroundFirstSave the first cycle's
// records are saved after Sync returns, without a later cycle; FlushState
// waits for that save; later cycles save before they return, as without
// the option.
func TestBackgroundFirstSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := serverFixture(t, seedMany(50))
	f.opt = func(o *Options) { o.BackgroundFirstSave = true }
	f.start(t, path)
	f.syncNow(t)
	deadline := time.Now().Add(10 * time.Second)
	for f.state.Saves() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first cycle's state was not saved in the background")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.sync.FlushState(); err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Secrets map[string]json.RawMessage `json:"secrets"`
	}
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &saved) != nil || len(saved.Secrets) != 50 {
		t.Fatalf("the saved state has %d records (%v), want 50", len(saved.Secrets), err)
	}
	f.srv.SetSecret(f.project, "dev", "/f0", "K_000", "changed")
	before := f.state.Saves()
	f.syncNow(t)
	if f.state.Saves() != before+1 {
		t.Fatalf("a later cycle with a changed record saved %d times before returning, want 1", f.state.Saves()-before)
	}
}
