package infisical

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestOldServerFolderFallback(t *testing.T) {
	e := newEnv(t)
	e.srv.SetOldServer(true)
	e.login(t)
	ctx := context.Background()

	if _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/", "app"); err != nil {
		t.Fatalf("create on an old server: %v", err)
	}
	if _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/app", "db"); err != nil {
		t.Fatal(err)
	}
	// One refused v2 request, then v1 for everything after it.
	want := []string{"POST /api/v2/folders", "POST /api/v1/folders", "POST /api/v1/folders"}
	if got := e.methods(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	// The server really holds them: asked by a client of a current server.
	serverTree := func() []string {
		t.Helper()
		e.srv.SetOldServer(false)
		defer e.srv.SetOldServer(true)
		tree, err := e.client(t, testID, testSecret).ListFolderTree(ctx, e.proj, "dev")
		if err != nil {
			t.Fatal(err)
		}
		return tree
	}
	if tree := serverTree(); !slices.Equal(tree, []string{"/app", "/app/db"}) {
		t.Fatalf("server side tree %v", tree)
	}
	e.srv.ResetRequests()

	fs, err := e.c.ListFolders(ctx, e.proj, "dev", "/app")
	if err != nil || len(fs) != 1 || fs[0].Name != "db" || fs[0].Path != "/app" {
		t.Fatalf("list: %v %v", fs, err)
	}
	tree, err := e.c.ListFolderTree(ctx, e.proj, "dev")
	if err != nil || !slices.Equal(tree, []string{"/app", "/app/db"}) {
		t.Fatalf("tree via v1: %v %v", tree, err)
	}
	if err := e.c.DeleteFolder(ctx, e.proj, "dev", "/app", "db"); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.srv.Requests() {
		if !strings.HasPrefix(r.Path, "/api/v1/folders") {
			t.Errorf("request %s %s after the fallback", r.Method, r.Path)
		}
		if r.Method == "GET" && (!strings.Contains(r.RawQuery, "workspaceId=") || !strings.Contains(r.RawQuery, "directory=")) {
			t.Errorf("v1 list without workspaceId/directory: %s", r.RawQuery)
		}
	}
	if tree := serverTree(); !slices.Equal(tree, []string{"/app"}) {
		t.Fatalf("server side after delete: %v", tree)
	}
	if n := strings.Count(e.logs.String(), "using /api/v1/folders from now on"); n != 1 {
		t.Errorf("fallback logged %d times:\n%s", n, e.logs.String())
	}
}

func TestOldServerProjectsFallback(t *testing.T) {
	e := newEnv(t)
	e.srv.SetOldServer(true)
	e.login(t)
	for range 2 {
		ps, err := e.c.ListProjects(context.Background())
		if err != nil || len(ps) != 1 || ps[0].ID != e.proj || len(ps[0].Environments) != 2 {
			t.Fatalf("projects %+v, %v", ps, err)
		}
	}
	want := []string{"GET /api/v1/projects", "GET /api/v1/workspace", "GET /api/v1/workspace"}
	if got := e.methods(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	if n := strings.Count(e.logs.String(), "using /api/v1/workspace from now on"); n != 1 {
		t.Errorf("fallback logged %d times", n)
	}
}

func TestNewServerNoFallback(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	ctx := context.Background()
	if _, err := e.c.CreateFolder(ctx, e.proj, "dev", "/", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ListFolders(ctx, e.proj, "dev", "/"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ListFolderTree(ctx, e.proj, "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ListProjects(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeleteFolder(ctx, e.proj, "dev", "/", "app"); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /api/v2/folders", "GET /api/v2/folders", "GET /api/v2/folders", "GET /api/v1/projects", "DELETE /api/v2/folders/app"}
	if got := e.methods(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	// Infisical's own NotFound is an error, never a reason to fall back.
	_, err := e.c.ListFolderTree(ctx, e.proj, "qa")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown env: %v", err)
	}
	err = e.c.DeleteFolder(ctx, e.proj, "dev", "/", "gone")
	if !errors.Is(err, ErrNotFound) || e.c.legacy.folders.Load() || e.c.legacy.projects.Load() {
		t.Fatalf("missing folder: %v (legacy %v)", err, e.c.legacy.folders.Load())
	}
	if strings.Contains(e.logs.String(), "from now on") {
		t.Errorf("a current server was taken for an old one:\n%s", e.logs.String())
	}
}

func TestIsRouteNotFound(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"message":"Route GET:/api/v2/folders?projectId=x not found","error":"Not Found","statusCode":404}`, true},
		{`{"reqId":"req-abcdefghijklmn","statusCode":404,"message":"Folder with ID 'x' not found","error":"NotFound"}`, false},
		{`{"reqId":"req-abcdefghijklmn","statusCode":404,"message":"Route GET:/x not found","error":"NotFound"}`, false},
		{`{"message":"Route GET:/x not found","error":"Not Found","statusCode":404,"reqId":"req-abcdefghijklmn"}`, false},
		{`<html>404</html>`, false},
	} {
		if got := isRouteNotFound(404, parseErrorBody([]byte(tc.body))); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.want)
		}
	}
	if isRouteNotFound(400, parseErrorBody([]byte(`{"message":"Route GET:/x not found","error":"Not Found"}`))) {
		t.Error("a 400 taken for a missing route")
	}
}
