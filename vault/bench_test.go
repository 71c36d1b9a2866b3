package vault

import (
	"fmt"
	"runtime"
	"testing"
)

var benchValue = []byte("postgres://user:password@db.internal:5432/app?sslmode=require") // 63 bytes

func BenchmarkSet(b *testing.B) {
	v := newTestVault(b)
	a := addr("/a/b", "DATABASE_URL")
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Set(a, benchValue, Meta{Version: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	v := newTestVault(b)
	a := addr("/a/b", "DATABASE_URL")
	if err := v.Set(a, benchValue, Meta{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		val, _, err := v.Get(a)
		if err != nil {
			b.Fatal(err)
		}
		val.Wipe()
	}
}

func BenchmarkGetParallel(b *testing.B) {
	v := newTestVault(b)
	a := addr("/a/b", "DATABASE_URL")
	if err := v.Set(a, benchValue, Meta{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			val, _, err := v.Get(a)
			if err != nil {
				b.Error(err)
				return
			}
			val.Wipe()
		}
	})
}

func BenchmarkStat(b *testing.B) {
	v := newTestVault(b)
	a := addr("/a/b", "DATABASE_URL")
	if err := v.Set(a, benchValue, Meta{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := v.Stat(a); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkSnapshot100(b *testing.B) {
	v := newTestVault(b)
	for i := range 100 {
		if err := v.Set(addr("/svc", fmt.Sprintf("KEY_%03d", i)), benchValue, Meta{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		es, _, err := v.Snapshot("p1", "dev", "/svc")
		if err != nil || len(es) != 100 {
			b.Fatal(len(es), err)
		}
		for _, e := range es {
			e.Value.Wipe()
		}
	}
}

// BenchmarkMemoryPerEntry reports the heap a secret costs beyond its value
// (B/secret-overhead): map slots, metadata, nonce and tag. Addresses are
// built before measuring, so key-name strings (shared with the caller) are
// not counted. Secrets spread over 100 folders.
func BenchmarkMemoryPerEntry(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			addrs := make([]Addr, n)
			for i := range addrs {
				addrs[i] = addr(fmt.Sprintf("/f%02d", i%100), fmt.Sprintf("KEY_%06d", i))
			}
			var perEntry float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				v, err := New(nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, a := range addrs {
					if err := v.Set(a, benchValue, Meta{ID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", Version: 1}); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perEntry = float64(after.HeapAlloc-before.HeapAlloc)/float64(n) - float64(len(benchValue))
				runtime.KeepAlive(v)
				v.Destroy()
			}
			b.ReportMetric(perEntry, "B/secret-overhead")
		})
	}
}
