package refs

import (
	"slices"
	"sync"
)

// Deps is the reverse index of one project's expansions: for every secret,
// the addresses its last expansion looked up (Result.Deps), and from that,
// which secrets must be re-expanded when an address changes. Safe for
// concurrent use.
//
// Lock order: mu is a leaf; no method calls out while holding it.
type Deps struct {
	mu  sync.RWMutex
	fwd map[Addr][]Addr            // secret → what it looked up
	rev map[Addr]map[Addr]struct{} // address → secrets that looked it up
}

// Set records that secret's expansion depends on deps (replacing what was
// recorded before). Empty deps forget the secret.
func (d *Deps) Set(secret Addr, deps []Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(secret)
	if len(deps) == 0 {
		return
	}
	if d.fwd == nil {
		d.fwd = map[Addr][]Addr{}
		d.rev = map[Addr]map[Addr]struct{}{}
	}
	own := slices.Clone(deps)
	slices.SortFunc(own, Addr.less)
	own = slices.Compact(own)
	d.fwd[secret] = own
	for _, a := range own {
		m := d.rev[a]
		if m == nil {
			m = map[Addr]struct{}{}
			d.rev[a] = m
		}
		m[secret] = struct{}{}
	}
}

// Delete forgets secret's dependencies (the secret is gone, or no longer
// holds references). Secrets that depend on it keep their entries: they
// looked it up, and its disappearance is a change they must see.
func (d *Deps) Delete(secret Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(secret)
}

func (d *Deps) forget(secret Addr) {
	for _, a := range d.fwd[secret] {
		m := d.rev[a]
		delete(m, secret)
		if len(m) == 0 {
			delete(d.rev, a)
		}
	}
	delete(d.fwd, secret)
}

// Of returns what secret's expansion was recorded to depend on, sorted.
func (d *Deps) Of(secret Addr) []Addr {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.fwd[secret])
}

// Dependents returns, sorted, every secret whose expanded value may change
// when any of changed changes (created, updated, deleted, or its
// readability): those that depend on one of them, then those that depend on
// those, and so on. The changed addresses themselves are left out (the
// caller re-expands them anyway). Expand's Deps are already transitive, so
// the closure only adds secrets whose recorded dependencies were direct.
func (d *Deps) Dependents(changed ...Addr) []Addr {
	d.mu.RLock()
	defer d.mu.RUnlock()
	seen := make(map[Addr]bool, len(changed))
	for _, a := range changed {
		seen[a] = true
	}
	queue := slices.Clone(changed)
	var out []Addr
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		for s := range d.rev[a] {
			if seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, s)
			queue = append(queue, s)
		}
	}
	slices.SortFunc(out, Addr.less)
	return out
}

// Len returns the number of secrets with recorded dependencies.
func (d *Deps) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.fwd)
}
