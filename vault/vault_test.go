package vault

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func newVault(t testing.TB) *Vault {
	t.Helper()
	v, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Destroy)
	return v
}

var a1 = Addr{Project: "p1", Env: "dev", Path: "/", Key: "DB"}

func TestSetGetStatDelete(t *testing.T) {
	v := newVault(t)
	val := []byte("s3cret")
	if err := v.Set(a1, val, Meta{ID: "id1", Version: 3}); err != nil {
		t.Fatal(err)
	}
	clear(val) // the vault sealed its own copy
	got, m, err := v.Get(a1)
	if err != nil || string(got.Bytes()) != "s3cret" || m.Version != 3 || m.ID != "id1" || m.Size != 6 {
		t.Fatalf("Get = %q %+v %v", got.Bytes(), m, err)
	}
	b := got.Bytes()
	got.Wipe()
	if !bytes.Equal(b, make([]byte, 6)) {
		t.Errorf("Wipe left %q", b)
	}
	got.Wipe() // twice is fine
	if st, ok := v.Stat(a1); !ok || st.Size != 6 {
		t.Errorf("Stat = %+v %v", st, ok)
	}
	if !v.Delete(a1) || v.Delete(a1) {
		t.Error("Delete should succeed once")
	}
	if _, _, err := v.Get(a1); err != ErrNotFound {
		t.Errorf("Get after delete: %v", err)
	}
}

func TestSealedValueBoundToAddress(t *testing.T) {
	v := newVault(t)
	v.Set(a1, []byte("value-of-DB"), Meta{})
	other := Addr{Project: "p1", Env: "dev", Path: "/", Key: "OTHER"}
	v.Set(other, []byte("x"), Meta{})
	// Move the sealed blob of DB under OTHER's address, as an attacker
	// with write access to the map could.
	v.mu.Lock()
	f := v.folders[scope{"p1", "dev"}]["/"]
	f.keys["OTHER"].box = append([]byte(nil), f.keys["DB"].box...)
	v.mu.Unlock()
	if val, _, err := v.Get(other); err == nil {
		t.Fatalf("a sealed value opened at another address: %q", val.Bytes())
	}
}

func TestListFoldersSnapshot(t *testing.T) {
	v := newVault(t)
	v.Apply([]Change{
		{Addr: Addr{"p", "dev", "/", "B"}, Value: []byte("b")},
		{Addr: Addr{"p", "dev", "/", "A"}, Value: []byte("a")},
		{Addr: Addr{"p", "dev", "/app/x", "C"}, Value: []byte("c")},
	})
	v.AddFolder("p", "dev", "/empty")
	l := v.List("p", "dev", "/")
	if fmt.Sprint(l.Keys) != "[A B]" || fmt.Sprint(l.Folders) != "[app empty]" {
		t.Errorf("List / = %+v", l)
	}
	if !v.HasFolder("p", "dev", "/app") || !v.HasFolder("p", "dev", "/app/x") {
		t.Error("parent folders not made")
	}
	es, gen, err := v.Snapshot("p", "dev", "/")
	if err != nil || len(es) != 2 || es[0].Key != "A" || string(es[1].Value.Bytes()) != "b" || gen != v.Generation() {
		t.Errorf("Snapshot = %v %d %v", es, gen, err)
	}
	if len(v.Addrs("p", "dev")) != 3 || v.Len() != 3 {
		t.Errorf("Addrs = %v, Len %d", v.Addrs("p", "dev"), v.Len())
	}
	if !v.RemoveFolder("p", "dev", "/app") || v.HasFolder("p", "dev", "/app/x") || v.Len() != 2 {
		t.Error("RemoveFolder did not take the subtree")
	}
}

func TestPrintingNeverShowsValues(t *testing.T) {
	const canary = "CANARY-vault-9f2c"
	v := newVault(t)
	v.Set(a1, []byte(canary), Meta{})
	val, _, _ := v.Get(a1)
	es, _, _ := v.Snapshot("p1", "dev", "/")
	for _, s := range []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v),
		fmt.Sprint(val), fmt.Sprintf("%v %+v %#v %s %q %x", val, val, val, val, val, val),
		fmt.Sprintf("%v %+v %#v", es, es, es),
	} {
		if strings.Contains(s, canary) || strings.Contains(s, fmt.Sprintf("%x", canary)) {
			t.Fatalf("printed a value: %s", s)
		}
	}
}

// TestModel runs random operations against the vault and a plain map.
func TestModel(t *testing.T) {
	v := newVault(t)
	model := map[Addr]string{}
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"A", "B", "C"}
	paths := []string{"/", "/x", "/x/y"}
	for i := 0; i < 5000; i++ {
		a := Addr{"p", "dev", paths[r.IntN(3)], keys[r.IntN(3)]}
		switch r.IntN(4) {
		case 0, 1:
			val := fmt.Sprint(r.Int())
			v.Set(a, []byte(val), Meta{})
			model[a] = val
		case 2:
			if v.Delete(a) != (model[a] != "" || hasKey(model, a)) {
				t.Fatalf("Delete %v disagrees", a)
			}
			delete(model, a)
		case 3:
			got, _, err := v.Get(a)
			want, ok := model[a]
			if ok != (err == nil) || (ok && string(got.Bytes()) != want) {
				t.Fatalf("Get %v = %v %v, model %q %v", a, got.Bytes(), err, want, ok)
			}
		}
	}
	if v.Len() != len(model) {
		t.Errorf("Len %d, model %d", v.Len(), len(model))
	}
}

func hasKey(m map[Addr]string, a Addr) bool { _, ok := m[a]; return ok }

func TestConcurrentUse(t *testing.T) {
	v := newVault(t)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				a := Addr{"p", "dev", "/", fmt.Sprint(i % 10)}
				switch (w + i) % 4 {
				case 0:
					v.Set(a, []byte("v"), Meta{})
				case 1:
					if val, _, err := v.Get(a); err == nil {
						val.Wipe()
					}
				case 2:
					v.List("p", "dev", "/")
				case 3:
					if es, _, err := v.Snapshot("p", "dev", "/"); err == nil {
						for _, e := range es {
							e.Value.Wipe()
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestDisableCoreDumps runs in a child process, since the change is for the
// whole process and cannot be undone.
func TestDisableCoreDumps(t *testing.T) {
	if os.Getenv("VAULT_DUMPABLE_CHILD") == "1" {
		if err := DisableCoreDumps(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		// /proc/self/status has no dumpable line; prctl reads the flag.
		d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_CORE, &lim)
		fmt.Printf("%d %d\n", d, lim.Max)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisableCoreDumps$")
	cmd.Env = append(os.Environ(), "VAULT_DUMPABLE_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "0 0" {
		t.Errorf("Dumpable after DisableCoreDumps = %q, want 0", out)
	}
}

func BenchmarkGet(b *testing.B) {
	v := newVault(b)
	v.Set(a1, bytes.Repeat([]byte("x"), 64), Meta{})
	b.ReportAllocs()
	for b.Loop() {
		val, _, _ := v.Get(a1)
		val.Wipe()
	}
}

func BenchmarkSet(b *testing.B) {
	v := newVault(b)
	val := bytes.Repeat([]byte("x"), 64)
	b.ReportAllocs()
	for b.Loop() {
		v.Set(a1, val, Meta{})
	}
}

func BenchmarkStat(b *testing.B) {
	v := newVault(b)
	v.Set(a1, []byte("x"), Meta{})
	b.ReportAllocs()
	for b.Loop() {
		v.Stat(a1)
	}
}

func BenchmarkSnapshot100(b *testing.B) {
	v := newVault(b)
	for i := 0; i < 100; i++ {
		v.Set(Addr{"p", "dev", "/", fmt.Sprint("K", i)}, bytes.Repeat([]byte("x"), 64), Meta{})
	}
	b.ReportAllocs()
	for b.Loop() {
		es, _, _ := v.Snapshot("p", "dev", "/")
		for _, e := range es {
			e.Value.Wipe()
		}
	}
}

// BenchmarkMemoryPerEntry reports the bytes each secret costs beyond its
// 64-byte value.
func BenchmarkMemoryPerEntry(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			val := bytes.Repeat([]byte("x"), 64)
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				v, _ := New(nil)
				for i := 0; i < n; i++ {
					v.Set(Addr{"p", "dev", fmt.Sprint("/f", i%100), fmt.Sprint("KEY_", i)}, val, Meta{ID: "0b5e6d5c-1111-2222-3333-444455556666"})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n)-64, "B/secret-overhead")
				runtime.KeepAlive(v)
				v.Destroy()
			}
		})
	}
}
