package access

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// Attr is what the kernel is told about a path: owner, group and
// permission bits. With default_permissions the kernel checks them on
// every open, at no cost to the daemon.
type Attr struct {
	UID, GID uint32
	Mode     uint32 // permission bits only (no S_IFREG/S_IFDIR)
	// Daemon: the modes cannot say what the rules say, so they are set to
	// let through everyone the rules might allow, and each open of this
	// path must reach the daemon and be decided there (Engine.Decide).
	Daemon bool
	Why    string // why Daemon is set; "" otherwise
}

// Limits of the exact search: beyond them a path is decided by the daemon.
const (
	maxClassGIDs = 8       // 2^8 group memberships to check
	maxSearch    = 1 << 16 // classes × candidate owner/group pairs
)

// attr works out modes that enforce the rules for path.
//
// Modes carry one owner and one group, each with its own bits, and one set
// for everyone else; root passes them all. So a path's rules are kernel-
// enforceable when they name only uids and groups and fit that shape: one
// uid (the owner) with its own permission, one group, and the rest. Two
// uids with the same permission need a group holding both; a rule for
// executables, hashes or cgroups never fits; nor does a rule that names
// uid 0 and allows less than write (root passes every mode). Such paths get
// the tightest modes that still let through everyone the rules might
// allow, and Daemon: fs must send their opens through Decide.
//
// The search: every caller the rules can tell apart is a class (each
// named uid or "any other uid", times each combination of named groups).
// For each candidate owner and group among the named ones, the bits of
// owner, group and other are the union of what their classes need; the
// candidate is exact when every class gets exactly what the rules give it.
// Root is left out of the classes: it passes modes anyway, and rules that
// do not name it explicitly are not weakened by that (Decide still
// applies them to root where opens reach the daemon).
func (rs *Rules) attr(path string, dir bool) Attr {
	def := rs.def
	if dir {
		m := def.DirMode
		if rs.grantsAny {
			// A rule may let other users read below: they need to walk
			// and list the directories on the way. Names are not values.
			m |= 0o055
		}
		return rs.mask(Attr{UID: def.UID, GID: def.GID, Mode: m})
	}
	var matching []*rule
	if len(rs.rules) > 0 { // no rules: no path to split on every lookup
		matching = rs.matching(splitPath(path))
	}
	if len(matching) == 0 {
		return rs.mask(Attr{UID: def.UID, GID: def.GID, Mode: def.FileMode})
	}
	// The answer depends only on which rules match: thousands of secrets
	// under one `**` share one search.
	key := make([]byte, 0, 4*len(matching))
	for _, r := range matching {
		key = binary.AppendUvarint(key, uint64(r.index))
	}
	if a, ok := rs.bySet.Load(string(key)); ok {
		return a.(Attr)
	}
	a := rs.search(matching)
	rs.bySet.Store(string(key), a)
	return a
}

// search finds the modes for one list of matching rules.
func (rs *Rules) search(matching []*rule) Attr {
	def := rs.def
	var uids, gids []uint32
	if def.UID != 0 {
		uids = append(uids, def.UID)
	}
	gids = append(gids, def.GID)
	why := ""
	var maxAllow uint32
	for _, r := range matching {
		maxAllow |= r.allow
		for _, u := range r.uids {
			if u != 0 && !slices.Contains(uids, u) {
				uids = append(uids, u)
			}
		}
		for _, g := range r.gids {
			if !slices.Contains(gids, g) {
				gids = append(gids, g)
			}
		}
		switch {
		case why != "":
		case r.daemonOnly():
			why = fmt.Sprintf("%s names executables, hashes or cgroups", r)
		case hasID(r.uids, 0) && r.allow != permRW:
			why = fmt.Sprintf("%s restricts root, whom file modes cannot", r)
		}
	}
	// classes × candidates bounds the work; beyond it the daemon decides.
	if len(gids) > maxClassGIDs || (len(uids)+1)<<len(gids)*(len(uids)+1)*len(gids) > maxSearch {
		if why == "" {
			why = fmt.Sprintf("the rules for this path name too many uids (%d) and groups (%d) to search for modes", len(uids), len(gids))
		}
		m := def.FileMode | maxAllow*0o111
		return rs.mask(Attr{UID: def.UID, GID: def.GID, Mode: m, Daemon: true, Why: why})
	}

	// Classes: index u in [0, len(uids)] (len = any other uid), group set gs.
	type class struct {
		uid   int // index into uids, or len(uids) for "other"
		gs    uint64
		level uint32
		sure  bool // no executable/hash/cgroup rule could have decided first
	}
	inSet := func(gs uint64, ids []uint32) bool {
		for gs != 0 {
			i := bits.TrailingZeros64(gs)
			if hasID(ids, gids[i]) {
				return true
			}
			gs &^= 1 << i
		}
		return false
	}
	var classes []class
	for u := 0; u <= len(uids); u++ {
		for gs := uint64(0); gs < 1<<len(gids); gs++ {
			c := class{uid: u, gs: gs, sure: true}
			decided := false
			for _, r := range matching {
				if r.who() && !(u < len(uids) && hasID(r.uids, uids[u])) && !inSet(gs, r.gids) {
					continue
				}
				c.level |= r.allow
				if r.daemonOnly() {
					c.sure = false
					continue
				}
				decided = true
				break
			}
			if !decided {
				var b uint32
				switch {
				case u < len(uids) && uids[u] == def.UID:
					b = def.FileMode >> 6
				case gs&1 != 0: // gids[0] is def.GID
					b = def.FileMode >> 3
				default:
					b = def.FileMode
				}
				c.level |= b & permRW
			}
			classes = append(classes, c)
		}
	}

	owners := append([]uint32{def.UID}, uids...)
	best, bestExcess := Attr{}, -1
	for _, o := range owners {
		for gi, g := range gids {
			var ob, gb, xb uint32
			kind := func(c class) int {
				switch {
				case c.uid < len(uids) && uids[c.uid] == o:
					return 0
				case c.gs&(1<<gi) != 0:
					return 1
				}
				return 2
			}
			for _, c := range classes {
				switch kind(c) {
				case 0:
					ob |= c.level
				case 1:
					gb |= c.level
				default:
					xb |= c.level
				}
			}
			if o == 0 {
				ob = permRW // root: shown as it passes
				if o == def.UID {
					ob = def.FileMode >> 6 & permRW
				}
			}
			got := [3]uint32{ob, gb, xb}
			excess := 0
			for _, c := range classes {
				if got[kind(c)] != c.level || !c.sure {
					excess++
				}
			}
			if bestExcess < 0 || excess < bestExcess {
				best = Attr{UID: o, GID: g, Mode: ob<<6 | gb<<3 | xb}
				bestExcess = excess
			}
			if excess == 0 && why == "" {
				return rs.mask(best)
			}
		}
	}
	if why == "" {
		why = "no single owner and group express these rules (two uids with the same permission need a group holding both)"
	}
	best.Daemon, best.Why = true, why
	return rs.mask(best)
}

// mask drops write bits on a read-only mount.
func (rs *Rules) mask(a Attr) Attr {
	if rs.def.ReadOnly {
		a.Mode &^= 0o222
	}
	return a
}
