package access

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Permission bits in the shape of one rwx triplet, so that rules, modes
// and the kernel's check compare directly.
const (
	permRead  = 4
	permWrite = 2
	permRW    = permRead | permWrite
)

// Defaults is the behaviour "as today", used where no rule matches: the
// mount's file owner, group and mode (uid, gid, file_mode after their
// defaults), and the directory mode fs derives from them.
type Defaults struct {
	UID, GID uint32
	FileMode uint32 // permission bits of a secret file, e.g. 0600
	DirMode  uint32 // permission bits of a directory, e.g. 0700
	ReadOnly bool   // a read-only mount: modes never carry write bits
}

// Rules is one compiled, immutable rule set. Engine holds the current one.
type Rules struct {
	rules []*rule
	def   Defaults

	anyDaemon bool // some rule names executables, hashes or cgroups
	grantsAny bool // some rule allows something (directories must open up)

	defReasons [4]string
	bySet      sync.Map // matching rule indices (uvarints) → Attr: see attr
}

type rule struct {
	index   int
	spec    Spec
	path    Glob
	uids    []uint32 // sorted: uids and users
	gids    []uint32 // sorted: gids and groups
	exes    []string
	hashes  [][32]byte
	cgroups []Glob
	allow   uint32 // perm bits
	need    need   // what Decide must read from /proc for this rule
	reasons [4]string
}

// who reports whether the rule names callers by uid or group.
func (r *rule) who() bool { return len(r.uids) > 0 || len(r.gids) > 0 }

// daemonOnly reports whether the rule names something only the daemon can
// check at open: the executable, its hash or the cgroup.
func (r *rule) daemonOnly() bool {
	return len(r.exes) > 0 || len(r.hashes) > 0 || len(r.cgroups) > 0
}

func (r *rule) String() string { return fmt.Sprintf("access[%d] (path %q)", r.index, r.spec.Path) }

func (rs *Rules) finish() {
	d := rs.def
	rs.defReasons = reasons(fmt.Sprintf("no rule matched: file mode %04o (owner %d, group %d) %%s %%s", d.FileMode, d.UID, d.GID))
	for _, r := range rs.rules {
		if len(r.exes) > 0 {
			r.need |= needExe
		}
		if len(r.hashes) > 0 {
			r.need |= needExeFile
		}
		if len(r.cgroups) > 0 {
			r.need |= needCgroup
		}
		r.reasons = reasons(fmt.Sprintf("%s %%s %%s (allow = %q)", strings.ReplaceAll(r.String(), "%", "%%"), r.spec.Allow))
		rs.anyDaemon = rs.anyDaemon || r.daemonOnly()
		rs.grantsAny = rs.grantsAny || r.allow != 0
	}
}

// Len is the number of rules.
func (rs *Rules) Len() int { return len(rs.rules) }

// Defaults returns the behaviour where no rule matches.
func (rs *Rules) Defaults() Defaults { return rs.def }

// AnyDaemon reports whether some path needs the daemon to see every open
// (some rule names executables, hashes or cgroups). A read-only mount may
// only stop the kernel from sending OPEN (ENOSYS) when this is false.
func (rs *Rules) AnyDaemon() bool { return rs.anyDaemon }

// matching returns the rules whose path matches, in order, cut after the
// first rule that matches every caller (the ones after it never decide).
func (rs *Rules) matching(parts []string) []*rule {
	var out []*rule
	for _, r := range rs.rules {
		if !r.path.matchParts(parts) {
			continue
		}
		out = append(out, r)
		if !r.who() && !r.daemonOnly() {
			break
		}
	}
	return out
}

// modeAllows is the kernel's check under default_permissions for one
// caller: root passes (CAP_DAC_OVERRIDE), the owner gets the owner bits,
// a member of the group the group bits, everyone else the other bits.
func modeAllows(uid uint32, inGroup bool, owner uint32, mode uint32, want uint32) bool {
	var bits uint32
	switch {
	case uid == 0:
		return true
	case uid == owner:
		bits = mode >> 6 & 7
	case inGroup:
		bits = mode >> 3 & 7
	default:
		bits = mode & 7
	}
	return bits&want == want
}

func hasID(ids []uint32, id uint32) bool {
	_, ok := slices.BinarySearch(ids, id)
	return ok
}
