package refs

import (
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	raw := []byte("a ${KEY} ${prod.KEY} ${dev.a.b.KEY} ${dev..x..KEY} ${.K} ${dev.} ${KEY} ${@p.dev.K} ${nope ${X}}")
	got := Parse(raw)
	want := []Ref{
		{Text: "${KEY}", Local: true, Key: "KEY"},
		{Text: "${prod.KEY}", Env: "prod", Path: "/", Key: "KEY"},
		{Text: "${dev.a.b.KEY}", Env: "dev", Path: "/a/b", Key: "KEY"},
		{Text: "${dev..x..KEY}", Env: "dev", Path: "/x", Key: "KEY"},
		{Text: "${.K}", Env: "", Path: "/", Key: "K"},
		{Text: "${dev.}", Env: "dev", Path: "/", Key: ""},
		{Text: "${KEY}", Local: true, Key: "KEY"},
		{Text: "${X}", Local: true, Key: "X"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Parse =\n %+v\nwant\n %+v", got, want)
	}
	mp := Multipass.Parse([]byte("${@p.dev.K} ${@K}"))
	if len(mp) != 2 || !mp[0].CrossProject || mp[0].Text != "${@p.dev.K}" || mp[1].CrossProject || mp[1].Key != "@K" {
		t.Errorf("Multipass.Parse = %+v", mp)
	}
	at := Addr{"dev", "/app", "SELF"}
	if g := want[0].Target(at); g != (Addr{"dev", "/app", "KEY"}) {
		t.Errorf("local Target = %v", g)
	}
	if g := want[2].Target(at); g != (Addr{"dev", "/a/b", "KEY"}) {
		t.Errorf("nested Target = %v", g)
	}
	for _, s := range []string{"", "$", "${", "${}", "$${", "${ A}", "${A", "{A}", "$A", "${A B}", "${Ä}"} {
		if HasRefs([]byte(s)) || Parse([]byte(s)) != nil {
			t.Errorf("%q: found a reference", s)
		}
	}
	for _, s := range []string{"${A}", "$${A}", "x${${A}}", "${a-b_c.D9}", "${.}"} {
		if !HasRefs([]byte(s)) {
			t.Errorf("%q: no reference found", s)
		}
	}
}

// The backend's patterns, as Go regexps (RE2 syntax, like node-re2).
var refRegexp = map[Dialect]*regexp.Regexp{
	Classic:   regexp.MustCompile(`\$\{([a-zA-Z0-9\-_.]+)\}`),
	Multipass: regexp.MustCompile(`\$\{([a-zA-Z0-9\-_.@]+)\}`),
}

// FuzzParse checks the hand-written scanner against the backend's regex,
// and the reference split against node's split(".") + path.join("/", ...)
// done the obvious way.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"${A}", "${${A}}", "$${A}}", "${dev..a.K}", "${.}", "${@p.e.K}", "${A B} ${C}", "${", "}${A"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, d := range []Dialect{Classic, Multipass} {
			spans := refRegexp[d].FindAllIndex(raw, -1)
			refs := d.Parse(raw)
			if len(refs) != len(spans) || d.HasRefs(raw) != (len(spans) > 0) {
				t.Fatalf("%s: %d refs, regexp finds %d", d, len(refs), len(spans))
			}
			for i, sp := range spans {
				text := string(raw[sp[0]:sp[1]])
				r := refs[i]
				if r.Text != text {
					t.Fatalf("%s: ref %d = %q, regexp %q", d, i, r.Text, text)
				}
				parts := strings.Split(text[2:len(text)-1], ".")
				switch {
				case len(parts) == 1:
					if !r.Local || r.Key != parts[0] {
						t.Fatalf("%q: %+v", text, r)
					}
				case d == Multipass && strings.HasPrefix(parts[0], "@"):
					if !r.CrossProject {
						t.Fatalf("%q: %+v", text, r)
					}
				default:
					wantPath := path.Join(append([]string{"/"}, parts[1:len(parts)-1]...)...)
					if r.Local || r.Env != parts[0] || r.Path != wantPath || r.Key != parts[len(parts)-1] {
						t.Fatalf("%q: %+v, want env %q path %q key %q", text, r, parts[0], wantPath, parts[len(parts)-1])
					}
				}
			}
		}
	})
}
