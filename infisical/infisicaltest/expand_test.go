package infisicaltest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// expansionCorpus loads the reference corpus into f's project. Every
// expected value below was worked out by hand from the backend's
// secret-reference-fns.ts (58d2a53), step by step; see expand.go.
func expansionCorpus(f *fixture) (want map[string]string) {
	set := func(env, path, key, value string) { f.s.SetSecret(f.pid, env, path, key, value) }
	set("dev", "/", "HOST", "db.local")
	set("dev", "/", "PORT", "5432")
	set("dev", "/", "URL", "postgres://${HOST}:${PORT}/app")
	set("dev", "/", "NESTED", "[${URL}]")
	set("prod", "/", "API_KEY", "prod-key")
	set("dev", "/", "CROSS_ENV", "${prod.API_KEY}")
	set("prod", "/", "SUFFIX", "p")
	set("dev", "/", "SUFFIX", "d")
	set("prod", "/", "CHAIN", "${SUFFIX}!")
	set("dev", "/", "CROSS_CHAIN", "${prod.CHAIN}")
	set("dev", "/", "LOCAL", "in-root")
	set("dev", "/app/nested", "LOCAL", "in-nested")
	set("dev", "/app/nested", "DEEP", "deep-${LOCAL}")
	set("dev", "/", "CROSS_FOLDER", "${dev.app.nested.DEEP}")
	set("dev", "/app/nested", "UP", "${LOCAL}/${dev.LOCAL}")
	set("dev", "/", "MISSING", "a ${NOPE} b")
	set("dev", "/", "MISSING_ENV", "${qa.HOST} ${prod.nope.HOST}")
	set("dev", "/", "EMPTY", "")
	set("dev", "/", "EMPTY_REF", "x${EMPTY}y")
	set("dev", "/", "CYCLE_A", "a${CYCLE_B}")
	set("dev", "/", "CYCLE_B", "b${CYCLE_A}")
	set("dev", "/", "SELF", "s${SELF}")
	for i := range 12 {
		set("dev", "/", fmt.Sprintf("D%d", i), fmt.Sprintf("${D%d}", i+1))
	}
	set("dev", "/", "D12", "end")
	set("dev", "/", "DUP", "${HOST}-${HOST}")
	set("dev", "/", "SLOTS", "${dev..HOST}|${dev.HOST}")
	set("dev", "/", "NOT_REFS", "$HOST ${not valid} ${} $${HOST}")
	set("dev", "/", "GLOBAL", "${X} ${dev.app.Y}")
	set("dev", "/app", "Y", "${X}")
	set("dev", "/app", "X", "app-x")
	set("dev", "/", "CERT", "line1\nline2")
	set("dev", "/", "MULTI", "${CERT}")
	set("dev", "/", "MULTI_PLAIN", "raw1\nraw2")
	set("dev", "/", "DOLLAR", "${PRICE}")
	set("dev", "/", "PRICE", "$& $1 $$")
	yes := true
	for _, k := range []string{"MULTI", "MULTI_PLAIN", "HOST"} {
		f.s.SetSecretMeta(f.pid, "dev", "/", k, SecretMeta{SkipMultilineEncoding: &yes})
	}
	return map[string]string{
		"/HOST":        "db.local",
		"/URL":         "postgres://db.local:5432/app",
		"/NESTED":      "[postgres://db.local:5432/app]",
		"/CROSS_ENV":   "prod-key",
		"/CROSS_CHAIN": "p!", // ${SUFFIX} resolves where CHAIN lives (prod), not in dev
		// A local reference inside a referenced secret resolves in that
		// secret's folder.
		"/CROSS_FOLDER":     "deep-in-nested",
		"/app/nested/UP":    "in-nested/in-root",
		"/app/nested/DEEP":  "deep-in-nested",
		"/app/nested/LOCAL": "in-nested",
		"/MISSING":          "a ${NOPE} b",
		"/MISSING_ENV":      "${qa.HOST} ${prod.nope.HOST}",
		"/EMPTY":            "",
		// An existing secret with an empty value is not substituted.
		"/EMPTY_REF": "x${EMPTY}y",
		// A cycle is cut after one lap: A's frame replaces ${CYCLE_B} with
		// "b${CYCLE_A}", B's frame replaces ${CYCLE_A} once and stops.
		"/CYCLE_A": "aba${CYCLE_B}",
		"/CYCLE_B": "bab${CYCLE_A}",
		"/SELF":    "ss${SELF}",
		// Frames deeper than 10 are skipped: D0's chain stops with D11's
		// raw value, D1's reaches D12.
		"/D0":  "${D12}",
		"/D1":  "end",
		"/D11": "end",
		"/D12": "end",
		"/DUP": "db.local-db.local",
		// path.join drops the empty segment; ${dev.HOST} is dev's root.
		"/SLOTS":    "db.local|db.local",
		"/NOT_REFS": "$HOST ${not valid} ${} $db.local",
		// The one result string is shared: Y's frame (folder /app)
		// resolves the ${X} that the root frame left literal.
		"/GLOBAL": "app-x app-x",
		"/app/Y":  "app-x",
		"/app/X":  "app-x",
		"/CERT":   "line1\nline2",
		// skipMultilineEncoding quotes a multi-line expansion...
		"/MULTI": `"line1\nline2"`,
		// ...but only of a value that held a reference.
		"/MULTI_PLAIN": "raw1\nraw2",
		// Replacement text is literal ($& and $1 are not patterns).
		"/DOLLAR": "$& $1 $$",
		"/PRICE":  "$& $1 $$",
	}
}

func TestExpansionCorpus(t *testing.T) {
	f := newFixture(t)
	want := expansionCorpus(f)

	// The recursive list expands every secret of the environment.
	r := f.api("GET", f.listQ("dev", "/", "recursive", "true", "expandSecretReferences", "true"), nil)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	got := map[string]string{}
	for _, x := range r.list("secrets") {
		m := x.(map[string]any)
		p := m["secretPath"].(string)
		if p == "/" {
			p = ""
		}
		got[p+"/"+m["secretKey"].(string)] = m["secretValue"].(string)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("list %s = %q, want %q", k, got[k], w)
		}
	}
	// get-one answers the same bytes for each.
	for k, w := range want {
		i := strings.LastIndex(k, "/")
		path, key := k[:i], k[i+1:]
		if path == "" {
			path = "/"
		}
		g := f.api("GET", "/api/v4/secrets/"+key+q("projectId", f.pid, "environment", "dev", "secretPath", path, "expandSecretReferences", "true"), nil)
		if v, _ := g.obj("secret")["secretValue"].(string); g.status != 200 || v != w {
			t.Errorf("get %s: %d %q, want %q", k, g.status, v, w)
		}
	}
	// Stored values are untouched; without the flag the raw text comes back.
	if v, _, _ := f.s.Secret(f.pid, "dev", "/", "NESTED"); v != "[${URL}]" {
		t.Errorf("stored NESTED %q", v)
	}
	r = f.api("GET", f.listQ("dev", "/", "expandSecretReferences", "false"), nil)
	if !strings.Contains(string(r.raw), `"secretValue":"[${URL}]"`) {
		t.Errorf("raw list lacks the raw NESTED: %s", r.raw)
	}
}

func TestExpansionDenied(t *testing.T) {
	f := newFixture(t)
	f.s.AddIdentity("narrow", "pw")
	f.s.Grant("narrow", f.pid, PermRead, "dev")
	tok := f.login("narrow", "pw")
	f.s.SetSecret(f.pid, "dev", "/", "PLAIN", "visible")
	f.s.SetSecret(f.pid, "prod", "/", "P", "secret-prod")
	f.s.SetSecret(f.pid, "dev", "/a", "REF", "${prod.P}")
	// Refused even where the referenced secret does not exist.
	f.s.SetSecret(f.pid, "dev", "/b", "GHOST", "${prod.NOPE}")

	for _, path := range []string{"/a", "/b"} {
		r := f.do("GET", f.listQ("dev", path, "expandSecretReferences", "true"), tok, nil)
		wantErr(t, r, 403, "ForbiddenError", "Failed to expand one or more secret references")
		if strings.Contains(string(r.raw), "secret-prod") {
			t.Errorf("403 leaks a value: %s", r.raw)
		}
		var details []string
		js, _ := json.Marshal(r.body["details"])
		_ = json.Unmarshal(js, &details)
		if len(details) != 1 || !strings.Contains(details[0], "You do not have permission to read secret '") ||
			!strings.Contains(details[0], "in environment 'prod' at path '/'") {
			t.Errorf("details %q", details)
		}
	}
	// get-one passes the expander's own message through.
	g := f.do("GET", "/api/v4/secrets/REF"+q("projectId", f.pid, "environment", "dev", "secretPath", "/a", "expandSecretReferences", "true"), tok, nil)
	wantErr(t, g, 403, "ForbiddenError",
		"You do not have permission to read secret 'P' in environment 'prod' at path '/', which is referenced by secret 'REF' in environment 'dev' at path '/a'.")
	// Unexpanded reads, and folders without such a reference, still work.
	if r := f.do("GET", f.listQ("dev", "/a"), tok, nil); r.status != 200 {
		t.Fatalf("unexpanded list: %d", r.status)
	}
	if r := f.do("GET", f.listQ("dev", "/", "expandSecretReferences", "true"), tok, nil); r.status != 200 {
		t.Fatalf("expanded list of /: %d %s", r.status, r.raw)
	}
}

func TestValueHidden(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "HID", "real-hidden-value")
	f.s.SetSecret(f.pid, "dev", "/", "REF_HID", "x${HID}")
	f.s.SetValueHidden(f.pid, "dev", "/", "HID", true)

	r := f.api("GET", f.listQ("dev", "/"), nil)
	var hid map[string]any
	for _, x := range r.list("secrets") {
		if m := x.(map[string]any); m["secretKey"] == "HID" {
			hid = m
		}
	}
	if hid == nil || hid["secretValue"] != "<hidden-by-infisical>" || hid["secretValueHidden"] != true {
		t.Fatalf("hidden in list: %v", hid)
	}
	if strings.Contains(string(r.raw), "real-hidden-value") {
		t.Fatal("list leaks the hidden value")
	}
	wantErr(t, f.api("GET", f.listQ("dev", "/", "expandSecretReferences", "true"), nil), 403, "", msgExpandFailed)
	g := f.api("GET", "/api/v4/secrets/HID"+q("projectId", f.pid, "environment", "dev"), nil)
	wantErr(t, g, 403, "ForbiddenReadSecretError", "You do not have permission to view secret value on secret with name 'HID'")
	g = f.api("GET", "/api/v4/secrets/HID"+q("projectId", f.pid, "environment", "dev", "viewSecretValue", "false"), nil)
	if s := g.obj("secret"); g.status != 200 || s["secretValue"] != "<hidden-by-infisical>" || s["secretValueHidden"] != true {
		t.Fatalf("get masked: %d %s", g.status, g.raw)
	}
}

// FuzzExpand checks that expansion ends, never errs for a full-access
// identity, leaves values without references alone, and that a reference
// to a secret with a plain value is always replaced.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"${A}", "${A}${B}", "x${dev.A}y", "${dev.f.C}", "${A", "$${A}}", "${prod.A}${A}"} {
		f.Add(s, "${B}")
	}
	srv := New()
	defer srv.Close()
	pid := srv.AddProject("p", "P", "dev", "prod")
	srv.AddIdentity("id", "pw")
	srv.Grant("id", pid, PermRead)
	f.Fuzz(func(t *testing.T, a, b string) {
		srv.SetSecret(pid, "dev", "/", "A", a)
		srv.SetSecret(pid, "dev", "/", "B", b)
		srv.SetSecret(pid, "dev", "/", "PLAIN", "plain")
		srv.SetSecret(pid, "dev", "/f", "C", "c")
		srv.mu.Lock()
		defer srv.mu.Unlock()
		c := &call{s: srv, ident: srv.identities["id"]}
		x := &expander{c: c, p: srv.projects[pid]}
		for _, v := range []string{a, b, a + "${PLAIN}"} {
			out, denied := x.expandSecret(v, false, "dev", "/", "T")
			if denied != nil {
				t.Fatalf("%q denied: %s", v, denied.msg)
			}
			if !referenceRe.MatchString(v) && out != v {
				t.Fatalf("%q without references became %q", v, out)
			}
			if strings.Contains(out, "${PLAIN}") && !strings.Contains(a+b, "PLAIN}") {
				t.Fatalf("%q: ${PLAIN} left in %q", v, out)
			}
		}
	})
}

func TestWriteReferenceChecks(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "prod", "/", "P", "p")
	f.s.SetSecret(f.pid, "dev", "/", "D", "d")
	create := func(tok, key, value string) resp {
		return f.do("POST", "/api/v4/secrets/"+key, tok, f.body("dev", "/", "secretValue", value))
	}
	// Environments are checked before folders, folders before secrets.
	wantErr(t, create(f.token, "A", "${prod.nope.X} ${qa.Y} ${zz.Z} ${qa.W}"), 400, "BadRequest",
		"Referenced environment not found. Missing qa,zz")
	wantErr(t, create(f.token, "B", "${MISSING} ${prod.nope.X}"), 400, "BadRequest", "Referenced path /nope doesn't exist")
	wantErr(t, create(f.token, "C", "${MISSING} ${prod.P} ${prod.GONE}"), 400, "BadRequest",
		"Referenced secret(s) not found: MISSING,prod.GONE")
	// Writing a reference the writer may not read is the CASL 403.
	f.s.AddIdentity("dev-writer", "pw")
	f.s.Grant("dev-writer", f.pid, PermReadWrite, "dev")
	tok := f.login("dev-writer", "pw")
	wantErr(t, create(tok, "E", "${prod.P}"), 403, "PermissionDenied", "You are not allowed to read on secrets")
	if r := create(tok, "F", "${D}"); r.status != 200 {
		t.Fatalf("readable reference: %d %s", r.status, r.raw)
	}
	for _, k := range []string{"A", "B", "C", "E"} {
		if _, _, ok := f.s.Secret(f.pid, "dev", "/", k); ok {
			t.Errorf("%s was written despite the error", k)
		}
	}
}
