package state

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad: arbitrary bytes never panic the loader, and whatever loads saves
// and loads again to the same state (compared as saved bytes, which also
// covers time zones that reflect.DeepEqual would see as different).
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"last_sync":"2025-01-15T10:30:00Z","project_ids":["uuid1"],"environment":"prod","secrets":{"DATABASE_URL":{"hash":"ab","version":3,"last_synced":"2025-01-15T10:30:00Z"}},"error_count":0,"push_count":12,"pull_count":47}`))
	f.Add([]byte(`{"schema_version":2,"secrets":{"p/e/a/K":{"hash":"h","version":1,"last_synced":"2025-01-15T10:30:00+02:00","project":"p","environment":"e","path":"/a","key":"K"}},"scopes":{"p/e":{"etag":"x","last_sync":"0001-01-01T00:00:00Z","error_count":2}},"environments":["e"]}`))
	f.Add([]byte(`{"secrets":null,"project_ids":null}`))
	f.Add([]byte(`{"schema_version":-1}`))
	f.Add([]byte(`{"secrets":{"K":{}, "p/prod/K":{}},"project_ids":["p"],"environment":"prod"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		f1, err := decode(data)
		if err != nil {
			_ = describeParseError(err)
			return
		}
		b1, err := encodeBytes(&f1)
		if err != nil {
			t.Fatalf("a loaded state does not save: %v", err)
		}
		f2, err := decode(b1)
		if err != nil {
			t.Fatalf("a saved state does not load: %v\n%s", err, b1)
		}
		b2, err := encodeBytes(&f2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("load, save, load changed the state (%v):\n%s\n---\n%s", err, b1, b2)
		}
	})
}

// TestLoadSaveLoadThroughDisk runs the fuzz seeds through Open and Save
// themselves, files and all.
func TestLoadSaveLoadThroughDisk(t *testing.T) {
	for _, seed := range []string{
		`{"last_sync":"2025-01-15T10:30:00Z","project_ids":["uuid1"],"environment":"prod","secrets":{"DATABASE_URL":{"hash":"ab","version":3,"last_synced":"2025-01-15T10:30:00Z"}},"error_count":0,"push_count":12,"pull_count":47}`,
		`{"schema_version":2,"secrets":{"p/e/a/K":{"hash":"h","version":1,"last_synced":"2025-01-15T10:30:00+02:00"}},"scopes":{"p/e":{"etag":"x","last_sync":"2025-01-15T10:30:00Z"}}}`,
	} {
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
			t.Fatal(err)
		}
		s1, _ := mustOpen(t, path)
		if err := s1.Save(); err != nil {
			t.Fatal(err)
		}
		saved, _ := os.ReadFile(path)
		s2, _ := mustOpen(t, path)
		if err := s2.Save(); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(path)
		if !bytes.Equal(saved, again) || len(corruptFiles(t, path)) != 0 {
			t.Fatalf("load, save, load changed the file:\n%s\n---\n%s", saved, again)
		}
	}
}

func encodeBytes(f *File) ([]byte, error) {
	var b bytes.Buffer
	recs := records(f.Secrets)
	sortRecords(recs)
	err := encode(&b, f, recs)
	return b.Bytes(), err
}

// FuzzRecordEncoding: the hand-written record encoder writes what
// json.Marshal writes for the same record, whatever the strings hold.
func FuzzRecordEncoding(f *testing.F) {
	f.Add("p/e/K", "ab12", 3, int64(1736937000), int64(5), "p", "e", "/a", "K")
	f.Add("p/e/\"quoted\"\\", "", -1, int64(0), int64(0), "", "", "", "")
	f.Add("p/e/<html>&\u2028\x01", "h", 0, int64(-62135596800), int64(0), "ü", "\x7f", "/\t", "K\n")
	f.Add("p/e/K", "h", 1, int64(253402300799), int64(999999999), "p", "e", "/", "\xff")
	f.Fuzz(func(t *testing.T, id, hash string, version int, sec, nsec int64, project, env, path, key string) {
		if project != "" && env != "" && key != "" {
			id = SecretID(project, env, path, key) // mostly IDs of the usual shape
		}
		rec := Secret{Hash: hash, Version: version, LastSynced: time.Unix(sec, nsec%1e9).UTC()}
		got, err := appendRecord(nil, id, rec)
		// What the file holds per record: the record and its ID's parts.
		wire := struct {
			Secret
			Project     string `json:"project,omitempty"`
			Environment string `json:"environment,omitempty"`
			Path        string `json:"path,omitempty"`
			Key         string `json:"key,omitempty"`
		}{Secret: rec}
		wire.Project, wire.Environment, wire.Path, wire.Key, _ = ParseSecretID(id)
		k, kerr := json.Marshal(id)
		v, verr := json.Marshal(wire)
		if kerr != nil || verr != nil {
			if err == nil {
				t.Fatalf("json.Marshal fails (%v %v) but appendRecord wrote %s", kerr, verr, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("appendRecord: %v; json.Marshal wrote %s", err, v)
		}
		want := string(k) + ": " + string(v)
		if string(got) != want {
			t.Fatalf("appendRecord wrote\n%s\njson.Marshal\n%s", got, want)
		}
	})
}

// FuzzParseSecretID: an ID made by SecretID from parts without "/" (and a
// canonical path) parses back to those parts; any string parses without
// panicking, and what parses rebuilds the same ID.
func FuzzParseSecretID(f *testing.F) {
	f.Add("proj", "dev", "/", "K")
	f.Add("proj", "dev", "/a/b", "K")
	f.Add("p", "e", "", "K")
	f.Fuzz(func(t *testing.T, project, env, path, key string) {
		if p, e, pa, k, ok := ParseSecretID(project); ok && SecretID(p, e, pa, k) != project {
			t.Fatalf("ParseSecretID(%q) = %q %q %q %q, which rebuilds %q", project, p, e, pa, k, SecretID(p, e, pa, k))
		}
		if project == "" || env == "" || key == "" || strings.Contains(project+env+key, "/") {
			return
		}
		if path == "" {
			path = "/"
		}
		if path[0] != '/' || (path != "/" && (strings.HasSuffix(path, "/") || strings.Contains(path, "//"))) {
			return
		}
		p, e, pa, k, ok := ParseSecretID(SecretID(project, env, path, key))
		if !ok || p != project || e != env || pa != path || k != key {
			t.Fatalf("ParseSecretID(SecretID(%q, %q, %q, %q)) = %q %q %q %q %v", project, env, path, key, p, e, pa, k, ok)
		}
	})
}
