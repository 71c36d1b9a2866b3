package infisical

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

func TestOldServerConcurrentFallback(t *testing.T) {
	e := newEnv(t)
	e.srv.SetOldServer(true)
	e.srv.AddFolder(e.proj, "dev", "/a")
	e.login(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			fs, err := e.c.ListFolders(context.Background(), e.proj, "dev", "/")
			if err == nil && (len(fs) != 1 || fs[0].Name != "a") {
				err = fmt.Errorf("folders %v", fs)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each call may have tried v2 once before the flag flipped, none after.
	if n := e.srv.Count("GET", "/api/v2/folders"); n < 1 || n > 8 {
		t.Fatalf("%d v2 attempts", n)
	}
	e.srv.ResetRequests()
	if _, err := e.c.ListFolders(context.Background(), e.proj, "dev", "/"); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Count("GET", "/api/v2/folders"); n != 0 {
		t.Fatalf("v2 tried again after the switch")
	}
	if n := strings.Count(e.logs.String(), "using /api/v1/folders from now on"); n != 1 {
		t.Errorf("logged %d times", n)
	}
}

func FuzzIsRouteNotFound(f *testing.F) {
	f.Add(`{"message":"Route GET:/api/v2/folders?x=1 not found","error":"Not Found","statusCode":404}`)
	f.Add(`{"reqId":"req-abcdefghijklmn","message":"Route GET:/x not found","error":"NotFound"}`)
	f.Add(`{"message":["Route"],"error":"Not Found"}`)
	f.Fuzz(func(t *testing.T, body string) {
		p := parseErrorBody([]byte(body))
		if !isRouteNotFound(404, p) {
			return
		}
		// Only Fastify's own shape qualifies: never an Infisical error
		// (which has a reqId and a NotFound-style name).
		if p.ReqID != "" || p.Code != "Not Found" || !strings.HasPrefix(p.Message, "Route ") {
			t.Fatalf("%q taken for a missing route: %+v", body, p)
		}
		if isRouteNotFound(400, p) || isRouteNotFound(500, p) {
			t.Fatal("a non-404 taken for a missing route")
		}
	})
}
