package access

import (
	"fmt"
	"testing"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// BenchmarkDecide measures one decision per rule kind against a real
// process. The baseline is a uid rule, decided from the request alone;
// ratios to it are what to read (go test -bench Decide ./access/).
func BenchmarkDecide(b *testing.B) {
	requireRoot(b)
	bins := binCopies(b, nil, "app/sleep")
	app := bins["app/sleep"]
	sum := testutil.FileSHA256(b, app)
	p := startAs(b, 1, 1, nil, app)
	cases := []struct {
		name string
		rule Spec
	}{
		{"uid", Spec{Path: "w/**", UIDs: []int64{1}, Allow: "read"}},
		{"group-supplementary", Spec{Path: "w/**", GIDs: []int64{50}, Allow: "read"}},
		{"executable", Spec{Path: "w/**", Executables: []string{app}, Allow: "read"}},
		{"sha256-cached", Spec{Path: "w/**", SHA256: []string{sum}, Allow: "read"}},
	}
	for _, c := range cases {
		// Nine rules for other paths first, as a real file would have.
		var specs []Spec
		for _, s := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
			specs = append(specs, Spec{Path: s + "/**", UIDs: []int64{7}, Allow: "read"})
		}
		e := mustEngine(b, append(specs, c.rule))
		want := c.name != "group-supplementary" // uid 1 is not in group 50
		if d := e.Decide("w/p/K", p.c, false); d.Allowed != want {
			b.Fatalf("%s: %+v", c.name, d)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				e.Decide("w/p/K", p.c, false)
			}
		})
	}
	b.Run("attr-cached", func(b *testing.B) {
		e := mustEngine(b, []Spec{cases[0].rule})
		for b.Loop() {
			e.Attr("w/p/K", false)
		}
	})
}

// BenchmarkReloadAttrChanged: the cost fs pays after a reload to find the
// nodes whose modes changed, for 10,000 secrets under a few rules.
func BenchmarkReloadAttrChanged(b *testing.B) {
	paths := make([]string, 10000)
	for i := range paths {
		paths[i] = fmt.Sprintf("p%d/env/folder%d/KEY%d", i%5, i%20, i)
	}
	specs := func(uid int64) []Spec {
		return []Spec{
			{Path: "p0/**", UIDs: []int64{uid}, Allow: "read"},
			{Path: "p1/env/*/KEY1*", GIDs: []int64{3000}, Allow: "read"},
			{Path: "p2/**", UIDs: []int64{uid, uid + 1}, Allow: "read"},
			{Path: "**", Allow: "none"},
		}
	}
	a, _ := Compile(specs(1000), testDefaults)
	e := NewEngine(a)
	for _, p := range paths {
		e.Attr(p, false)
	}
	for i := 0; b.Loop(); i++ {
		next, _ := Compile(specs(int64(1001+i%2)), testDefaults)
		ch := e.Swap(next)
		n := 0
		for _, p := range paths {
			if ch.AttrChanged(p, false) {
				n++
			}
		}
		// p0 changes owner; p2 (two uids) is the daemon's either way, with
		// the same permissive modes; p1, p3, p4 do not change.
		if n != 2000 {
			b.Fatalf("%d paths changed, want 2000", n)
		}
	}
}
