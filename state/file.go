package state

import (
	"bufio"
	"crypto/rand"
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
	"sync/atomic"
	"time"
)

// FileName is the state file's base name.
const FileName = "infisical_sync_state.json"

// afterHalfWrite, when set (by tests), runs after Save has written half of
// the temporary file, so a test can kill the writer there.
var afterHalfWrite func()

// Store is the state file of one mount, in memory and on disk.
//
// Lock order: saveMu before mu. mu is never held across I/O: Save copies
// the state under it and writes the copy.
type Store struct {
	path   string
	log    *slog.Logger
	hasher *Hasher

	mu sync.Mutex // guards f and the generations below
	f  File
	// Generations of what changed since the last save: records (secrets,
	// projects, environments, the hash scheme) are saved at once; soft
	// changes (counters, sync times, ETags) wait for SaveIfDue's age.
	recordGen, savedRecordGen uint64
	softGen, savedSoftGen     uint64
	softSince                 time.Time // when the oldest unsaved soft change was made

	saveMu sync.Mutex // one Save at a time, so an older snapshot never lands last
	saves  atomic.Uint64
}

// SystemStateDir is the state directory without a home directory (mount(8)
// and system units run without HOME): systemd's StateDirectory=infisicalfs.
const SystemStateDir = "/var/lib/infisicalfs"

// DefaultPath returns where a mount's state file lives:
// $XDG_STATE_HOME/infisicalfs/<escaped mount point>/infisical_sync_state.json,
// or ~/.local/state/... when XDG_STATE_HOME is unset or not absolute, or
// /var/lib/infisicalfs/<escaped mount point>/... when there is no home
// directory either.
func DefaultPath(mountpoint string) (string, error) {
	return defaultPath(mountpoint, os.Getenv, os.UserHomeDir)
}

func defaultPath(mountpoint string, getenv func(string) string, home func() (string, error)) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("state: resolve mount point %q: %w", mountpoint, err)
	}
	// The same directory reached through a symlink is the same mount; a dead
	// mount cannot be resolved, so keep the plain absolute path then.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	dir := escapeMountpoint(abs)
	base := getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) {
		h, err := home()
		if err != nil || !filepath.IsAbs(h) {
			return filepath.Join(SystemStateDir, dir, FileName), nil
		}
		base = filepath.Join(h, ".local", "state")
	}
	return filepath.Join(base, "infisicalfs", dir, FileName), nil
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

// Options configure a Store.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// Hasher makes Secret.Hash; nil: HMAC under a random key of this
	// process only (MountKey's last resort). The daemon passes HasherFor's.
	Hasher *Hasher
}

// Open is OpenWith(path, Options{Logger: logger}).
func Open(path string, logger *slog.Logger) (*Store, error) {
	return OpenWith(path, Options{Logger: logger})
}

// OpenWith loads the state file at path. A missing file gives an empty
// state. A file that cannot be read or parsed is renamed to
// path+".corrupt-<UTC time>" with a warning naming the file and the problem
// (never its content), and an empty state starts: the state file never
// stops a mount. Temporary files left by an interrupted Save are removed.
// The directory is created 0700.
//
// Hashes made under another scheme or key than o.Hasher's cannot be
// compared with new ones: they are forgotten (set to ""), so that change
// detection falls back to versions, and the next listing re-hashes them.
func OpenWith(path string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hasher == nil {
		k := make([]byte, KeySize)
		_, _ = rand.Read(k) // never fails (Go 1.24+)
		h, err := NewHasher(HashHMAC, k)
		if err != nil {
			return nil, err
		}
		o.Hasher = h
	}
	if path == "" {
		return nil, errors.New("state: empty path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if strings.HasPrefix(path, SystemStateDir+"/") {
			return nil, fmt.Errorf("state: create directory (the default without a home directory): %w; set --state-file, or StateDirectory=infisicalfs in the systemd unit", err)
		}
		return nil, fmt.Errorf("state: create directory: %w", err)
	}
	s := &Store{path: path, log: o.Logger, hasher: o.Hasher, f: emptyFile(o.Hasher)}
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
	if !s.hasher.same(f.HashScheme, f.HashKeyID) {
		for id, rec := range f.Secrets {
			rec.Hash = ""
			f.Secrets[id] = rec
		}
		if len(f.Secrets) > 0 {
			s.log.Info("the state file's hashes were made under another key or scheme; comparing versions until the next listing re-hashes them",
				"path", path, "was", schemeName(f.HashScheme, f.HashKeyID), "now", schemeName(s.hasher.scheme, s.hasher.keyID))
		}
		f.HashScheme, f.HashKeyID = s.hasher.scheme, s.hasher.keyID
		s.recordGen++ // the file must say it, even if no listing comes
	}
	s.f = f
	return s, nil
}

func schemeName(scheme, id string) string {
	if scheme == "" {
		scheme = HashSHA256
	}
	if id == "" {
		return scheme
	}
	return scheme + " key " + id
}

func emptyFile(h *Hasher) File {
	return File{SchemaVersion: SchemaVersion, Secrets: map[string]Secret{}, ProjectIDs: []string{},
		HashScheme: h.scheme, HashKeyID: h.keyID}
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

// Hasher returns the hasher of Secret.Hash.
func (s *Store) Hasher() *Hasher { return s.hasher }

// Update runs fn on the state under the store's lock, for soft changes
// (counters, sync times, scopes) that SaveIfDue saves once they are old
// enough. fn must not keep references into f after it returns, and must
// not change secret records: UpdateRecords does.
func (s *Store) Update(fn func(f *File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.f)
	if s.softGen == s.savedSoftGen {
		s.softSince = time.Now()
	}
	s.softGen++
}

// UpdateRecords runs fn on the state under the store's lock; fn reports
// whether it changed a secret record (or the project or environment
// lists), which makes the next SaveIfDue write at once.
func (s *Store) UpdateRecords(fn func(f *File) (changed bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fn(&s.f) {
		s.recordGen++
	}
}

// Dirty reports whether a record change, or any change, awaits saving.
func (s *Store) Dirty() (records, any bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	records = s.recordGen != s.savedRecordGen
	return records, records || s.softGen != s.savedSoftGen
}

// Saves counts the files written since Open (tests and benchmarks).
func (s *Store) Saves() uint64 { return s.saves.Load() }

// SaveIfDue saves when a record changed, or when soft changes are at least
// maxAge old (maxAge <= 0: any unsaved change, as at unmount). It reports
// whether it wrote the file.
func (s *Store) SaveIfDue(maxAge time.Duration) (bool, error) {
	s.mu.Lock()
	records := s.recordGen != s.savedRecordGen
	soft := s.softGen != s.savedSoftGen && (maxAge <= 0 || time.Since(s.softSince) >= maxAge)
	s.mu.Unlock()
	if !records && !soft {
		return false, nil
	}
	return true, s.Save()
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
//
// The file is streamed from a copy, one secret record per line, so that a
// large state costs no buffer of its whole size.
func (s *Store) Save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	// The records as a slice rather than a clone of the map: at
	// 100k secrets the map copy was 19 MB more at every save.
	recs := records(s.f.Secrets)
	f := s.f.cloneHead()
	recordGen, softGen := s.recordGen, s.softGen
	s.mu.Unlock()
	sortRecords(recs) // outside the lock: at 100k records it takes a while
	f.SchemaVersion = SchemaVersion
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
	w := &halfWriter{f: tmp}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := encode(bw, &f, recs); err != nil {
		return fmt.Errorf("state: write %s: %w", tmp.Name(), err)
	}
	if err := bw.Flush(); err != nil {
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
	s.saves.Add(1)
	s.mu.Lock()
	s.savedRecordGen, s.savedSoftGen = recordGen, softGen
	s.mu.Unlock()
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("state: fsync directory %s: %w", dir, err)
	}
	return nil
}

// halfWriter calls the afterHalfWrite test hook once, after the first write
// (the buffered encoder's first block, or all of a small file but its
// closing bytes).
type halfWriter struct {
	f      *os.File
	called bool
}

func (h *halfWriter) Write(p []byte) (int, error) {
	if afterHalfWrite == nil || h.called {
		return h.f.Write(p)
	}
	half := len(p) / 2
	n, err := h.f.Write(p[:half])
	if err != nil {
		return n, err
	}
	h.called = true
	afterHalfWrite()
	m, err := h.f.Write(p[half:])
	return n + m, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
