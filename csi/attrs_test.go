package csi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	canarySecret = "CANARY-client-secret-7f3a"
	canaryJWT    = "CANARY-jwt-eyJhbGciOi.9d1c"
)

func universalSecrets() map[string]string {
	return map[string]string{"clientId": "cid-1", "clientSecret": canarySecret}
}

func tokens(aud, jwt string) string {
	b, _ := json.Marshal(map[string]saToken{aud: {Token: jwt}})
	return string(b)
}

func TestParseVolumeDefaults(t *testing.T) {
	v, err := ParseVolume(PublishInput{VolumeID: "v1", Target: "/t", Attrs: map[string]string{
		"project": "webshop", "env": "dev",
		ctxPodNS: "shop", ctxPodName: "web-0", ctxEphemeral: "true", "csi.storage.k8s.io/some.future.key": "x",
	}, Secrets: universalSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	want := Volume{ID: "v1", Target: "/t", Scope: Scope{Project: "webshop", Env: "dev", Path: "/"}, View: View{ReadOnly: true, FileMode: 0o444}, Pod: "shop/web-0"}
	if v.ID != want.ID || v.Scope != want.Scope || v.View != want.View || v.Pod != want.Pod {
		t.Fatalf("got %+v, want %+v", v, want)
	}
	if v.Creds.Method != AuthUniversal || v.Creds.ClientID != "cid-1" || v.Creds.ClientSecret != canarySecret {
		t.Fatalf("creds %v", v.Creds)
	}
	if s := v.Creds.String(); strings.Contains(s, canarySecret) {
		t.Fatalf("String shows the secret: %s", s)
	}
}

func TestParseVolumeView(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		reqRO bool
		group string
		want  View
	}{
		{"fsGroup gives group read", nil, false, "2000", View{ReadOnly: true, FileMode: 0o440, GID: 2000}},
		{"gid attribute beats fsGroup", map[string]string{"gid": "7"}, false, "2000", View{ReadOnly: true, FileMode: 0o440, GID: 7}},
		{"writable", map[string]string{"readOnly": "false", "uid": "1000"}, false, "", View{FileMode: 0o666, UID: 1000}},
		{"writable with group", map[string]string{"readOnly": "false"}, false, "5", View{FileMode: 0o660, GID: 5}},
		{"pod readOnly wins", map[string]string{"readOnly": "false"}, true, "", View{ReadOnly: true, FileMode: 0o444}},
		{"explicit mode", map[string]string{"fileMode": "0400", "uid": "1001"}, false, "", View{ReadOnly: true, FileMode: 0o400, UID: 1001}},
		{"path cleaned", map[string]string{"path": "/backend/workers/"}, false, "", View{ReadOnly: true, FileMode: 0o444}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := map[string]string{"project": "p", "env": "dev"}
			for k, v := range tc.attrs {
				a[k] = v
			}
			v, err := ParseVolume(PublishInput{VolumeID: "v", Target: "/t", Attrs: a, Secrets: universalSecrets(), ReadOnly: tc.reqRO, MountGroup: tc.group})
			if err != nil {
				t.Fatal(err)
			}
			if v.View != tc.want {
				t.Fatalf("view %+v, want %+v", v.View, tc.want)
			}
			if tc.attrs["path"] != "" && v.Scope.Path != "/backend/workers" {
				t.Fatalf("path %q", v.Scope.Path)
			}
		})
	}
}

func TestParseVolumeRefusals(t *testing.T) {
	base := func() map[string]string { return map[string]string{"project": "p", "env": "dev"} }
	with := func(k, v string) map[string]string { a := base(); a[k] = v; return a }
	without := func(k string) map[string]string { a := base(); delete(a, k); return a }
	for _, tc := range []struct {
		name    string
		in      PublishInput
		wantKey string
		wantMsg string
	}{
		{"no project", PublishInput{Attrs: without("project"), Secrets: universalSecrets()}, "project", "required"},
		{"no env", PublishInput{Attrs: without("env"), Secrets: universalSecrets()}, "env", "required"},
		{"bad project", PublishInput{Attrs: with("project", "a/b"), Secrets: universalSecrets()}, "project", "not a project slug"},
		{"typo", PublishInput{Attrs: with("readonly", "true"), Secrets: universalSecrets()}, "readonly", "unknown attribute"},
		{"bad bool", PublishInput{Attrs: with("readOnly", "yes"), Secrets: universalSecrets()}, "readOnly", "not true or false"},
		{"bad mode", PublishInput{Attrs: with("fileMode", "0999"), Secrets: universalSecrets()}, "fileMode", "octal"},
		{"mode too big", PublishInput{Attrs: with("fileMode", "4755"), Secrets: universalSecrets()}, "fileMode", "octal"},
		{"unreadable mode", PublishInput{Attrs: with("fileMode", "0200"), Secrets: universalSecrets()}, "fileMode", "nobody read"},
		{"bad uid", PublishInput{Attrs: with("uid", "-1"), Secrets: universalSecrets()}, "uid", "numeric"},
		{"no-id uid", PublishInput{Attrs: with("uid", "4294967295"), Secrets: universalSecrets()}, "uid", "numeric"},
		{"bad fsGroup", PublishInput{Attrs: base(), Secrets: universalSecrets(), MountGroup: "staff"}, "fsGroup", "numeric"},
		{"relative path", PublishInput{Attrs: with("path", "a"), Secrets: universalSecrets()}, "path", "start with /"},
		{"dotdot path", PublishInput{Attrs: with("path", "/a/../b"), Secrets: universalSecrets()}, "path", "folder names"},
		{"block", PublishInput{Attrs: base(), Secrets: universalSecrets(), IsBlock: true}, "", "block"},
		{"fsType", PublishInput{Attrs: base(), Secrets: universalSecrets(), FsType: "ext4"}, "", "fsType"},
		{"mount flags", PublishInput{Attrs: base(), Secrets: universalSecrets(), MountFlags: []string{"noexec"}}, "", "mount flags"},
		{"no credentials", PublishInput{Attrs: base()}, "", "no credentials"},
		{"half a secret", PublishInput{Attrs: base(), Secrets: map[string]string{"clientId": "x"}}, "", "both"},
		{"odd secret key", PublishInput{Attrs: base(), Secrets: map[string]string{"clientId": "x", "client_secret": canarySecret}}, "", `"client_secret"`},
		{"both auths", PublishInput{Attrs: with("identityId", "id-1"), Secrets: universalSecrets()}, "identityId", "not both"},
		{"audience alone", PublishInput{Attrs: with("audience", "x"), Secrets: universalSecrets()}, "audience", "identityId"},
		{"k8s without tokens", PublishInput{Attrs: with("identityId", "id-1")}, "identityId", "tokenRequests"},
		{"k8s wrong audience", PublishInput{Attrs: map[string]string{"project": "p", "env": "dev", "identityId": "id-1", ctxSATokens: tokens("other", canaryJWT)}}, "audience", `audience "infisical"`},
		{"k8s garbled tokens", PublishInput{Attrs: map[string]string{"project": "p", "env": "dev", "identityId": "id-1", ctxSATokens: `{"infisical":` + canaryJWT}}, ctxSATokens, "not JSON"},
		{"templates not JSON", PublishInput{Attrs: with("templates", "app.env"), Secrets: universalSecrets()}, "templates", "JSON list"},
		{"templates unknown field", PublishInput{Attrs: with("templates", `[{"path":"a","content":"x","on_change":["sh"]}]`), Secrets: universalSecrets()}, "templates", "unknown field"},
		{"templates escape", PublishInput{Attrs: with("templates", `[{"path":"../etc/x","content":"x"}]`), Secrets: universalSecrets()}, "templates", "clean relative path"},
		{"templates absolute", PublishInput{Attrs: with("templates", `[{"path":"/x","content":"x"}]`), Secrets: universalSecrets()}, "templates", "clean relative path"},
		{"templates duplicate", PublishInput{Attrs: with("templates", `[{"path":"a","content":"x"},{"path":"a","content":"y"}]`), Secrets: universalSecrets()}, "templates", "two templates"},
		{"templates empty", PublishInput{Attrs: with("templates", `[]`), Secrets: universalSecrets()}, "templates", "1 to 32"},
		{"templates bad mode", PublishInput{Attrs: with("templates", `[{"path":"a","content":"x","mode":"rw"}]`), Secrets: universalSecrets()}, "templates", "octal"},
		{"audience without identity", PublishInput{Attrs: with("audience", "x")}, "audience", "identityId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVolume(tc.in)
			var ae *AttrError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v, want an AttrError", err)
			}
			if ae.Key != tc.wantKey || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err %q (key %q), want key %q and %q", err, ae.Key, tc.wantKey, tc.wantMsg)
			}
			if strings.Contains(err.Error(), canarySecret) || strings.Contains(err.Error(), canaryJWT) {
				t.Fatalf("error leaks a credential: %v", err)
			}
		})
	}
}

func TestKubernetesCredentials(t *testing.T) {
	attrs := func(ns, sa, jwt string) map[string]string {
		return map[string]string{"project": "p", "env": "dev", "identityId": "id-1",
			ctxPodNS: ns, ctxSAName: sa, ctxSATokens: tokens("infisical", jwt)}
	}
	a, err := ParseVolume(PublishInput{Attrs: attrs("shop", "web", canaryJWT+"-a")})
	if err != nil {
		t.Fatal(err)
	}
	if a.Creds.Method != AuthKubernetes || a.Creds.IdentityID != "id-1" || a.Creds.JWT != canaryJWT+"-a" {
		t.Fatalf("creds %+v", a.Creds)
	}
	// Another pod of the same service account: its own token, same identity.
	b, _ := ParseVolume(PublishInput{Attrs: attrs("shop", "web", canaryJWT+"-b")})
	c, _ := ParseVolume(PublishInput{Attrs: attrs("shop", "admin", canaryJWT+"-a")})
	if a.Creds.Fingerprint() != b.Creds.Fingerprint() {
		t.Fatal("two pods of one service account should share a fingerprint")
	}
	if a.Creds.Fingerprint() == c.Creds.Fingerprint() {
		t.Fatal("another service account must not share the source")
	}
	for _, s := range []string{a.Creds.String(), a.Key("http://x").String(), a.Creds.Fingerprint()} {
		if strings.Contains(s, canaryJWT) {
			t.Fatalf("%q shows the token", s)
		}
	}
	// Without pod info the token itself decides: no sharing by accident.
	d, _ := ParseVolume(PublishInput{Attrs: map[string]string{"project": "p", "env": "dev", "identityId": "id-1", ctxSATokens: tokens("infisical", "t1")}})
	e, _ := ParseVolume(PublishInput{Attrs: map[string]string{"project": "p", "env": "dev", "identityId": "id-1", ctxSATokens: tokens("infisical", "t2")}})
	if d.Creds.Fingerprint() == e.Creds.Fingerprint() {
		t.Fatal("unknown service accounts with different tokens must not share")
	}
}

func TestFingerprintUniversal(t *testing.T) {
	a := Credentials{Method: AuthUniversal, ClientID: "id", ClientSecret: "s1"}
	b := Credentials{Method: AuthUniversal, ClientID: "id", ClientSecret: "s2"}
	c := Credentials{Method: AuthUniversal, ClientID: "i", ClientSecret: "ds1"} // same bytes joined, other split
	if a.Fingerprint() == b.Fingerprint() || a.Fingerprint() == c.Fingerprint() {
		t.Fatal("different credentials share a fingerprint")
	}
	if a.Fingerprint() != (Credentials{Method: AuthUniversal, ClientID: "id", ClientSecret: "s1"}).Fingerprint() {
		t.Fatal("fingerprint not stable")
	}
}

// FuzzVolumeAttributes feeds arbitrary attributes, secrets and capability
// fields to the parser: it must never panic, refuse with an AttrError that
// carries no credential, and accept only volumes that keep its invariants.
func FuzzVolumeAttributes(f *testing.F) {
	f.Add("webshop", "dev", "/", "true", "0440", "", "", "", "cid", canarySecret, "", "", false)
	f.Add("p", "prod", "/a/b/", "false", "", "1000", "", "2000", "", "", "id-1", tokens("infisical", canaryJWT), false)
	f.Add("p", "e", "/x", "maybe", "7777", "-1", "x", "g", "", "", "id", `{"infisical":{"token":""}}`, true)
	f.Add("p", "e", "//", "", "0", "0", "0", "0", "a", "b", "", "", false)
	f.Fuzz(func(t *testing.T, project, env, path, ro, mode, uid, gid, group, cid, csec, ident, toks string, reqRO bool) {
		a := map[string]string{"project": project, "env": env}
		for k, v := range map[string]string{"path": path, "readOnly": ro, "fileMode": mode, "uid": uid, "gid": gid, "identityId": ident, ctxSATokens: toks} {
			if v != "" {
				a[k] = v
			}
		}
		var sec map[string]string
		if cid != "" || csec != "" {
			sec = map[string]string{"clientId": cid, "clientSecret": csec}
		}
		v, err := ParseVolume(PublishInput{VolumeID: "v", Target: "/t", Attrs: a, Secrets: sec, ReadOnly: reqRO, MountGroup: group})
		if err != nil {
			var ae *AttrError
			if !errors.As(err, &ae) {
				t.Fatalf("non-AttrError %T: %v", err, err)
			}
			msg := err.Error()
			for _, s := range []string{csec, toks} {
				if len(s) >= 12 && strings.Contains(msg, s) {
					t.Fatalf("error echoes a credential: %q", msg)
				}
			}
			return
		}
		if !slugOK(v.Scope.Project) || !slugOK(v.Scope.Env) {
			t.Fatalf("accepted scope %+v", v.Scope)
		}
		if !strings.HasPrefix(v.Scope.Path, "/") || strings.Contains(v.Scope.Path, "..") || (len(v.Scope.Path) > 1 && strings.HasSuffix(v.Scope.Path, "/")) {
			t.Fatalf("accepted path %q", v.Scope.Path)
		}
		if v.View.FileMode > 0o777 || v.View.FileMode&0o444 == 0 {
			t.Fatalf("accepted mode %o", v.View.FileMode)
		}
		if reqRO && !v.View.ReadOnly {
			t.Fatal("a read-only request became writable")
		}
		switch v.Creds.Method {
		case AuthUniversal:
			if v.Creds.ClientID == "" || v.Creds.ClientSecret == "" {
				t.Fatal("accepted empty universal credentials")
			}
		case AuthKubernetes:
			if v.Creds.IdentityID == "" || v.Creds.JWT == "" {
				t.Fatal("accepted empty kubernetes credentials")
			}
		default:
			t.Fatalf("method %q", v.Creds.Method)
		}
		if s := v.Creds.String(); (len(csec) >= 6 && strings.Contains(s, csec)) || (len(v.Creds.JWT) >= 6 && strings.Contains(s, v.Creds.JWT)) {
			t.Fatalf("String shows a credential: %q", s)
		}
	})
}

func TestSameVolume(t *testing.T) {
	k8s := func(jwt, sa string) *Volume {
		a := map[string]string{"project": "p", "env": "dev", "identityId": "id-1", ctxSATokens: tokens("infisical", jwt)}
		if sa != "" {
			a[ctxPodNS], a[ctxSAName] = "ns", sa
		}
		v, err := ParseVolume(PublishInput{VolumeID: "v", Target: "/t", Attrs: a})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !k8s("t1", "web").same(k8s("t2", "web")) || !k8s("t1", "").same(k8s("t2", "")) {
		t.Fatal("a republish with a newer token is not the same volume")
	}
	if k8s("t1", "web").same(k8s("t1", "admin")) {
		t.Fatal("another service account is the same volume")
	}
	u := func(secret string) *Volume {
		v, _ := ParseVolume(PublishInput{VolumeID: "v", Target: "/t", Attrs: map[string]string{"project": "p", "env": "dev"}, Secrets: map[string]string{"clientId": "c", "clientSecret": secret}})
		return v
	}
	if !u("s").same(u("s")) || u("s").same(u("s2")) || u("s").same(k8s("t", "web")) {
		t.Fatal("universal credentials compared wrong")
	}
}

// FuzzTemplatesAttribute: the templates attribute never panics the parser,
// and what it accepts has clean relative, distinct paths and content.
func FuzzTemplatesAttribute(f *testing.F) {
	f.Add(`[{"path":"app.env","content":"A={{ .Value }}","mode":"0400"}]`)
	f.Add(`[{"path":"a/b","content":"x"},{"path":"a/c","content":"y"}]`)
	f.Add(`[{"path":"a/../b","content":"x"}] trailing`)
	f.Fuzz(func(t *testing.T, raw string) {
		ts, err := parseTemplates(raw)
		if err != nil {
			var ae *AttrError
			if !errors.As(err, &ae) || ae.Key != AttrTemplates {
				t.Fatalf("error %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tm := range ts {
			if tm.Content == "" || seen[tm.Path] || strings.HasPrefix(tm.Path, "/") || strings.Contains("/"+tm.Path+"/", "/../") || strings.Contains("/"+tm.Path+"/", "//") {
				t.Fatalf("accepted %+v", tm)
			}
			seen[tm.Path] = true
		}
	})
}
