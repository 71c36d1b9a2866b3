package access

import (
	"sync"
	"sync/atomic"
)

// Engine holds the current rules and answers for them; Swap replaces them
// atomically (a decision in flight finishes under the rules it started
// with). Safe for concurrent use; it takes no lock on the decision path
// except the hash cache's, briefly.
type Engine struct {
	cur            atomic.Pointer[ruleset]
	hashes         *hashCache // kept across swaps: a binary's hash does not depend on the rules
	identifyAlways atomic.Bool
}

// ruleset is one Rules with what is derived from it.
type ruleset struct {
	rules  *Rules
	denied []atomic.Uint64 // by rule; the last one counts "no rule matched"
	attrs  sync.Map        // attrKey → Attr, filled on demand
}

type attrKey struct {
	path string
	dir  bool
}

func newRuleset(r *Rules) *ruleset {
	return &ruleset{rules: r, denied: make([]atomic.Uint64, len(r.rules)+1)}
}

func (s *ruleset) attr(path string, dir bool) Attr {
	if len(s.rules.rules) == 0 {
		// Nothing to match: the answer is the defaults, and caching it
		// per path would cost ~130 B for every name the kernel looks up.
		return s.rules.attr(path, dir)
	}
	k := attrKey{path, dir}
	if a, ok := s.attrs.Load(k); ok {
		return a.(Attr)
	}
	a := s.rules.attr(path, dir)
	s.attrs.Store(k, a)
	return a
}

// NewEngine returns an engine deciding by r (Compile(nil, def) for none).
func NewEngine(r *Rules) *Engine {
	e := &Engine{hashes: newHashCache()}
	e.cur.Store(newRuleset(r))
	return e
}

// IdentifyAlways makes Decide read the caller's executable and cgroup even
// when no rule needs them, so that audit records carry them. Set it when an
// audit log is configured.
func (e *Engine) IdentifyAlways(on bool) { e.identifyAlways.Store(on) }

// Rules returns the current rules.
func (e *Engine) Rules() *Rules { return e.cur.Load().rules }

// Decide answers whether caller may open path (a mount path, "project/
// env/folder/KEY", no leading slash needed) for writing (wantWrite) or
// reading. Where no rule matches it answers as the modes of today would.
// A caller that a matching rule needs to identify and cannot be identified
// (it exited, its pid was reused, /proc is unreadable) is denied.
func (e *Engine) Decide(path string, c Caller, wantWrite bool) Decision {
	return e.DecideAll([]string{path}, c, wantWrite)[0]
}

// DecideAll is Decide of each path in turn for one caller, identified once,
// stopping at the first denial; it returns the decisions made (the last
// one is the denial, if any).
func (e *Engine) DecideAll(paths []string, c Caller, wantWrite bool) []Decision {
	s := e.cur.Load()
	ds := s.rules.decideAll(paths, c, wantWrite, e.hashes, e.identifyAlways.Load())
	if d := ds[len(ds)-1]; !d.Allowed {
		i := d.RuleIndex
		if i < 0 {
			i = len(s.denied) - 1
		}
		s.denied[i].Add(1)
	}
	return ds
}

// Attr returns the owner, group and mode for path (a directory when dir),
// and whether its opens must reach the daemon. Cached per rule set.
func (e *Engine) Attr(path string, dir bool) Attr { return e.cur.Load().attr(path, dir) }

// NeedsDaemon reports whether opens of the file at path must be decided by
// Decide because its modes cannot express its rules.
func (e *Engine) NeedsDaemon(path string) bool { return e.Attr(path, false).Daemon }

// Swap installs new rules and returns what changed, so that fs can
// invalidate exactly the attributes the kernel holds that are now wrong.
// Denial counts start again from zero with the new rules.
func (e *Engine) Swap(r *Rules) Change {
	next := newRuleset(r)
	return Change{old: e.cur.Swap(next), new: next}
}

// Change compares two rule sets for fs after a reload.
type Change struct{ old, new *ruleset }

// AttrChanged reports whether path's owner, group, mode or daemon routing
// differ under the new rules: fs invalidates the kernel's attributes for
// it (NotifyContent(ino, 0, 0) invalidates attributes, too).
func (c Change) AttrChanged(path string, dir bool) bool {
	return c.old.attr(path, dir) != c.new.attr(path, dir)
}

// AnyDaemonChanged reports whether the new rules start or stop needing the
// daemon somewhere. A read-only mount that told the kernel to stop sending
// OPEN (ENOSYS) cannot take it back: that needs a remount.
func (c Change) AnyDaemonChanged() bool {
	return c.old.rules.anyDaemon != c.new.rules.anyDaemon
}

// RuleDenials is one rule's denial count, for .status.
type RuleDenials struct {
	Index  int    `json:"rule"` // -1: no rule matched (file modes denied)
	Path   string `json:"path,omitempty"`
	Allow  string `json:"allow,omitempty"`
	Denied uint64 `json:"denied"`
}

// Denials returns the denial count of every rule, in config order, then
// the count of denials where no rule matched.
func (e *Engine) Denials() []RuleDenials {
	s := e.cur.Load()
	out := make([]RuleDenials, 0, len(s.denied))
	for i, r := range s.rules.rules {
		out = append(out, RuleDenials{Index: r.index, Path: r.spec.Path, Allow: r.spec.Allow, Denied: s.denied[i].Load()})
	}
	out = append(out, RuleDenials{Index: -1, Denied: s.denied[len(s.denied)-1].Load()})
	return out
}
