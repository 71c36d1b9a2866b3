package infisicaltest

import (
	"strings"
	"testing"
)

func TestOldServerRoutes(t *testing.T) {
	f := newFixture(t)
	f.s.SetOldServer(true)
	listV2 := "/api/v2/folders" + q("projectId", f.pid, "environment", "dev", "path", "/")
	for _, tc := range []struct{ method, path string }{
		{"GET", listV2},
		{"POST", "/api/v2/folders"},
		{"DELETE", "/api/v2/folders/x"},
		{"GET", "/api/v1/projects?type=secret-manager"},
	} {
		r := f.api(tc.method, tc.path, map[string]any{"projectId": f.pid})
		want := `{"message":"Route ` + tc.method + `:` + tc.path + ` not found","error":"Not Found","statusCode":404}`
		if r.status != 404 || string(r.raw) != want {
			t.Errorf("%s %s: %d %s, want %s", tc.method, tc.path, r.status, r.raw, want)
		}
	}
	// The v1 routes still work, with workspaceId and directory.
	r := f.api("POST", "/api/v1/folders", map[string]any{"workspaceId": f.pid, "environment": "dev", "name": "a", "directory": "/"})
	if r.status != 200 || r.obj("folder")["name"] != "a" {
		t.Fatalf("v1 create: %d %s", r.status, r.raw)
	}
	r = f.api("GET", "/api/v1/folders"+q("workspaceId", f.pid, "environment", "dev", "directory", "/"), nil)
	if r.status != 200 || len(r.list("folders")) != 1 {
		t.Fatalf("v1 list: %d %s", r.status, r.raw)
	}
	r = f.api("GET", "/api/v1/workspace", nil)
	if r.status != 200 || len(r.list("workspaces")) != 1 {
		t.Fatalf("v1 workspace: %d %s", r.status, r.raw)
	}
	// Infisical's own not-found errors keep their shape on an old server.
	r = f.api("GET", "/api/v4/secrets/NOPE"+q("projectId", f.pid, "environment", "dev"), nil)
	if r.status != 404 || r.str("error") != "NotFound" || !strings.HasPrefix(r.str("reqId"), "req-") {
		t.Fatalf("own 404: %d %s", r.status, r.raw)
	}

	f.s.SetOldServer(false)
	if r := f.api("GET", listV2, nil); r.status != 200 {
		t.Fatalf("new server again: %d %s", r.status, r.raw)
	}
}
