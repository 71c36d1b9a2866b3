package state

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSaveLoadAndNoValues(t *testing.T) {
	const canary = "CANARY-state-51ab"
	path := filepath.Join(t.TempDir(), "sub", "infisical_sync_state.json")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	s.Update(func(f *File) {
		f.LastSync, f.ProjectIDs, f.Environments, f.Environment = now, []string{"p1"}, []string{"dev"}, "dev"
		f.Secrets[SecretID("p1", "dev", "/", "DB")] = Secret{Hash: Hash("DB", []byte(canary)), Version: 2, LastSynced: now, Project: "p1", Environment: "dev", Path: "/", Key: "DB"}
		f.Secrets[SecretID("p1", "dev", "/app", "PORT")] = Secret{Hash: Hash("PORT", []byte("1")), Version: 1, Project: "p1", Environment: "dev", Path: "/app", Key: "PORT"}
		f.PushCount = 3
	})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(canary)) {
		t.Fatal("a value reached the state file")
	}
	// Original readers find a single-scope root secret under its plain KEY.
	var orig struct {
		Secrets map[string]struct {
			Hash    string `json:"hash"`
			Version int    `json:"version"`
		} `json:"secrets"`
		PushCount int `json:"push_count"`
	}
	json.Unmarshal(b, &orig)
	if orig.Secrets["DB"].Hash != Hash("DB", []byte(canary)) || orig.Secrets["DB"].Version != 2 || orig.PushCount != 3 {
		t.Errorf("original schema view = %+v", orig)
	}
	st, _ := os.Stat(path)
	dst, _ := os.Stat(filepath.Dir(path))
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
		t.Errorf("modes %v %v, want 0600 and 0700", st.Mode(), dst.Mode())
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s2.Snapshot(), s.Snapshot(); !reflect.DeepEqual(got.Secrets, want.Secrets) {
		t.Errorf("reloaded %+v, want %+v", got.Secrets, want.Secrets)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if c, _ := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name())); bytes.Contains(c, []byte(canary)) {
			t.Errorf("canary in %s", e.Name())
		}
	}
}

func TestHashIsSHA256OfKeyColonValue(t *testing.T) {
	out, err := exec.Command("sh", "-c", "printf 'K:v' | sha256sum").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Fields(string(out)); Hash("K", []byte("v")) != want[0] {
		t.Errorf("Hash = %s, sha256sum says %s", Hash("K", []byte("v")), want[0])
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	var logs bytes.Buffer
	path := filepath.Join(t.TempDir(), "infisical_sync_state.json")
	os.WriteFile(path, []byte(`{"secrets": {"A": tru`), 0o600)
	s, err := Open(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("a corrupt file stopped Open: %v", err)
	}
	if len(s.Snapshot().Secrets) != 0 {
		t.Error("fresh state expected")
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 || !strings.Contains(logs.String(), "moved aside") {
		t.Errorf("aside %v, log %q", aside, logs.String())
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
}

func TestChanged(t *testing.T) {
	f := File{Secrets: map[string]Secret{"a": {Hash: "1"}, "b": {Hash: "2"}}}
	added, changed, removed := f.Changed(map[string]Secret{"b": {Hash: "3"}, "c": {Hash: "4"}})
	if !reflect.DeepEqual([][]string{added, changed, removed}, [][]string{{"c"}, {"b"}, {"a"}}) {
		t.Errorf("Changed = %v %v %v", added, changed, removed)
	}
}

// TestKilledMidSave kills a writer between writing its temp file and the
// rename: the old file must still load whole, and the temp is cleaned up.
func TestKilledMidSave(t *testing.T) {
	if dir := os.Getenv("STATE_KILL_CHILD"); dir != "" {
		s, _ := Open(filepath.Join(dir, "infisical_sync_state.json"), nil)
		s.Update(func(f *File) {
			for i := 0; i < 5000; i++ {
				f.Secrets[SecretID("p", "dev", "/", string(rune('A'+i%26))+strings.Repeat("x", i%50))] = Secret{Hash: "h", Version: i}
			}
		})
		s.beforeRename = func() {
			os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
			time.Sleep(time.Minute)
		}
		s.Save()
		os.Exit(0)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "infisical_sync_state.json")
	s, _ := Open(path, nil)
	s.Update(func(f *File) { f.PushCount = 7 })
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidSave$")
	cmd.Env = append(os.Environ(), "STATE_KILL_CHILD="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child never reached the rename")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) != 1 {
		t.Fatalf("expected the killed writer's temp file, found %v", tmps)
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Snapshot().PushCount != 7 {
		t.Errorf("old state not whole after a killed save: %+v", s2.Snapshot())
	}
	if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) != 0 {
		t.Errorf("stale temp files left: %v", tmps)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg")
	p, err := DefaultPath("/srv/secrets")
	if err != nil || p != "/xdg/infisicalfs/srv-secrets/infisical_sync_state.json" {
		t.Errorf("DefaultPath = %q %v", p, err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"secrets":{"A":{"hash":"x","version":1}},"push_count":2}`))
	f.Add([]byte(`{"secrets":{"p/dev/A":{"hash":"x","project":"p","environment":"dev","path":"/","key":"A"}}}`))
	f.Add([]byte(`nonsense`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.json")
		os.WriteFile(path, data, 0o600)
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, b := s.Snapshot(), s2.Snapshot()
		if len(a.Secrets) != len(b.Secrets) || a.PushCount != b.PushCount {
			t.Fatalf("round trip changed the state: %d/%d secrets", len(a.Secrets), len(b.Secrets))
		}
	})
}
