package infisicaltest

import (
	"strings"
	"testing"
)

func TestFolders(t *testing.T) {
	for _, v := range []struct{ base, pidKey, pathKey string }{
		{"/api/v2/folders", "projectId", "path"},
		{"/api/v1/folders", "workspaceId", "directory"},
	} {
		t.Run(v.base, func(t *testing.T) {
			f := newFixture(t)
			body := func(kv ...any) map[string]any {
				m := map[string]any{v.pidKey: f.pid, "environment": "dev"}
				for i := 0; i+1 < len(kv); i += 2 {
					m[kv[i].(string)] = kv[i+1]
				}
				return m
			}
			list := func(path string, recursive bool) resp {
				qs := q(v.pidKey, f.pid, "environment", "dev", v.pathKey, path)
				if recursive {
					qs += "&recursive=true"
				}
				return f.api("GET", v.base+qs, nil)
			}
			names := func(r resp, field string) string {
				var out []string
				for _, x := range r.list("folders") {
					out = append(out, x.(map[string]any)[field].(string))
				}
				return strings.Join(out, ",")
			}

			// Create with missing parents.
			r := f.api("POST", v.base, body("name", "c", v.pathKey, "/a/b"))
			if r.status != 200 || r.obj("folder")["name"] != "c" || r.obj("folder")["path"] != "/a/b/c" {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
			cid := r.obj("folder")["id"].(string)
			if r := f.api("POST", v.base, body("name", "x", v.pathKey, "a/")); r.status != 200 {
				t.Fatalf("create under a/: %d %s", r.status, r.raw)
			}
			errCases := []struct {
				name, method, path string
				body               any
				status             int
				msg                string
			}{
				{"exists", "POST", v.base, body("name", "c", v.pathKey, "/a/b"), 400, "Folder with name 'c' already exists in path '/a/b'"},
				{"bad name", "POST", v.base, body("name", "a.b"), 422, "Invalid folder name"},
				{"bad name space", "POST", v.base, body("name", "a b"), 422, "Invalid folder name"},
				{"unknown env", "POST", v.base, map[string]any{v.pidKey: f.pid, "environment": "qa", "name": "z"}, 404, "Environment with slug 'qa'"},
				{"rename missing", "PATCH", v.base + "/nope", body("name", "z"), 404, "Folder with ID 'nope' not found"},
				{"rename to same name", "PATCH", v.base + "/" + cid, body("name", "c", v.pathKey, "/a/b"), 200, ""},
				{"rename bad", "PATCH", v.base + "/" + cid, body("name", "c/d"), 422, "Invalid folder name"},
				{"delete non-empty", "DELETE", v.base + "/a", body(v.pathKey, "/"), 400, `Cannot delete folder "a"`},
				{"delete missing", "DELETE", v.base + "/zz", body(v.pathKey, "/"), 404, ""},
				{"delete missing parent", "DELETE", v.base + "/zz", body(v.pathKey, "/q"), 404, "Folder with path '/q'"},
				{"list unknown env", "GET", v.base + q(v.pidKey, f.pid, "environment", "qa"), nil, 404, "Environment with slug 'qa'"},
				{"list bad bool", "GET", v.base + q(v.pidKey, f.pid, "environment", "dev", "recursive", "1"), nil, 422, ""},
			}
			for _, tc := range errCases {
				r := f.api(tc.method, tc.path, tc.body)
				if tc.status == 200 {
					if r.status != 200 {
						t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
					}
					continue
				}
				wantErr(t, r, tc.status, "", tc.msg)
			}
			f.api("POST", v.base, body("name", "d", v.pathKey, "/a/b"))
			wantErr(t, f.api("PATCH", v.base+"/"+cid, body("name", "d", v.pathKey, "/a/b")), 400, "BadRequest", "Folder with specified name already exists")

			if got := names(list("/", false), "name"); got != "a" {
				t.Errorf("children of / = %q", got)
			}
			if got := names(list("/a", false), "name"); got != "b,x" {
				t.Errorf("children of /a = %q", got)
			}
			if r := list("/nowhere", false); r.status != 200 || len(r.list("folders")) != 0 {
				t.Errorf("unknown path: %d %s", r.status, r.raw)
			}
			if got := names(list("/", true), "relativePath"); got != "/a,/a/b,/a/b/c,/a/b/d,/a/x" {
				t.Errorf("recursive relativePath = %q", got)
			}
			if got := names(list("/a", true), "relativePath"); got != "/b,/b/c,/b/d,/x" {
				t.Errorf("recursive from /a = %q", got)
			}

			// Rename moves contents with the folder.
			f.s.SetSecret(f.pid, "dev", "/a/b/c", "K", "v")
			r = f.api("PATCH", v.base+"/"+cid, body("name", "renamed", v.pathKey, "/a/b"))
			if r.status != 200 || r.obj("folder")["name"] != "renamed" || r.obj("folder")["version"] != float64(3) { // the same-name rename above counted
				t.Fatalf("rename: %d %s", r.status, r.raw)
			}
			if val, _, ok := f.s.Secret(f.pid, "dev", "/a/b/renamed", "K"); !ok || val != "v" {
				t.Fatal("secret did not move with the renamed folder")
			}
			// Delete by name (empty), by id (non-empty with force).
			if r := f.api("DELETE", v.base+"/d", body(v.pathKey, "/a/b")); r.status != 200 || r.obj("folder")["name"] != "d" {
				t.Fatalf("delete by name: %d %s", r.status, r.raw)
			}
			wantErr(t, f.api("DELETE", v.base+"/"+cid, body(v.pathKey, "/a/b")), 400, "", "Cannot delete folder")
			if r := f.api("DELETE", v.base+"/"+cid, body(v.pathKey, "/a/b", "forceDelete", true)); r.status != 200 {
				t.Fatalf("force delete by id: %d %s", r.status, r.raw)
			}
			if got := f.s.Secrets(f.pid, "dev"); len(got) != 0 {
				t.Fatalf("secrets left: %v", got)
			}
			// A secret write into a deleted folder is a 404.
			wantErr(t, f.api("POST", secretURL("K"), f.body("dev", "/a/b/renamed", "secretValue", "v")), 404, "", "Folder with path '/a/b/renamed'")
		})
	}
}

func TestFolderHelpers(t *testing.T) {
	f := newFixture(t)
	f.s.AddFolder(f.pid, "dev", "x/y")
	f.s.SetSecret(f.pid, "dev", "/x/y", "K", "v")
	if got := f.s.Secrets(f.pid, "dev"); got["/x/y/K"] != "v" {
		t.Fatalf("Secrets = %v", got)
	}
	f.s.DeleteFolder(f.pid, "dev", "/x")
	if got := f.s.Secrets(f.pid, "dev"); len(got) != 0 {
		t.Fatalf("after DeleteFolder: %v", got)
	}
	if f.s.DeleteSecret(f.pid, "dev", "/x/y", "K") {
		t.Fatal("DeleteSecret in a deleted folder reported true")
	}
	f.s.SetSecret(f.pid, "dev", "/", "R", "r")
	if !f.s.DeleteSecret(f.pid, "dev", "/", "R") || f.s.DeleteSecret(f.pid, "dev", "/", "R") {
		t.Fatal("DeleteSecret results wrong")
	}
}
