// Package vault is the in-memory secret store under the mount: every value is
// sealed with AES-256-GCM under a random per-process key, with the secret's
// address as associated data, so plaintext exists only while a value is being
// served or pushed. Besides a secret's raw value it can hold, each sealed
// under its own associated data, the value with references expanded (what
// Get, Snapshot and Seal serve), its comment and metadata (Notes), and
// earlier versions fetched from Infisical's history. It also keeps the
// folder tree (Infisical has empty folders) and a generation counter that
// changes with every mutation.
//
// Lock order: one RWMutex guards everything; no method calls out while
// holding it.
package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned by Get for an address that holds no secret.
var ErrNotFound = errors.New("vault: secret not found")

var errDestroyed = errors.New("vault: destroyed")

// Meta is what the vault keeps in the clear about a secret. (Fields are
// ordered to pack: one is kept per secret, and copies ride in every
// change and every pinned version.)
type Meta struct {
	ID string
	// ExpandErr says, without any value, why the references could not
	// be expanded (a reference the identity may not read, or outside the
	// mount); the expanded view then refuses reads. Empty when fine.
	ExpandErr string
	// Tags are the secret's tag slugs. Labels, like names: not sealed.
	Tags      []string
	UpdatedAt time.Time
	Version   int
	Size      int    // length of the served value (expanded where it has one), so stat never decrypts; set by the vault
	RawSize   int    // length of the raw value; set by the vault
	Gen       uint64 // set by the vault: the vault-wide generation at which this entry last changed
	ReadOnly  bool   // imported secrets
	// Refs: the raw value holds ${...} references, so the expanded view
	// of the secret is read-only (an edit there would flatten them).
	Refs bool
	// Hidden: Infisical lets the identity see the secret but not its
	// value (secretValueHidden); the vault holds no value for it.
	Hidden bool
	// SkipMultiline is Infisical's skipMultilineEncoding flag.
	SkipMultiline bool
}

// Notes are what Infisical says about a secret besides its value that can
// still be sensitive: the comment (people write hints, URLs and worse into
// it) and secretMetadata (Infisical itself has encrypted metadata). They
// are sealed like values, under their own associated data.
type Notes struct {
	Comment  string
	Metadata []Metadatum
}

// Metadatum is one secretMetadata entry.
type Metadatum struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Form picks which of a secret's values a read wants.
type Form uint8

const (
	// Served is what the secret's file shows: the expanded value where
	// the secret has one, else the raw value.
	Served Form = iota
	// Raw is the value as stored in Infisical, references unexpanded.
	Raw
)

// Change is one element of a refresh applied with Apply.
type Change struct {
	Addr   Addr
	Value  []byte // raw plaintext; the caller still owns it
	Meta   Meta
	Delete bool
	// Expanded is the value with references expanded when it differs
	// from Value; nil serves Value. The caller still owns it.
	Expanded []byte
	// ExpandOnly replaces only Expanded and the expansion fields of Meta
	// (Refs, ExpandErr) of an existing secret, keeping its raw value: a
	// secret whose references changed underneath it. Absent: ignored.
	ExpandOnly bool
	// Notes are sealed beside the value; ignored with ExpandOnly.
	Notes *Notes
}

// Listing is the direct content of one folder, names only, sorted.
type Listing struct {
	Keys    []string
	Folders []string
}

// Entry is one decrypted secret of a Snapshot; the caller wipes each Value.
type Entry struct {
	Key   string
	Meta  Meta
	Value *Value
}

// item is one sealed secret: each box is nonce || ciphertext || tag. An
// item's boxes and meta never change once it is in the vault (a change
// installs a new item), so a Sealed can share them instead of copying;
// only versions changes, under the vault's lock, and no Sealed reads it.
// refs counts the vault's own hold (while the item is installed) and each
// Sealed's; the boxes are wiped when the last is dropped.
type item struct {
	sealed []byte // the raw value
	exp    []byte // the expanded value; nil when it is the raw one
	notes  []byte // sealed JSON of Notes; nil when empty
	meta   Meta
	// versions are earlier versions fetched from Infisical's history,
	// by number, sealed; they never change, so they survive updates.
	versions map[int][]byte
	refs     atomic.Int32
}

// served is the box a Served read opens.
func (it *item) served() ([]byte, Form) {
	if it.exp != nil {
		return it.exp, expandedForm
	}
	return it.sealed, Raw
}

// expandedForm marks a Sealed holding the expanded box (Served resolves
// to it or to Raw).
const expandedForm Form = 255

// release drops one hold on it, wiping the sealed values with the last.
func (it *item) release() {
	if it.refs.Add(-1) == 0 {
		it.wipe()
	}
}

// wipe zeroes the sealed values.
func (it *item) wipe() {
	clear(it.sealed)
	clear(it.exp)
	clear(it.notes)
	for _, b := range it.versions {
		clear(b)
	}
}

// Sealed is one version of a secret, still sealed and bound to its
// address, kept by a caller that must go on serving that version after
// the vault moved on (the filesystem, for what the kernel caches). It
// holds the vault's item rather than a copy (one per file the kernel
// caches adds up); Wipe drops the hold. The zero Sealed holds nothing.
type Sealed struct {
	it   *item
	form Form // Raw or expandedForm: which associated data the box is bound to
}

// Meta is the version's metadata; Size is the length of its form.
func (s Sealed) Meta() Meta {
	if s.it == nil {
		return Meta{}
	}
	m := s.it.meta
	if s.form == Raw {
		m.Size = m.RawSize
	}
	return m
}

func (s Sealed) box() []byte {
	if s.form == Raw {
		return s.it.sealed
	}
	return s.it.exp
}

// Wipe drops s's hold on the version; its sealed bytes are zeroed once
// neither the vault nor any other Sealed holds it.
func (s *Sealed) Wipe() {
	if s.it != nil {
		s.it.release()
	}
	*s = Sealed{}
}

// Empty reports whether s holds no version.
func (s Sealed) Empty() bool { return s.it == nil }

// dir is one folder; a folder exists while its dir does, secrets or not.
type dir struct {
	secrets map[string]*item
	sub     map[string]struct{}
}

type scopeKey struct{ project, env string }

// scope is one project environment: its folders by canonical path ("/" is
// always present while the scope exists).
type scope struct {
	dirs map[string]*dir
}

// Vault is the sealed store. The zero value is not usable; call New.
type Vault struct {
	mu     sync.RWMutex
	keys   *keyring // nil once destroyed
	scopes map[scopeKey]*scope
	n      int    // number of secrets
	gen    uint64 // bumped by every mutation
}

// New creates an empty vault with a fresh random key. If the system refuses
// to lock memory it warns once (per process) on logger and continues.
func New(logger *slog.Logger) (*Vault, error) {
	if logger == nil {
		logger = slog.Default()
	}
	k, err := newKeyring(logger)
	if err != nil {
		return nil, err
	}
	return &Vault{keys: k, scopes: map[scopeKey]*scope{}}, nil
}

// Set seals a copy of plaintext at a with metadata m (Size and Gen are set by
// the vault). The caller still owns plaintext and may wipe it.
func (v *Vault) Set(a Addr, plaintext []byte, m Meta) error {
	_, err := v.Apply([]Change{{Addr: a, Value: plaintext, Meta: m}})
	return err
}

// Apply makes one refresh's changes under one lock, so no reader sees only
// part of them, and returns the new generation. If any address is invalid
// nothing is applied. Deleting an absent secret is not an error.
func (v *Vault) Apply(changes []Change) (uint64, error) {
	for _, c := range changes {
		if err := c.Addr.validate(); err != nil {
			return 0, err
		}
	}
	// Seal under the read lock (Destroy cannot run meanwhile), then install
	// under the write lock, keeping writers' exclusive time short.
	v.mu.RLock()
	if v.keys == nil {
		v.mu.RUnlock()
		return 0, errDestroyed
	}
	sealed := make([]*item, len(changes))
	var ad []byte // reused: the AEAD keeps none of it
	for i, c := range changes {
		if c.Delete {
			continue
		}
		it := &item{}
		if !c.ExpandOnly {
			ad = c.Addr.appendTo(ad[:0])
			it.sealed = v.keys.seal(c.Value, ad)
			if c.Notes != nil && (c.Notes.Comment != "" || len(c.Notes.Metadata) > 0) {
				js, _ := json.Marshal(c.Notes)
				ad = c.Addr.appendFormAD(ad[:0], notesForm)
				it.notes = v.keys.seal(js, ad)
				clear(js)
			}
		}
		if c.Expanded != nil {
			ad = c.Addr.appendFormAD(ad[:0], expandedForm)
			it.exp = v.keys.seal(c.Expanded, ad)
		}
		it.refs.Store(1) // the vault's hold
		sealed[i] = it
	}
	v.mu.RUnlock()

	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		for _, it := range sealed {
			if it != nil {
				it.wipe()
			}
		}
		return 0, errDestroyed
	}
	if len(changes) == 0 {
		return v.gen, nil
	}
	v.gen++
	for i, c := range changes {
		if c.Delete {
			v.deleteLocked(c.Addr)
			continue
		}
		d := v.dirLocked(c.Addr.Project, c.Addr.Env, c.Addr.Path)
		it := sealed[i]
		if c.ExpandOnly {
			var old *item
			if d != nil {
				old = d.secrets[c.Addr.Key]
			}
			if old == nil {
				it.wipe()
				continue
			}
			// A pinned old item keeps its boxes until its last holder
			// drops it, so the new one gets its own copy of the raw value
			// and notes; unpinned (only the vault's hold, and no new pin
			// can come under the write lock), they move over.
			if old.refs.Load() == 1 {
				it.sealed, it.notes, old.sealed, old.notes = old.sealed, old.notes, nil, nil
			} else {
				it.sealed = slices.Clone(old.sealed)
				it.notes = slices.Clone(old.notes)
			}
			it.meta = old.meta
			it.meta.Refs, it.meta.ExpandErr = c.Meta.Refs, c.Meta.ExpandErr
			it.meta.Size = it.meta.RawSize
			if c.Expanded != nil {
				it.meta.Size = len(c.Expanded)
			}
			it.meta.Gen = v.gen
			it.versions, old.versions = old.versions, nil
			d.secrets[c.Addr.Key] = it
			old.release()
			continue
		}
		m := c.Meta
		m.RawSize = len(c.Value)
		m.Size = len(c.Value)
		if c.Expanded != nil {
			m.Size = len(c.Expanded)
		}
		m.Tags = slices.Clone(m.Tags)
		m.Gen = v.gen
		if d == nil {
			d = v.ensureDirLocked(c.Addr.Project, c.Addr.Env, c.Addr.Path)
		}
		it.meta = m
		if old, ok := d.secrets[c.Addr.Key]; ok {
			if old.meta.ID == m.ID {
				it.versions, old.versions = old.versions, nil
			}
			old.release()
		} else {
			v.n++
		}
		if d.secrets == nil {
			d.secrets = map[string]*item{}
		}
		d.secrets[c.Addr.Key] = it
	}
	return v.gen, nil
}

// Get decrypts the served value (expanded where the secret has one) of the
// secret at a. The caller wipes the Value when done.
func (v *Vault) Get(a Addr) (*Value, Meta, error) { return v.GetForm(a, Served) }

// GetForm decrypts the current value of the secret at a in form f. The
// caller wipes the Value when done.
func (v *Vault) GetForm(a Addr, f Form) (*Value, Meta, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, Meta{}, errDestroyed
	}
	it, ok := v.itemLocked(a)
	if !ok {
		return nil, Meta{}, ErrNotFound
	}
	box, bf := it.sealed, Raw
	if f == Served {
		box, bf = it.served()
	}
	pt, err := v.keys.open(box, a.formAD(bf))
	if err != nil {
		return nil, Meta{}, err
	}
	return &Value{b: pt}, it.meta, nil
}

// Seal returns a copy of the current served value of the secret at a,
// still sealed, for Open to decrypt later whatever happened to a meanwhile.
func (v *Vault) Seal(a Addr) (Sealed, bool) { return v.SealForm(a, Served) }

// SealForm is Seal for form f. The Meta's Size is that form's length.
func (v *Vault) SealForm(a Addr, f Form) (Sealed, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	it, ok := v.itemLocked(a)
	if !ok || v.keys == nil {
		return Sealed{}, false
	}
	bf := Raw
	if f == Served {
		_, bf = it.served()
	}
	it.refs.Add(1) // under the read lock: the vault's hold keeps refs above 0
	return Sealed{it: it, form: bf}, true
}

// Notes decrypts the comment and metadata of the secret at a.
func (v *Vault) Notes(a Addr) (Notes, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return Notes{}, errDestroyed
	}
	it, ok := v.itemLocked(a)
	if !ok {
		return Notes{}, ErrNotFound
	}
	if it.notes == nil {
		return Notes{}, nil
	}
	pt, err := v.keys.open(it.notes, a.formAD(notesForm))
	if err != nil {
		return Notes{}, err
	}
	defer clear(pt)
	var n Notes
	if err := json.Unmarshal(pt, &n); err != nil {
		return Notes{}, fmt.Errorf("vault: notes of %s: %w", a, err)
	}
	return n, nil
}

// SetVersion keeps an earlier version of the secret at a (fetched from
// Infisical's history), sealed, while the secret keeps its ID. It reports
// false when the secret is gone or is another secret now.
func (v *Vault) SetVersion(a Addr, id string, n int, plaintext []byte) bool {
	v.mu.RLock()
	if v.keys == nil {
		v.mu.RUnlock()
		return false
	}
	box := v.keys.seal(plaintext, a.versionAD(n))
	v.mu.RUnlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.dirLocked(a.Project, a.Env, a.Path)
	if v.keys == nil || d == nil {
		clear(box)
		return false
	}
	it, ok := d.secrets[a.Key]
	if !ok || it.meta.ID != id {
		clear(box)
		return false
	}
	if it.versions == nil {
		it.versions = map[int][]byte{}
	}
	clear(it.versions[n])
	it.versions[n] = box
	return true
}

// Version decrypts a kept earlier version; ok is false when none is kept.
// The caller wipes the Value.
func (v *Vault) Version(a Addr, n int) (val *Value, ok bool, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, false, errDestroyed
	}
	it, found := v.itemLocked(a)
	if !found || it.versions[n] == nil {
		return nil, false, nil
	}
	pt, err := v.keys.open(it.versions[n], a.versionAD(n))
	if err != nil {
		return nil, false, err
	}
	return &Value{b: pt}, true, nil
}

// Open decrypts s, which Seal returned for address a. The caller wipes the
// Value when done.
func (v *Vault) Open(a Addr, s Sealed) (*Value, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, errDestroyed
	}
	if s.Empty() {
		return nil, ErrNotFound
	}
	pt, err := v.keys.open(s.box(), a.formAD(s.form))
	if err != nil {
		return nil, err
	}
	return &Value{b: pt}, nil
}

// Stat returns a secret's metadata without decrypting it.
func (v *Vault) Stat(a Addr) (Meta, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	it, ok := v.itemLocked(a)
	if !ok {
		return Meta{}, false
	}
	return it.meta, true
}

// Delete removes and wipes the secret at a, reporting whether it existed. Its
// folder stays.
func (v *Vault) Delete(a Addr) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.itemLocked(a); !ok {
		return false
	}
	v.gen++
	return v.deleteLocked(a)
}

// List returns the direct children of a folder: secret keys and sub-folder
// names, each sorted. An absent folder lists empty.
func (v *Vault) List(project, env, path string) Listing {
	v.mu.RLock()
	defer v.mu.RUnlock()
	d := v.dirLocked(project, env, path)
	if d == nil {
		return Listing{}
	}
	var l Listing
	if len(d.secrets) > 0 {
		l.Keys = make([]string, 0, len(d.secrets))
		for k := range d.secrets {
			l.Keys = append(l.Keys, k)
		}
		slices.Sort(l.Keys)
	}
	if len(d.sub) > 0 {
		l.Folders = make([]string, 0, len(d.sub))
		for k := range d.sub {
			l.Folders = append(l.Folders, k)
		}
		slices.Sort(l.Folders)
	}
	return l
}

// AddFolder creates a folder and its parents. A non-canonical path or
// invalid project/env name is ignored: such a folder cannot be addressed.
func (v *Vault) AddFolder(project, env, path string) {
	if validName("project", project) != nil || validName("environment", env) != nil || validPath(path) != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil || v.dirLocked(project, env, path) != nil {
		return
	}
	v.gen++
	v.ensureDirLocked(project, env, path)
}

// RemoveFolder removes a folder with every folder and secret below it
// (wiping the sealed values), reporting whether it existed. Removing "/"
// forgets the whole environment.
func (v *Vault) RemoveFolder(project, env, path string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	sc := v.scopes[scopeKey{project, env}]
	if sc == nil || sc.dirs[path] == nil {
		return false
	}
	v.gen++
	for p, d := range sc.dirs {
		if under(p, path) {
			for _, it := range d.secrets {
				it.release()
			}
			v.n -= len(d.secrets)
			delete(sc.dirs, p)
		}
	}
	if path == "/" {
		delete(v.scopes, scopeKey{project, env})
		return true
	}
	parent, name := parentOf(path)
	delete(sc.dirs[parent].sub, name)
	return true
}

// HasFolder reports whether the folder exists. "/" exists once anything was
// added to the environment.
func (v *Vault) HasFolder(project, env, path string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.dirLocked(project, env, path) != nil
}

// Addrs returns every secret of one environment, sorted by Addr.String.
func (v *Vault) Addrs(project, env string) []Addr {
	v.mu.RLock()
	defer v.mu.RUnlock()
	sc := v.scopes[scopeKey{project, env}]
	if sc == nil {
		return nil
	}
	var all []Addr
	for p, d := range sc.dirs {
		for k := range d.secrets {
			all = append(all, Addr{Project: project, Env: env, Path: p, Key: k})
		}
	}
	slices.SortFunc(all, CompareAddrs)
	return all
}

// Snapshot decrypts every secret directly in one folder, sorted by key, with
// the generation they belong to, all under one lock. An absent folder gives
// no entries and no error. The caller wipes each Value.
func (v *Vault) Snapshot(project, env, path string) ([]Entry, uint64, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, 0, errDestroyed
	}
	d := v.dirLocked(project, env, path)
	if d == nil {
		return nil, v.gen, nil
	}
	// One allocation each for entries, Values, plaintext and associated
	// data, instead of four per secret: a .env view of a large folder
	// decrypts everything in it. Each Value's slice is capped at its own
	// end, so appending to one cannot write into its neighbour.
	names := make([]string, 0, len(d.secrets))
	total := 0
	for k, it := range d.secrets {
		names = append(names, k)
		box, _ := it.served()
		total += max(len(box)-sealOverhead, 0)
	}
	slices.Sort(names)
	out := make([]Entry, len(names))
	vals := make([]Value, len(names))
	arena := make([]byte, total)
	var ad []byte
	off := 0
	for i, k := range names {
		it := d.secrets[k]
		box, f := it.served()
		n := max(len(box)-sealOverhead, 0)
		ad = Addr{Project: project, Env: env, Path: path, Key: k}.appendFormAD(ad[:0], f)
		pt, err := v.keys.openInto(arena[off:off:off+n], box, ad)
		if err != nil {
			clear(arena)
			return nil, 0, err
		}
		off += n
		vals[i].b = pt
		out[i] = Entry{Key: k, Meta: it.meta, Value: &vals[i]}
	}
	return out, v.gen, nil
}

// Generation returns the vault-wide generation, which every mutation bumps.
func (v *Vault) Generation() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.gen
}

// Len returns the number of secrets.
func (v *Vault) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.n
}

// Destroy wipes every sealed value and the key. Later calls fail or report
// nothing; calling it again does nothing.
func (v *Vault) Destroy() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, sc := range v.scopes {
		for _, d := range sc.dirs {
			for _, it := range d.secrets {
				it.wipe()
			}
		}
	}
	v.scopes = map[scopeKey]*scope{}
	v.n = 0
	if v.keys != nil {
		v.keys.destroy()
		v.keys = nil
	}
}

func (v *Vault) dirLocked(project, env, path string) *dir {
	sc := v.scopes[scopeKey{project, env}]
	if sc == nil {
		return nil
	}
	return sc.dirs[path]
}

func (v *Vault) itemLocked(a Addr) (*item, bool) {
	d := v.dirLocked(a.Project, a.Env, a.Path)
	if d == nil {
		return nil, false
	}
	it, ok := d.secrets[a.Key]
	return it, ok
}

// ensureDirLocked returns the folder at path (canonical), creating it and any
// missing parents.
func (v *Vault) ensureDirLocked(project, env, path string) *dir {
	k := scopeKey{project, env}
	sc := v.scopes[k]
	if sc == nil {
		sc = &scope{dirs: map[string]*dir{"/": {}}}
		v.scopes[k] = sc
	}
	want := sc.dirs[path]
	if want != nil {
		return want
	}
	want = &dir{}
	sc.dirs[path] = want
	for p := path; p != "/"; {
		parent, name := parentOf(p)
		pd, existed := sc.dirs[parent]
		if !existed {
			pd = &dir{}
			sc.dirs[parent] = pd
		}
		if pd.sub == nil {
			pd.sub = map[string]struct{}{}
		}
		pd.sub[name] = struct{}{}
		if existed {
			break
		}
		p = parent
	}
	return want
}

func (v *Vault) deleteLocked(a Addr) bool {
	d := v.dirLocked(a.Project, a.Env, a.Path)
	if d == nil {
		return false
	}
	it, ok := d.secrets[a.Key]
	if !ok {
		return false
	}
	it.release()
	delete(d.secrets, a.Key)
	v.n--
	return true
}
