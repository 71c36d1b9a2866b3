package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthMethodValidate(t *testing.T) {
	base := func(method string) Config {
		c := Default()
		c.URL, c.AuthMethod = "https://app.infisical.com", method
		return c
	}
	// Client id and secret are required only for universal auth.
	k := base(AuthKubernetes)
	k.IdentityID = "7d3c1f0a-0000-4000-8000-000000000000"
	if err := k.Validate(); err != nil {
		t.Errorf("kubernetes without client credentials refused: %v", err)
	}
	tok := base(AuthToken)
	tok.Token = canary
	if err := tok.Validate(); err != nil {
		t.Errorf("token auth refused: %v", err)
	}
	tf := base(AuthToken)
	tf.TokenFile = "/run/secrets/token"
	if err := tf.Validate(); err != nil {
		t.Errorf("token file refused: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"kubernetes without identity", func(c *Config) { c.AuthMethod = AuthKubernetes },
			"auth_method kubernetes needs the machine identity id: set INFISICAL_MACHINE_IDENTITY_ID, --identity-id or identity_id"},
		{"relative JWT path", func(c *Config) { c.AuthMethod, c.IdentityID, c.KubernetesTokenPath = AuthKubernetes, "x", "token" },
			`kubernetes_token_path "token": want an absolute path`},
		{"token missing", func(c *Config) { c.AuthMethod = AuthToken },
			"auth_method token needs an access token: set INFISICAL_TOKEN, INFISICAL_TOKEN_FILE, --token-file or token_file"},
		{"token twice", func(c *Config) { c.AuthMethod, c.Token, c.TokenFile = AuthToken, canary, "/f" }, "not both"},
		{"unknown", func(c *Config) { c.AuthMethod = "ldap" }, `auth_method "ldap": want "universal", "kubernetes" or "token"`},
		{"universal still needs the secret", func(c *Config) { c.ClientSecret = "" }, "missing client secret"},
	} {
		c := valid()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: error shows the token: %v", tc.name, err)
		}
	}
}

func TestAuthMethodSources(t *testing.T) {
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "c.toml", `url = "https://x.example"
auth_method = "kubernetes"
identity_id = "from-file"
kubernetes_token_path = "sa/token"
token_file = "tok"
`)
	c, err := resolveArgs(t, []string{"--config", cfgFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthMethod != AuthKubernetes || c.IdentityID != "from-file" ||
		c.KubernetesTokenPath != filepath.Join(dir, "sa/token") || c.TokenFile != filepath.Join(dir, "tok") {
		t.Fatalf("from the file: %+v", c)
	}
	// The environment beats the file, flags beat both.
	env := map[string]string{EnvIdentityID: "from-env", EnvKubernetesTokenPath: "/var/run/k8s/token", EnvToken: canary}
	c, err = resolveArgs(t, []string{"--config", cfgFile}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.IdentityID != "from-env" || c.KubernetesTokenPath != "/var/run/k8s/token" || c.Token != canary || c.TokenFile != "" {
		t.Fatalf("from the environment: identity %q path %q token set %v file %q", c.IdentityID, c.KubernetesTokenPath, c.Token == canary, c.TokenFile)
	}
	c, err = resolveArgs(t, []string{"--config", cfgFile, "--auth-method", "token", "--identity-id", "from-flag",
		"--kubernetes-token-path", "/k", "--token-file", "/run/t"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthMethod != AuthToken || c.IdentityID != "from-flag" || c.KubernetesTokenPath != "/k" || c.Token != "" || c.TokenFile != "/run/t" {
		t.Fatalf("from flags: %+v", c.Redacted())
	}
	if _, err := resolveArgs(t, nil, map[string]string{EnvToken: "a", EnvTokenFile: "/b"}); err == nil ||
		!strings.Contains(err.Error(), "both INFISICAL_TOKEN and INFISICAL_TOKEN_FILE") {
		t.Fatalf("both token variables: %v", err)
	}
	if !strings.Contains(strings.Join(c.CredentialFiles(), ","), "/run/t") {
		t.Errorf("token file not watched: %v", c.CredentialFiles())
	}
	// The token itself never comes from the file.
	bad := writeFile(t, dir, "bad.toml", `token = "`+canary+`"`)
	if _, _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "token is not read from the config file") ||
		strings.Contains(err.Error(), canary) {
		t.Fatalf("token in file: %v", err)
	}
	// Default: universal.
	if Default().AuthMethod != AuthUniversal {
		t.Fatal("default auth method")
	}
}

func TestTokenRedacted(t *testing.T) {
	c := valid()
	c.AuthMethod, c.Token = AuthToken, canary
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	if strings.Contains(out, canary) || c.Redacted().Token != redacted {
		t.Fatalf("token printed: %s", out)
	}
	if b, err := c.TOML(); err != nil || bytes.Contains(b, []byte(canary)) {
		t.Fatalf("TOML() wrote the token: %v", err)
	}
	if c.Token != canary {
		t.Fatal("Redacted changed the original")
	}
}
