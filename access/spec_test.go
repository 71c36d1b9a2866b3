package access

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	doc := `
url = "https://example.com"   # other config keys are not ours
[[access]]
path = "webshop/prod/**"
uids = [1001]
users = ["daemon"]
groups = ["bin"]
executables = ["/bin/sleep"]
sha256 = ["` + strings.Repeat("ab", 32) + `"]
cgroups = ["/kubepods/**"]
allow = "read"

[[access]]
path = "**"
allow = "none"
`
	specs, err := ParseRules([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Path != "webshop/prod/**" || specs[0].UIDs[0] != 1001 || specs[1].Allow != "none" {
		t.Fatalf("specs = %+v", specs)
	}
	rs, err := Compile(specs, Defaults{FileMode: 0o600, DirMode: 0o700})
	if err != nil {
		t.Fatal(err)
	}
	r := rs.rules[0]
	// daemon is uid 1 and bin gid 2 on Debian; names resolve at compile.
	if !hasID(r.uids, 1001) || !hasID(r.uids, 1) || !hasID(r.gids, 2) {
		t.Errorf("uids %v gids %v: want 1001 and daemon's 1, bin's 2", r.uids, r.gids)
	}
	// /bin/sleep is compared as its realpath (/usr/bin/sleep on merged /usr).
	real, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.exes) != 1 || r.exes[0] != real {
		t.Errorf("exes = %v, want [%s]", r.exes, real)
	}
	if !rs.AnyDaemon() || rs.Len() != 2 {
		t.Errorf("AnyDaemon %v Len %d", rs.AnyDaemon(), rs.Len())
	}
}

func TestParseRulesErrors(t *testing.T) {
	cases := map[string]string{
		"[[access]]\npath = \"a\"\nallow = \"read\"\nuid = [1]":                                "access[0]: unknown keys uid",
		"[[access]]\npath = \"a\"\nallow = \"read\"\n\n[[access]]\npath = \"b\"\nalow = \"x\"": "access[1]: unknown keys alow",
		"[[access]]\npath = \"a\"\nuids = \"1\"":                                               "access rules",
		"[[access]\n":                                                                          "TOML error at line",
	}
	for doc, want := range cases {
		_, err := ParseRules([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRules(%q) = %v, want an error containing %q", doc, err, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		spec Spec
		want []string
	}{
		{Spec{Allow: "read"}, []string{`access[0] (path ""): path: missing`}},
		{Spec{Path: "a//b", Allow: "read"}, []string{"path: pattern", "empty segment"}},
		{Spec{Path: "a"}, []string{"allow: missing"}},
		{Spec{Path: "a", Allow: "rw"}, []string{`allow: "rw"`}},
		{Spec{Path: "a", Allow: "read", UIDs: []int64{-1}}, []string{"uids: -1 is not a valid id"}},
		{Spec{Path: "a", Allow: "read", GIDs: []int64{1 << 32}}, []string{"gids: 4294967296"}},
		{Spec{Path: "a", Allow: "read", Users: []string{"no-such-user-xyz"}}, []string{`users: unknown user "no-such-user-xyz"`}},
		{Spec{Path: "a", Allow: "read", Groups: []string{"no-such-group-xyz"}}, []string{`groups: unknown group "no-such-group-xyz"`}},
		{Spec{Path: "a", Allow: "read", Executables: []string{"bin/x"}}, []string{`executables: "bin/x": want an absolute path`}},
		{Spec{Path: "a", Allow: "read", SHA256: []string{"abc"}}, []string{`sha256: "abc": want 64 hex digits`}},
		{Spec{Path: "a", Allow: "read", Cgroups: []string{"/a/**b"}}, []string{"cgroups: pattern"}},
	}
	for _, c := range cases {
		// A good rule first, so that the bad one's index is 1.
		_, err := Compile([]Spec{{Path: "**", Allow: "read"}, c.spec}, Defaults{})
		if err == nil {
			t.Errorf("Compile(%+v): no error", c.spec)
			continue
		}
		for _, w := range c.want {
			w = strings.Replace(w, "access[0]", "access[1]", 1)
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Compile(%+v) = %q, want it to contain %q", c.spec, err, w)
			}
		}
		if !strings.Contains(err.Error(), "access[1]") {
			t.Errorf("error %q does not name rule access[1]", err)
		}
	}
	// Every problem is reported, not only the first.
	_, err := Compile([]Spec{{Path: "a", Allow: "x", UIDs: []int64{-5}}, {Allow: "read"}}, Defaults{})
	for _, w := range []string{"access[0]", "allow", "uids", "access[1]", "path: missing"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("joined error %v lacks %q", err, w)
		}
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add([]byte("[[access]]\npath = \"webshop/prod/**\"\nuids = [1001]\nallow = \"read\"\n"))
	f.Add([]byte("[[access]]\npath = \"**\"\ngids = [0, 2]\ncgroups = [\"/x/*\"]\nallow = \"none\"\n"))
	f.Add([]byte("[[access]]\npath = \"a/*\"\nsha256 = [\"" + strings.Repeat("0", 64) + "\"]\nallow = \"write\"\n"))
	f.Add([]byte("[[access]]\npath = 1\n"))
	lk := Lookup{
		User:  func(string) (uint32, error) { return 7, nil },
		Group: func(string) (uint32, error) { return 8, nil },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		specs, err := ParseRules(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), "access[") {
				t.Fatalf("multi-line parse error: %q", err)
			}
			return
		}
		rs, err := CompileWith(specs, Defaults{UID: 1000, GID: 1000, FileMode: 0o640, DirMode: 0o750}, lk)
		if err != nil {
			if !strings.Contains(err.Error(), "access[") {
				t.Fatalf("compile error without the rule's index: %q", err)
			}
			return
		}
		if rs.Len() != len(specs) {
			t.Fatalf("compiled %d of %d rules", rs.Len(), len(specs))
		}
		// Every compiled rule set gives an answer and modes for any path.
		for _, p := range []string{"a", "webshop/prod/DB", "x/y/.env"} {
			a := rs.attr(p, false)
			if a.Mode&^0o777 != 0 {
				t.Fatalf("mode %o has more than permission bits", a.Mode)
			}
			checkAttrAgrees(t, rs, p, a)
		}
	})
}
