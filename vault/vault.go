// Package vault is the in-memory store of secret values: each value sealed
// with AES-256-GCM under a per-process key held in locked, non-dumpable
// memory, with the secret's full address as associated data.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/awnumar/memguard"
)

// Addr is a secret's full address. Project is the project ID; Path is the
// canonical folder path ("/" or "/a/b").
type Addr struct {
	Project, Env, Path, Key string
}

// String is the address as "project/env/path/KEY": the AEAD's associated
// data, and a name fit for logs (names are not secret).
func (a Addr) String() string {
	return a.Project + "/" + a.Env + strings.TrimSuffix(a.Path, "/") + "/" + a.Key
}

// Meta is what the vault knows of a secret besides its value.
type Meta struct {
	ID        string
	Version   int
	UpdatedAt time.Time
	Size      int    // plaintext length, set by the vault, so stat never decrypts
	ReadOnly  bool   // imported secrets
	Gen       uint64 // set by the vault: the generation at which the entry last changed
}

// Change is one mutation of an Apply.
type Change struct {
	Addr   Addr
	Value  []byte
	Meta   Meta
	Delete bool
}

// Listing is a folder's direct children, sorted, names only.
type Listing struct {
	Keys    []string
	Folders []string
}

// Entry is one decrypted secret of a Snapshot; the caller wipes Value.
type Entry struct {
	Key   string
	Meta  Meta
	Value *Value
}

// ErrNotFound is returned for an address the vault does not hold.
var ErrNotFound = errors.New("vault: no such secret")

type sealed struct {
	box  []byte // nonce || ciphertext
	meta Meta
}

type scope struct{ project, env string }

// folder is one folder's direct children.
type folder struct {
	keys    map[string]*sealed
	folders map[string]bool
}

// Vault holds sealed secrets. Its methods are safe for concurrent use; one
// RWMutex guards everything, so a reader never sees half of an Apply.
type Vault struct {
	log *slog.Logger

	// key is the AES-256 key in memguard's locked, guarded memory. The
	// AEAD below is built from it once; Go's AES key schedule therefore
	// also lives on the ordinary heap (the process is non-dumpable, see
	// DisableCoreDumps). Re-deriving it per operation would cost an
	// allocation and a key expansion on every read.
	key  *memguard.LockedBuffer
	aead cipher.AEAD

	mu      sync.RWMutex
	folders map[scope]map[string]*folder // path → folder
	n       int
	gen     uint64
}

// New creates a vault with a fresh random key. Where the platform refuses
// to lock memory (a container without IPC_LOCK), it warns and goes on.
func New(logger *slog.Logger) (v *Vault, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	key, err := newKey(logger)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		key.Destroy()
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		key.Destroy()
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &Vault{log: logger, key: key, aead: aead, folders: map[scope]map[string]*folder{}}, nil
}

// newKey makes the key in locked memory. memguard panics where mlock is not
// permitted; that is a warning here, not a reason to refuse to mount.
func newKey(logger *slog.Logger) (key *memguard.LockedBuffer, err error) {
	defer func() {
		if r := recover(); r != nil {
			logger.Warn("could not lock the vault key in memory (mlock refused); the key may be swapped out", "reason", fmt.Sprint(r))
			key = memguard.NewBufferFromBytes(randomKey())
			err = nil
		}
	}()
	key = memguard.NewBufferRandom(32)
	if key.Size() != 32 {
		return nil, errors.New("vault: could not allocate the key")
	}
	return key, nil
}

func randomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return b
}

func (v *Vault) seal(a Addr, plaintext []byte) []byte {
	ns := v.aead.NonceSize()
	box := make([]byte, ns, ns+len(plaintext)+v.aead.Overhead())
	if _, err := rand.Read(box); err != nil {
		panic(err)
	}
	return v.aead.Seal(box, box[:ns], plaintext, []byte(a.String()))
}

func (v *Vault) open(a Addr, box []byte) ([]byte, error) {
	ns := v.aead.NonceSize()
	if len(box) < ns {
		return nil, errors.New("vault: sealed value too short")
	}
	pt, err := v.aead.Open(nil, box[:ns], box[ns:], []byte(a.String()))
	if err != nil {
		clear(pt)
		return nil, fmt.Errorf("vault: open %s: %w", a, err)
	}
	return pt, nil
}

func (v *Vault) folderLocked(sc scope, path string, create bool) *folder {
	fs := v.folders[sc]
	if fs == nil {
		if !create {
			return nil
		}
		fs = map[string]*folder{}
		v.folders[sc] = fs
	}
	f := fs[path]
	if f == nil && create {
		f = &folder{keys: map[string]*sealed{}, folders: map[string]bool{}}
		fs[path] = f
		if path != "/" {
			parent, name := splitPath(path)
			v.folderLocked(sc, parent, true).folders[name] = true
		}
	}
	return f
}

func splitPath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

func normPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Set seals a copy of plaintext at a; the caller still owns plaintext.
func (v *Vault) Set(a Addr, plaintext []byte, m Meta) error {
	_, err := v.Apply([]Change{{Addr: a, Value: plaintext, Meta: m}})
	return err
}

// Apply makes all changes under one lock, so that no reader sees half of a
// refresh, and returns the new generation.
func (v *Vault) Apply(changes []Change) (uint64, error) {
	boxes := make([][]byte, len(changes))
	for i, c := range changes {
		if !c.Delete {
			c.Addr.Path = normPath(c.Addr.Path)
			boxes[i] = v.seal(c.Addr, c.Value)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	for i, c := range changes {
		c.Addr.Path = normPath(c.Addr.Path)
		sc := scope{c.Addr.Project, c.Addr.Env}
		if c.Delete {
			v.deleteLocked(c.Addr)
			continue
		}
		f := v.folderLocked(sc, c.Addr.Path, true)
		m := c.Meta
		m.Size = len(c.Value)
		m.Gen = v.gen
		if old := f.keys[c.Addr.Key]; old != nil {
			clear(old.box)
		} else {
			v.n++
		}
		f.keys[c.Addr.Key] = &sealed{box: boxes[i], meta: m}
	}
	return v.gen, nil
}

func (v *Vault) deleteLocked(a Addr) bool {
	f := v.folderLocked(scope{a.Project, a.Env}, normPath(a.Path), false)
	if f == nil {
		return false
	}
	s := f.keys[a.Key]
	if s == nil {
		return false
	}
	clear(s.box)
	delete(f.keys, a.Key)
	v.n--
	return true
}

// Get decrypts the value at a; the caller wipes it after use.
func (v *Vault) Get(a Addr) (*Value, Meta, error) {
	a.Path = normPath(a.Path)
	v.mu.RLock()
	f := v.folderLocked(scope{a.Project, a.Env}, a.Path, false)
	var s *sealed
	if f != nil {
		s = f.keys[a.Key]
	}
	if s == nil {
		v.mu.RUnlock()
		return nil, Meta{}, ErrNotFound
	}
	box, m := s.box, s.meta
	pt, err := v.open(a, box)
	v.mu.RUnlock()
	if err != nil {
		return nil, Meta{}, err
	}
	return &Value{b: pt}, m, nil
}

// Stat returns a secret's metadata without decrypting it.
func (v *Vault) Stat(a Addr) (Meta, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	f := v.folderLocked(scope{a.Project, a.Env}, normPath(a.Path), false)
	if f == nil {
		return Meta{}, false
	}
	s := f.keys[a.Key]
	if s == nil {
		return Meta{}, false
	}
	return s.meta, true
}

// Delete removes the secret at a, wiping its sealed value.
func (v *Vault) Delete(a Addr) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	ok := v.deleteLocked(a)
	if ok {
		v.gen++
	}
	return ok
}

// List returns a folder's direct children, names only.
func (v *Vault) List(project, env, path string) Listing {
	v.mu.RLock()
	defer v.mu.RUnlock()
	f := v.folderLocked(scope{project, env}, normPath(path), false)
	var l Listing
	if f == nil {
		return l
	}
	for k := range f.keys {
		l.Keys = append(l.Keys, k)
	}
	for d := range f.folders {
		l.Folders = append(l.Folders, d)
	}
	sort.Strings(l.Keys)
	sort.Strings(l.Folders)
	return l
}

// AddFolder records a folder (and its parents); folders exist without
// secrets in Infisical.
func (v *Vault) AddFolder(project, env, path string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.folderLocked(scope{project, env}, normPath(path), true)
}

// RemoveFolder removes a folder and everything below it.
func (v *Vault) RemoveFolder(project, env, path string) bool {
	path = normPath(path)
	v.mu.Lock()
	defer v.mu.Unlock()
	sc := scope{project, env}
	fs := v.folders[sc]
	if fs == nil || fs[path] == nil {
		return false
	}
	for p, f := range fs {
		if p == path || strings.HasPrefix(p, path+"/") || path == "/" {
			for _, s := range f.keys {
				clear(s.box)
				v.n--
			}
			delete(fs, p)
		}
	}
	if path != "/" {
		parent, name := splitPath(path)
		if pf := fs[parent]; pf != nil {
			delete(pf.folders, name)
		}
	}
	v.gen++
	return true
}

// HasFolder reports whether a folder exists.
func (v *Vault) HasFolder(project, env, path string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.folderLocked(scope{project, env}, normPath(path), false) != nil
}

// Addrs lists every secret of an environment, sorted.
func (v *Vault) Addrs(project, env string) []Addr {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []Addr
	for p, f := range v.folders[scope{project, env}] {
		for k := range f.keys {
			out = append(out, Addr{Project: project, Env: env, Path: p, Key: k})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Snapshot decrypts every secret directly in one folder under one lock, so
// the result is consistent, with the generation it reflects.
func (v *Vault) Snapshot(project, env, path string) ([]Entry, uint64, error) {
	path = normPath(path)
	v.mu.RLock()
	defer v.mu.RUnlock()
	f := v.folderLocked(scope{project, env}, path, false)
	if f == nil {
		return nil, v.gen, nil
	}
	out := make([]Entry, 0, len(f.keys))
	for k, s := range f.keys {
		pt, err := v.open(Addr{project, env, path, k}, s.box)
		if err != nil {
			for _, e := range out {
				e.Value.Wipe()
			}
			return nil, 0, err
		}
		out = append(out, Entry{Key: k, Meta: s.meta, Value: &Value{b: pt}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, v.gen, nil
}

// Generation is the vault-wide change counter.
func (v *Vault) Generation() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.gen
}

// Len is the number of secrets held.
func (v *Vault) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.n
}

// Destroy wipes every sealed value and the key.
func (v *Vault) Destroy() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, fs := range v.folders {
		for _, f := range fs {
			for _, s := range f.keys {
				clear(s.box)
			}
		}
	}
	v.folders = map[scope]map[string]*folder{}
	v.n = 0
	if v.key != nil {
		v.key.Destroy()
	}
}

// String never shows values.
func (v *Vault) String() string { return fmt.Sprintf("vault(%d secrets)", v.Len()) }

// GoString never shows values.
func (v *Vault) GoString() string { return v.String() }
