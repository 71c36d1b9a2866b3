package refs

import (
	"fmt"
	"testing"
	"time"
)

// benchWorld is 10,000 secrets in two environments and eleven folders; one
// in ten references one to three others (local, cross-folder,
// cross-environment, some of them referencing secrets that reference again).
func benchWorld() (plainLookup, []Addr) {
	p := plainLookup{}
	var addrs []Addr
	folder := func(i int) string {
		if i%11 == 0 {
			return "/"
		}
		return fmt.Sprintf("/svc%d", i%11)
	}
	envOf := func(i int) string {
		if i%2 == 0 {
			return "dev"
		}
		return "prod"
	}
	for i := range 10000 {
		a := Addr{Env: envOf(i), Path: folder(i), Key: fmt.Sprintf("KEY_%05d", i)}
		v := fmt.Sprintf("postgres://user-%05d:pw-%05d@db.internal:5432/app", i, i*7)
		if i%10 == 3 {
			t1 := i + 22 // same env and folder: ≡ i mod 2 and mod 11
			if t1 >= 10000 {
				t1 = i - 22
			}
			t2 := (i + 1) % 10000  // other env, other folder
			t3 := (i + 10) % 10000 // a referencing secret (≡ 3 mod 10) two folders on
			switch i % 3 {
			case 0:
				v = fmt.Sprintf("https://${KEY_%05d}/x", t1)
			case 1:
				v = fmt.Sprintf("%s:${%s.%s.KEY_%05d}", "dsn", envOf(t2), dotted(folder(t2)), t2)
			default:
				v = fmt.Sprintf("${KEY_%05d}|${%s.%s.KEY_%05d}|${%s.%s.KEY_%05d}", t1,
					envOf(t2), dotted(folder(t2)), t2, envOf(t3), dotted(folder(t3)), t3)
			}
		}
		p[a] = Entry{Status: Found, Value: []byte(v)}
		addrs = append(addrs, a)
	}
	return p, addrs
}

// dotted writes a folder path the way a reference does: "/" -> "", "/a/b" -> "a.b".
func dotted(path string) string {
	if path == "/" {
		return ""
	}
	out := []byte(path[1:])
	for i, c := range out {
		if c == '/' {
			out[i] = '.'
		}
	}
	return string(out)
}

// BenchmarkExpand10k: one op is a pass over all 10,000 secrets. Each op
// runs the baseline pass, fetching each raw value from the same lookup and
// copying it (what serving raw values costs), then the expanding pass, each
// timed on its own, so both share the machine's state at that moment (the
// machine is shared). Reported: ns/secret of each and x-copy = expand / copy.
func BenchmarkExpand10k(b *testing.B) {
	p, addrs := benchWorld()
	refsCount := 0
	for _, a := range addrs {
		if HasRefs(p[a].Value) {
			refsCount++
		}
	}
	if refsCount != 1000 {
		b.Fatalf("%d referencing secrets, want 1000", refsCount)
	}
	for _, d := range []Dialect{Classic, Multipass} {
		x := &Expander{Lookup: p, Dialect: d}
		b.Run(d.String(), func(b *testing.B) {
			var copyT, expandT time.Duration
			for b.Loop() {
				t0 := time.Now()
				for _, a := range addrs {
					e := p.Secret(a)
					v := append(make([]byte, 0, len(e.Value)), e.Value...)
					clear(v)
				}
				t1 := time.Now()
				for _, a := range addrs {
					res, err := x.Expand(a)
					if err != nil {
						b.Fatal(err)
					}
					clear(res.Value)
				}
				copyT += t1.Sub(t0)
				expandT += time.Since(t1)
			}
			n := float64(b.N) * float64(len(addrs))
			b.ReportMetric(float64(copyT.Nanoseconds())/n, "ns/secret-copy")
			b.ReportMetric(float64(expandT.Nanoseconds())/n, "ns/secret-expand")
			b.ReportMetric(float64(expandT)/float64(copyT), "x-copy")
		})
	}
}

// TestBenchWorldExpands: the benchmark's references all resolve (so it
// measures expansion, not literal fall-through), including chained ones.
func TestBenchWorldExpands(t *testing.T) {
	p, addrs := benchWorld()
	x := &Expander{Lookup: p}
	chained := 0
	for _, a := range addrs {
		res, err := x.Expand(a)
		if err != nil {
			t.Fatal(err)
		}
		if HasRefs(res.Value) {
			t.Fatalf("%v: unresolved reference left in %q", a, res.Value)
		}
		if res.HasRefs && len(res.Deps) > 3 {
			chained++
		}
	}
	if chained == 0 {
		t.Error("no chained references in the benchmark world")
	}
}
