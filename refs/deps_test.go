package refs

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func ad(env, path, key string) Addr { return Addr{Env: env, Path: path, Key: key} }

func TestDepsUpdates(t *testing.T) {
	var (
		x   = ad("dev", "/", "X")
		y   = ad("prod", "/db", "Y")
		s1  = ad("dev", "/app", "S1")
		s2  = ad("staging", "/", "S2")
		s3  = ad("dev", "/", "S3")
		eq  = func(got, want []Addr) bool { return slices.Equal(got, sortedAddrs(want)) }
		d   Deps
		chk = func(name string, got, want []Addr) {
			t.Helper()
			if !eq(got, want) {
				t.Errorf("%s = %v, want %v", name, got, sortedAddrs(want))
			}
		}
	)
	d.Set(s1, []Addr{x})
	d.Set(s2, []Addr{y, x, x}) // repeats collapse
	d.Set(s3, []Addr{s1})      // recorded directly: the closure carries it
	chk("Dependents(X)", d.Dependents(x), []Addr{s1, s2, s3})
	chk("Dependents(Y)", d.Dependents(y), []Addr{s2})
	chk("Dependents(S1)", d.Dependents(s1), []Addr{s3})
	chk("Dependents(X, S1)", d.Dependents(x, s1), []Addr{s2, s3})
	chk("Of(S2)", d.Of(s2), []Addr{x, y})
	if d.Len() != 3 {
		t.Errorf("Len = %d", d.Len())
	}

	d.Set(s2, []Addr{y}) // S2 no longer references X
	chk("after re-set, Dependents(X)", d.Dependents(x), []Addr{s1, s3})
	chk("after re-set, Dependents(Y)", d.Dependents(y), []Addr{s2})

	d.Delete(s1) // S1 gone: S3 still looked it up
	chk("after delete, Dependents(X)", d.Dependents(x), nil)
	chk("after delete, Dependents(S1)", d.Dependents(s1), []Addr{s3})

	d.Set(s3, nil) // no references any more
	chk("after empty set, Dependents(S1)", d.Dependents(s1), nil)
	if d.Len() != 1 || len(d.rev) != 1 {
		t.Errorf("Len = %d, rev = %v: forgotten entries linger", d.Len(), d.rev)
	}
	d.Delete(s2)
	if d.Len() != 0 || len(d.rev) != 0 {
		t.Errorf("Len = %d, rev = %v after deleting all", d.Len(), d.rev)
	}
}

func TestDepsCycle(t *testing.T) {
	a, b, c := ad("dev", "/", "A"), ad("dev", "/", "B"), ad("prod", "/", "C")
	var d Deps
	d.Set(a, []Addr{b})
	d.Set(b, []Addr{a, c})
	if got := d.Dependents(a); !slices.Equal(got, []Addr{b}) {
		t.Errorf("Dependents(A) = %v", got)
	}
	if got := d.Dependents(c); !slices.Equal(got, sortedAddrs([]Addr{a, b})) {
		t.Errorf("Dependents(C) = %v", got)
	}
}

// TestDepsFromExpansion is the property the mount relies on: index every
// secret's expansion, change one address (update, delete, create, deny),
// re-expand everything, and every secret whose result changed must be in
// Dependents of the changed address. Run for every address of the corpus
// and the addresses its references name but that do not exist.
func TestDepsFromExpansion(t *testing.T) {
	for _, d := range []Dialect{Classic, Multipass} {
		t.Run(d.String(), func(t *testing.T) {
			c, base := loadCorpus(t)
			outcome := func(w *world) (map[Addr]string, *Deps) {
				x := &Expander{Lookup: w, Dialect: d}
				var deps Deps
				out := map[Addr]string{}
				for a := range w.secrets {
					res, err := x.Expand(a)
					deps.Set(a, res.Deps)
					out[a] = fmt.Sprintf("%q %v", res.Value, err)
				}
				return out, &deps
			}
			before, deps := outcome(base)

			// Targets come from the corpus, not from the index under test:
			// every secret, every address its references name, and every
			// address the hand-written expectations list (formed ones too).
			targets := map[Addr]bool{}
			for a, e := range base.secrets {
				targets[a] = true
				for _, r := range d.Parse(e.Value) {
					if !r.CrossProject {
						targets[r.Target(a)] = true
					}
				}
			}
			for _, tc := range c.Cases {
				for _, s := range append(tc.Classic.Deps, tc.want(Multipass).Deps...) {
					targets[parseAddr(t, s)] = true
				}
			}
			mutations := []struct {
				name string
				do   func(w *world, a Addr)
			}{
				{"update", func(w *world, a Addr) { w.set(a, "changed-value", false) }},
				{"update to a reference", func(w *world, a Addr) { w.set(a, "now ${dev.API_KEY}", false) }},
				{"delete or create", func(w *world, a Addr) {
					if _, ok := w.secrets[a]; ok {
						delete(w.secrets, a)
					} else {
						w.set(a, "created", false)
					}
				}},
				{"deny", func(w *world, a Addr) {
					old := w.denied
					w.denied = func(b Addr) bool { return b == a || old(b) }
				}},
			}
			checked, changedTotal := 0, 0
			for a := range targets {
				for _, m := range mutations {
					w := newWorld()
					for k, v := range base.secrets {
						w.secrets[k] = v
					}
					m.do(w, a)
					after, _ := outcome(w)
					dependents := map[Addr]bool{a: true}
					for _, s := range deps.Dependents(a) {
						dependents[s] = true
					}
					for s, v := range after {
						if before[s] != v {
							changedTotal++
							if !dependents[s] {
								t.Errorf("%s %v changed %v (%s -> %s) but Dependents does not list it", m.name, a, s, before[s], v)
							}
						}
					}
					checked++
				}
			}
			if changedTotal < 200 {
				t.Errorf("only %d changed expansions over %d mutations: the property is not exercised", changedTotal, checked)
			}
		})
	}
}

func TestDepsConcurrent(t *testing.T) {
	var d Deps
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				s := ad("dev", "/", fmt.Sprintf("S%d_%d", g, i%20))
				d.Set(s, []Addr{ad("dev", "/", "X"), ad("prod", "/", fmt.Sprintf("Y%d", i%7))})
				_ = d.Dependents(ad("dev", "/", "X"))
				if i%3 == 0 {
					d.Delete(s)
				}
			}
		})
	}
	wg.Wait()
	for _, s := range d.Dependents(ad("dev", "/", "X")) {
		if !slices.Contains(d.Of(s), ad("dev", "/", "X")) {
			t.Errorf("%v listed as dependent without depending", s)
		}
	}
}
