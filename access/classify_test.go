package access

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// refAllows is the rules' meaning written out plainly: the first rule whose
// path and caller conditions hold decides; daemonMatch[i] says whether rule
// i's executable/hash/cgroup conditions hold; else today's modes decide.
func refAllows(rs *Rules, p string, uid uint32, groups []uint32, daemonMatch []bool, want uint32) bool {
	for i, r := range rs.rules {
		if !r.path.Match(p) {
			continue
		}
		if len(r.uids)+len(r.gids) > 0 {
			ok := slices.Contains(r.uids, uid)
			for _, g := range groups {
				ok = ok || slices.Contains(r.gids, g)
			}
			if !ok {
				continue
			}
		}
		if r.daemonOnly() && !daemonMatch[i] {
			continue
		}
		return r.allow&want == want
	}
	d := rs.def
	return modeAllows(uid, slices.Contains(groups, d.GID), d.UID, d.FileMode, want)
}

// kernelAllows is generic_permission under default_permissions, with the
// caller's full group list.
func kernelAllows(a Attr, uid uint32, groups []uint32, want uint32) bool {
	return modeAllows(uid, slices.Contains(groups, a.GID), a.UID, a.Mode, want)
}

// checkAttrAgrees checks a's promise for every caller the rules can tell
// apart: exact modes (Daemon false) give exactly the rules' answer, and
// modes for the daemon never refuse what the rules might allow. It also
// checks decideRules against the reference where no /proc is needed.
func checkAttrAgrees(t *testing.T, rs *Rules, p string, a Attr) {
	t.Helper()
	uids := []uint32{0, rs.def.UID, 4242424}
	gids := []uint32{rs.def.GID, 4343434}
	var daemonRules int
	for _, r := range rs.rules {
		uids = append(uids, r.uids...)
		gids = append(gids, r.gids...)
		if r.daemonOnly() {
			daemonRules++
		}
	}
	slices.Sort(uids)
	uids = slices.Compact(uids)
	slices.Sort(gids)
	gids = slices.Compact(gids)
	if len(gids) > 8 || daemonRules > 6 {
		return // too many combinations to walk here
	}
	for _, uid := range uids {
		for gs := 0; gs < 1<<len(gids); gs++ {
			var groups []uint32
			for i, g := range gids {
				if gs&(1<<i) != 0 {
					groups = append(groups, g)
				}
			}
			for _, want := range []uint32{permRead, permWrite} {
				kern := kernelAllows(a, uid, groups, want)
				for combo := 0; combo < 1<<len(rs.rules) && combo < 1<<6; combo++ {
					dm := make([]bool, len(rs.rules))
					for i := range dm {
						dm[i] = combo&(1<<(i%6)) != 0
					}
					ref := refAllows(rs, p, uid, groups, dm, want)
					// Root passes modes; the kernel side is only checked
					// for rules that do not name root.
					if uid == 0 {
						continue
					}
					if !a.Daemon && kern != ref {
						t.Fatalf("path %q attr %+v: kernel says %v, rules say %v for uid %d groups %v want %d", p, a, kern, ref, uid, groups, want)
					}
					if a.Daemon && ref && !kern {
						t.Fatalf("path %q attr %+v (daemon): kernel refuses uid %d groups %v want %d that the rules may allow", p, a, uid, groups, want)
					}
				}
				if daemonRules == 0 && len(groups) > 0 {
					l := &lazyProc{done: true, p: &Process{Groups: groups[1:]}}
					c := Caller{UID: uid, GID: groups[0]}
					d := rs.decideRules(rs.matching(splitPath(p)), c, want, l, nil)
					if ref := refAllows(rs, p, uid, groups, nil, want); d.Allowed != ref {
						t.Fatalf("path %q: decideRules says %v (%s), reference %v for uid %d groups %v", p, d.Allowed, d.Reason, ref, uid, groups)
					}
				}
			}
		}
	}
}

func TestAttrExamples(t *testing.T) {
	def := Defaults{UID: 0, GID: 0, FileMode: 0o600, DirMode: 0o700}
	cases := []struct {
		name   string
		specs  []Spec
		path   string
		want   Attr
		daemon bool
	}{
		{"no rules: today's modes", nil, "a/b/K", Attr{UID: 0, GID: 0, Mode: 0o600}, false},
		{"one uid reads", []Spec{{Path: "a/**", UIDs: []int64{1001}, Allow: "read"}}, "a/b/K",
			Attr{UID: 1001, GID: 0, Mode: 0o400}, false},
		{"rule elsewhere", []Spec{{Path: "x/**", UIDs: []int64{1001}, Allow: "read"}}, "a/b/K",
			Attr{UID: 0, GID: 0, Mode: 0o600}, false},
		{"a group reads", []Spec{{Path: "a/**", GIDs: []int64{3000}, Allow: "read"}}, "a/K",
			Attr{UID: 0, GID: 3000, Mode: 0o640}, false},
		{"uid writes, group reads", []Spec{
			{Path: "a/**", UIDs: []int64{1001}, Allow: "write"},
			{Path: "a/**", GIDs: []int64{3000}, Allow: "read"},
		}, "a/K", Attr{UID: 1001, GID: 3000, Mode: 0o640}, false},
		// Root passes any mode; it is shown with its bits of today.
		{"everyone reads", []Spec{{Path: "**", Allow: "read"}}, "a/K", Attr{UID: 0, GID: 0, Mode: 0o644}, false},
		{"two uids need a group", []Spec{{Path: "a/**", UIDs: []int64{1001, 1002}, Allow: "read"}}, "a/K", Attr{}, true},
		{"executables need the daemon", []Spec{{Path: "a/**", Executables: []string{"/usr/bin/x"}, Allow: "read"}}, "a/K", Attr{}, true},
		{"root restricted", []Spec{{Path: "a/**", UIDs: []int64{0}, Allow: "read"}}, "a/K", Attr{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := Compile(c.specs, def)
			if err != nil {
				t.Fatal(err)
			}
			a := rs.attr(c.path, false)
			if a.Daemon != c.daemon {
				t.Fatalf("attr %+v: Daemon = %v, want %v", a, a.Daemon, c.daemon)
			}
			if !c.daemon && a != c.want {
				t.Fatalf("attr = %+v, want %+v", a, c.want)
			}
			if c.daemon && a.Why == "" {
				t.Fatalf("attr %+v: daemon without a reason", a)
			}
			checkAttrAgrees(t, rs, c.path, a)
		})
	}
}

func TestAttrDirAndReadOnly(t *testing.T) {
	def := Defaults{UID: 1000, GID: 1000, FileMode: 0o600, DirMode: 0o700, ReadOnly: true}
	rs, err := Compile([]Spec{{Path: "a/**", UIDs: []int64{1001}, Allow: "write"}}, def)
	if err != nil {
		t.Fatal(err)
	}
	if d := rs.attr("a", true); d.Mode != 0o755&^0o222 || d.UID != 1000 || d.Daemon {
		t.Errorf("dir attr %+v: want 0555 owned by 1000 (others may walk to what they may read)", d)
	}
	if a := rs.attr("a/K", false); a.Mode&0o222 != 0 {
		t.Errorf("read-only mount: attr %+v carries write bits", a)
	}
	none, _ := Compile(nil, def)
	if d := none.attr("a", true); d.Mode != 0o700&^0o222 {
		t.Errorf("no rules: dir attr %+v, want today's 0500", d)
	}
}

// TestAttrRandom checks the classification against the plain reading of
// the rules over many random rule sets of uids, gids and allows.
func TestAttrRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	allows := []string{"read", "write", "none"}
	paths := []string{"a/K", "a/b/K", "c/K"}
	pats := []string{"a/**", "a/*", "**", "c/K", "a/b/*"}
	exact := 0
	for n := 0; n < 3000; n++ {
		def := Defaults{UID: []uint32{0, 1000}[rng.IntN(2)], GID: []uint32{0, 1000}[rng.IntN(2)],
			FileMode: []uint32{0o600, 0o640, 0o644, 0o400}[rng.IntN(4)], DirMode: 0o700}
		var specs []Spec
		for i := rng.IntN(4); i >= 0; i-- {
			s := Spec{Path: pats[rng.IntN(len(pats))], Allow: allows[rng.IntN(3)]}
			for j := rng.IntN(3); j > 0; j-- {
				s.UIDs = append(s.UIDs, int64(1000+rng.IntN(3)))
			}
			for j := rng.IntN(2); j > 0; j-- {
				s.GIDs = append(s.GIDs, int64(2000+rng.IntN(3)))
			}
			if rng.IntN(8) == 0 {
				s.Cgroups = []string{"/x/**"}
			}
			specs = append(specs, s)
		}
		rs, err := Compile(specs, def)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			a := rs.attr(p, false)
			if !a.Daemon {
				exact++
			}
			checkAttrAgrees(t, rs, p, a)
		}
	}
	if exact == 0 {
		t.Fatal("no random rule set was kernel-enforceable: the search finds nothing")
	}
	t.Logf("%d of %d random paths kernel-enforced", exact, 3000*len(paths))
}
