package infisicaltest

import "testing"

func TestProjects(t *testing.T) {
	f := newFixture(t)
	pay := f.s.AddProject("payments", "Payments", "dev", "prod")
	f.s.AddProject("hidden", "Hidden")
	f.s.Grant(testClientID, pay, PermRead, "dev")

	r := f.api("GET", "/api/v1/projects", nil)
	ps := r.list("projects")
	if r.status != 200 || len(ps) != 2 {
		t.Fatalf("projects: %d %s", r.status, r.raw)
	}
	p0 := ps[0].(map[string]any)
	if p0["slug"] != "shop" || p0["id"] != f.pid || p0["_id"] != f.pid || p0["type"] != "secret-manager" {
		t.Fatalf("project shape: %v", p0)
	}
	envs := p0["environments"].([]any)
	if len(envs) != 3 || envs[0].(map[string]any)["slug"] != "dev" || envs[2].(map[string]any)["name"] != "Production" {
		t.Fatalf("environments: %v", envs)
	}
	if r := f.api("GET", "/api/v1/projects?type=kms", nil); len(r.list("projects")) != 0 {
		t.Fatalf("type filter: %s", r.raw)
	}
	if r := f.api("GET", "/api/v1/projects?type=secret-manager", nil); len(r.list("projects")) != 2 {
		t.Fatalf("type filter: %s", r.raw)
	}
	if r := f.api("GET", "/api/v1/workspace", nil); len(r.list("workspaces")) != 2 {
		t.Fatalf("workspace: %s", r.raw)
	}
	if r := f.api("GET", "/api/v1/projects/"+pay, nil); r.obj("project")["slug"] != "payments" {
		t.Fatalf("by id: %s", r.raw)
	}
	if r := f.api("GET", "/api/v1/workspace/"+pay, nil); r.obj("workspace")["slug"] != "payments" {
		t.Fatalf("workspace by id: %s", r.raw)
	}
	if r := f.api("GET", "/api/v1/projects/slug/payments", nil); r.str("id") != pay || r.body["project"] != nil {
		t.Fatalf("by slug (unwrapped): %s", r.raw)
	}
	wantErr(t, f.api("GET", "/api/v1/projects/slug/hidden", nil), 403, "", "You are not member of this project")
	wantErr(t, f.api("GET", "/api/v1/projects/slug/nothing", nil), 404, "NotFound", "")
	wantErr(t, f.api("GET", "/api/v1/projects/0b7d6a3e-1111-4222-8333-444455556666", nil), 404, "NotFound",
		"Project with 0b7d6a3e-1111-4222-8333-444455556666 not found")
	wantErr(t, f.do("GET", "/api/v1/projects", "", nil), 401, "", "Token missing")

	// Revoking the grant hides the project.
	f.s.Grant(testClientID, pay, PermNone)
	if r := f.api("GET", "/api/v1/projects", nil); len(r.list("projects")) != 1 {
		t.Fatalf("after PermNone: %s", r.raw)
	}
}

func TestRoutingDetails(t *testing.T) {
	f := newFixture(t)
	// An unknown route gets Fastify's own 404 body, not Infisical's.
	r := f.api("GET", "/api/v9/nothing?a=1", nil)
	if want := `{"message":"Route GET:/api/v9/nothing?a=1 not found","error":"Not Found","statusCode":404}`; r.status != 404 || string(r.raw) != want {
		t.Fatalf("route not found: %d %s, want %s", r.status, r.raw, want)
	}
	if r := f.api("GET", "/api/v1/projects/", nil); r.status != 200 {
		t.Fatalf("trailing slash: %d %s", r.status, r.raw)
	}
}

func TestLoadSample(t *testing.T) {
	f := newFixture(t)
	id, secret := f.s.LoadSample()
	tok := f.login(id, secret)
	r := f.do("GET", "/api/v1/projects/slug/webshop", tok, nil)
	shop := r.str("id")
	if shop == "" {
		t.Fatalf("webshop: %s", r.raw)
	}
	r = f.do("GET", "/api/v4/secrets"+q("projectId", shop, "environment", "prod", "recursive", "true"), tok, nil)
	foundPEM := false
	for _, x := range r.list("secrets") {
		m := x.(map[string]any)
		if m["secretKey"] == "TLS_KEY" {
			foundPEM = m["secretPath"] == "/tls" && len(m["secretValue"].(string)) > 100
		}
	}
	if !foundPEM {
		t.Fatalf("no multi-line TLS_KEY in webshop/prod: %s", r.raw)
	}
	r = f.do("GET", "/api/v4/secrets"+q("projectId", shop, "environment", "dev", "includeImports", "true", "expandSecretReferences", "true"), tok, nil)
	if len(r.list("imports")) != 1 || len(r.list("secrets")) < 5 {
		t.Fatalf("webshop/dev: %s", r.raw)
	}
	ro := f.login(SampleReadOnlyClientID, SampleReadOnlyClientSecret)
	wantErr(t, f.do("POST", secretURL("X"), ro, map[string]any{"projectId": shop, "environment": "dev", "secretValue": "x"}),
		403, "PermissionDenied", "")
	total := 0
	for _, env := range []string{"dev", "staging", "prod"} {
		total += len(f.s.Secrets(shop, env))
	}
	if total < 15 {
		t.Fatalf("sample has %d webshop secrets", total)
	}
}
