package infisicaltest

import (
	"strconv"
	"strings"
	"testing"
)

func TestVersionHistory(t *testing.T) {
	f := newFixture(t)
	url := "/api/v4/secrets/K"
	if r := f.api("POST", url, f.body("dev", "/", "secretValue", "v1", "secretComment", "first")); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r := f.api("PATCH", url, f.body("dev", "/", "secretValue", "v2"))
	if r.obj("secret")["version"] != float64(2) {
		t.Fatalf("update: %s", r.raw)
	}
	// A comment-only PATCH changes the comment and adds a version.
	r = f.api("PATCH", url, f.body("dev", "/", "secretComment", "second"))
	if s := r.obj("secret"); s["version"] != float64(3) || s["secretComment"] != "second" || s["secretValue"] != "v2" {
		t.Fatalf("comment update: %s", r.raw)
	}
	f.s.SetSecret(f.pid, "dev", "/", "K", "v4")

	get := func(version string) resp {
		return f.api("GET", url+q("projectId", f.pid, "environment", "dev", "version", version), nil)
	}
	for i, want := range [][2]string{{"v1", "first"}, {"v2", "first"}, {"v2", "second"}, {"v4", "second"}} {
		v := strconv.Itoa(i + 1)
		s := get(v).obj("secret")
		if s["secretValue"] != want[0] || s["secretComment"] != want[1] || s["version"] != float64(i+1) {
			t.Errorf("version %s: %v", v, s)
		}
		if _, ok := s["secretMetadata"]; ok {
			t.Errorf("version %s carries secretMetadata, which a version row lacks", v)
		}
	}
	wantErr(t, get("9"), 404, "NotFound", "Secret with name 'K' not found")
	wantErr(t, get("x"), 422, "ValidationFailure", "version")

	if n := f.s.PruneSecretVersions(f.pid, "dev", "/", "K", 2); n != 2 {
		t.Fatalf("pruned %d", n)
	}
	if got := f.s.SecretVersions(f.pid, "dev", "/", "K"); len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("versions after prune %v", got)
	}
	wantErr(t, get("1"), 404, "NotFound", "Secret with name 'K' not found")
	if s := get("3").obj("secret"); s["secretValue"] != "v2" {
		t.Fatalf("kept version 3: %v", s)
	}
	// Delete and create again: a new secret whose history starts at 1.
	f.api("DELETE", url, f.body("dev", "/"))
	f.api("POST", url, f.body("dev", "/", "secretValue", "fresh"))
	if got := f.s.SecretVersions(f.pid, "dev", "/", "K"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("versions after re-create %v", got)
	}
	if s := get("1").obj("secret"); s["secretValue"] != "fresh" {
		t.Fatalf("re-created version 1: %v", s)
	}
}

func TestSecretMeta(t *testing.T) {
	f := newFixture(t)
	f.s.SetSecret(f.pid, "dev", "/app", "K", "v")
	comment := "the database"
	v := f.s.SetSecretMeta(f.pid, "dev", "/app", "K", SecretMeta{Comment: &comment,
		Tags: []string{"db", "prod-only"}, Metadata: [][2]string{{"owner", "team-a"}, {"ticket", "OPS-1"}}})
	if v != 2 {
		t.Fatalf("version %d", v)
	}
	check := func(what string, s map[string]any) {
		t.Helper()
		if s["secretComment"] != comment || s["version"] != float64(2) {
			t.Errorf("%s: %v", what, s)
		}
		tags, _ := s["tags"].([]any)
		var slugs []string
		for _, x := range tags {
			m := x.(map[string]any)
			if m["id"] == "" || m["name"] != m["slug"] {
				t.Errorf("%s: tag %v", what, m)
			}
			slugs = append(slugs, m["slug"].(string))
		}
		if strings.Join(slugs, ",") != "db,prod-only" {
			t.Errorf("%s: tags %v", what, slugs)
		}
		md, _ := s["secretMetadata"].([]any)
		if len(md) != 2 || md[0].(map[string]any)["key"] != "owner" || md[0].(map[string]any)["value"] != "team-a" ||
			md[1].(map[string]any)["key"] != "ticket" || md[1].(map[string]any)["isEncrypted"] != false {
			t.Errorf("%s: metadata %v", what, md)
		}
	}
	r := f.api("GET", f.listQ("dev", "/app"), nil)
	check("list", r.list("secrets")[0].(map[string]any))
	g := f.api("GET", "/api/v4/secrets/K"+q("projectId", f.pid, "environment", "dev", "secretPath", "/app"), nil)
	check("get", g.obj("secret"))

	// The same tag slug on another secret is the same tag.
	f.s.SetSecret(f.pid, "dev", "/app", "L", "w")
	f.s.SetSecretMeta(f.pid, "dev", "/app", "L", SecretMeta{Tags: []string{"db"}})
	r = f.api("GET", f.listQ("dev", "/app"), nil)
	ids := map[string]bool{}
	for _, x := range r.list("secrets") {
		for _, tg := range x.(map[string]any)["tags"].([]any) {
			if m := tg.(map[string]any); m["slug"] == "db" {
				ids[m["id"].(string)] = true
			}
		}
	}
	if len(ids) != 1 {
		t.Errorf("tag db has ids %v", ids)
	}
}
