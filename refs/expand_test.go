package refs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestCorpus expands every case of testdata/corpus.json in both dialects
// and compares bytes, HasRefs, Deps, the error kind and what the error
// names; every copy the lookup handed out must have been released.
func TestCorpus(t *testing.T) {
	c, w := loadCorpus(t)
	canaries := w.canaries()
	if len(canaries) < 10 {
		t.Fatalf("only %d canaries", len(canaries))
	}
	for _, d := range []Dialect{Classic, Multipass} {
		x := &Expander{Lookup: w, Dialect: d}
		for _, tc := range c.Cases {
			a := tc.addr()
			want := tc.want(d)
			t.Run(d.String()+"/"+a.String(), func(t *testing.T) {
				res, err := x.Expand(a)
				if w.outstanding != 0 {
					t.Fatalf("%d lookup copies not released", w.outstanding)
				}
				var wantDeps []Addr
				for _, s := range want.Deps {
					wantDeps = append(wantDeps, parseAddr(t, s))
				}
				if got := res.Deps; !slices.Equal(got, sortedAddrs(wantDeps)) {
					t.Errorf("deps = %v, want %v", got, sortedAddrs(wantDeps))
				}
				wantHas := len(want.Deps) > 0
				if want.HasRefs != nil {
					wantHas = *want.HasRefs
				}
				if res.HasRefs != wantHas {
					t.Errorf("HasRefs = %v, want %v", res.HasRefs, wantHas)
				}
				if want.Error == "" {
					if err != nil {
						t.Fatalf("error %v (%s)", err, tc.Why)
					}
					if want.Value == nil {
						t.Fatal("corpus case without value or error")
					}
					if string(res.Value) != *want.Value {
						t.Errorf("value = %q, want %q (%s)", res.Value, *want.Value, tc.Why)
					}
					return
				}
				if res.Value != nil {
					t.Errorf("value %q returned with an error", res.Value)
				}
				var re *RefError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want a *RefError (%s)", err, tc.Why)
				}
				sentinel := map[string]error{"denied": ErrDenied, "unknown": ErrUnknown}[want.Error]
				if !errors.Is(err, sentinel) {
					t.Errorf("err = %v, want errors.Is %v", err, sentinel)
				}
				if re.Secret != a || re.Ref != want.Ref || re.Formed != want.Formed {
					t.Errorf("RefError{Secret %v, Ref %q, Formed %v}, want {%v, %q, %v}", re.Secret, re.Ref, re.Formed, a, want.Ref, want.Formed)
				}
				// The corpus's refused references are absolute, so their
				// target does not depend on the frame they were found in.
				if want.Ref != "" {
					if pr := parseRef([]byte(want.Ref)); pr.Local || re.Target != pr.Target(a) {
						t.Errorf("Target = %v for %q", re.Target, re.Ref)
					}
				}
				msg := err.Error()
				if want.Ref != "" && !strings.Contains(msg, want.Ref) {
					t.Errorf("error %q does not name the reference %q", msg, want.Ref)
				}
				for _, v := range canaries {
					if strings.Contains(msg, v) {
						t.Errorf("error %q contains the value %q", msg, v)
					}
				}
			})
		}
	}
}

// TestCorpusCoversEverySecret: every corpus secret expands in both dialects
// without a failure the corpus did not predict, so no world entry is dead.
func TestCorpusCoversEverySecret(t *testing.T) {
	c, w := loadCorpus(t)
	cased := map[Addr]bool{}
	for _, tc := range c.Cases {
		cased[tc.addr()] = true
	}
	for _, d := range []Dialect{Classic, Multipass} {
		x := &Expander{Lookup: w, Dialect: d}
		for a := range w.secrets {
			res, err := x.Expand(a)
			if w.denied(a) {
				if !errors.Is(err, ErrDenied) {
					t.Errorf("%s %v: err = %v, want denied", d, a, err)
				}
				continue
			}
			if err != nil && !cased[a] && !strings.HasPrefix(a.Path, "/chain2") && a.Key != "INDIRECT_HOP" {
				t.Errorf("%s %v: unexpected %v", d, a, err)
			}
			if err == nil && res.Value == nil {
				t.Errorf("%s %v: nil value without error", d, a)
			}
		}
	}
}

func TestExpandMissingRoot(t *testing.T) {
	w := newWorld()
	x := &Expander{Lookup: w}
	_, err := x.Expand(Addr{"dev", "/", "NOPE"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	_, err = x.Expand(Addr{"restricted", "/", "T"})
	var re *RefError
	if !errors.As(err, &re) || !errors.Is(err, ErrDenied) || re.Ref != "" {
		t.Fatalf("err = %v, want a RefError for the secret itself", err)
	}
	if !strings.Contains(err.Error(), "the secret itself") {
		t.Errorf("message %q", err)
	}
}

// TestResultOwnsItsBytes: the result is a fresh buffer even without
// references, and changing it changes nothing in the lookup.
func TestResultOwnsItsBytes(t *testing.T) {
	p := plainLookup{
		{"dev", "/", "PLAIN"}: {Status: Found, Value: []byte("plain")},
		{"dev", "/", "REF"}:   {Status: Found, Value: []byte("${PLAIN}")},
	}
	x := &Expander{Lookup: p}
	for _, k := range []string{"PLAIN", "REF"} {
		res, err := x.Expand(Addr{"dev", "/", k})
		if err != nil || string(res.Value) != "plain" {
			t.Fatalf("%s: %q, %v", k, res.Value, err)
		}
		clear(res.Value)
		if string(p[Addr{"dev", "/", "PLAIN"}].Value) != "plain" {
			t.Fatalf("%s: result aliases the lookup's value", k)
		}
	}
}

// TestLimits: expansions that Infisical would grow without bound stop with
// ErrLimit under the default limits, and a tighter limit is honoured.
func TestLimits(t *testing.T) {
	p := plainLookup{}
	set := func(k, v string) { p[Addr{"dev", "/", k}] = Entry{Status: Found, Value: []byte(v)} }
	// Fan-out: each level references the next eight times; frames multiply
	// by 8 per level (8^11 would never finish).
	for i := range 12 {
		set(fmt.Sprintf("F%d", i), strings.Repeat(fmt.Sprintf("${F%d}", i+1), 8))
	}
	// Doubling: every occurrence is a replaceAll of the whole result by
	// two copies of itself.
	set("S", "${S}${S}")
	set("BOMB", strings.Repeat("${S}", 40))
	// Multi-line quoting past the size limit.
	set("ML", strings.Repeat("\n", 100))
	set("ML_REF", "${ML}")
	p[Addr{"dev", "/", "ML_REF"}] = Entry{Status: Found, Value: []byte("${ML}"), SkipMultiline: true}

	for _, d := range []Dialect{Classic, Multipass} {
		x := &Expander{Lookup: p, Dialect: d}
		for _, k := range []string{"F0", "BOMB"} {
			res, err := x.Expand(Addr{"dev", "/", k})
			if !errors.Is(err, ErrLimit) {
				t.Errorf("%s %s: err = %v (%d bytes), want ErrLimit", d, k, err, len(res.Value))
			}
			if res.Value != nil {
				t.Errorf("%s %s: value with an error", d, k)
			}
			if len(res.Deps) == 0 {
				t.Errorf("%s %s: no deps on error", d, k)
			}
		}
		small := &Expander{Lookup: p, Dialect: d, Limits: Limits{MaxBytes: 150}}
		if _, err := small.Expand(Addr{"dev", "/", "ML_REF"}); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: quoting 100 newlines under MaxBytes 150: err = %v", d, err)
		}
		if res, err := x.Expand(Addr{"dev", "/", "ML_REF"}); err != nil || len(res.Value) != 202 {
			t.Errorf("%s: quoting 100 newlines: %d bytes, %v", d, len(res.Value), err)
		}
		few := &Expander{Lookup: p, Dialect: d, Limits: Limits{MaxRefs: 3}}
		if _, err := few.Expand(Addr{"dev", "/", "F10"}); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: MaxRefs 3 on 16 refs: err = %v", d, err)
		}
	}
}

// TestConcurrentExpand: one Expander shared by goroutines gives the same
// results as sequential calls (run under -race).
func TestConcurrentExpand(t *testing.T) {
	_, w := loadCorpus(t)
	p := plainLookup(w.secrets)
	for _, d := range []Dialect{Classic, Multipass} {
		x := &Expander{Lookup: p, Dialect: d}
		want := map[Addr]string{}
		for a := range p {
			res, err := x.Expand(a)
			want[a] = fmt.Sprintf("%q %v %v", res.Value, res.Deps, err)
		}
		var wg sync.WaitGroup
		errs := make(chan string, 4*len(p))
		for range 4 {
			wg.Go(func() {
				for a := range p {
					res, err := x.Expand(a)
					if got := fmt.Sprintf("%q %v %v", res.Value, res.Deps, err); got != want[a] {
						errs <- fmt.Sprintf("%v: %s, want %s", a, got, want[a])
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}

// TestLookupOncePerAddress: like the server's per-request cache, one
// expansion asks the lookup about each address at most once.
func TestLookupOncePerAddress(t *testing.T) {
	_, w := loadCorpus(t)
	x := &Expander{Lookup: w}
	w.lookups = 0
	res, err := x.Expand(Addr{"dev", "/", "SELF_TWICE"})
	if err != nil {
		t.Fatal(err)
	}
	if w.lookups != 1 {
		t.Errorf("%d lookups for a self-referencing secret, want 1", w.lookups)
	}
	w.lookups = 0
	if _, err = x.Expand(Addr{"dev", "/", "DUP"}); err != nil {
		t.Fatal(err)
	}
	if w.lookups != 2 {
		t.Errorf("%d lookups for ${API_KEY}-${API_KEY}, want 2 (itself and API_KEY)", w.lookups)
	}
	_ = res
}

// TestExpandValue: an imported secret is expanded in its import's context,
// and a reference to that address is a real lookup (the value expanded is
// not the one stored there), unlike Expand where it is the secret itself.
func TestExpandValue(t *testing.T) {
	w := newWorld()
	at := Addr{"prod", "/shared", "TOKEN"}
	w.set(at, "stored-token", false)
	w.set(Addr{"prod", "/shared", "HOST"}, "shared.host", false)
	x := &Expander{Lookup: w}

	res, err := x.ExpandValue(at, []byte("${HOST}/${TOKEN}\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"shared.host/stored-token\n"`; string(res.Value) != want {
		t.Errorf("value = %q, want %q", res.Value, want)
	}
	if want := []Addr{{"prod", "/shared", "HOST"}, at}; !slices.Equal(res.Deps, want) {
		t.Errorf("deps = %v, want %v", res.Deps, want)
	}
	if w.outstanding != 0 {
		t.Errorf("%d copies not released", w.outstanding)
	}

	raw := []byte("plain\nvalue")
	res, err = x.ExpandValue(at, raw, true)
	if err != nil || string(res.Value) != "plain\nvalue" || res.HasRefs {
		t.Errorf("no refs: %q %v %v", res.Value, res.HasRefs, err)
	}
	res.Value[0] = 'X'
	if raw[0] != 'p' {
		t.Error("ExpandValue's result aliases raw")
	}

	if _, err := x.ExpandValue(at, []byte("${restricted.T}"), false); !errors.Is(err, ErrDenied) {
		t.Errorf("denied: err = %v", err)
	}
}

// TestExpandValueRootPermission: Multipass checks that the secret itself
// may be read at the address it is expanded as; Classic does not.
func TestExpandValueRootPermission(t *testing.T) {
	w := newWorld()
	w.set(Addr{"dev", "/", "A"}, "a", false)
	at := Addr{"restricted", "/", "IMPORTED"}
	raw := []byte("${dev.A}")
	res, err := (&Expander{Lookup: w}).ExpandValue(at, raw, false)
	if err != nil || string(res.Value) != "a" {
		t.Errorf("classic: %q, %v", res.Value, err)
	}
	_, err = (&Expander{Lookup: w, Dialect: Multipass}).ExpandValue(at, raw, false)
	var re *RefError
	if !errors.As(err, &re) || !errors.Is(err, ErrDenied) || re.Ref != "" || re.Secret != at {
		t.Errorf("multipass: err = %v, want the secret itself refused", err)
	}
	// Without a reference nothing is checked (expandSecret returns early).
	if res, err := (&Expander{Lookup: w, Dialect: Multipass}).ExpandValue(at, []byte("v"), false); err != nil || string(res.Value) != "v" {
		t.Errorf("multipass without refs: %q, %v", res.Value, err)
	}
}
