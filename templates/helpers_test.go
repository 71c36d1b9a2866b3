package templates

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/infisicalfs/infisicalfs/vault"
)

// fakeSource is an in-memory Source: raw and expanded values per address,
// imports per folder. Every answer is a fresh copy, and the copies handed
// out are kept so a test can check the renderer wiped them.
type fakeSource struct {
	mu       sync.Mutex
	raw      map[vault.Addr]string
	expanded map[vault.Addr]string
	imports  map[vault.Addr][]vault.Addr // folder (Key "") -> imported secrets' addresses, in agent order
	slugs    map[string]string
	synced   map[string]bool // "project/env"; nil = everything
	handed   [][]byte
}

func newFake() *fakeSource {
	return &fakeSource{raw: map[vault.Addr]string{}, expanded: map[vault.Addr]string{}, imports: map[vault.Addr][]vault.Addr{}, slugs: map[string]string{}}
}

func addr(p, e, path, key string) vault.Addr {
	return vault.Addr{Project: p, Env: e, Path: path, Key: key}
}

// set stores a secret; expanded defaults to the raw value.
func (f *fakeSource) set(p, e, path, key, raw string, expanded ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := addr(p, e, path, key)
	f.raw[a] = raw
	f.expanded[a] = raw
	if len(expanded) > 0 {
		f.expanded[a] = expanded[0]
	}
}

func (f *fakeSource) del(p, e, path, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.raw, addr(p, e, path, key))
	delete(f.expanded, addr(p, e, path, key))
}

func (f *fakeSource) give(v string) []byte {
	b := []byte(v)
	f.handed = append(f.handed, b)
	return b
}

func (f *fakeSource) ProjectID(slug string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.slugs[slug]; ok {
		return id, nil
	}
	return "", ErrNotSynced
}

func (f *fakeSource) check(p, e string) error {
	if f.synced != nil && !f.synced[p+"/"+e] {
		return ErrNotSynced
	}
	return nil
}

func under(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

func (f *fakeSource) List(p, e, path string, recursive, expand bool) ([]Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(p, e); err != nil {
		return nil, err
	}
	vals := f.raw
	if expand {
		vals = f.expanded
	}
	var own []vault.Addr
	for a := range vals {
		if a.Project == p && a.Env == e && (a.Path == path || recursive && under(a.Path, path)) {
			own = append(own, a)
		}
	}
	slices.SortFunc(own, func(x, y vault.Addr) int { return strings.Compare(x.Path+"\x00"+x.Key, y.Path+"\x00"+y.Key) })
	var out []Item
	for _, a := range own {
		out = append(out, Item{Key: a.Key, Path: a.Path, Value: f.give(vals[a]), ID: "id-" + a.Key})
	}
	for _, a := range f.imports[addr(p, e, path, "")] {
		out = append(out, Item{Key: a.Key, Path: a.Path, Value: f.give(f.expanded[a]), ID: "id-" + a.Key, Imported: true})
	}
	return out, nil
}

func (f *fakeSource) Get(p, e, path, key string) (Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(p, e); err != nil {
		return Item{}, err
	}
	a := addr(p, e, path, key)
	if v, ok := f.expanded[a]; ok {
		return Item{Key: key, Path: path, Value: f.give(v), ID: "id-" + key, Comment: "comment of " + key}, nil
	}
	for _, ia := range f.imports[addr(p, e, path, "")] {
		if ia.Key == key {
			return Item{Key: key, Path: ia.Path, Value: f.give(f.expanded[ia]), ID: "id-" + key, Imported: true}, nil
		}
	}
	return Item{}, ErrNotFound
}

// allWiped reports whether every value handed out is zero bytes now.
func (f *fakeSource) allWiped() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.handed {
		for _, c := range b {
			if c != 0 {
				return fmt.Errorf("value %d of %d handed out was not wiped", i, len(f.handed))
			}
		}
	}
	return nil
}

func mustSet(t *testing.T, specs ...Spec) *Set {
	t.Helper()
	s, err := New(specs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func content(t *testing.T, s *Set, i int) string {
	t.Helper()
	b, err := s.Content(i)
	if err != nil {
		t.Fatalf("content of %d: %v", i, err)
	}
	return string(b)
}

func one(t *testing.T, rs []Result) Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}
