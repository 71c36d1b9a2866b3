package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FileName is the state file's base name.
const FileName = "infisical_sync_state.json"

// afterHalfWrite, when set (by tests), runs after Save has written half of
// the temporary file, so a test can kill the writer there.
var afterHalfWrite func()

// Store is the state file of one mount, in memory and on disk.
type Store struct {
	path string
	log  *slog.Logger

	mu sync.Mutex // guards f
	f  File

	saveMu sync.Mutex // one Save at a time, so an older snapshot never lands last
}

// DefaultPath returns where a mount's state file lives:
// $XDG_STATE_HOME/infisicalfs/<escaped mount point>/infisical_sync_state.json,
// or ~/.local/state/... when XDG_STATE_HOME is unset or not absolute.
func DefaultPath(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("state: resolve mount point %q: %w", mountpoint, err)
	}
	// The same directory reached through a symlink is the same mount; a dead
	// mount cannot be resolved, so keep the plain absolute path then.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("state: no XDG_STATE_HOME and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "infisicalfs", escapeMountpoint(abs), FileName), nil
}

// escapeMountpoint turns an absolute path into one directory name: "/" to
// "-", bytes outside [A-Za-z0-9._] to %XX (so "-" and "%" stay unambiguous),
// e.g. /home/me/my-secrets → home-me-my%2Dsecrets. Names too long for a
// directory entry are cut and made unique with a hash.
func escapeMountpoint(abs string) string {
	trimmed := strings.TrimPrefix(filepath.Clean(abs), "/")
	if trimmed == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(trimmed); i++ {
		c := trimmed[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_',
			c == '.' && i > 0: // a leading "." would hide the directory
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	s := b.String()
	if len(s) > 200 {
		sum := sha256.Sum256([]byte(abs))
		s = s[:160] + "~" + hex.EncodeToString(sum[:8])
	}
	return s
}

// Open loads the state file at path. A missing file gives an empty state. A
// file that cannot be read or parsed is renamed to path+".corrupt-<UTC time>"
// with a warning naming the file and the problem (never its content), and an
// empty state starts: the state file never stops a mount. Temporary files
// left by an interrupted Save are removed. The directory is created 0700.
func Open(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if path == "" {
		return nil, errors.New("state: empty path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create directory: %w", err)
	}
	s := &Store{path: path, log: logger, f: emptyFile()}
	s.removeStaleTemps()

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		s.setAside(err.Error())
		return s, nil
	}
	f, err := decode(data)
	if err != nil {
		s.setAside(describeParseError(err))
		return s, nil
	}
	s.f = f
	return s, nil
}

func emptyFile() File {
	return File{SchemaVersion: SchemaVersion, Secrets: map[string]Secret{}, ProjectIDs: []string{}}
}

// setAside renames a bad state file out of the way so it can be looked at.
func (s *Store) setAside(problem string) {
	aside := s.path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(s.path, aside); err != nil {
		s.log.Warn("state file unusable and could not be set aside; starting a fresh state", "path", s.path, "problem", problem, "err", err)
		return
	}
	s.log.Warn("state file unusable; set aside, starting a fresh state", "path", s.path, "moved_to", aside, "problem", problem)
}

func (s *Store) removeStaleTemps() {
	entries, err := os.ReadDir(filepath.Dir(s.path))
	if err != nil {
		return
	}
	prefix := "." + filepath.Base(s.path) + ".tmp-"
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			p := filepath.Join(filepath.Dir(s.path), e.Name())
			if err := os.Remove(p); err != nil {
				s.log.Warn("could not remove a stale state temp file", "path", p, "err", err)
			} else {
				s.log.Debug("removed a stale state temp file", "path", p)
			}
		}
	}
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Update runs fn on the state under the store's lock. fn must not keep
// references into f after it returns.
func (s *Store) Update(fn func(f *File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.f)
}

// Snapshot returns a deep copy of the state.
func (s *Store) Snapshot() File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.clone()
}

// Save writes the state atomically: a temporary file in the same directory
// (0600) is written, fsynced and renamed over the state file, then the
// directory is fsynced, so a crash leaves the old file or the new one, whole.
func (s *Store) Save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	f := s.Snapshot()
	f.SchemaVersion = SchemaVersion
	data, err := encode(&f)
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("state: create temp file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeAll(tmp, data); err != nil {
		return fmt.Errorf("state: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("state: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("state: rename into place: %w", err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("state: fsync directory %s: %w", dir, err)
	}
	return nil
}

// writeAll writes data in two halves, calling the test hook in between.
func writeAll(f *os.File, data []byte) error {
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		return err
	}
	if afterHalfWrite != nil {
		afterHalfWrite()
	}
	_, err := f.Write(data[half:])
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
