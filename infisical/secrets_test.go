package infisical

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

func TestSecretLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.srv.AddFolder(e.proj, "dev", "/app/db")

	s, err := e.c.CreateSecret(ctx, e.ref("/app/db", "db.url"), []byte("postgres://u:p@h/db\n"))
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if string(s.Value) != "postgres://u:p@h/db\n" || s.Version != 1 || s.Key != "db.url" || s.Path != "/app/db" || s.ID == "" {
		t.Fatalf("created %+v", s)
	}
	if v, _, ok := e.srv.Secret(e.proj, "dev", "/app/db", "db.url"); !ok || v != "postgres://u:p@h/db\n" {
		t.Fatalf("server holds %q %v", v, ok)
	}

	got, err := e.c.GetSecret(ctx, e.ref("app/db/", "db.url"))
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if string(got.Value) != "postgres://u:p@h/db\n" || got.Path != "/app/db" || got.UpdatedAt.IsZero() {
		t.Fatalf("got %+v", got)
	}

	// Values with quotes, escapes, control bytes and unicode survive.
	odd := "a\"b\\c\td\u0001é€\u2028z"
	u, err := e.c.UpdateSecret(ctx, e.ref("/app/db", "db.url"), Update{Value: []byte(odd)})
	if err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	if string(u.Value) != odd || u.Version != 2 {
		t.Fatalf("updated %+v", u)
	}

	r, err := e.c.UpdateSecret(ctx, e.ref("/app/db", "db.url"), Update{NewName: "DB_URL"})
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if r.Key != "DB_URL" {
		t.Fatalf("renamed to %q", r.Key)
	}
	if _, _, ok := e.srv.Secret(e.proj, "dev", "/app/db", "db.url"); ok {
		t.Fatal("old name still exists")
	}

	if err := e.c.DeleteSecret(ctx, e.ref("/app/db", "DB_URL")); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	if _, _, ok := e.srv.Secret(e.proj, "dev", "/app/db", "DB_URL"); ok {
		t.Fatal("secret survived delete")
	}
	// Key with characters that need escaping in the URL path.
	if _, err := e.c.CreateSecret(ctx, e.ref("/", "a b?c#d%e"), []byte("v")); err != nil {
		t.Fatalf("create odd key: %v", err)
	}
	if v, _, ok := e.srv.Secret(e.proj, "dev", "/", "a b?c#d%e"); !ok || v != "v" {
		t.Fatalf("odd key stored as %q %v", v, ok)
	}
}

func TestListSecrets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.srv.SetSecret(e.proj, "dev", "/", "ROOT", "r")
	e.srv.SetSecret(e.proj, "dev", "/a", "A", "a")
	e.srv.SetSecret(e.proj, "dev", "/a/b", "B", "b")
	e.srv.SetSecret(e.proj, "prod", "/shared", "IMP", "i")
	e.srv.AddImport(e.proj, "dev", "/", "prod", "/shared")

	flat, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if len(flat.Secrets) != 1 || flat.Secrets[0].Key != "ROOT" || flat.Secrets[0].Path != "/" || len(flat.Imports) != 0 {
		t.Fatalf("flat list %+v", flat)
	}
	if flat.ETag == "" {
		t.Fatal("no ETag")
	}

	all, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true, IncludeImports: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range all.Secrets {
		got[s.Path+" "+s.Key] = string(s.Value)
	}
	want := map[string]string{"/ ROOT": "r", "/a A": "a", "/a/b B": "b"}
	if len(got) != len(want) {
		t.Fatalf("recursive list %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("recursive list %v, want %v", got, want)
		}
	}
	if len(all.Imports) != 1 || all.Imports[0].Environment != "prod" || all.Imports[0].Path != "/shared" ||
		len(all.Imports[0].Secrets) != 1 || string(all.Imports[0].Secrets[0].Value) != "i" {
		t.Fatalf("imports %+v", all.Imports)
	}

	// Every flag whose default drifted between versions is sent explicitly.
	reqs := e.srv.Requests()
	q, _ := url.ParseQuery(reqs[len(reqs)-1].RawQuery)
	for k, v := range map[string]string{
		"recursive": "true", "expandSecretReferences": "false", "viewSecretValue": "true",
		"includeImports": "true", "include_imports": "true", "includePersonalOverrides": "false",
		"secretPath": "/", "environment": "dev", "projectId": e.proj,
	} {
		if q.Get(k) != v {
			t.Errorf("query %s=%q, want %q (%s)", k, q.Get(k), v, reqs[len(reqs)-1].RawQuery)
		}
	}
}

func TestListETag(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.srv.SetSecret(e.proj, "dev", "/", "K", "v1")
	o := ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true}
	first, err := e.c.ListSecrets(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	o.IfNoneMatch = first.ETag
	same, err := e.c.ListSecrets(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !same.NotModified || same.ETag != first.ETag || len(same.Secrets) != 0 {
		t.Fatalf("unchanged list %+v", same)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 1 || reqs[0].Status != 304 || reqs[0].IfNoneMatch != first.ETag {
		t.Fatalf("requests %+v", reqs)
	}
	e.srv.SetSecret(e.proj, "dev", "/", "K", "v2")
	changed, err := e.c.ListSecrets(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if changed.NotModified || changed.ETag == first.ETag || string(changed.Secrets[0].Value) != "v2" {
		t.Fatalf("changed list %+v", changed)
	}
}

func TestUpsert(t *testing.T) {
	tests := []struct {
		name   string
		known  bool
		exists bool
		want   []string
	}{
		{"known and present: PATCH", true, true, []string{"PATCH"}},
		{"known but gone: PATCH then POST", true, false, []string{"PATCH", "POST"}},
		{"unknown and absent: POST", false, false, []string{"POST"}},
		{"unknown but present: POST then PATCH", false, true, []string{"POST", "PATCH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.exists {
				e.srv.SetSecret(e.proj, "dev", "/", "K", "old")
			}
			e.login(t)
			s, err := e.c.UpsertSecret(context.Background(), e.ref("/", "K"), []byte("new"), tc.known)
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Value) != "new" {
				t.Fatalf("value %q", s.Value)
			}
			var got []string
			for _, r := range e.srv.Requests() {
				got = append(got, r.Method)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("requests %v, want %v", got, tc.want)
			}
			if v, _, _ := e.srv.Secret(e.proj, "dev", "/", "K"); v != "new" {
				t.Fatalf("server holds %q", v)
			}
		})
	}
	t.Run("missing folder is not retried as create", func(t *testing.T) {
		e := newEnv(t)
		e.login(t)
		_, err := e.c.UpsertSecret(context.Background(), e.ref("/nope", "K"), []byte("v"), true)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v", err)
		}
		if n := len(e.srv.Requests()); n != 1 {
			t.Fatalf("%d requests: %v", n, e.methods())
		}
	})
}

// TestErrorRows drives the contract's §1 rows against the test server.
func TestErrorRows(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		setup      func(e *testEnv)
		run        func(e *testEnv) error
		want       error
		status     int
		msg        string // substring of Message
		noRequests bool
	}{
		{name: "get missing secret", want: ErrNotFound, status: 404, msg: "not found",
			run: func(e *testEnv) error { _, err := e.c.GetSecret(ctx, e.ref("/", "NOPE")); return err }},
		{name: "create existing", want: ErrAlreadyExists, status: 400, msg: "already exist",
			setup: func(e *testEnv) { e.srv.SetSecret(e.proj, "dev", "/", "K", "v") },
			run:   func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte("x")); return err }},
		{name: "update missing", want: ErrNotFound, status: 404,
			run: func(e *testEnv) error {
				_, err := e.c.UpdateSecret(ctx, e.ref("/", "K"), Update{Value: []byte("x")})
				return err
			}},
		{name: "delete missing", want: ErrNotFound, status: 404,
			run: func(e *testEnv) error { return e.c.DeleteSecret(ctx, e.ref("/", "K")) }},
		{name: "create in missing folder", want: ErrNotFound, status: 404, msg: "Folder with path",
			run: func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/x", "K"), []byte("v")); return err }},
		{name: "recursive list of unknown env", want: ErrNotFound, status: 404, msg: "Environment",
			run: func(e *testEnv) error {
				_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "nope", Recursive: true})
				return err
			}},
		{name: "unknown project", want: ErrNotFound, status: 404,
			run: func(e *testEnv) error {
				_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: "00000000-0000-4000-8000-00000000dead", Environment: "dev"})
				return err
			}},
		{name: "rename onto existing", want: ErrAlreadyExists, status: 400,
			setup: func(e *testEnv) {
				e.srv.SetSecret(e.proj, "dev", "/", "A", "a")
				e.srv.SetSecret(e.proj, "dev", "/", "B", "b")
			},
			run: func(e *testEnv) error {
				_, err := e.c.UpdateSecret(ctx, e.ref("/", "A"), Update{NewName: "B"})
				return err
			}},
		{name: "reference to missing secret", want: ErrValidation, status: 400, msg: "Referenced secret(s) not found",
			run: func(e *testEnv) error {
				_, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte("${MISSING}"))
				return err
			}},
		{name: "approval pending on create", want: ErrApprovalPending, status: 200,
			setup: func(e *testEnv) { e.srv.SetApprovalRequired(e.proj, "dev", true) },
			run:   func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte("v")); return err }},
		{name: "approval pending on update", want: ErrApprovalPending, status: 200,
			setup: func(e *testEnv) {
				e.srv.SetSecret(e.proj, "dev", "/", "K", "v")
				e.srv.SetApprovalRequired(e.proj, "dev", true)
			},
			run: func(e *testEnv) error {
				_, err := e.c.UpdateSecret(ctx, e.ref("/", "K"), Update{Value: []byte("w")})
				return err
			}},
		{name: "approval pending on delete", want: ErrApprovalPending, status: 200,
			setup: func(e *testEnv) {
				e.srv.SetSecret(e.proj, "dev", "/", "K", "v")
				e.srv.SetApprovalRequired(e.proj, "dev", true)
			},
			run: func(e *testEnv) error { return e.c.DeleteSecret(ctx, e.ref("/", "K")) }},
		{name: "write on read-only identity", want: ErrPermissionDenied, status: 403,
			setup: func(e *testEnv) { e.srv.Grant(testID, e.proj, infisicaltest.PermRead) },
			run:   func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte("v")); return err }},
		{name: "read outside granted env", want: ErrPermissionDenied, status: 403,
			setup: func(e *testEnv) { e.srv.Grant(testID, e.proj, infisicaltest.PermRead, "prod") },
			run: func(e *testEnv) error {
				_, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true})
				return err
			}},
		{name: "value too large", want: ErrValueTooLarge, noRequests: true,
			run: func(e *testEnv) error {
				_, err := e.c.CreateSecret(ctx, e.ref("/", "K"), make([]byte, MaxValueSize+1))
				return err
			}},
		{name: "invalid UTF-8 value", want: ErrValidation, noRequests: true,
			run: func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/", "K"), []byte{0xff}); return err }},
		{name: "key with colon", want: ErrValidation, noRequests: true, msg: "':'",
			run: func(e *testEnv) error { _, err := e.c.CreateSecret(ctx, e.ref("/", "a:b"), []byte("v")); return err }},
		{name: "key with surrounding space", want: ErrValidation, noRequests: true, msg: "whitespace",
			run: func(e *testEnv) error { _, err := e.c.GetSecret(ctx, e.ref("/", " K")); return err }},
		{name: "bad path", want: ErrValidation, noRequests: true,
			run: func(e *testEnv) error { _, err := e.c.GetSecret(ctx, e.ref("/a.b", "K")); return err }},
		{name: "create existing folder", want: ErrAlreadyExists, status: 400,
			setup: func(e *testEnv) { e.srv.AddFolder(e.proj, "dev", "/f") },
			run:   func(e *testEnv) error { _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/", "f"); return err }},
		{name: "delete non-empty folder", want: ErrFolderNotEmpty, status: 400,
			setup: func(e *testEnv) { e.srv.SetSecret(e.proj, "dev", "/f", "K", "v") },
			run:   func(e *testEnv) error { return e.c.DeleteFolder(ctx, e.proj, "dev", "/", "f") }},
		{name: "delete missing folder", want: ErrNotFound, status: 404,
			run: func(e *testEnv) error { return e.c.DeleteFolder(ctx, e.proj, "dev", "/", "f") }},
		{name: "bad folder name", want: ErrValidation, noRequests: true,
			run: func(e *testEnv) error { _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/", "a b"); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.login(t)
			err := tc.run(e)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("%T is not *APIError", err)
			}
			if ae.Status != tc.status {
				t.Errorf("status %d, want %d", ae.Status, tc.status)
			}
			if !strings.Contains(ae.Message, tc.msg) {
				t.Errorf("message %q lacks %q", ae.Message, tc.msg)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			if n := len(e.srv.Requests()); tc.noRequests && n != 0 {
				t.Errorf("sent %d requests for a call refused locally", n)
			}
			if tc.want == ErrPermissionDenied && !strings.Contains(ae.Remedy, "project "+e.proj+" env dev path /") {
				t.Errorf("remedy %q does not name the scope", ae.Remedy)
			}
			if tc.want == ErrFolderNotEmpty && !errors.Is(err, ErrValidation) {
				t.Error("folder-not-empty does not match ErrValidation")
			}
		})
	}
}

func TestListUnknownEnvNonRecursiveIsEmpty(t *testing.T) {
	e := newEnv(t)
	r, err := e.c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "nope"})
	if err != nil || len(r.Secrets) != 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestFoldersAndProjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f, err := e.c.CreateFolder(ctx, e.proj, "dev", "/", "app")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "app" || f.Path != "/" || f.ID == "" {
		t.Fatalf("folder %+v", f)
	}
	if _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/app", "db"); err != nil {
		t.Fatal(err)
	}
	list, err := e.c.ListFolders(ctx, e.proj, "dev", "/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "db" || list[0].Path != "/app" {
		t.Fatalf("folders %+v", list)
	}
	if err := e.c.DeleteFolder(ctx, e.proj, "dev", "/app", "db"); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.c.ListFolders(ctx, e.proj, "dev", "/app"); len(list) != 0 {
		t.Fatalf("folder survived delete: %+v", list)
	}
	for _, r := range e.srv.Requests() {
		if r.Method == "DELETE" && strings.Contains(r.RawQuery, "forceDelete=true") {
			t.Fatal("forceDelete sent")
		}
	}

	other := e.srv.AddProject("other", "Other", "staging")
	_ = other // not granted: must not be listed
	ps, err := e.c.ListProjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != e.proj || ps[0].Slug != "proj" || len(ps[0].Environments) != 2 ||
		ps[0].Environments[0].Slug == "" {
		t.Fatalf("projects %+v", ps)
	}
	reqs := e.srv.Requests()
	if q := reqs[len(reqs)-1].RawQuery; !strings.Contains(q, "type=secret-manager") {
		t.Fatalf("projects query %q", q)
	}

	st, err := e.c.Status(ctx)
	if err != nil || st.Message != "Ok" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestListFolderTreeIsOneRequest(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	for _, p := range []string{"/a/b/c", "/a/d", "/empty"} {
		e.srv.AddFolder(e.proj, "dev", p)
	}
	e.srv.ResetRequests()
	got, err := e.c.ListFolderTree(context.Background(), e.proj, "dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/a", "/a/b", "/a/b/c", "/a/d", "/empty"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ListFolderTree = %v, want %v", got, want)
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if _, err := e.c.ListFolderTree(context.Background(), e.proj, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown env: %v, want ErrNotFound", err)
	}
}
