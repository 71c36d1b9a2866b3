package vault

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const canary = "CANARY-s3cr3t-9f2b7c"

func newTestVault(t testing.TB) *Vault {
	t.Helper()
	v, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Destroy)
	return v
}

func addr(path, key string) Addr { return Addr{Project: "p1", Env: "dev", Path: path, Key: key} }

// sealedOf is the test hook into a secret's sealed bytes.
func sealedOf(v *Vault, a Addr) []byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	it, _ := v.itemLocked(a)
	return it.sealed
}

// putSealed installs a raw sealed blob at a, as an attacker with write access
// to the vault's memory could.
func putSealed(v *Vault, a Addr, blob []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.dirLocked(a.Project, a.Env, a.Path)
	it := d.secrets[a.Key]
	it.sealed = blob
	d.secrets[a.Key] = it
}

func mustGet(t *testing.T, v *Vault, a Addr) (string, Meta) {
	t.Helper()
	val, m, err := v.Get(a)
	if err != nil {
		t.Fatalf("Get(%s): %v", a, err)
	}
	defer val.Wipe()
	return string(val.Bytes()), m
}

func TestAddrString(t *testing.T) {
	for _, c := range []struct {
		a    Addr
		want string
	}{
		{addr("/", "K"), "p1/dev/K"},
		{addr("/a/b", "K"), "p1/dev/a/b/K"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.a, got, c.want)
		}
	}
}

func TestSetGetStat(t *testing.T) {
	v := newTestVault(t)
	pt := []byte(canary)
	upd := time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	if err := v.Set(addr("/a", "DB"), pt, Meta{ID: "id1", Version: 3, UpdatedAt: upd, Size: 999, Gen: 999}); err != nil {
		t.Fatal(err)
	}
	clear(pt) // the caller owns its buffer
	got, m := mustGet(t, v, addr("/a", "DB"))
	if got != canary {
		t.Fatalf("Get = %q, want the value set", got)
	}
	want := Meta{ID: "id1", Version: 3, UpdatedAt: upd, Size: len(canary), RawSize: len(canary), Gen: v.Generation()}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Get meta = %+v, want %+v", m, want)
	}
	if sm, ok := v.Stat(addr("/a", "DB")); !ok || !reflect.DeepEqual(sm, want) {
		t.Fatalf("Stat = %+v, %v; want %+v", sm, ok, want)
	}
	if _, ok := v.Stat(addr("/a", "OTHER")); ok {
		t.Fatal("Stat of an absent key reported it")
	}
	if _, _, err := v.Get(addr("/", "DB")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of absent key: %v, want ErrNotFound", err)
	}
	if v.Len() != 1 {
		t.Fatalf("Len = %d, want 1", v.Len())
	}
	// Empty values are values.
	if err := v.Set(addr("/", "EMPTY"), nil, Meta{}); err != nil {
		t.Fatal(err)
	}
	if got, m := mustGet(t, v, addr("/", "EMPTY")); got != "" || m.Size != 0 {
		t.Fatalf("empty value: %q, size %d", got, m.Size)
	}
}

func TestInvalidAddrRejected(t *testing.T) {
	v := newTestVault(t)
	for _, a := range []Addr{
		{Project: "", Env: "dev", Path: "/", Key: "K"},
		{Project: "p", Env: "", Path: "/", Key: "K"},
		{Project: "p", Env: "dev", Path: "", Key: "K"},
		{Project: "p", Env: "dev", Path: "a", Key: "K"},
		{Project: "p", Env: "dev", Path: "/a/", Key: "K"},
		{Project: "p", Env: "dev", Path: "/a//b", Key: "K"},
		{Project: "p", Env: "dev", Path: "/a/../b", Key: "K"},
		{Project: "p", Env: "dev", Path: "/", Key: ""},
		{Project: "p", Env: "dev", Path: "/", Key: "a/b"},
		{Project: "p/q", Env: "dev", Path: "/", Key: "K"},
	} {
		err := v.Set(a, []byte(canary), Meta{})
		if err == nil {
			t.Errorf("Set(%#v) accepted an invalid address", a)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error carries the value: %v", err)
		}
	}
	if v.Len() != 0 || v.Generation() != 0 {
		t.Fatalf("rejected sets changed the vault: len %d gen %d", v.Len(), v.Generation())
	}
}

func TestSealedIsBoundToItsAddress(t *testing.T) {
	v := newTestVault(t)
	a, b := addr("/", "A"), addr("/x", "B")
	if err := v.Set(a, []byte(canary), Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := v.Set(b, []byte("other"), Meta{}); err != nil {
		t.Fatal(err)
	}
	blob := sealedOf(v, a)
	if bytes.Contains(blob, []byte(canary)) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	putSealed(v, b, slices.Clone(blob))
	val, _, err := v.Get(b)
	if err == nil {
		t.Fatalf("a sealed value moved to another address opened: %q", val.Bytes())
	}
	if errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), canary) {
		t.Fatalf("unexpected error for a moved blob: %v", err)
	}
	if _, _, err := v.Snapshot("p1", "dev", "/x"); err == nil {
		t.Fatal("Snapshot opened a moved blob")
	}
	// The original still opens.
	if got, _ := mustGet(t, v, a); got != canary {
		t.Fatalf("original = %q", got)
	}
}

func TestFreshNoncePerSeal(t *testing.T) {
	v := newTestVault(t)
	a := addr("/", "K")
	if err := v.Set(a, []byte(canary), Meta{}); err != nil {
		t.Fatal(err)
	}
	first := slices.Clone(sealedOf(v, a))
	if err := v.Set(a, []byte(canary), Meta{}); err != nil {
		t.Fatal(err)
	}
	if second := sealedOf(v, a); bytes.Equal(first, second) || bytes.Equal(first[:12], second[:12]) {
		t.Fatal("sealing the same value twice gave the same nonce or ciphertext")
	}
}

func allZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

func TestDroppedSealedBuffersAreWiped(t *testing.T) {
	v := newTestVault(t)
	a := addr("/f", "K")
	set := func() []byte {
		t.Helper()
		if err := v.Set(a, []byte(canary), Meta{}); err != nil {
			t.Fatal(err)
		}
		s := sealedOf(v, a)
		if allZero(s) {
			t.Fatal("fresh sealed buffer is zero")
		}
		return s
	}
	s := set()
	set()
	if !allZero(s) {
		t.Error("an overwrite left the replaced sealed buffer intact")
	}
	s = set()
	v.Delete(a)
	if !allZero(s) {
		t.Error("Delete left the sealed buffer intact")
	}
	s = set()
	if _, err := v.Apply([]Change{{Addr: a, Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if !allZero(s) {
		t.Error("Apply delete left the sealed buffer intact")
	}
	s = set()
	v.RemoveFolder("p1", "dev", "/f")
	if !allZero(s) {
		t.Error("RemoveFolder left the sealed buffer intact")
	}
	s = set()
	v.Destroy()
	if !allZero(s) {
		t.Error("Destroy left the sealed buffer intact")
	}
	if _, _, err := v.Get(a); err == nil {
		t.Error("Get after Destroy succeeded")
	}
	if err := v.Set(a, []byte("x"), Meta{}); err == nil {
		t.Error("Set after Destroy succeeded")
	}
	if _, _, err := v.Snapshot("p1", "dev", "/"); err == nil {
		t.Error("Snapshot after Destroy succeeded")
	}
	if v.Len() != 0 {
		t.Errorf("Len after Destroy = %d", v.Len())
	}
	v.Destroy() // twice is fine
}

func TestFailedOpenWipesItsBuffer(t *testing.T) {
	v := newTestVault(t)
	blob := v.keys.seal([]byte(canary), []byte("ad"))
	blob[len(blob)-1] ^= 1 // a bad tag: the body decrypts, then is refused
	out := bytes.Repeat([]byte{0xff}, len(canary))
	pt, err := v.keys.openInto(out[:0], blob, []byte("ad"))
	if err == nil || pt != nil {
		t.Fatalf("tampered blob opened: %q %v", pt, err)
	}
	if !allZero(out) {
		t.Fatalf("failed open left bytes in its buffer: %x", out)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error carries the value: %v", err)
	}
	if _, err := v.keys.open(blob[:sealOverhead-1], []byte("ad")); err == nil {
		t.Fatal("truncated blob opened")
	}
}

func TestValueWipe(t *testing.T) {
	v := newTestVault(t)
	if err := v.Set(addr("/", "K"), []byte(canary), Meta{}); err != nil {
		t.Fatal(err)
	}
	val, _, err := v.Get(addr("/", "K"))
	if err != nil {
		t.Fatal(err)
	}
	b := val.Bytes()
	val.Wipe()
	if !allZero(b) || val.Bytes() != nil {
		t.Fatal("Wipe did not zero the plaintext")
	}
	val.Wipe()
	var nilVal *Value
	nilVal.Wipe()
	if nilVal.Bytes() != nil {
		t.Fatal("nil Value has bytes")
	}
}

func TestNothingPrintsPlaintext(t *testing.T) {
	v := newTestVault(t)
	if err := v.Set(addr("/", "K"), []byte(canary), Meta{ID: "id"}); err != nil {
		t.Fatal(err)
	}
	val, _, err := v.Get(addr("/", "K"))
	if err != nil {
		t.Fatal(err)
	}
	defer val.Wipe()
	es, _, err := v.Snapshot("p1", "dev", "/")
	if err != nil || len(es) != 1 {
		t.Fatalf("Snapshot: %v %v", es, err)
	}
	defer es[0].Value.Wipe()
	ch := Change{Addr: addr("/", "K"), Value: []byte(canary)}
	things := []any{v, val, *val, es[0], es, &es[0], ch, []Change{ch}}
	hexCanary := fmt.Sprintf("%x", canary)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for i, x := range things {
			out := fmt.Sprintf(verb, x)
			if strings.Contains(out, canary) || strings.Contains(strings.ToLower(out), hexCanary) {
				t.Errorf("%s of thing %d (%T) shows the value: %s", verb, i, x, out)
			}
		}
	}
	if out := fmt.Sprint(v, val, es, ch) + fmt.Sprintln(v, val, es, ch); strings.Contains(out, canary) {
		t.Errorf("Sprint shows the value: %s", out)
	}
	// slog, as the rest of the program logs.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v, "val", val, "entry", es[0], "change", ch)
	if strings.Contains(buf.String(), canary) {
		t.Errorf("slog shows the value: %s", buf.String())
	}
}

func TestFolders(t *testing.T) {
	v := newTestVault(t)
	if v.HasFolder("p1", "dev", "/") {
		t.Fatal("root of an unknown environment exists")
	}
	v.AddFolder("p1", "dev", "/a/b/c")
	for _, p := range []string{"/", "/a", "/a/b", "/a/b/c"} {
		if !v.HasFolder("p1", "dev", p) {
			t.Errorf("AddFolder did not create %s", p)
		}
	}
	if err := v.Set(addr("/x/y", "K"), []byte("1"), Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := v.Set(addr("/", "ROOT"), []byte("1"), Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := v.Set(addr("/a", "AK"), []byte("1"), Meta{}); err != nil {
		t.Fatal(err)
	}
	want := Listing{Keys: []string{"ROOT"}, Folders: []string{"a", "x"}}
	if got := v.List("p1", "dev", "/"); !equalListing(got, want) {
		t.Fatalf("List / = %+v, want %+v", got, want)
	}
	if got := v.List("p1", "dev", "/x"); !equalListing(got, Listing{Folders: []string{"y"}}) {
		t.Fatalf("List /x = %+v", got)
	}
	v.Delete(addr("/x/y", "K"))
	if !v.HasFolder("p1", "dev", "/x/y") {
		t.Fatal("deleting the last secret removed its folder")
	}
	if !v.RemoveFolder("p1", "dev", "/a") {
		t.Fatal("RemoveFolder of an existing folder returned false")
	}
	if v.RemoveFolder("p1", "dev", "/a/b") {
		t.Fatal("RemoveFolder of a removed subfolder returned true")
	}
	for _, p := range []string{"/a", "/a/b", "/a/b/c"} {
		if v.HasFolder("p1", "dev", p) {
			t.Errorf("%s survived removing /a", p)
		}
	}
	if _, ok := v.Stat(addr("/a", "AK")); ok || v.Len() != 1 {
		t.Fatalf("secret below a removed folder survived (len %d)", v.Len())
	}
	if got := v.List("p1", "dev", "/"); !equalListing(got, Listing{Keys: []string{"ROOT"}, Folders: []string{"x"}}) {
		t.Fatalf("List / after remove = %+v", got)
	}
	// Another environment is untouched by all of this.
	if v.HasFolder("p1", "prod", "/") || len(v.Addrs("p1", "prod")) != 0 {
		t.Fatal("environments leak into each other")
	}
	if !v.RemoveFolder("p1", "dev", "/") || v.HasFolder("p1", "dev", "/") || v.Len() != 0 {
		t.Fatal("removing / did not forget the environment")
	}
	v.AddFolder("p1", "dev", "bad/")
	if v.HasFolder("p1", "dev", "/") {
		t.Fatal("a non-canonical AddFolder created something")
	}
}

func equalListing(a, b Listing) bool {
	return slices.Equal(a.Keys, b.Keys) && slices.Equal(a.Folders, b.Folders)
}

func TestAddrsSortedPerEnvironment(t *testing.T) {
	v := newTestVault(t)
	in := []Addr{addr("/b", "K"), addr("/", "Z"), addr("/a", "K"), addr("/", "A"), {Project: "p1", Env: "prod", Path: "/", Key: "P"}}
	for _, a := range in {
		if err := v.Set(a, []byte("x"), Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	got := v.Addrs("p1", "dev")
	want := []Addr{addr("/", "A"), addr("/", "Z"), addr("/a", "K"), addr("/b", "K")}
	if !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want %v", got, want)
	}
}

func TestGenerations(t *testing.T) {
	v := newTestVault(t)
	g0 := v.Generation()
	if err := v.Set(addr("/", "A"), []byte("1"), Meta{}); err != nil {
		t.Fatal(err)
	}
	g1 := v.Generation()
	if g1 <= g0 {
		t.Fatal("Set did not bump the generation")
	}
	g2, err := v.Apply([]Change{{Addr: addr("/", "B"), Value: []byte("2")}, {Addr: addr("/", "C"), Value: []byte("3")}})
	if err != nil || g2 != g1+1 || v.Generation() != g2 {
		t.Fatalf("Apply gen %d (%v), before %d", g2, err, g1)
	}
	for _, k := range []string{"B", "C"} {
		if m, _ := v.Stat(addr("/", k)); m.Gen != g2 {
			t.Errorf("%s Gen = %d, want %d", k, m.Gen, g2)
		}
	}
	if m, _ := v.Stat(addr("/", "A")); m.Gen != g1 {
		t.Errorf("untouched entry's Gen moved to %d", m.Gen)
	}
	if v.Delete(addr("/", "nope")) || v.Generation() != g2 {
		t.Fatal("deleting nothing changed something")
	}
	v.AddFolder("p1", "dev", "/f")
	g3 := v.Generation()
	v.AddFolder("p1", "dev", "/f")
	if g3 <= g2 || v.Generation() != g3 {
		t.Fatal("AddFolder generation wrong (new should bump, existing should not)")
	}
	if _, err := v.Apply([]Change{{Addr: addr("/", "D"), Value: []byte("x")}, {Addr: addr("bad", "E")}}); err == nil {
		t.Fatal("Apply with an invalid address succeeded")
	}
	if _, ok := v.Stat(addr("/", "D")); ok || v.Generation() != g3 {
		t.Fatal("a failed Apply applied part of its changes")
	}
}

// TestApplyIsAtomicToReaders has readers check that every snapshot shows one
// refresh's values, never a mix of two.
func TestApplyIsAtomicToReaders(t *testing.T) {
	v := newTestVault(t)
	const keys, rounds = 20, 200
	batch := func(round int) []Change {
		cs := make([]Change, keys)
		for i := range cs {
			cs[i] = Change{Addr: addr("/", fmt.Sprintf("K%02d", i)), Value: fmt.Appendf(nil, "round-%d", round), Meta: Meta{Version: round}}
		}
		return cs
	}
	if _, err := v.Apply(batch(0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				es, gen, err := v.Snapshot("p1", "dev", "/")
				if err != nil {
					errs <- err
					return
				}
				first := string(es[0].Value.Bytes())
				for _, e := range es {
					if string(e.Value.Bytes()) != first || e.Meta.Version != es[0].Meta.Version || e.Meta.Gen > gen {
						errs <- fmt.Errorf("torn snapshot at gen %d: %s has %q v%d, first %q", gen, e.Key, e.Value.Bytes(), e.Meta.Version, first)
					}
					e.Value.Wipe()
				}
			}
		}()
	}
	for r := 1; r <= rounds; r++ {
		if _, err := v.Apply(batch(r)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestConcurrentUse is for the race detector: every operation at once.
func TestConcurrentUse(t *testing.T) {
	v := newTestVault(t)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				a := addr(fmt.Sprintf("/d%d", i%3), fmt.Sprintf("K%d", (i+w)%7))
				switch (i + w) % 9 {
				case 0:
					_ = v.Set(a, []byte(canary), Meta{Version: i})
				case 1:
					_, _ = v.Apply([]Change{{Addr: a, Value: []byte("x")}, {Addr: addr("/", "R"), Delete: true}})
				case 2:
					if val, _, err := v.Get(a); err == nil {
						val.Wipe()
					}
				case 3:
					v.Stat(a)
					v.Len()
					v.Generation()
				case 4:
					v.Delete(a)
				case 5:
					v.List("p1", "dev", a.Path)
					v.Addrs("p1", "dev")
				case 6:
					v.AddFolder("p1", "dev", a.Path+"/sub")
					v.HasFolder("p1", "dev", a.Path)
				case 7:
					v.RemoveFolder("p1", "dev", a.Path+"/sub")
				case 8:
					es, _, _ := v.Snapshot("p1", "dev", a.Path)
					for _, e := range es {
						e.Value.Wipe()
					}
					_ = fmt.Sprint(v)
				}
			}
		}()
	}
	wg.Wait()
}

func TestMlockRefusedWarnsOnceAndContinues(t *testing.T) {
	orig := probeMlock
	probeMlock = func() error { return errors.New("mlock: operation not permitted") }
	t.Cleanup(func() { probeMlock = orig })
	mlockWarning = sync.Once{}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 2 {
		v, err := New(log)
		if err != nil {
			t.Fatal(err)
		}
		if v.keys.buf != nil || v.keys.raw == nil {
			t.Fatal("fallback key memory not used")
		}
		if err := v.Set(addr("/", "K"), []byte(canary), Meta{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := mustGet(t, v, addr("/", "K")); got != canary {
			t.Fatalf("Get = %q", got)
		}
		v.Destroy()
		if v.keys != nil {
			t.Fatal("Destroy kept the keyring")
		}
	}
	if n := strings.Count(buf.String(), "mlock refused"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, buf.String())
	}
}

func TestKeyInLockedMemory(t *testing.T) {
	v := newTestVault(t)
	if v.keys.buf == nil {
		t.Skip("mlock refused on this machine")
	}
	if !v.keys.buf.IsAlive() || v.keys.buf.IsMutable() {
		t.Fatal("key buffer should be alive and frozen")
	}
	buf := v.keys.buf
	v.Destroy()
	if buf.IsAlive() {
		t.Fatal("Destroy left the key buffer alive")
	}
}

// TestSealedOutlivesChanges: a Sealed copy opens to the version it was
// taken at however the secret changes after, only at its own address, and
// is wiped by Wipe.
func TestSealedOutlivesChanges(t *testing.T) {
	v := newTestVault(t)
	a := addr("/", "K")
	v.Set(a, []byte("one"), Meta{Version: 1})
	s, ok := v.Seal(a)
	if !ok || s.Meta().Version != 1 || s.Meta().Size != 3 {
		t.Fatalf("Seal = %+v %v", s.Meta(), ok)
	}
	v.Set(a, []byte("two"), Meta{Version: 2})
	v.Set(a, []byte("three"), Meta{Version: 3})
	v.Delete(a)
	val, err := v.Open(a, s)
	if err != nil || string(val.Bytes()) != "one" {
		t.Fatalf("Open after three changes = %v %v", val, err)
	}
	val.Wipe()
	if _, err := v.Open(addr("/", "OTHER"), s); err == nil {
		t.Error("a sealed copy opened at another address")
	}
	box := s.box()
	s.Wipe()
	if !allZero(box) || !s.Empty() {
		t.Error("Wipe of the last hold left the sealed bytes")
	}
	s.Wipe() // twice is fine
	if _, ok := v.Seal(a); ok {
		t.Error("Seal of a deleted secret")
	}
}

// TestSealedSharesTheVaultsValue: a Sealed holds the vault's own sealed
// value rather than a copy; dropping it leaves the vault's value readable,
// and a replaced value is wiped only when its last holder drops it.
func TestSealedSharesTheVaultsValue(t *testing.T) {
	v := newTestVault(t)
	a := addr("/", "K")
	v.Set(a, []byte("one"), Meta{Version: 1})
	s1, _ := v.Seal(a)
	s2, _ := v.Seal(a)
	if &s1.box()[0] != &sealedOf(v, a)[0] {
		t.Fatal("Seal copied the sealed value")
	}
	s1.Wipe()
	if got, _ := mustGet(t, v, a); got != "one" {
		t.Fatalf("after dropping a Sealed the vault serves %q", got)
	}
	box := s2.box()
	v.Set(a, []byte("two"), Meta{Version: 2})
	if allZero(box) {
		t.Fatal("replacing the value wiped it under a Sealed still holding it")
	}
	if val, err := v.Open(a, s2); err != nil || string(val.Bytes()) != "one" {
		t.Fatalf("Open of the held version = %v %v", val, err)
	} else {
		val.Wipe()
	}
	s2.Wipe()
	if !allZero(box) {
		t.Error("the replaced value survived its last holder")
	}
	if got, _ := mustGet(t, v, a); got != "two" {
		t.Errorf("current value %q", got)
	}
}

// TestSnapshotValuesAreIndependent: Snapshot's Values share one buffer, so
// appending to one must not write into the next, and wiping one leaves the
// others.
func TestSnapshotValuesAreIndependent(t *testing.T) {
	v := newTestVault(t)
	for _, k := range []string{"A", "B", "C"} {
		if err := v.Set(addr("/", k), []byte(k+"-value"), Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	es, _, err := v.Snapshot("p1", "dev", "/")
	if err != nil || len(es) != 3 {
		t.Fatalf("Snapshot: %d entries, %v", len(es), err)
	}
	_ = append(es[0].Value.Bytes(), "XXXXXXXX"...)
	es[1].Value.Wipe()
	if got := string(es[0].Value.Bytes()); got != "A-value" {
		t.Errorf("A = %q", got)
	}
	if got := string(es[2].Value.Bytes()); got != "C-value" {
		t.Errorf("C = %q after appending to A and wiping B", got)
	}
}

// TestCompareAddrsIsStringOrder: CompareAddrs orders as the String forms
// do, on addresses built to share prefixes across the parts' boundaries.
func TestCompareAddrsIsStringOrder(t *testing.T) {
	pieces := []string{"a", "ab", "a-b", "b", "A"}
	var as []Addr
	for _, p := range []string{"p", "pa"} {
		for _, e := range []string{"dev", "de"} {
			for _, path := range []string{"/", "/a", "/ab", "/a/b", "/b"} {
				for _, k := range pieces {
					as = append(as, Addr{Project: p, Env: e, Path: path, Key: k})
				}
			}
		}
	}
	for _, x := range as {
		for _, y := range as {
			want := strings.Compare(x.String(), y.String())
			if got := CompareAddrs(x, y); got != want {
				t.Fatalf("CompareAddrs(%s, %s) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func FuzzCompareAddrs(f *testing.F) {
	f.Add("p", "dev", "/", "K", "p", "dev", "/a", "K")
	f.Fuzz(func(t *testing.T, p1, e1, path1, k1, p2, e2, path2, k2 string) {
		x := Addr{Project: p1, Env: e1, Path: path1, Key: k1}
		y := Addr{Project: p2, Env: e2, Path: path2, Key: k2}
		if got, want := CompareAddrs(x, y), strings.Compare(x.String(), y.String()); got != want {
			t.Fatalf("CompareAddrs(%q, %q) = %d, want %d", x, y, got, want)
		}
	})
}

func TestChildPathAndParentOf(t *testing.T) {
	for _, c := range []struct{ dir, name, want string }{{"/", "a", "/a"}, {"/a", "b", "/a/b"}, {"/a/b", "c", "/a/b/c"}} {
		got := ChildPath(c.dir, c.name)
		if got != c.want {
			t.Errorf("ChildPath(%q, %q) = %q, want %q", c.dir, c.name, got, c.want)
		}
		if p, n := parentOf(got); p != c.dir || n != c.name {
			t.Errorf("parentOf(%q) = %q %q", got, p, n)
		}
	}
}
