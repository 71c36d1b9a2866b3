package infisicaltest

import (
	"net/url"
	"strings"
	"testing"
)

func secretURL(key string) string { return "/api/v4/secrets/" + url.PathEscape(key) }

func TestSecretCRUDErrors(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "EXISTS", "v")
	f.s.SetSecret(f.pid, "dev", "/", "OTHER", "o")
	f.s.AddFolder(f.pid, "dev", "/app")
	long := strings.Repeat("K", 501)
	cases := []struct {
		name, method, key string
		body              map[string]any
		status            int
		errName, msg      string
	}{
		{"create exists", "POST", "EXISTS", f.body("dev", "/", "secretValue", "x"), 400, "BadRequest", "Secret already exist"},
		{"create no folder", "POST", "NEW", f.body("dev", "/nope", "secretValue", "x"), 404, "NotFound",
			"Folder with path '/nope' in environment with slug 'dev' not found"},
		{"create unknown env", "POST", "NEW", f.body("qa", "/", "secretValue", "x"), 404, "NotFound",
			"Folder with path '/' in environment with slug 'qa' not found"},
		{"create colon", "POST", "A:B", f.body("dev", "/", "secretValue", "x"), 422, "ValidationFailure",
			"Secret name cannot contain colon or forward slash."},
		{"create slash", "POST", "A/B", f.body("dev", "/", "secretValue", "x"), 422, "ValidationFailure", "colon or forward slash"},
		{"create blank", "POST", "  ", f.body("dev", "/", "secretValue", "x"), 422, "ValidationFailure", "too_small"},
		{"create no value", "POST", "NEW", f.body("dev", "/"), 422, "ValidationFailure", "secretValue"},
		{"create no project", "POST", "NEW", map[string]any{"environment": "dev", "secretValue": "x"}, 422, "ValidationFailure", "projectId"},
		{"create long key", "POST", long, f.body("dev", "/", "secretValue", "x"), 500, "", "Something went wrong"},
		{"create bad path", "POST", "NEW", f.body("dev", "/a b", "secretValue", "x"), 400, "BadRequest", "Invalid secret path"},
		{"create relative path", "POST", "NEW", f.body("dev", "app", "secretValue", "x"), 404, "NotFound", "Folder with path 'app'"},
		{"create double slash", "POST", "NEW", f.body("dev", "//app", "secretValue", "x"), 404, "NotFound", ""},
		{"create personal", "POST", "NEW", f.body("dev", "/", "secretValue", "x", "type", "personal"), 400, "", "Must be user"},
		{"update missing", "PATCH", "MISSING", f.body("dev", "/", "secretValue", "x"), 404, "NotFound", "Secret with name MISSING not found"},
		{"update no folder", "PATCH", "EXISTS", f.body("dev", "/nope", "secretValue", "x"), 404, "NotFound", "Folder with path '/nope'"},
		{"rename onto existing", "PATCH", "EXISTS", f.body("dev", "/", "newSecretName", "OTHER"), 400, "", "Secret with the new name already exist"},
		{"rename invalid", "PATCH", "EXISTS", f.body("dev", "/", "newSecretName", "A:B"), 422, "ValidationFailure", "colon"},
		{"rename empty", "PATCH", "EXISTS", f.body("dev", "/", "newSecretName", ""), 400, "BadRequest", ""},
		{"rename too long", "PATCH", "EXISTS", f.body("dev", "/", "newSecretName", long), 500, "", ""},
		{"delete missing", "DELETE", "MISSING", f.body("dev", "/"), 404, "NotFound", "Secret not found"},
		{"delete no folder", "DELETE", "EXISTS", f.body("dev", "/nope"), 404, "NotFound", "Folder with path '/nope'"},
		{"unknown project", "POST", "NEW", map[string]any{"projectId": "0b7d6a3e-1111-4222-8333-444455556666",
			"environment": "dev", "secretValue": "x"}, 404, "NotFound", "Project with 0b7d6a3e-1111-4222-8333-444455556666 not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.api(tc.method, secretURL(tc.key), tc.body), tc.status, tc.errName, tc.msg)
		})
	}
	// Nothing above changed the store.
	got := f.s.Secrets(f.pid, "dev")
	if len(got) != 2 || got["/EXISTS"] != "v" || got["/OTHER"] != "o" {
		t.Fatalf("store changed: %v", got)
	}
}

func TestGetSecretErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, query  string
		status       int
		errName, msg string
	}{
		{"missing secret", q("projectId", f.pid, "environment", "dev"), 404, "NotFound", "Secret with name 'NOPE' not found"},
		{"no folder", q("projectId", f.pid, "environment", "dev", "secretPath", "/x"), 404, "NotFound", "Folder with path '/x'"},
		{"no env", q("projectId", f.pid, "environment", "qa"), 404, "NotFound", "environment with slug 'qa'"},
		{"no project id", q("environment", "dev"), 422, "ValidationFailure", "projectId"},
		{"no environment", q("projectId", f.pid), 400, "BadRequest", "Missing environment"},
		{"bad bool", q("projectId", f.pid, "environment", "dev", "expandSecretReferences", "1"), 422, "ValidationFailure", "Invalid enum value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.api("GET", "/api/v4/secrets/NOPE"+tc.query, nil), tc.status, tc.errName, tc.msg)
		})
	}
}

func TestSecretLifecycle(t *testing.T) {
	f := newFixture(t)
	start := f.clock.Now()
	r := f.api("POST", secretURL("DB_URL"), f.body("dev", "/", "secretValue", "  postgres://x \n\n", "secretComment", "db"))
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	sec := r.obj("secret")
	want := map[string]any{"secretKey": "DB_URL", "secretValue": "postgres://x\n", "version": float64(1),
		"type": "shared", "environment": "dev", "workspace": f.pid, "secretComment": "db",
		"createdAt": iso(start), "updatedAt": iso(start)}
	for k, v := range want {
		if sec[k] != v {
			t.Errorf("create %s = %#v, want %#v", k, sec[k], v)
		}
	}
	if sec["id"] == "" || sec["id"] != sec["_id"] {
		t.Errorf("id/_id: %v %v", sec["id"], sec["_id"])
	}
	if _, ok := sec["secretPath"]; ok {
		t.Error("create answer has secretPath; only list/get do")
	}

	f.clock.Advance(60e9)
	r = f.api("PATCH", secretURL("DB_URL"), f.body("dev", "/", "secretValue", "v2"))
	if s := r.obj("secret"); r.status != 200 || s["version"] != float64(2) || s["secretValue"] != "v2" ||
		s["secretComment"] != "db" || s["updatedAt"] != iso(f.clock.Now()) || s["createdAt"] != iso(start) ||
		s["secretValueHidden"] != false {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	// Every update bumps the version, a comment-only one too.
	r = f.api("PATCH", secretURL("DB_URL"), f.body("dev", "/", "secretComment", "c"))
	if r.obj("secret")["version"] != float64(3) || r.obj("secret")["secretValue"] != "v2" {
		t.Fatalf("comment update: %s", r.raw)
	}
	r = f.api("PATCH", secretURL("DB_URL"), f.body("dev", "/", "newSecretName", " DATABASE_URL "))
	if r.obj("secret")["secretKey"] != "DATABASE_URL" || r.obj("secret")["version"] != float64(4) {
		t.Fatalf("rename: %s", r.raw)
	}
	if _, _, ok := f.s.Secret(f.pid, "dev", "/", "DB_URL"); ok {
		t.Fatal("old name still present after rename")
	}
	r = f.api("GET", secretURL("DATABASE_URL")+q("projectId", f.pid, "environment", "dev", "secretPath", "/"), nil)
	if s := r.obj("secret"); r.status != 200 || s["secretValue"] != "v2" || s["secretPath"] != "/" || s["version"] != float64(4) {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	r = f.api("DELETE", secretURL("DATABASE_URL"), f.body("dev", "/"))
	if r.status != 200 || r.obj("secret")["secretValue"] != "v2" {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	r = f.api("POST", secretURL("DATABASE_URL"), f.body("dev", "/", "secretValue", "again"))
	if r.obj("secret")["version"] != float64(1) || r.obj("secret")["id"] == sec["id"] {
		t.Fatalf("recreate: %s", r.raw)
	}
}

func TestValueNormalisation(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"  spaced  ", "spaced"},
		{"line\n", "line\n"},
		{"line\n\n\n", "line\n"},
		{"  a\nb  \n", "a\nb\n"},
		{"\t\r\n", "\n"},
		{"", ""},
		{"   ", ""},
		{"multi\nline", "multi\nline"},
	}
	for i, tc := range cases {
		key := "K" + string(rune('A'+i))
		r := f.api("POST", secretURL(key), f.body("dev", "/", "secretValue", tc.in))
		if got := r.obj("secret")["secretValue"]; got != tc.want {
			t.Errorf("create %q → %q, want %q", tc.in, got, tc.want)
		}
		r = f.api("PATCH", secretURL(key), f.body("dev", "/", "secretValue", " "+tc.in))
		if got := r.obj("secret")["secretValue"]; got != tc.want {
			t.Errorf("update %q → %q, want %q", tc.in, got, tc.want)
		}
		if v, ver, _ := f.s.Secret(f.pid, "dev", "/", key); v != tc.want || ver != 2 {
			t.Errorf("stored %q v%d", v, ver)
		}
	}
	if v := f.s.SetSecret(f.pid, "dev", "/", "OOB", " x \n\n"); v != 1 {
		t.Errorf("SetSecret version %d", v)
	}
	if v, _, _ := f.s.Secret(f.pid, "dev", "/", "OOB"); v != "x\n" {
		t.Errorf("SetSecret stored %q", v)
	}
}

func TestListSecrets(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "ROOT", "r")
	f.s.SetSecret(f.pid, "dev", "/a", "A1", "a1")
	f.s.SetSecret(f.pid, "dev", "/a/b", "B1", "b1")
	f.s.SetSecret(f.pid, "prod", "/", "P", "p")

	keysPaths := func(r resp) string {
		var out []string
		for _, x := range r.list("secrets") {
			m := x.(map[string]any)
			out = append(out, m["secretPath"].(string)+":"+m["secretKey"].(string)+"="+m["secretValue"].(string))
		}
		return strings.Join(out, " ")
	}
	cases := []struct {
		name, path string
		status     int
		want       string
	}{
		{"root", f.listQ("dev", "/"), 200, "/:ROOT=r"},
		{"folder trailing slash", f.listQ("dev", "/a/"), 200, "/a:A1=a1"},
		{"recursive", f.listQ("dev", "/", "recursive", "true"), 200, "/:ROOT=r /a:A1=a1 /a/b:B1=b1"},
		{"recursive sub", f.listQ("dev", "/a", "recursive", "true"), 200, "/a:A1=a1 /a/b:B1=b1"},
		{"unknown path", f.listQ("dev", "/zz"), 200, ""},
		{"relative path", f.listQ("dev", "a"), 200, ""},
		{"unknown env", f.listQ("qa", "/"), 200, ""},
		{"masked", f.listQ("prod", "/", "viewSecretValue", "false"), 200, "/:P=<hidden-by-infisical>"},
		{"v3 raw", "/api/v3/secrets/raw" + q("workspaceId", f.pid, "environment", "dev", "secretPath", "/a"), 200, "/a:A1=a1"},
		{"by slug", "/api/v3/secrets/raw" + q("workspaceSlug", "shop", "environment", "prod"), 200, "/:P=p"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.api("GET", tc.path, nil)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if got := keysPaths(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if r.list("imports") == nil {
				t.Errorf("imports missing: %s", r.raw)
			}
		})
	}
	errCases := []struct {
		name, path   string
		status       int
		errName, msg string
	}{
		{"recursive unknown env", f.listQ("qa", "/", "recursive", "true"), 404, "NotFound", "Environment with slug 'qa' in project with ID"},
		{"bad bool", f.listQ("dev", "/", "recursive", "yes"), 422, "ValidationFailure", "received 'yes'"},
		{"bad include_imports", f.listQ("dev", "/", "include_imports", "True"), 422, "ValidationFailure", ""},
		{"bad includeImports", f.listQ("dev", "/", "includeImports", "1"), 422, "ValidationFailure", ""},
		{"bad viewSecretValue", f.listQ("dev", "/", "viewSecretValue", ""), 422, "ValidationFailure", ""},
		{"missing env", "/api/v4/secrets" + q("projectId", f.pid), 400, "BadRequest", "Missing project id or environment"},
		{"bad path", f.listQ("dev", "/a.b"), 400, "BadRequest", "Invalid secret path"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.api("GET", tc.path, nil), tc.status, tc.errName, tc.msg)
		})
	}
}

func TestETag(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "K", "v")
	path := f.listQ("dev", "/", "recursive", "true")
	r1 := f.api("GET", path, nil)
	tag := r1.header.Get("ETag")
	if r1.status != 200 || len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		t.Fatalf("ETag %q status %d", tag, r1.status)
	}
	if r2 := f.api("GET", path, nil); r2.header.Get("ETag") != tag {
		t.Fatalf("unchanged listing changed ETag: %q vs %q", r2.header.Get("ETag"), tag)
	}
	r3 := f.api("GET", path, nil, "If-None-Match", tag)
	if r3.status != 304 || len(r3.raw) != 0 {
		t.Fatalf("If-None-Match: %d %q", r3.status, r3.raw)
	}
	if r := f.api("GET", path, nil, "If-None-Match", `"other"`); r.status != 200 {
		t.Fatalf("non-matching If-None-Match: %d", r.status)
	}
	f.s.SetSecret(f.pid, "dev", "/", "K", "v2")
	r4 := f.api("GET", path, nil, "If-None-Match", tag)
	if r4.status != 200 || r4.header.Get("ETag") == tag {
		t.Fatalf("after change: %d %q", r4.status, r4.header.Get("ETag"))
	}
	// Errors and writes carry no ETag.
	if r := f.api("GET", f.listQ("dev", "/", "recursive", "x"), nil); r.header.Get("ETag") != "" {
		t.Error("422 has an ETag")
	}
	if r := f.api("POST", secretURL("N"), f.body("dev", "/", "secretValue", "x")); r.header.Get("ETag") != "" {
		t.Error("POST has an ETag")
	}
	var logged []Request
	for _, rq := range f.s.Requests() {
		if rq.Path == "/api/v4/secrets" && rq.IfNoneMatch == tag {
			logged = append(logged, rq)
		}
	}
	if len(logged) != 2 || logged[0].Status != 304 || logged[0].ETag != tag || logged[1].Status != 200 {
		t.Fatalf("request log: %+v", logged)
	}
}

func TestReferences(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "HOST", "db.local")
	f.s.SetSecret(f.pid, "prod", "/", "HOST", "db.prod")
	f.s.SetSecret(f.pid, "prod", "/a/b", "PORT", "5432")
	cases := []struct {
		value  string
		status int
		msg    string
	}{
		{"${HOST}:1", 200, ""},
		{"${prod.HOST}", 200, ""},
		{"${prod.a.b.PORT}", 200, ""},
		{"${MISSING}", 400, "Referenced secret(s) not found: MISSING"},
		{"${HOST} ${NOPE} ${ALSO}", 400, "Referenced secret(s) not found: NOPE,ALSO"},
		{"${qa.HOST}", 400, "Referenced environment not found. Missing qa"},
		{"${prod.x.y.HOST}", 400, "Referenced path /x/y doesn't exist"},
		{"${prod.a.b.NOPE}", 400, "Referenced secret(s) not found: prod.a.b.NOPE"},
		{"$HOST and ${not valid}", 200, ""},
		{"${.HOST}", 400, "Referenced environment not found. Missing "},
	}
	for i, tc := range cases {
		key := "R" + string(rune('A'+i))
		r := f.api("POST", secretURL(key), f.body("dev", "/", "secretValue", tc.value))
		if tc.status != 200 {
			wantErr(t, r, tc.status, "BadRequest", tc.msg)
			continue
		}
		if r.status != 200 {
			t.Errorf("%q: %d %s", tc.value, r.status, r.raw)
		}
	}
	// Updates validate too.
	wantErr(t, f.api("PATCH", secretURL("RA"), f.body("dev", "/", "secretValue", "${GONE}")), 400, "", "GONE")

	// Expansion: nested, cross-env, unresolved literal, cycles end.
	f.s.SetSecret(f.pid, "dev", "/", "URL", "postgres://${HOST}:${prod.a.b.PORT}/${UNSET}")
	f.s.SetSecret(f.pid, "dev", "/", "WRAP", "[${URL}]")
	f.s.SetSecret(f.pid, "dev", "/", "LOOP1", "x${LOOP2}")
	f.s.SetSecret(f.pid, "dev", "/", "LOOP2", "y${LOOP1}")
	get := func(key, expand string) string {
		r := f.api("GET", secretURL(key)+q("projectId", f.pid, "environment", "dev", "expandSecretReferences", expand), nil)
		if r.status != 200 {
			t.Fatalf("get %s: %d %s", key, r.status, r.raw)
		}
		return r.obj("secret")["secretValue"].(string)
	}
	if got := get("WRAP", "true"); got != "[postgres://db.local:5432/${UNSET}]" {
		t.Errorf("expanded WRAP = %q", got)
	}
	if got := get("WRAP", "false"); got != "[${URL}]" {
		t.Errorf("raw WRAP = %q", got)
	}
	// The backend cuts a cycle after one lap (see expand.go).
	if got := get("LOOP1", "true"); got != "xyx${LOOP2}" {
		t.Errorf("cycle = %q", got)
	}
	r := f.api("GET", f.listQ("dev", "/", "expandSecretReferences", "true"), nil)
	found := false
	for _, x := range r.list("secrets") {
		if m := x.(map[string]any); m["secretKey"] == "URL" {
			found = m["secretValue"] == "postgres://db.local:5432/${UNSET}"
		}
	}
	if !found {
		t.Errorf("list did not expand URL: %s", r.raw)
	}
}

func TestExpansionNeedsReadOnReferencedEnv(t *testing.T) {
	f := newFixture(t)
	f.s.AddIdentity("narrow", "pw")
	f.s.Grant("narrow", f.pid, PermRead, "dev")
	tok := f.login("narrow", "pw")
	f.s.SetSecret(f.pid, "prod", "/", "P", "secret-prod")
	f.s.SetSecret(f.pid, "dev", "/", "REF", "${prod.P}")
	wantErr(t, f.do("GET", f.listQ("dev", "/", "expandSecretReferences", "true"), tok, nil),
		403, "", "Failed to expand one or more secret references")
	if r := f.do("GET", f.listQ("dev", "/"), tok, nil); r.status != 200 {
		t.Fatalf("unexpanded list: %d", r.status)
	}
}

func TestImports(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "staging", "/shared", "SMTP", "smtp-staging")
	f.s.SetSecret(f.pid, "prod", "/common", "SMTP", "smtp-prod")
	f.s.SetSecret(f.pid, "prod", "/common", "ONLY_PROD", "op")
	f.s.SetSecret(f.pid, "dev", "/", "LOCAL", "l")
	f.s.AddImport(f.pid, "dev", "/", "staging", "/shared")
	f.s.AddImport(f.pid, "dev", "/", "prod", "/common")
	f.s.AddImport(f.pid, "dev", "/", "prod", "/gone")

	for _, param := range []string{"includeImports", "include_imports"} {
		r := f.api("GET", f.listQ("dev", "/", param, "true"), nil)
		imps := r.list("imports")
		if len(imps) != 2 {
			t.Fatalf("%s: %d imports: %s", param, len(imps), r.raw)
		}
		first, second := imps[0].(map[string]any), imps[1].(map[string]any)
		if first["environment"] != "staging" || first["secretPath"] != "/shared" || first["folderId"] == "" ||
			second["environment"] != "prod" || second["secretPath"] != "/common" {
			t.Fatalf("%s: import order/shape: %s", param, r.raw)
		}
		s0 := first["secrets"].([]any)[0].(map[string]any)
		if s0["secretKey"] != "SMTP" || s0["secretValue"] != "smtp-staging" || s0["createdAt"] != nil ||
			s0["secretValueHidden"] != false || s0["secretMetadata"] == nil {
			t.Fatalf("%s: import secret shape: %v", param, s0)
		}
	}
	if r := f.api("GET", f.listQ("dev", "/"), nil); len(r.list("imports")) != 0 {
		t.Fatalf("imports without asking: %s", r.raw)
	}
	// Get one: a locally missing key comes from the imports, last first.
	get := func(key, imports string) resp {
		return f.api("GET", secretURL(key)+q("projectId", f.pid, "environment", "dev", "includeImports", imports), nil)
	}
	if r := get("SMTP", "true"); r.obj("secret")["secretValue"] != "smtp-prod" || r.obj("secret")["environment"] != "prod" {
		t.Fatalf("imported get: %s", r.raw)
	}
	wantErr(t, get("SMTP", "false"), 404, "", "Secret with name 'SMTP' not found")
}

func TestPermissions(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "K", "v")
	f.s.SetSecret(f.pid, "prod", "/", "K", "v")
	other := f.s.AddProject("other", "Other")
	f.s.AddIdentity("ro", "pw")
	f.s.Grant("ro", f.pid, PermRead)
	f.s.AddIdentity("devonly", "pw")
	f.s.Grant("devonly", f.pid, PermReadWrite, "dev")
	ro, devonly := f.login("ro", "pw"), f.login("devonly", "pw")

	cases := []struct {
		name, tok, method, path string
		body                    any
		status                  int
		errName, msg            string
	}{
		{"ro create", ro, "POST", secretURL("N"), f.body("dev", "/", "secretValue", "x"), 403, "PermissionDenied", "You are not allowed to create on secrets"},
		{"ro update", ro, "PATCH", secretURL("K"), f.body("dev", "/", "secretValue", "x"), 403, "PermissionDenied", "edit on secrets"},
		{"ro delete", ro, "DELETE", secretURL("K"), f.body("dev", "/"), 403, "PermissionDenied", "delete on secrets"},
		{"ro batch", ro, "POST", "/api/v4/secrets/batch", f.body("dev", "/", "secrets", []any{map[string]any{"secretKey": "A", "secretValue": "a"}}), 403, "PermissionDenied", ""},
		{"ro folder", ro, "POST", "/api/v2/folders", map[string]any{"projectId": f.pid, "environment": "dev", "name": "x"}, 403, "PermissionDenied", "secret-folders"},
		{"devonly reads prod", devonly, "GET", f.listQ("prod", "/"), nil, 403, "PermissionDenied", "read on secrets"},
		{"devonly writes prod", devonly, "POST", secretURL("N"), f.body("prod", "/", "secretValue", "x"), 403, "PermissionDenied", ""},
		{"not member", f.token, "GET", "/api/v4/secrets" + q("projectId", other, "environment", "dev"), nil, 403, "You are not member of this project", "You are not member of this project"},
		{"not member project", f.token, "GET", "/api/v1/projects/" + other, nil, 403, "", "not member"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, tc.path, tc.tok, tc.body)
			wantErr(t, r, tc.status, tc.errName, tc.msg)
			if tc.errName == "PermissionDenied" && r.body["details"] == nil {
				t.Errorf("PermissionDenied without details: %s", r.raw)
			}
		})
	}
	if r := f.do("GET", f.listQ("dev", "/"), ro, nil); r.status != 200 || len(r.list("secrets")) != 1 {
		t.Fatalf("ro read: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", secretURL("N"), devonly, f.body("dev", "/", "secretValue", "x")); r.status != 200 {
		t.Fatalf("devonly write dev: %d %s", r.status, r.raw)
	}
}

func TestApprovalPolicy(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "prod", "/", "K", "v")
	f.s.SetApprovalRequired(f.pid, "prod", true)
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", secretURL("NEW"), f.body("prod", "/", "secretValue", "x")},
		{"PATCH", secretURL("K"), f.body("prod", "/", "secretValue", "changed")},
		{"DELETE", secretURL("K"), f.body("prod", "/")},
		{"POST", "/api/v4/secrets/batch", f.body("prod", "/", "secrets", []any{map[string]any{"secretKey": "B", "secretValue": "b"}})},
		{"PATCH", "/api/v4/secrets/batch", f.body("prod", "/", "secrets", []any{map[string]any{"secretKey": "K", "secretValue": "b"}})},
		{"DELETE", "/api/v4/secrets/batch", f.body("prod", "/", "secrets", []any{map[string]any{"secretKey": "K"}})},
	}
	for _, w := range writes {
		r := f.api(w.method, w.path, w.body)
		ap := r.obj("approval")
		if r.status != 200 || ap == nil || ap["status"] != "open" || ap["id"] == "" || r.body["secret"] != nil {
			t.Errorf("%s %s: %d %s", w.method, w.path, r.status, r.raw)
		}
	}
	if got := f.s.Secrets(f.pid, "prod"); len(got) != 1 || got["/K"] != "v" {
		t.Fatalf("approval-held writes changed the store: %v", got)
	}
	if _, ver, _ := f.s.Secret(f.pid, "prod", "/", "K"); ver != 1 {
		t.Fatalf("version %d", ver)
	}
	// Other environments are unaffected, and the flag can be cleared.
	if r := f.api("POST", secretURL("NEW"), f.body("dev", "/", "secretValue", "x")); r.obj("secret") == nil {
		t.Fatalf("dev write: %s", r.raw)
	}
	f.s.SetApprovalRequired(f.pid, "prod", false)
	if r := f.api("POST", secretURL("NEW"), f.body("prod", "/", "secretValue", "x")); r.obj("secret") == nil {
		t.Fatalf("prod write after clearing: %s", r.raw)
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/", "OLD", "o")
	f.s.AddFolder(f.pid, "dev", "/sub")
	item := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	items := func(ms ...map[string]any) []any {
		out := []any{}
		for _, m := range ms {
			out = append(out, m)
		}
		return out
	}
	const batch = "/api/v4/secrets/batch"
	errCases := []struct {
		name, method string
		body         any
		status       int
		msg          string
	}{
		{"create exists", "POST", f.body("dev", "/", "secrets", items(item("secretKey", "A", "secretValue", "a"), item("secretKey", "OLD", "secretValue", "x"))), 400, "Secret already exist: OLD"},
		{"create empty", "POST", f.body("dev", "/", "secrets", items()), 422, "too_small"},
		{"create bad key", "POST", f.body("dev", "/", "secrets", items(item("secretKey", "a:b", "secretValue", "a"))), 422, "colon"},
		{"create bad ref", "POST", f.body("dev", "/", "secrets", items(item("secretKey", "A", "secretValue", "${NOPE}"))), 400, "Referenced secret(s) not found: NOPE"},
		{"update missing", "PATCH", f.body("dev", "/", "secrets", items(item("secretKey", "OLD", "secretValue", "n"), item("secretKey", "GHOST", "secretValue", "g"))), 404, "Secret does not exist: GHOST in path /"},
		{"update bad mode", "PATCH", f.body("dev", "/", "mode", "merge", "secrets", items(item("secretKey", "OLD"))), 422, "Invalid enum value"},
		{"update no folder", "PATCH", f.body("dev", "/", "secrets", items(item("secretKey", "OLD", "secretPath", "/zz"))), 404, "Folder with path '/zz'"},
		{"delete missing", "DELETE", f.body("dev", "/", "secrets", items(item("secretKey", "OLD"), item("secretKey", "GHOST"))), 404, "GHOST"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.api(tc.method, batch, tc.body), tc.status, "", tc.msg)
		})
	}
	if got := f.s.Secrets(f.pid, "dev"); len(got) != 1 || got["/OLD"] != "o" {
		t.Fatalf("failed batches changed the store: %v", got)
	}

	r := f.api("POST", batch, f.body("dev", "/", "secrets", items(item("secretKey", "A", "secretValue", " a "), item("secretKey", "B", "secretValue", "b"))))
	if r.status != 200 || len(r.list("secrets")) != 2 {
		t.Fatalf("batch create: %d %s", r.status, r.raw)
	}
	r = f.api("PATCH", batch, f.body("dev", "/", "mode", "upsert", "secrets", items(
		item("secretKey", "A", "secretValue", "a2"),
		item("secretKey", "B", "newSecretName", "B2"),
		item("secretKey", "S", "secretValue", "s", "secretPath", "/sub"))))
	if r.status != 200 || len(r.list("secrets")) != 3 {
		t.Fatalf("batch upsert: %d %s", r.status, r.raw)
	}
	r = f.api("PATCH", batch, f.body("dev", "/", "mode", "ignore", "secrets", items(item("secretKey", "NOPE", "secretValue", "x"))))
	if r.status != 200 || len(r.list("secrets")) != 0 {
		t.Fatalf("batch ignore: %d %s", r.status, r.raw)
	}
	want := map[string]string{"/OLD": "o", "/A": "a2", "/B2": "b", "/sub/S": "s"}
	got := f.s.Secrets(f.pid, "dev")
	if len(got) != len(want) {
		t.Fatalf("store %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, v, _ := f.s.Secret(f.pid, "dev", "/", "A"); v != 2 {
		t.Errorf("A version %d", v)
	}
	r = f.api("DELETE", "/api/v3/secrets/batch/raw", map[string]any{"workspaceId": f.pid, "environment": "dev",
		"secretPath": "/", "secrets": items(item("secretKey", "A"), item("secretKey", "B2"))})
	if r.status != 200 || len(r.list("secrets")) != 2 {
		t.Fatalf("v3 batch delete: %d %s", r.status, r.raw)
	}
	if got := f.s.Secrets(f.pid, "dev"); len(got) != 2 {
		t.Fatalf("after delete: %v", got)
	}
}

func TestV3RawRoutes(t *testing.T) {
	f := newFixture(t)
	body := func(kv ...any) map[string]any {
		m := map[string]any{"workspaceId": f.pid, "environment": "dev", "secretPath": "/"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	if r := f.api("POST", "/api/v3/secrets/raw/K", body("secretValue", "v")); r.obj("secret")["secretValue"] != "v" {
		t.Fatalf("v3 create: %s", r.raw)
	}
	wantErr(t, f.api("POST", "/api/v3/secrets/raw/K", body("secretValue", "v")), 400, "", "Secret already exist")
	if r := f.api("PATCH", "/api/v3/secrets/raw/K", body("secretValue", "v2")); r.obj("secret")["version"] != float64(2) {
		t.Fatalf("v3 update: %s", r.raw)
	}
	if r := f.api("GET", "/api/v3/secrets/raw/K"+q("workspaceId", f.pid, "environment", "dev"), nil); r.obj("secret")["secretValue"] != "v2" {
		t.Fatalf("v3 get: %s", r.raw)
	}
	if r := f.api("DELETE", "/api/v3/secrets/raw/K", body()); r.status != 200 {
		t.Fatalf("v3 delete: %s", r.raw)
	}
	wantErr(t, f.api("DELETE", "/api/v3/secrets/raw/K", body()), 404, "", "Secret not found")
}

func TestGetByID(t *testing.T) {
	f := newFixture(t)
	r := f.api("POST", secretURL("K"), f.body("dev", "/", "secretValue", "v"))
	id := r.obj("secret")["id"].(string)
	if r := f.api("GET", "/api/v4/secrets/id/"+id, nil); r.obj("secret")["secretKey"] != "K" {
		t.Fatalf("by id: %s", r.raw)
	}
	wantErr(t, f.api("GET", "/api/v4/secrets/id/nope", nil), 404, "NotFound", "")
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t)
	big := strings.Repeat("x", 1<<20)
	wantErr(t, f.api("POST", secretURL("BIG"), f.body("dev", "/", "secretValue", big)), 413, "PayloadTooLarge", "")
	if _, _, ok := f.s.Secret(f.pid, "dev", "/", "BIG"); ok {
		t.Fatal("oversized body was stored")
	}
	// Just under the limit is fine.
	almost := strings.Repeat("y", 1<<20-200)
	if r := f.api("POST", secretURL("BIG"), f.body("dev", "/", "secretValue", almost)); r.status != 200 {
		t.Fatalf("under limit: %d", r.status)
	}
}

// TestNoValueInErrors plants a canary value and checks that no error body
// or request-log entry carries it.
func TestNoValueInErrors(t *testing.T) {
	f := newFixture(t)
	const canary = "CANARY-7f3e9b1d"
	f.s.SetSecret(f.pid, "dev", "/", "EXISTS", canary)
	bodies := []resp{
		f.api("POST", secretURL("EXISTS"), f.body("dev", "/", "secretValue", canary)),
		f.api("POST", secretURL("N"), f.body("dev", "/", "secretValue", canary+"${MISSING}")),
		f.api("POST", secretURL("A:B"), f.body("dev", "/", "secretValue", canary)),
		f.api("POST", secretURL("N"), f.body("dev", "/nope", "secretValue", canary)),
		f.api("PATCH", secretURL("GHOST"), f.body("dev", "/", "secretValue", canary)),
		f.api("POST", "/api/v4/secrets/batch", f.body("dev", "/", "secrets", []any{map[string]any{"secretKey": "EXISTS", "secretValue": canary}})),
	}
	for _, r := range bodies {
		if r.status < 400 {
			t.Fatalf("expected an error: %d %s", r.status, r.raw)
		}
		if strings.Contains(string(r.raw), canary) {
			t.Errorf("error body carries the value: %s", r.raw)
		}
	}
	for _, rq := range f.s.Requests() {
		if strings.Contains(rq.Path+rq.RawQuery, canary) {
			t.Errorf("request log carries the value: %+v", rq)
		}
	}
}
