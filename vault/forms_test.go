package vault

import (
	"bytes"
	"testing"
)

// A secret with references keeps its raw value and a second, expanded one:
// Get and Snapshot serve the expanded value, GetForm(Raw) the raw one, and
// each box is bound to its own associated data.
func TestExpandedAndRawForms(t *testing.T) {
	v := newTestVault(t)
	a := addr("/", "GREETING")
	raw, exp := []byte("hello ${API_KEY}"), []byte("hello canary-7f3a")
	if _, err := v.Apply([]Change{{Addr: a, Value: raw, Expanded: exp, Meta: Meta{ID: "g", Version: 2, Refs: true, Tags: []string{"t1"}},
		Notes: &Notes{Comment: "ask ops", Metadata: []Metadatum{{"owner", "team-a"}}}}}); err != nil {
		t.Fatal(err)
	}
	got, m := mustGet(t, v, a)
	if got != string(exp) || m.Size != len(exp) || m.RawSize != len(raw) || !m.Refs {
		t.Fatalf("Get = %q, %+v; want the expanded value and both sizes", got, m)
	}
	rv, _, err := v.GetForm(a, Raw)
	if err != nil || string(rv.Bytes()) != string(raw) {
		t.Fatalf("GetForm(Raw) = %q, %v", rv.Bytes(), err)
	}
	es, _, err := v.Snapshot("p1", "dev", "/")
	if err != nil || len(es) != 1 || string(es[0].Value.Bytes()) != string(exp) {
		t.Fatalf("Snapshot serves %q, %v; want the expanded value", es[0].Value.Bytes(), err)
	}
	s, _ := v.SealForm(a, Raw)
	if s.Meta().Size != len(raw) {
		t.Fatalf("SealForm(Raw) size %d, want %d", s.Meta().Size, len(raw))
	}
	ov, err := v.Open(a, s)
	if err != nil || string(ov.Bytes()) != string(raw) {
		t.Fatalf("Open(raw seal) = %q, %v", ov.Bytes(), err)
	}
	// The expanded box cannot be opened as the raw one.
	s2, _ := v.Seal(a)
	if _, err := v.keys.open(s2.box(), a.formAD(Raw)); err == nil {
		t.Fatal("the expanded box opened under the raw value's associated data")
	}
	n, err := v.Notes(a)
	if err != nil || n.Comment != "ask ops" || len(n.Metadata) != 1 || n.Metadata[0].Value != "team-a" {
		t.Fatalf("Notes = %+v, %v", n, err)
	}

	// ExpandOnly replaces the expansion and keeps the raw value and notes.
	exp2 := []byte("hello rotated")
	if _, err := v.Apply([]Change{{Addr: a, ExpandOnly: true, Expanded: exp2, Meta: Meta{Refs: true}}}); err != nil {
		t.Fatal(err)
	}
	got, m = mustGet(t, v, a)
	if got != string(exp2) || m.Version != 2 || m.Size != len(exp2) || m.Tags[0] != "t1" {
		t.Fatalf("after ExpandOnly: %q, %+v", got, m)
	}
	rv, _, _ = v.GetForm(a, Raw)
	if string(rv.Bytes()) != string(raw) {
		t.Fatalf("ExpandOnly changed the raw value to %q", rv.Bytes())
	}
	// A failed expansion: no expanded box, the error kept; Get serves raw
	// (the filesystem refuses it by ExpandErr).
	if _, err := v.Apply([]Change{{Addr: a, ExpandOnly: true, Meta: Meta{Refs: true, ExpandErr: "reference ${prod.X} not readable"}}}); err != nil {
		t.Fatal(err)
	}
	if _, m = mustGet(t, v, a); m.ExpandErr == "" || m.Size != len(raw) {
		t.Fatalf("after a failed expansion: %+v", m)
	}
	// ExpandOnly of an absent secret creates nothing.
	if _, err := v.Apply([]Change{{Addr: addr("/", "NONE"), ExpandOnly: true, Expanded: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Stat(addr("/", "NONE")); ok {
		t.Fatal("ExpandOnly created a secret")
	}
}

// Earlier versions are kept sealed while the secret keeps its ID, survive
// updates, and go with a delete or a new ID.
func TestVersions(t *testing.T) {
	v := newTestVault(t)
	a := addr("/a", "API_KEY")
	if err := v.Set(a, []byte("v3"), Meta{ID: "id1", Version: 3}); err != nil {
		t.Fatal(err)
	}
	if !v.SetVersion(a, "id1", 1, []byte("first")) {
		t.Fatal("SetVersion refused")
	}
	if v.SetVersion(a, "other", 2, []byte("x")) {
		t.Fatal("SetVersion accepted another secret's ID")
	}
	if err := v.Set(a, []byte("v4"), Meta{ID: "id1", Version: 4}); err != nil {
		t.Fatal(err)
	}
	val, ok, err := v.Version(a, 1)
	if err != nil || !ok || !bytes.Equal(val.Bytes(), []byte("first")) {
		t.Fatalf("Version 1 = %q, %v, %v", val.Bytes(), ok, err)
	}
	if _, ok, _ := v.Version(a, 2); ok {
		t.Fatal("a version never set is reported kept")
	}
	if err := v.Set(a, []byte("new"), Meta{ID: "id2", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := v.Version(a, 1); ok {
		t.Fatal("a recreated secret kept the old one's history")
	}
}

// FuzzFormAD checks that no box of one secret can be opened as another
// box of any secret: the associated data of the raw value, the expanded
// value, the notes and every history version never coincide across
// different (address, box) pairs.
func FuzzFormAD(f *testing.F) {
	f.Add("p", "dev", "/", "K", "x", "dev", "/a", "K", 3)
	f.Add("x", "p", "/dev", "K", "p", "dev", "/", "K", 1)
	f.Fuzz(func(t *testing.T, p1, e1, path1, k1, p2, e2, path2, k2 string, n int) {
		a, b := Addr{p1, e1, path1, k1}, Addr{p2, e2, path2, k2}
		if a.validate() != nil || b.validate() != nil || n < 1 {
			return
		}
		boxes := func(x Addr) map[string][]byte {
			return map[string][]byte{"raw": x.formAD(Raw), "exp": x.formAD(expandedForm), "notes": x.formAD(notesForm), "v": x.versionAD(n)}
		}
		ba, bb := boxes(a), boxes(b)
		for ka, va := range ba {
			for kb, vb := range bb {
				if (a != b || ka != kb) && bytes.Equal(va, vb) {
					t.Fatalf("%s of %v and %s of %v share associated data %q", ka, a, kb, b, va)
				}
			}
		}
	})
}

// TestExpandOnlyUnderAPin: an expansion-only change of a secret whose raw
// version is pinned leaves the pin whole, and the new item's raw value
// survives the pin's release.
func TestExpandOnlyUnderAPin(t *testing.T) {
	v := newTestVault(t)
	a := addr("/", "K")
	if _, err := v.Apply([]Change{{Addr: a, Value: []byte("raw ${X}"), Expanded: []byte("raw 1"), Meta: Meta{Refs: true}}}); err != nil {
		t.Fatal(err)
	}
	pin, _ := v.SealForm(a, Raw)
	if _, err := v.Apply([]Change{{Addr: a, ExpandOnly: true, Expanded: []byte("raw 2"), Meta: Meta{Refs: true}}}); err != nil {
		t.Fatal(err)
	}
	if val, err := v.Open(a, pin); err != nil || string(val.Bytes()) != "raw ${X}" {
		t.Fatalf("the pinned raw version after an expansion-only change = %v, %v", val, err)
	}
	pin.Wipe()
	rv, _, err := v.GetForm(a, Raw)
	if err != nil || string(rv.Bytes()) != "raw ${X}" {
		t.Fatalf("raw after the pin's release = %v, %v", rv, err)
	}
	if got, _ := mustGet(t, v, a); got != "raw 2" {
		t.Errorf("served = %q", got)
	}
}
