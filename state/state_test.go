package state

import (
	"github.com/infisicalfs/infisicalfs/internal/testutil"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const canary = "CANARY-v4lue-71c0ffee"

func testLogger() (*slog.Logger, *testutil.Buffer) {
	var b testutil.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// testHasher is the keyed hasher of most tests: a fixed key, so that a
// reopened file's hashes compare.
var testHasher = mustHasher(HashHMAC, bytes.Repeat([]byte{7}, KeySize))

func mustHasher(scheme string, key []byte) *Hasher {
	h, err := NewHasher(scheme, key)
	if err != nil {
		panic(err)
	}
	return h
}

func mustOpen(t testing.TB, path string) (*Store, *testutil.Buffer) {
	t.Helper()
	return mustOpenWith(t, path, testHasher)
}

func mustOpenWith(t testing.TB, path string, h *Hasher) (*Store, *testutil.Buffer) {
	t.Helper()
	log, buf := testLogger()
	s, err := OpenWith(path, Options{Logger: log, Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	return s, buf
}

func TestSecretID(t *testing.T) {
	for _, c := range []struct{ project, env, path, key, want string }{
		{"p1", "dev", "/", "DB", "p1/dev/DB"},
		{"p1", "dev", "/a/b", "DB", "p1/dev/a/b/DB"},
		{"p1", "dev", "/", "", "p1/dev/"},
	} {
		if got := SecretID(c.project, c.env, c.path, c.key); got != c.want {
			t.Errorf("SecretID(%q, %q, %q, %q) = %q, want %q", c.project, c.env, c.path, c.key, got, c.want)
		}
	}
}

func TestHash(t *testing.T) {
	// Reference values from sha256sum of the literal strings.
	if got := Hash("DATABASE_URL", []byte("postgres://x")); got != "02086072af8623c99de38a1a5811a01c3cf53acbb51cfd4a9fb0feb4897c99c8" {
		t.Errorf("Hash = %s", got)
	}
	if got := Hash("K", nil); got != "4a2f19b2a6df10112e863f99bb0b0871f5c30404098fedf0886f408d3cdcb259" {
		t.Errorf("Hash of empty value = %s", got)
	}
}

func TestOpenMissingCreatesPrivateDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", FileName)
	s, _ := mustOpen(t, path)
	f := s.Snapshot()
	if len(f.Secrets) != 0 || f.SchemaVersion != SchemaVersion || s.Path() != path {
		t.Fatalf("fresh state = %+v", f)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v, want 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Open of a missing file wrote one")
	}
}

func sampleUpdate(f *File) {
	now := time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	f.LastSync = now
	f.ProjectIDs = append(f.ProjectIDs, "p1")
	f.Environment = "prod"
	f.Environments = []string{"prod"}
	f.PushCount, f.PullCount, f.ErrorCount = 12, 47, 1
	for i, k := range []string{"DATABASE_URL", "API_KEY"} {
		f.Secrets[SecretID("p1", "prod", "/", k)] = Secret{
			Hash: testHasher.Hash(k, []byte(canary+k)), Version: i + 1, LastSynced: now,
		}
	}
	f.Scopes = map[string]Scope{"p1/prod": {ETag: `"abc"`, LastSync: now, LastError: "403 forbidden", ErrorCount: 1}}
}

func TestSaveLoadRoundTripKeepsOriginalSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, _ := mustOpen(t, path)
	s.Update(sampleUpdate)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v (%v), want 0600", fi.Mode(), err)
	}
	s2, log := mustOpen(t, path)
	if got, want := s2.Snapshot(), s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("reloaded state differs:\n got %+v\nwant %+v", got, want)
	}
	if strings.Contains(log.String(), "WARN") {
		t.Fatalf("clean load warned: %s", log)
	}
	// A reader of the original schema finds its fields.
	var raw map[string]json.RawMessage
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"last_sync", "project_ids", "environment", "secrets", "error_count", "push_count", "pull_count"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("saved file lacks original field %q", k)
		}
	}
	var secrets map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw["secrets"], &secrets); err != nil {
		t.Fatal(err)
	}
	for id, rec := range secrets {
		for _, k := range []string{"hash", "version", "last_synced"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("secret %s lacks original field %q", id, k)
			}
		}
	}
}

// TestNoValueReachesDisk plants canary values, saves several times and
// searches every file in the state directory, and the log, for them.
func TestNoValueReachesDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, log := mustOpen(t, path)
	s.Update(sampleUpdate)
	for i := range 3 {
		s.Update(func(f *File) { f.PushCount = i })
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("state directory holds %d entries, want only the state file", len(entries))
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("CANARY")) {
			t.Errorf("%s contains a value", e.Name())
		}
	}
	if strings.Contains(log.String(), "CANARY") {
		t.Error("the log contains a value")
	}
	if got := s.Snapshot().Secrets["p1/prod/API_KEY"].Hash; got != testHasher.Hash("API_KEY", []byte(canary+"API_KEY")) {
		t.Errorf("hash not kept: %s", got)
	}
	// Keyed: not even the plain SHA-256 of KEY:VALUE, the guessable copy.
	b, _ := os.ReadFile(path)
	for _, k := range []string{"DATABASE_URL", "API_KEY"} {
		if plain := Hash(k, []byte(canary+k)); bytes.Contains(b, []byte(plain)) {
			t.Errorf("the keyed state file holds the plain SHA-256 of %s", k)
		}
	}
	if !bytes.Contains(b, []byte(`"hash_scheme": "hmac-sha256"`)) || !bytes.Contains(b, []byte(`"hash_key_id": "`+testHasher.KeyID()+`"`)) {
		t.Errorf("the file does not name its hash scheme and key id:\n%s", b)
	}
}

func corruptFiles(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUnusableFileIsSetAside(t *testing.T) {
	for name, content := range map[string]string{
		"syntax":         `{"secrets": {"K": CANARY}}`,
		"truncated":      `{"last_sync": "2025-01-15T10:30:00Z", "secrets": {"K": {"hash": "CANARY`,
		"type string":    `{"error_count": "CANARY"}`,
		"type number":    `{"environment": 4242424242}`,
		"bad time":       `{"last_sync": "CANARY"}`,
		"newer schema":   `{"schema_version": 99, "environment": "CANARY"}`,
		"trailing bytes": `{} CANARY`,
		"not an object":  `["CANARY"]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, log := mustOpen(t, path)
			if f := s.Snapshot(); len(f.Secrets) != 0 || f.ErrorCount != 0 || f.Environment != "" {
				t.Fatalf("state not fresh: %+v", f)
			}
			aside := corruptFiles(t, path)
			if len(aside) != 1 {
				t.Fatalf("set-aside files: %v", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Fatal("set-aside file lost its content")
			}
			out := log.String()
			if !strings.Contains(out, "WARN") || !strings.Contains(out, path) || !strings.Contains(out, aside[0]) {
				t.Errorf("warning lacks level, file or new name: %s", out)
			}
			if strings.Contains(out, "CANARY") || strings.Contains(out, "4242424242") {
				t.Errorf("warning quotes the file's content: %s", out)
			}
			if err := s.Save(); err != nil {
				t.Fatal(err)
			}
			if _, log := mustOpen(t, path); strings.Contains(log.String(), "WARN") {
				t.Errorf("fresh state did not load cleanly: %s", log)
			}
		})
	}
}

func TestUnreadableFileIsSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.Mkdir(path, 0o700); err != nil { // reading a directory fails
		t.Fatal(err)
	}
	s, log := mustOpen(t, path)
	if len(corruptFiles(t, path)) != 1 || !strings.Contains(log.String(), "WARN") {
		t.Fatalf("unreadable file not set aside: %s", log)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
}

func TestOriginalFileIsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	original := `{
  "last_sync": "2025-01-15T10:30:00Z",
  "project_ids": ["uuid1"],
  "environment": "prod",
  "secrets": {
    "DATABASE_URL": {"hash": "abc", "version": 3, "last_synced": "2025-01-15T10:30:00Z"}
  },
  "error_count": 0,
  "push_count": 12,
  "pull_count": 47
}`
	if err := os.WriteFile(path, []byte(original), 0o600); err != nil {
		t.Fatal(err)
	}
	// With the plain hash (state_hash = "sha256") the original hashes
	// compare and are kept.
	s, _ := mustOpenWith(t, path, PlainHasher())
	f := s.Snapshot()
	rec, ok := f.Secrets["uuid1/prod/DATABASE_URL"]
	if !ok || len(f.Secrets) != 1 {
		t.Fatalf("not migrated: %+v", f.Secrets)
	}
	want := Secret{Hash: "abc", Version: 3, LastSynced: time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)}
	if !reflect.DeepEqual(rec, want) || f.PushCount != 12 || f.PullCount != 47 || f.SchemaVersion != SchemaVersion {
		t.Fatalf("migrated = %+v (file %+v)", rec, f)
	}
	// Saved, the record names its parts.
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(`"uuid1/prod/DATABASE_URL": {"hash":"abc","version":3,"last_synced":"2025-01-15T10:30:00Z","project":"uuid1","environment":"prod","path":"/","key":"DATABASE_URL"}`)) {
		t.Fatalf("saved migrated file:\n%s", b)
	}
	// Keyed, the plain hashes cannot compare: forgotten, versions kept.
	s, _ = mustOpen(t, path)
	if rec := s.Snapshot().Secrets["uuid1/prod/DATABASE_URL"]; rec.Hash != "" || rec.Version != 3 {
		t.Fatalf("a plain hash opened under a key = %+v, want no hash and version 3", rec)
	}
	if err := os.WriteFile(path, []byte(original), 0o600); err != nil {
		t.Fatal(err)
	}
	// Several projects: ids cannot be placed and stay as they were.
	multi := strings.Replace(original, `["uuid1"]`, `["uuid1", "uuid2"]`, 1)
	if err := os.WriteFile(path, []byte(multi), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ = mustOpen(t, path)
	if _, ok := s.Snapshot().Secrets["DATABASE_URL"]; !ok {
		t.Fatal("unplaceable original id was dropped")
	}
}

func TestSnapshotIsDeep(t *testing.T) {
	s, _ := mustOpen(t, filepath.Join(t.TempDir(), FileName))
	s.Update(sampleUpdate)
	snap := s.Snapshot()
	snap.ProjectIDs[0] = "changed"
	snap.Environments[0] = "changed"
	snap.Secrets["new"] = Secret{}
	snap.Scopes["new"] = Scope{}
	f := s.Snapshot()
	if f.ProjectIDs[0] != "p1" || f.Environments[0] != "prod" || len(f.Secrets) != 2 || len(f.Scopes) != 1 {
		t.Fatalf("mutating a snapshot changed the store: %+v", f)
	}
}

func TestChanged(t *testing.T) {
	f := File{Secrets: map[string]Secret{
		"p/e/SAME":    {Hash: "1", Version: 1},
		"p/e/BUMPED":  {Hash: "2", Version: 1},
		"p/e/EDITED":  {Hash: "3", Version: 1},
		"p/e/REMOVED": {Hash: "4"},
		"p/e/GONE":    {Hash: "5"},
		// Hashes from another key are forgotten: versions decide.
		"p/e/REKEYED_SAME":    {Hash: "", Version: 4},
		"p/e/REKEYED_CHANGED": {Hash: "", Version: 4},
	}}
	cur := map[string]Secret{
		"p/e/SAME":            {Hash: "1", Version: 1},
		"p/e/BUMPED":          {Hash: "2", Version: 2},
		"p/e/EDITED":          {Hash: "x", Version: 2},
		"p/e/NEW":             {Hash: "6"},
		"p/e/A_NEW":           {Hash: "7"},
		"p/e/REKEYED_SAME":    {Hash: "8", Version: 4},
		"p/e/REKEYED_CHANGED": {Hash: "9", Version: 5},
	}
	added, changed, removed := f.Changed(cur)
	if !slices.Equal(added, []string{"p/e/A_NEW", "p/e/NEW"}) || !slices.Equal(changed, []string{"p/e/EDITED", "p/e/REKEYED_CHANGED"}) || !slices.Equal(removed, []string{"p/e/GONE", "p/e/REMOVED"}) {
		t.Fatalf("Changed = %v, %v, %v", added, changed, removed)
	}
	var empty File
	if a, c, r := empty.Changed(nil); a != nil || c != nil || r != nil {
		t.Fatal("empty comparison found changes")
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	got, err := DefaultPath("/mnt/secrets")
	if err != nil || got != "/xdg/state/infisicalfs/mnt-secrets/"+FileName {
		t.Fatalf("DefaultPath = %q, %v", got, err)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/me")
	got, err = DefaultPath("/mnt/secrets")
	if err != nil || got != "/home/me/.local/state/infisicalfs/mnt-secrets/"+FileName {
		t.Fatalf("DefaultPath without XDG = %q, %v", got, err)
	}
	// No XDG_STATE_HOME and no home (mount(8), a system unit): the system
	// state directory.
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	noEnv := func(string) string { return "" }
	got, err = defaultPath("/mnt/secrets", noEnv, noHome)
	if err != nil || got != "/var/lib/infisicalfs/mnt-secrets/"+FileName {
		t.Fatalf("DefaultPath without a home = %q, %v", got, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if got, err := DefaultPath("/mnt/secrets"); err != nil || got != "/var/lib/infisicalfs/mnt-secrets/"+FileName {
		t.Fatalf("DefaultPath with HOME empty = %q, %v", got, err)
	}
	t.Setenv("HOME", "/home/me")
	// Relative mount points resolve against the working directory.
	wd, _ := os.Getwd()
	rel, _ := DefaultPath("some-dir")
	abs, _ := DefaultPath(filepath.Join(wd, "some-dir"))
	if rel != abs {
		t.Errorf("relative %q != absolute %q", rel, abs)
	}
	// One directory per mount point, never shared by two.
	seen := map[string]string{}
	for _, mp := range []string{"/a/b", "/a-b", "/a%2Fb", "/a_b", "/", "/.a", "/a/.b", "/a b", "/" + strings.Repeat("x", 300), "/" + strings.Repeat("x", 299) + "y"} {
		e := escapeMountpoint(mp)
		if prev, dup := seen[e]; dup {
			t.Errorf("%q and %q share %q", prev, mp, e)
		}
		seen[e] = mp
		if len(e) > 255 || strings.Contains(e, "/") || e == "" || e[0] == '.' {
			t.Errorf("escape(%q) = %q is not a usable directory name", mp, e)
		}
	}
}

func TestConcurrentUpdatesAndSaves(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, _ := mustOpen(t, path)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				s.Update(func(f *File) {
					f.PullCount++
					f.Secrets[fmt.Sprintf("p/e/K%d_%d", w, i)] = Secret{Hash: "h"}
				})
				if i%5 == 0 {
					if err := s.Save(); err != nil {
						t.Error(err)
					}
					_ = s.Snapshot()
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, _ := mustOpen(t, path)
	if f := s2.Snapshot(); f.PullCount != 100 || len(f.Secrets) != 100 {
		t.Fatalf("last save lost updates: pulls %d, secrets %d", f.PullCount, len(f.Secrets))
	}
}
