package vault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The model: a plain map of secrets and a set of folders, with the vault's
// documented semantics written out the simple way.

type folderKey struct{ env, path string }

type model struct {
	secrets map[Addr][]byte
	folders map[folderKey]bool
}

func (m *model) addChain(env, p string) {
	for {
		m.folders[folderKey{env, p}] = true
		if p == "/" {
			return
		}
		p, _ = parentOf(p)
	}
}

func (m *model) set(a Addr, val []byte) {
	m.secrets[a] = slices.Clone(val)
	m.addChain(a.Env, a.Path)
}

func (m *model) removeFolder(env, p string) bool {
	if !m.folders[folderKey{env, p}] {
		return false
	}
	for f := range m.folders {
		if f.env == env && under(f.path, p) {
			delete(m.folders, f)
		}
	}
	for a := range m.secrets {
		if a.Env == env && under(a.Path, p) {
			delete(m.secrets, a)
		}
	}
	return true
}

var (
	modelEnvs  = []string{"dev", "prod"}
	modelPaths = []string{"/", "/a", "/a/b", "/c", "/a/b/d"}
	modelKeys  = []string{"K1", "K2", "K3"}
)

// runModel interprets ops as a sequence of vault operations, checking the
// vault against the model after each.
func runModel(t *testing.T, ops []byte) {
	v := newTestVault(t)
	m := &model{secrets: map[Addr][]byte{}, folders: map[folderKey]bool{}}
	next := func() int {
		if len(ops) == 0 {
			return 0
		}
		b := ops[0]
		ops = ops[1:]
		return int(b)
	}
	pickAddr := func() Addr {
		return Addr{Project: "p", Env: modelEnvs[next()%len(modelEnvs)], Path: modelPaths[next()%len(modelPaths)], Key: modelKeys[next()%len(modelKeys)]}
	}
	for step := 0; len(ops) > 0; step++ {
		op := next() % 7
		var desc string
		switch op {
		case 0:
			a := pickAddr()
			val := bytes.Repeat([]byte{byte(next())}, next()%40)
			desc = fmt.Sprintf("Set %s (%d bytes)", a, len(val))
			if err := v.Set(a, val, Meta{Version: step}); err != nil {
				t.Fatalf("%s: %v", desc, err)
			}
			m.set(a, val)
		case 1:
			n := next()%3 + 1
			cs := make([]Change, n)
			for i := range cs {
				cs[i] = Change{Addr: pickAddr(), Value: fmt.Appendf(nil, "v%d-%d", step, i), Delete: next()%3 == 0}
			}
			desc = fmt.Sprintf("Apply %d changes", n)
			if _, err := v.Apply(cs); err != nil {
				t.Fatalf("%s: %v", desc, err)
			}
			for _, c := range cs {
				if c.Delete {
					delete(m.secrets, c.Addr)
				} else {
					m.set(c.Addr, c.Value)
				}
			}
		case 2:
			a := pickAddr()
			desc = "Delete " + a.String()
			_, had := m.secrets[a]
			if got := v.Delete(a); got != had {
				t.Fatalf("%s = %v, model %v", desc, got, had)
			}
			delete(m.secrets, a)
		case 3:
			env, p := modelEnvs[next()%2], modelPaths[next()%len(modelPaths)]
			desc = "AddFolder " + env + p
			v.AddFolder("p", env, p)
			m.addChain(env, p)
		case 4:
			env, p := modelEnvs[next()%2], modelPaths[next()%len(modelPaths)]
			desc = "RemoveFolder " + env + p
			if got, want := v.RemoveFolder("p", env, p), m.removeFolder(env, p); got != want {
				t.Fatalf("%s = %v, model %v", desc, got, want)
			}
		default:
			desc = "check"
		}
		checkModel(t, desc, v, m)
	}
}

func checkModel(t *testing.T, desc string, v *Vault, m *model) {
	t.Helper()
	if v.Len() != len(m.secrets) {
		t.Fatalf("after %s: Len %d, model %d", desc, v.Len(), len(m.secrets))
	}
	for _, env := range modelEnvs {
		var want []Addr
		for a := range m.secrets {
			if a.Env == env {
				want = append(want, a)
			}
		}
		slices.SortFunc(want, func(x, y Addr) int { return strings.Compare(x.String(), y.String()) })
		if got := v.Addrs("p", env); !slices.Equal(got, want) {
			t.Fatalf("after %s: Addrs(%s) = %v, model %v", desc, env, got, want)
		}
		for _, p := range modelPaths {
			if got, want := v.HasFolder("p", env, p), m.folders[folderKey{env, p}]; got != want {
				t.Fatalf("after %s: HasFolder(%s%s) = %v, model %v", desc, env, p, got, want)
			}
			var wl Listing
			for _, k := range modelKeys {
				a := Addr{Project: "p", Env: env, Path: p, Key: k}
				mv, ok := m.secrets[a]
				if ok {
					wl.Keys = append(wl.Keys, k)
				}
				val, meta, err := v.Get(a)
				switch {
				case !ok && !errors.Is(err, ErrNotFound):
					t.Fatalf("after %s: Get(%s) = %v, model has nothing", desc, a, err)
				case ok && err != nil:
					t.Fatalf("after %s: Get(%s): %v", desc, a, err)
				case ok && (!bytes.Equal(val.Bytes(), mv) || meta.Size != len(mv)):
					t.Fatalf("after %s: Get(%s) = %d bytes (size %d), model %d bytes", desc, a, len(val.Bytes()), meta.Size, len(mv))
				}
				val.Wipe()
			}
			for f := range m.folders {
				if f.env == env && f.path != "/" {
					if parent, name := parentOf(f.path); parent == p {
						wl.Folders = append(wl.Folders, name)
					}
				}
			}
			slices.Sort(wl.Folders)
			if got := v.List("p", env, p); !equalListing(got, wl) {
				t.Fatalf("after %s: List(%s%s) = %+v, model %+v", desc, env, p, got, wl)
			}
			es, _, err := v.Snapshot("p", env, p)
			if err != nil || len(es) != len(wl.Keys) {
				t.Fatalf("after %s: Snapshot(%s%s) = %d entries, %v; model %d", desc, env, p, len(es), err, len(wl.Keys))
			}
			for i, e := range es {
				if e.Key != wl.Keys[i] || !bytes.Equal(e.Value.Bytes(), m.secrets[Addr{"p", env, p, e.Key}]) {
					t.Fatalf("after %s: Snapshot(%s%s)[%d] = %s, differs from the model", desc, env, p, i, e.Key)
				}
				e.Value.Wipe()
			}
		}
	}
}

// FuzzVaultModel: random operation sequences agree with the map model.
func FuzzVaultModel(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		ops := make([]byte, 40+r.IntN(400))
		for i := range ops {
			ops[i] = byte(r.Uint32())
		}
		f.Add(ops)
	}
	f.Add([]byte{3, 0, 4, 0, 0, 0, 1, 2, 7, 5, 4, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 1200 {
			ops = ops[:1200]
		}
		runModel(t, ops)
	})
}
