package access

import (
	"fmt"
	"slices"
)

// Decision is the answer for one open.
type Decision struct {
	Allowed bool
	// RuleIndex is the deciding rule's position in the config (access[N],
	// from 0); -1 when no rule matched and the file modes of today decided.
	RuleIndex int
	// Reason is one line for logs and the audit record. It names rules,
	// ids and executables, never a value.
	Reason string
	// Exe and Cgroup are what was read about the caller, "" when nothing
	// needed it or it could not be read (then Unknown says why).
	Exe, Cgroup string
	Unknown     string
}

// lazyProc reads /proc for a caller at most once per decision, and only
// when a rule or the audit log needs it.
type lazyProc struct {
	c    Caller
	need need
	p    *Process
	err  error
	done bool
}

func (l *lazyProc) get() (*Process, error) {
	if !l.done {
		l.done = true
		l.p, l.err = identify(l.c, l.need)
	}
	return l.p, l.err
}

func (l *lazyProc) close() { l.p.close() }

// decide applies the first rule that matches the path and the caller.
func (rs *Rules) decide(path string, c Caller, wantWrite bool, hashes *hashCache, always bool) Decision {
	return rs.decideAll([]string{path}, c, wantWrite, hashes, always)[0]
}

// decideAll decides each path in turn for one caller and stops at the
// first denial; it returns the decisions made. The caller is identified
// (its /proc read) at most once for all of them: a folder view is decided
// for itself and for every key it holds.
func (rs *Rules) decideAll(paths []string, c Caller, wantWrite bool, hashes *hashCache, always bool) []Decision {
	want := uint32(permRead)
	if wantWrite {
		want = permWrite
	}
	l := &lazyProc{c: c}
	if always {
		l.need = needExe | needCgroup
	}
	var one [1][]*rule // a single path (every open of a file) allocates nothing here
	matchings := one[:0]
	if len(paths) > 1 {
		matchings = make([][]*rule, 0, len(paths))
	}
	for _, p := range paths {
		m := rs.matching(splitPath(p))
		for _, r := range m {
			l.need |= r.need
		}
		matchings = append(matchings, m)
	}
	defer l.close()
	out := make([]Decision, 0, len(paths))
	for _, matching := range matchings {
		d := rs.decideRules(matching, c, want, l, hashes)
		if always {
			l.get()
		}
		// What a decision of this path alone would carry: the process
		// where its rules look at it.
		if always || slices.ContainsFunc(matching, func(r *rule) bool { return r.need != 0 }) {
			if l.p != nil {
				d.Exe, d.Cgroup = l.p.Exe, l.p.Cgroup
			}
			if l.err != nil {
				d.Unknown = l.err.Error()
			}
		}
		out = append(out, d)
		if !d.Allowed {
			break
		}
	}
	return out
}

func (rs *Rules) decideRules(matching []*rule, c Caller, want uint32, l *lazyProc, hashes *hashCache) Decision {
	unknown := func(r *rule, err error) Decision {
		// Fail closed: a rule further down must not let through a caller
		// this one might have stopped.
		return Decision{RuleIndex: r.index, Reason: fmt.Sprintf("%s needs the caller's identity: %v", r, err)}
	}
	for _, r := range matching {
		if r.who() {
			ok := hasID(r.uids, c.UID) || hasID(r.gids, c.GID)
			if !ok && len(r.gids) > 0 {
				p, err := l.get()
				if err != nil {
					return unknown(r, err)
				}
				ok = slices.ContainsFunc(p.Groups, func(g uint32) bool { return hasID(r.gids, g) })
			}
			if !ok {
				continue
			}
		}
		if r.daemonOnly() {
			p, err := l.get()
			if err != nil {
				return unknown(r, err)
			}
			if len(r.exes) > 0 && !slices.Contains(r.exes, p.Exe) {
				continue
			}
			if len(r.cgroups) > 0 && !slices.ContainsFunc(r.cgroups, func(g Glob) bool { return g.Match(p.Cgroup) }) {
				continue
			}
			if len(r.hashes) > 0 {
				h, err := hashes.sum(p.exe, p.exeKey)
				if err != nil {
					return unknown(r, err)
				}
				if !slices.Contains(r.hashes, h) {
					continue
				}
			}
		}
		ok := r.allow&want == want
		return Decision{Allowed: ok, RuleIndex: r.index, Reason: r.reasons[reasonIndex(ok, want)]}
	}
	// No rule: the modes of today decide, as the kernel would have.
	def := rs.def
	inGroup := c.GID == def.GID
	if !inGroup && c.UID != 0 && c.UID != def.UID && (def.FileMode>>3&7) != (def.FileMode&7) {
		p, err := l.get()
		if err != nil {
			return Decision{RuleIndex: -1, Reason: fmt.Sprintf("no rule matched and the file mode depends on groups: %v", err)}
		}
		inGroup = slices.Contains(p.Groups, def.GID)
	}
	ok := modeAllows(c.UID, inGroup, def.UID, def.FileMode, want)
	return Decision{Allowed: ok, RuleIndex: -1, Reason: rs.defReasons[reasonIndex(ok, want)]}
}

// Reasons are worked out once per rule, not per open: [allowed][write].
func reasonIndex(ok bool, want uint32) int {
	i := 0
	if ok {
		i = 2
	}
	if want&permWrite != 0 {
		i++
	}
	return i
}

func reasons(subject string) [4]string {
	var out [4]string
	for i := range out {
		verb, what := "denies", "read"
		if i >= 2 {
			verb = "allows"
		}
		if i%2 == 1 {
			what = "write"
		}
		out[i] = fmt.Sprintf(subject, verb, what)
	}
	return out
}
