// Package state keeps infisical_sync_state.json: what was synced, as hashes
// and counters, never values. It is written atomically and a corrupt file
// never stops a mount.
//
// Schema: the original sync design's fields (last_sync, project_ids,
// environment, secrets{KEY: {hash, version, last_synced}}, error_count,
// push_count, pull_count), extended so that several projects, environments
// and folders can be told apart. A secret's map key is its plain KEY when the
// secret sits in the root folder and the file holds a single project and
// environment — exactly the original layout, so an original reader keeps
// working there — and "<project>/<env><path>/KEY" otherwise. Every record
// also carries project, environment, path and key fields, so readers need
// not parse map keys.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// SchemaVersion is written to schema_version.
const SchemaVersion = 2

// File is the state file's content.
type File struct {
	LastSync    time.Time         `json:"last_sync"`
	ProjectIDs  []string          `json:"project_ids"`
	Environment string            `json:"environment"`
	Secrets     map[string]Secret `json:"secrets"`
	ErrorCount  int               `json:"error_count"`
	PushCount   int               `json:"push_count"`
	PullCount   int               `json:"pull_count"`

	// Extensions; readers of the original schema ignore them.
	SchemaVersion int              `json:"schema_version"`
	Environments  []string         `json:"environments,omitempty"`
	Scopes        map[string]Scope `json:"scopes,omitempty"`
}

// Secret records one secret: a hash of KEY:VALUE, never the value.
type Secret struct {
	Hash        string    `json:"hash"`
	Version     int       `json:"version"`
	LastSynced  time.Time `json:"last_synced"`
	Project     string    `json:"project,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Path        string    `json:"path,omitempty"`
	Key         string    `json:"key,omitempty"`
}

// Scope is one project environment's sync bookkeeping.
type Scope struct {
	ETag       string    `json:"etag,omitempty"`
	LastSync   time.Time `json:"last_sync"`
	LastError  string    `json:"last_error,omitempty"`
	ErrorCount int       `json:"error_count"`
}

// SecretID is the map key of a secret in the full form; see the package
// comment for when the plain KEY is used instead.
func SecretID(project, env, path, key string) string {
	return project + "/" + env + strings.TrimSuffix(path, "/") + "/" + key
}

// Hash is the hex SHA-256 of "KEY:VALUE".
func Hash(key string, value []byte) string {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{':'})
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil))
}

// Changed compares the recorded secrets with current ones (both keyed by
// SecretID) and names what was added, changed and removed.
func (f *File) Changed(current map[string]Secret) (added, changed, removed []string) {
	for id, c := range current {
		old, ok := f.Secrets[id]
		switch {
		case !ok:
			added = append(added, id)
		case old.Hash != c.Hash:
			changed = append(changed, id)
		}
	}
	for id := range f.Secrets {
		if _, ok := current[id]; !ok {
			removed = append(removed, id)
		}
	}
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed
}

// DefaultPath is the state file of one mount point:
// $XDG_STATE_HOME/infisicalfs/<mount point, escaped>/infisical_sync_state.json,
// else under ~/.local/state.
func DefaultPath(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("state directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	name := strings.ReplaceAll(strings.Trim(abs, "/"), "/", "-")
	if name == "" {
		name = "root"
	}
	return filepath.Join(base, "infisicalfs", name, "infisical_sync_state.json"), nil
}

// Store is a loaded state file. Its methods are safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	f  File

	saveMu sync.Mutex // one Save at a time
	// beforeRename, if set, runs between writing the temp file and renaming
	// it (tests use it to kill a writer mid-save).
	beforeRename func()
}

// Open loads the state file at path. A missing file starts empty; an
// unreadable or corrupt one is moved aside with a warning and a fresh state
// begins. Stale temp files of an interrupted save are removed.
func Open(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	s := &Store{path: path, log: logger}
	s.f = empty()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err == nil:
		var f File
		if err = json.Unmarshal(b, &f); err == nil {
			if f.Secrets == nil {
				f.Secrets = map[string]Secret{}
			}
			fromDisk(&f)
			s.f = f
			return s, nil
		}
	}
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		logger.Warn("state file unreadable and could not be moved aside; starting fresh", "path", path, "err", err, "rename_err", rerr)
	} else {
		logger.Warn("state file unreadable; moved aside and starting fresh", "path", path, "moved_to", aside, "err", err)
	}
	return s, nil
}

func empty() File {
	return File{Secrets: map[string]Secret{}, SchemaVersion: SchemaVersion}
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Update mutates the state under the lock.
func (s *Store) Update(fn func(f *File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.f)
}

// Snapshot returns a deep copy of the state.
func (s *Store) Snapshot() File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

func (s *Store) copyLocked() File {
	f := s.f
	f.ProjectIDs = append([]string(nil), s.f.ProjectIDs...)
	f.Environments = append([]string(nil), s.f.Environments...)
	f.Secrets = maps.Clone(s.f.Secrets)
	f.Scopes = maps.Clone(s.f.Scopes)
	return f
}

// onDisk is the written form: single-scope root secrets keyed by plain KEY.
func onDisk(f File) File {
	f.SchemaVersion = SchemaVersion
	if len(f.ProjectIDs) > 1 || len(f.Environments) > 1 {
		return f
	}
	out := make(map[string]Secret, len(f.Secrets))
	for id, s := range f.Secrets {
		if s.Key != "" && (s.Path == "/" || s.Path == "") {
			if _, clash := out[s.Key]; !clash {
				out[s.Key] = s
				continue
			}
		}
		out[id] = s
	}
	f.Secrets = out
	return f
}

// fromDisk turns plain-KEY entries back into full IDs.
func fromDisk(f *File) {
	for id, s := range f.Secrets {
		if s.Project != "" && id == s.Key {
			delete(f.Secrets, id)
			f.Secrets[SecretID(s.Project, s.Environment, s.Path, s.Key)] = s
		}
	}
}

// Save writes the state atomically: a temp file in the same directory
// (0600), fsync, rename over the old file, fsync of the directory. A crash at
// any point leaves the old file or the new one, whole.
func (s *Store) Save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	f := onDisk(s.copyLocked())
	s.mu.Unlock()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if s.beforeRename != nil {
		s.beforeRename()
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
