package infisical

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

func TestSecretMetadataParsed(t *testing.T) {
	e := newEnv(t)
	e.srv.SetSecret(e.proj, "dev", "/app", "DB", "postgres://x")
	comment, yes := "primary database", true
	e.srv.SetSecretMeta(e.proj, "dev", "/app", "DB", infisicaltest.SecretMeta{Comment: &comment,
		Tags: []string{"db", "critical"}, Metadata: [][2]string{{"owner", "team-a"}, {"rotation", "90d"}},
		SkipMultilineEncoding: &yes})
	ctx := context.Background()
	check := func(what string, s Secret) {
		t.Helper()
		if s.Comment != comment || !slices.Equal(s.Tags, []string{"db", "critical"}) || !s.SkipMultilineEncoding ||
			!slices.Equal(s.Metadata, []Metadata{{"owner", "team-a"}, {"rotation", "90d"}}) ||
			s.Version != 2 || string(s.Value) != "postgres://x" {
			t.Errorf("%s: %+v", what, s)
		}
	}
	res, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true})
	if err != nil || len(res.Secrets) != 1 {
		t.Fatalf("list: %v %v", res, err)
	}
	check("list", *res.Secrets[0])
	s, err := e.c.GetSecret(ctx, e.ref("/app", "DB"))
	if err != nil {
		t.Fatal(err)
	}
	check("get", *s)
}

func TestUpdateComment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.ref("/", "K")
	if _, err := e.c.CreateSecret(ctx, r, []byte("value-1")); err != nil {
		t.Fatal(err)
	}
	note := "why this exists"
	s, err := e.c.UpdateSecret(ctx, r, Update{Comment: &note})
	if err != nil || s.Comment != note || s.Version != 2 || string(s.Value) != "value-1" {
		t.Fatalf("comment update: %+v %v", s, err)
	}
	if v, ver, _ := e.srv.Secret(e.proj, "dev", "/", "K"); v != "value-1" || ver != 2 {
		t.Fatalf("server: %q v%d", v, ver)
	}
	got, _ := e.c.GetSecret(ctx, r)
	if got.Comment != note {
		t.Fatalf("server comment %q", got.Comment)
	}
	// A value update leaves the comment alone; an empty comment clears it.
	if s, _ := e.c.UpdateSecret(ctx, r, Update{Value: []byte("value-2")}); s.Comment != note || s.Version != 3 {
		t.Fatalf("value update: %+v", s)
	}
	empty := ""
	if s, _ := e.c.UpdateSecret(ctx, r, Update{Comment: &empty}); s.Comment != "" || s.Version != 4 {
		t.Fatalf("clear: %+v", s)
	}
	if _, err := e.c.UpdateSecret(ctx, r, Update{}); !errors.Is(err, ErrValidation) {
		t.Fatalf("empty update: %v", err)
	}
}

func TestGetSecretVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.ref("/", "K")
	for i, v := range []string{"one", "two", "three"} {
		if _, err := e.c.UpsertSecret(ctx, r, []byte(v), i > 0); err != nil {
			t.Fatal(err)
		}
	}
	for n, want := range map[int]string{1: "one", 2: "two", 3: "three"} {
		s, err := e.c.GetSecretVersion(ctx, r, n)
		if err != nil || string(s.Value) != want || s.Version != n {
			t.Errorf("version %d: %+v %v", n, s, err)
		}
	}
	e.srv.PruneSecretVersions(e.proj, "dev", "/", "K", 1)
	if _, err := e.c.GetSecretVersion(ctx, r, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned version: %v", err)
	}
	if s, err := e.c.GetSecretVersion(ctx, r, 3); err != nil || string(s.Value) != "three" {
		t.Fatalf("kept version: %+v %v", s, err)
	}
	e.srv.ResetRequests()
	if _, err := e.c.GetSecretVersion(ctx, r, 0); !errors.Is(err, ErrValidation) || len(e.srv.Requests()) != 0 {
		t.Fatalf("version 0: %v, %d requests", err, len(e.srv.Requests()))
	}
	if _, err := e.c.GetSecretVersion(ctx, r, 3); err != nil {
		t.Fatal(err)
	}
	if reqs := e.srv.Requests(); len(reqs) != 1 || !strings.Contains(reqs[0].RawQuery, "version=3") {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestValueHiddenSecret(t *testing.T) {
	e := newEnv(t)
	e.srv.SetSecret(e.proj, "dev", "/", "HID", "CANARY-hidden-3b9")
	e.srv.SetValueHidden(e.proj, "dev", "/", "HID", true)
	ctx := context.Background()
	res, err := e.c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev"})
	if err != nil || len(res.Secrets) != 1 || !res.Secrets[0].ValueHidden || res.Secrets[0].Value != nil {
		t.Fatalf("list: %+v %v", res, err)
	}
	_, err = e.c.GetSecret(ctx, e.ref("/", "HID"))
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "permission to view secret value") {
		t.Fatalf("get: %v", err)
	}
	if strings.Contains(e.logs.String(), "CANARY") {
		t.Fatal("hidden value in logs")
	}
}

// TestExpandedList drives expandSecretReferences=true through the client;
// the expected bytes follow the backend's rules (see infisicaltest/expand.go).
func TestExpandedList(t *testing.T) {
	e := newEnv(t)
	set := func(env, path, key, v string) { e.srv.SetSecret(e.proj, env, path, key, v) }
	set("dev", "/", "HOST", "db")
	set("dev", "/", "URL", "pg://${HOST}/${prod.NAME}")
	set("prod", "/", "NAME", "prod-${SUFFIX}")
	set("prod", "/", "SUFFIX", "p")
	set("dev", "/a/b", "DEEP", "${dev.URL}|${MISSING}")
	set("dev", "/", "LOOP", "x${LOOP}")
	set("dev", "/", "CERT", "l1\nl2")
	set("dev", "/", "PEM", "${CERT}")
	yes := true
	e.srv.SetSecretMeta(e.proj, "dev", "/", "PEM", infisicaltest.SecretMeta{SkipMultilineEncoding: &yes})
	want := map[string]string{
		"/HOST": "db", "/URL": "pg://db/prod-p", "/a/b/DEEP": "pg://db/prod-p|${MISSING}",
		"/LOOP": "xx${LOOP}", "/CERT": "l1\nl2", "/PEM": `"l1\nl2"`,
	}
	res, err := e.c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev",
		Recursive: true, ExpandReferences: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range res.Secrets {
		got[strings.TrimSuffix(s.Path, "/")+"/"+s.Key] = string(s.Value)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	// An identity that may not read prod cannot expand URL: the whole list
	// is refused, as Infisical refuses it.
	e.srv.AddIdentity("dev-only", "pw")
	e.srv.Grant("dev-only", e.proj, infisicaltest.PermRead, "dev")
	c := e.client(t, "dev-only", "pw")
	_, err = c.ListSecrets(context.Background(), ListOptions{ProjectID: e.proj, Environment: "dev", ExpandReferences: true})
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "Failed to expand one or more secret references") {
		t.Fatalf("denied expansion: %v", err)
	}
}
