package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
)

// canary stands for a real secret: it must never appear in any output.
const canary = "CANARY-s3cr3t-7f1c2b"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func resolveArgs(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs, f := NewFlagSet("mount")
	fs.SetOutput(new(bytes.Buffer))
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return Resolve(fs, f, envMap(env))
}

func TestLoadFull(t *testing.T) {
	c, md, err := Load("../testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !md.IsDefined("refresh_interval") {
		t.Error("metadata does not report refresh_interval as defined")
	}
	want := Default()
	want.URL = "https://app.infisical.com"
	want.ClientID = "8f9bbd5e-0000-4000-8000-000000000000"
	want.ClientSecretFile = "/run/secrets/infisical-client-secret"
	want.Projects = []string{"webshop"}
	want.Envs = []string{"dev", "prod"}
	want.MetricsAddr = "127.0.0.1:9464"
	want.ConfigFile = "../testdata/config/full.toml"
	want.OnChange = []Hook{
		{Path: "webshop/prod", Signal: "SIGHUP", PIDFile: "/run/nginx.pid", Debounce: Duration{time.Second}, Timeout: Duration{30 * time.Second}},
		{Path: "webshop/dev/backend", Command: []string{"/usr/bin/systemctl", "reload", "webshop-backend.service"}, Debounce: Duration{2 * time.Second}, Timeout: Duration{30 * time.Second}},
	}
	want.Templates = []Template{
		{Path: "rendered/app.env", Source: "../testdata/config/templates/app.env.tmpl", Mode: "0440",
			OnChange: []string{"/usr/bin/systemctl", "reload", "webshop.service"}, Timeout: Duration{30 * time.Second}},
		{Path: "rendered/port", Content: `{{ (getSecretByName "6f0c7a3e-0000-4000-8000-000000000000" "prod" "/backend" "PORT").Value }}`,
			Timeout: Duration{30 * time.Second}},
	}
	want.Access = []access.Spec{
		{Path: "webshop/prod/**", Users: []string{"root"}, Executables: []string{"/usr/local/bin/webshop"}, Allow: "read"},
		{Path: "webshop/prod/**", Allow: "none"},
	}
	want.AuditLog = "/var/log/infisicalfs/audit.jsonl"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(full.toml):\n got %+v\nwant %+v", c, want)
	}
	c.ClientSecret = "x"
	if err := c.Validate(); err != nil {
		t.Errorf("full.toml with a secret should validate: %v", err)
	}
}

// TestAccessConfig: rules and audit keys load, and their errors name the
// rule and field.
func TestAccessConfig(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.toml", `audit_log = "audit/a.jsonl"
audit_max_size = "10MiB"
[[access]]
path = "a/**"
users = ["no-such-user-xyz"]
allow = "read"
`)
	c, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLog != filepath.Join(dir, "audit/a.jsonl") || c.AuditMaxSize.Bytes != 10<<20 || len(c.Access) != 1 {
		t.Fatalf("loaded %+v", c)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), `access[0] (path "a/**"): users: unknown user "no-such-user-xyz"`) {
		t.Errorf("Validate = %v, want the rule's index and field", err)
	}
	for doc, want := range map[string]string{
		"[[access]]\npath = \"a\"\nallo = \"read\"\n": "unknown keys: access.allo",
		"audit_max_size = \"lots\"\n":                 `size "lots"`,
	} {
		if _, _, err := Load(writeFile(t, dir, "bad.toml", doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) = %v, want %q", doc, err, want)
		}
	}
	v := valid()
	v.Audit = "some"
	if err := v.Validate(); err == nil || !strings.Contains(err.Error(), `audit "some"`) {
		t.Errorf("audit = some: %v", err)
	}
	var b ByteSize
	for in, want := range map[string]int64{"4096": 4096, "1KiB": 1024, "2 MB": 2e6, "1GiB": 1 << 30, "0": 0} {
		if err := b.UnmarshalText([]byte(in)); err != nil || b.Bytes != want {
			t.Errorf("ByteSize(%q) = %d, %v; want %d", in, b.Bytes, err, want)
		}
	}
	for _, in := range []string{"-1", "1TB", "MiB", ""} {
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("ByteSize(%q) accepted", in)
		}
	}
}

func TestLoadRelativePaths(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.toml", `client_secret_file = "secret"
state_file = "st/state.json"
[[on_change]]
path = "/webshop/dev/"
signal = "HUP"
pid_file = "app.pid"
`)
	c, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientSecretFile != filepath.Join(dir, "secret") || c.StateFile != filepath.Join(dir, "st/state.json") || c.OnChange[0].PIDFile != filepath.Join(dir, "app.pid") {
		t.Errorf("relative paths not resolved against %s: %+v", dir, c)
	}
	if c.OnChange[0].Path != "webshop/dev" {
		t.Errorf("hook path = %q, want slashes trimmed", c.OnChange[0].Path)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	_, _, err := Load("../testdata/config/unknown-keys.toml")
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, k := range []string{"refresh_intervall", "readonly", "on_change.sginal"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
}

func TestLoadRefusesSecretInFile(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.toml", "client_secret = \""+canary+"\"\n")
	_, _, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "client_secret_file") {
		t.Fatalf("err = %v, want a pointer to client_secret_file", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error shows the secret: %v", err)
	}
}

func TestLoadErrorsDoNotQuoteLines(t *testing.T) {
	for _, body := range []string{
		"client_id = \"x\" " + canary + "\n",
		"url = " + canary + "\n",
		"project = [\"" + canary + "\"\n",
		"uid = \"" + canary + "\"\n",
	} {
		p := writeFile(t, t.TempDir(), "c.toml", body)
		_, _, err := Load(p)
		if err == nil {
			t.Errorf("%q accepted", body)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error quotes the file: %v", err)
		}
		if !strings.Contains(err.Error(), "c.toml") {
			t.Errorf("error does not name the file: %v", err)
		}
	}
	p := writeFile(t, t.TempDir(), "c.toml", "url = \"http://x\"\nrefresh_interval = \"soon\"\n")
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), "30s") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad duration: err = %v, want the line and an example", err)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: err = %v, want a wrapped not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestFileMode(t *testing.T) {
	for _, tc := range []struct {
		toml string
		want uint32
		ok   bool
	}{
		{`file_mode = "0440"`, 0o440, true},
		{`file_mode = "440"`, 0o440, true},
		{`file_mode = "0o640"`, 0o640, true},
		{`file_mode = 440`, 0, false},
		{`file_mode = "0999"`, 0, false},
		{`file_mode = "01777"`, 0, false},
		{`file_mode = ""`, 0, false},
	} {
		c, _, err := parse([]byte(tc.toml))
		if (err == nil) != tc.ok || (tc.ok && c.FileMode != tc.want) {
			t.Errorf("%s: mode %o, err %v; want %o ok=%v", tc.toml, c.FileMode, err, tc.want, tc.ok)
		}
	}
	c, err := resolveArgs(t, []string{"--file-mode", "0444"}, nil)
	if err != nil || c.FileMode != 0o444 {
		t.Errorf("--file-mode 0444: %o, %v", c.FileMode, err)
	}
	if _, err := resolveArgs(t, []string{"--file-mode", "rw"}, nil); err == nil {
		t.Error("--file-mode rw accepted")
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "c.toml", `url = "https://file.example"
read_only = true
refresh_interval = "30s"
project = ["from-file"]
log_level = "warn"
client_id = "file-id"
`)
	env := map[string]string{EnvURL: "https://env.example"}

	c, err := resolveArgs(t, []string{"--config", cfgPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://file.example" || !c.ReadOnly || c.RefreshInterval.Duration != 30*time.Second || c.ConfigFile != cfgPath {
		t.Errorf("file only: %+v", c)
	}
	if c.LogFormat != "text" || !c.TrimNewline || c.UID != -1 {
		t.Errorf("defaults lost under a file: %+v", c)
	}

	c, err = resolveArgs(t, []string{"--config", cfgPath}, env)
	if err != nil || c.URL != "https://env.example" {
		t.Errorf("env should beat file: url %q, %v", c.URL, err)
	}

	c, err = resolveArgs(t, []string{"--config", cfgPath, "--url", "https://flag.example", "--read-only=false",
		"--project", "p1", "--project", "p2", "--env", "dev", "--refresh-interval", "5s", "--uid", "1000"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://flag.example" || c.ReadOnly || !slices.Equal(c.Projects, []string{"p1", "p2"}) ||
		!slices.Equal(c.Envs, []string{"dev"}) || c.RefreshInterval.Duration != 5*time.Second || c.UID != 1000 {
		t.Errorf("flags should beat env and file: %+v", c)
	}
	if c.LogLevel != "warn" {
		t.Errorf("a flag not given must not override the file: log_level %q", c.LogLevel)
	}

	// $INFISICALFS_CONFIG names the file when --config is absent.
	c, err = resolveArgs(t, nil, map[string]string{EnvConfig: cfgPath})
	if err != nil || c.URL != "https://file.example" {
		t.Errorf("INFISICALFS_CONFIG: url %q, %v", c.URL, err)
	}
	// A bad file is an error, not a silent default.
	if _, err := resolveArgs(t, []string{"--config", filepath.Join(dir, "nope.toml")}, nil); err == nil {
		t.Error("missing --config file accepted")
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "secret", canary+"\n")
	idFile := writeFile(t, dir, "id", "id-from-file\r\n")
	twoNL := writeFile(t, dir, "two", "v\n\n")
	cfgPath := writeFile(t, dir, "c.toml", "client_secret_file = \"secret\"\nclient_id_file = \"id\"\n")

	c, err := resolveArgs(t, []string{"--config", cfgPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret != canary || c.ClientID != "id-from-file" || c.ClientSecretFile != secretFile {
		t.Errorf("files from the config: id %q, secret file %q, secret ok=%v", c.ClientID, c.ClientSecretFile, c.ClientSecret == canary)
	}
	if got := c.CredentialFiles(); !slices.Equal(got, []string{idFile, secretFile}) {
		t.Errorf("CredentialFiles = %v", got)
	}

	// Env value beats the file named in the config; the file is then not watched.
	c, err = resolveArgs(t, []string{"--config", cfgPath}, map[string]string{EnvClientSecret: "env-secret", EnvClientIDAlt: "alt-id"})
	if err != nil || c.ClientSecret != "env-secret" || c.ClientSecretFile != "" || c.ClientID != "alt-id" {
		t.Errorf("env over file: %+v, %v", c.Redacted(), err)
	}
	// --client-secret-file beats the env value.
	c, err = resolveArgs(t, []string{"--client-secret-file", twoNL}, map[string]string{EnvClientSecret: "env-secret"})
	if err != nil || c.ClientSecret != "v\n" {
		t.Errorf("flag file over env, one newline trimmed: %q, %v", c.ClientSecret, err)
	}
	c, err = resolveArgs(t, nil, map[string]string{EnvClientSecretFile: secretFile, EnvClientIDFile: idFile})
	if err != nil || c.ClientSecret != canary || c.ClientID != "id-from-file" {
		t.Errorf("*_FILE env: %v", err)
	}
	_, err = resolveArgs(t, nil, map[string]string{EnvClientSecretFile: secretFile, EnvClientSecret: canary})
	if err == nil || !strings.Contains(err.Error(), "set only one") || strings.Contains(err.Error(), canary) {
		t.Errorf("both secret and secret file: %v", err)
	}
	_, err = resolveArgs(t, nil, map[string]string{EnvClientSecretFile: filepath.Join(dir, "absent")})
	if err == nil || !strings.Contains(err.Error(), "client secret") {
		t.Errorf("missing secret file: %v", err)
	}
	big := writeFile(t, dir, "big", strings.Repeat("x", maxCredentialFileLength+1))
	if _, err := ReadCredentialFile(big); err == nil {
		t.Error("oversized credential file accepted")
	}
	empty := writeFile(t, dir, "empty", "\n")
	c, err = resolveArgs(t, []string{"--url", "http://x", "--client-id", "i", "--client-secret-file", empty}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "client secret file "+empty+" is empty") {
		t.Errorf("empty secret file: %v", err)
	}
}

func valid() Config {
	c := Default()
	c.URL, c.ClientID, c.ClientSecret = "https://app.infisical.com", "id", canary
	return c
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	err := Default().Validate()
	if err == nil {
		t.Fatal("empty config accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"missing Infisical URL: set INFISICAL_URL, --url or url",
		"missing client id: set INFISICAL_CLIENT_ID, INFISICAL_CLIENT_ID_FILE or client_id_file",
		"missing client secret: set INFISICAL_CLIENT_SECRET, INFISICAL_CLIENT_SECRET_FILE or client_secret_file",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("Default().Validate() =\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}

	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"interval", func(c *Config) { c.RefreshInterval.Duration = 500 * time.Millisecond }, "refresh_interval 500ms: must be at least 1s"},
		{"policy", func(c *Config) { c.TokenPolicy = "forever" }, `token_policy "forever"`},
		{"level", func(c *Config) { c.LogLevel = "verbose" }, `log_level "verbose"`},
		{"format", func(c *Config) { c.LogFormat = "xml" }, `log_format "xml"`},
		{"flat", func(c *Config) { c.Flat = true; c.Projects = []string{"a"} }, "flat needs exactly one project and one env"},
		{"scheme", func(c *Config) { c.URL = "ftp://x" }, "url \"ftp://x\""},
		{"userinfo", func(c *Config) { c.URL = "https://user:" + canary + "@host" }, "leave credentials out"},
		{"uid", func(c *Config) { c.UID = -2 }, "uid -2"},
		{"mode", func(c *Config) { c.FileMode = 0o4755 }, "file_mode 4755"},
		{"delay", func(c *Config) { c.ServerErrorDelay.Duration = -time.Second }, "server_error_delay"},
		{"project", func(c *Config) { c.Projects = []string{"a/b"} }, `project "a/b"`},
		{"hook empty", func(c *Config) { c.OnChange = []Hook{{Path: "x"}} }, `on_change[0] (path "x"): set command or signal`},
		{"hook both", func(c *Config) { c.OnChange = []Hook{{Command: []string{"true"}, Signal: "HUP", PID: 1}} }, "not both"},
		{"hook signal", func(c *Config) { c.OnChange = []Hook{{Signal: "SIGNOPE", PID: 1}} }, `signal "SIGNOPE": unknown`},
		{"hook pid", func(c *Config) { c.OnChange = []Hook{{Signal: "SIGHUP"}} }, "signal needs pid or pid_file"},
	} {
		c := valid()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: error shows the secret: %v", tc.name, err)
		}
	}
	c := valid()
	c.Flat, c.Projects, c.Envs = true, []string{"p"}, []string{"e"}
	c.OnChange = []Hook{{Signal: "usr1", PID: 42}, {Command: []string{"/bin/true"}}}
	if err := c.Validate(); err != nil {
		t.Errorf("flat single scope with hooks refused: %v", err)
	}
	if err := Default().Validate(); strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want one line per problem: %q", err)
	}
}

func TestBadValuesFile(t *testing.T) {
	c, _, err := Load("../testdata/config/bad-values.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, k := range []string{"url", "refresh_interval", "token_policy", "log_level", "log_format", "flat"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("bad-values.toml: %v does not name %s", err, k)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.Projects = []string{"p"}
	r := c.Redacted()
	if r.ClientSecret == canary || r.ClientSecret == "" {
		t.Errorf("Redacted secret = %q", r.ClientSecret)
	}
	r.Projects[0] = "changed"
	if c.ClientSecret != canary || c.Projects[0] != "p" {
		t.Error("Redacted changed the original")
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", c)
	out := fmt.Sprintf("%v %+v %#v %s ", c, c, c, c) + buf.String()
	if strings.Contains(out, canary) {
		t.Errorf("secret printed: %s", out)
	}
	if !strings.Contains(out, "app.infisical.com") || !strings.Contains(out, redacted) {
		t.Errorf("printed config lacks the settings: %s", out)
	}
	if b, err := c.TOML(); err != nil || bytes.Contains(b, []byte(canary)) {
		t.Errorf("TOML() wrote the secret or failed: %v", err)
	}
}

// tomlKey is the key Diff reports for a Config field.
func tomlKey(f reflect.StructField) string {
	switch f.Name {
	case "ClientSecret":
		return "client_secret"
	case "Token":
		return "token"
	case "AgentConfigBase64":
		return "agent_config_base64"
	case "FileMode":
		return "file_mode"
	case "ConfigFile":
		return ""
	}
	return f.Tag.Get("toml")
}

func TestDiffCoversEveryField(t *testing.T) {
	hotKeys := []string{"refresh_interval", "log_level", "client_id", "client_secret", "client_id_file",
		"client_secret_file", "project", "env", "on_change", "access"}
	old := valid()
	typ := reflect.TypeOf(old)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		n := old
		v := reflect.ValueOf(&n).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int:
			v.SetInt(v.Int() + 7)
		case reflect.Uint32:
			v.SetUint(v.Uint() + 1)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
		case reflect.Struct: // Duration
			v.Field(0).SetInt(v.Field(0).Int() + int64(time.Second))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, v.Kind())
		}
		hot, remount := Diff(old, n)
		key := tomlKey(f)
		if key == "" {
			if len(hot)+len(remount) != 0 {
				t.Errorf("%s: Diff = %v %v, want nothing", f.Name, hot, remount)
			}
			continue
		}
		wantHot := slices.Contains(hotKeys, key)
		switch {
		case wantHot && !slices.Equal(hot, []string{key}) || wantHot && len(remount) > 0:
			t.Errorf("%s: Diff = hot %v remount %v, want hot [%s]", f.Name, hot, remount, key)
		case !wantHot && !slices.Equal(remount, []string{key}) || !wantHot && len(hot) > 0:
			t.Errorf("%s: Diff = hot %v remount %v, want remount [%s]", f.Name, hot, remount, key)
		}
	}
	if hot, remount := Diff(old, old); len(hot)+len(remount) != 0 {
		t.Errorf("Diff of equal configs = %v %v", hot, remount)
	}
	// In flat mode the project is the mount's root.
	a := valid()
	a.Flat, a.Projects, a.Envs = true, []string{"p"}, []string{"e"}
	b := a
	b.Projects = []string{"q"}
	if hot, remount := Diff(a, b); len(hot) != 0 || !slices.Equal(remount, []string{"project"}) {
		t.Errorf("flat project change: hot %v remount %v", hot, remount)
	}
}

func TestKeysNameRealFieldsOnce(t *testing.T) {
	seen := map[string]bool{}
	typ := reflect.TypeOf(Config{})
	for _, k := range Keys {
		if seen[k.Name] || seen[k.Field] {
			t.Errorf("key %s (field %s) listed twice", k.Name, k.Field)
		}
		seen[k.Name], seen[k.Field] = true, true
		f, ok := typ.FieldByName(k.Field)
		if !ok {
			t.Errorf("key %s names no Config field %s", k.Name, k.Field)
			continue
		}
		if got := tomlKey(f); got != k.Name {
			t.Errorf("key %s: field %s has TOML name %q", k.Name, k.Field, got)
		}
	}
}

// recorder is a Live that records what it was asked to change.
type recorder struct{ calls []string }

func (r *recorder) SetRefreshInterval(d time.Duration) {
	r.calls = append(r.calls, "interval "+d.String())
}
func (r *recorder) SetLogLevel(l string) { r.calls = append(r.calls, "level "+l) }
func (r *recorder) SetCredentials(id, secret string) {
	r.calls = append(r.calls, "credentials "+id+" "+secret)
}
func (r *recorder) SetFilter(p, e []string) {
	r.calls = append(r.calls, "filter "+strings.Join(p, ",")+" "+strings.Join(e, ","))
}
func (r *recorder) SetHooks(h []Hook) { r.calls = append(r.calls, fmt.Sprintf("hooks %d", len(h))) }
func (r *recorder) SetTemplates(ts []Template) {
	r.calls = append(r.calls, fmt.Sprintf("templates %d", len(ts)))
}

func (r *recorder) SetAccess(rules []access.Spec) {
	r.calls = append(r.calls, fmt.Sprintf("access %d", len(rules)))
}

func TestReloadAppliesLiveKeysOnceAndKeepsTheRest(t *testing.T) {
	running := valid()
	next := running
	next.RefreshInterval = Duration{5 * time.Second}
	next.ClientID, next.ClientSecret = "new-id", "new-secret"
	next.ClientSecretFile = "/run/new"
	next.ReadOnly = !running.ReadOnly
	next.URL = "https://other.example"
	var r recorder
	applied, remount, now := Reload(&r, running, next)
	if want := []string{"refresh_interval", "client_id", "client_secret", "client_secret_file"}; !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if want := []string{"url", "read_only"}; !slices.Equal(remount, want) {
		t.Errorf("remount %v, want %v", remount, want)
	}
	// Credentials are applied once, with id and secret together.
	if want := []string{"interval 5s", "credentials new-id new-secret"}; !slices.Equal(r.calls, want) {
		t.Errorf("calls %q, want %q", r.calls, want)
	}
	if now.URL != running.URL || now.ReadOnly != running.ReadOnly {
		t.Errorf("remount-only settings moved: %+v", now)
	}
	if now.RefreshInterval != next.RefreshInterval || now.ClientSecretFile != next.ClientSecretFile {
		t.Errorf("live settings not taken: %+v", now)
	}
	if a, m, _ := Reload(&r, now, now); len(a)+len(m) != 0 {
		t.Errorf("reload of the running settings changed %v %v", a, m)
	}
}

func TestTOMLRoundTrip(t *testing.T) {
	c, _, err := Load("../testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.FileMode = 0o440
	b, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := parse(b)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, b)
	}
	c.ConfigFile = ""
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v\n%s", back, c, b)
	}
}

func TestFlagHelpNamesEveryKey(t *testing.T) {
	fs, _ := NewFlagSet("mount")
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		key := tomlKey(typ.Field(i))
		switch key {
		case "", "-", "client_secret", "token", "on_change", "template", "agent_config_base64", "access":
			continue // not flags: secrets stay off the command line; hooks, templates and rules are file-only
		}
		name := strings.ReplaceAll(key, "_", "-")
		if fs.Lookup(name) == nil {
			t.Errorf("key %s has no flag --%s", key, name)
		}
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "-read-only") || !strings.Contains(help.String(), "repeat") {
		t.Errorf("help text:\n%s", help.String())
	}
	if err := fs.Parse([]string{"--refresh-interval", "soon"}); err == nil {
		t.Error("bad duration flag accepted")
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range []string{"full.toml", "minimal.toml", "unknown-keys.toml", "bad-values.toml"} {
		b, err := os.ReadFile(filepath.Join("../testdata/config", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("file_mode = \"0440\"\n[[on_change]]\ncommand = [\"a\", \"\"]\n"))
	f.Add([]byte("client_secret = \"x\""))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _, err := parse(b)
		if err != nil {
			return
		}
		_ = c.Validate()
		out, err := c.TOML()
		if err != nil {
			t.Fatalf("encode a config we decoded: %v", err)
		}
		back, _, err := parse(out)
		if err != nil {
			t.Fatalf("parse our own output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, c)
		}
	})
}

func FuzzParseFileMode(f *testing.F) {
	for _, s := range []string{"0440", "440", "0o777", "0", "", "-1", "01777", "9", " 0600 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseFileMode(s)
		if err != nil {
			return
		}
		if m > 0o777 {
			t.Fatalf("ParseFileMode(%q) = %o, beyond permission bits", s, m)
		}
		back, err := ParseFileMode(FormatFileMode(m))
		if err != nil || back != m {
			t.Fatalf("round trip of %o: %o, %v", m, back, err)
		}
	})
}

func TestTemplateValidation(t *testing.T) {
	base := valid()
	cases := map[string]Template{
		"path: name where":          {Content: "x"},
		"set source":                {Path: "a"},
		"not both":                  {Path: "a", Source: "/s", Content: "x"},
		"clean relative path":       {Path: "a/../b", Content: "x"},
		"mode":                      {Path: "a", Content: "x", Mode: "0999"},
		"first element is the prog": {Path: "a", Content: "x", OnChange: []string{""}},
	}
	for want, tp := range cases {
		c := base
		c.Templates = []Template{tp}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", tp, err, want)
		}
	}
	c := base
	c.Templates = []Template{{Path: "a", Content: "1"}, {Path: "a", Content: "2"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "both have path") {
		t.Errorf("duplicate paths: %v", err)
	}
	c.Templates = []Template{{Path: "a/b", Content: "1", Mode: "0400", OnChange: []string{"true"}}}
	if err := c.Validate(); err != nil {
		t.Errorf("good template: %v", err)
	}
}

// The state file's two keys: defaults, validation, and flags over the file.
func TestStateKeys(t *testing.T) {
	c := Default()
	if c.StateFlushInterval.Duration != 5*time.Minute || c.StateHash != StateHashHMAC {
		t.Fatalf("defaults: %s %q", c.StateFlushInterval.Duration, c.StateHash)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.StateHash = "md5" },
		func(c *Config) { c.StateFlushInterval.Duration = 0 },
		func(c *Config) { c.StateFlushInterval.Duration = 500 * time.Millisecond },
	} {
		c := valid()
		bad(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "state_") {
			t.Errorf("%+v: Validate = %v, want a state_ error", c, err)
		}
	}
	c = valid()
	c.StateHash = StateHashSHA256
	if err := c.Validate(); err != nil {
		t.Errorf("sha256 refused: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(file, []byte("state_flush_interval = \"10m\"\nstate_hash = \"sha256\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fset, flags := NewFlagSet("mount")
	if err := fset.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(fset, flags, func(string) string { return "" })
	if err != nil || got.StateFlushInterval.Duration != 10*time.Minute || got.StateHash != StateHashSHA256 {
		t.Fatalf("from the file: %s %q %v", got.StateFlushInterval.Duration, got.StateHash, err)
	}
	fset, flags = NewFlagSet("mount")
	if err := fset.Parse([]string{"--config", file, "--state-flush-interval", "30s", "--state-hash", "hmac-sha256"}); err != nil {
		t.Fatal(err)
	}
	got, err = Resolve(fset, flags, func(string) string { return "" })
	if err != nil || got.StateFlushInterval.Duration != 30*time.Second || got.StateHash != StateHashHMAC {
		t.Fatalf("flags over the file: %s %q %v", got.StateFlushInterval.Duration, got.StateHash, err)
	}
}

// Templates reload live once a mount has some; the first one, or removing
// the last, needs a remount (a mount started without templates shows none).
func TestTemplateKeyLiveOnceMounted(t *testing.T) {
	none := valid()
	one := valid()
	one.Templates = []Template{{Path: "a", Content: "x"}}
	other := valid()
	other.Templates = []Template{{Path: "a", Content: "y"}}
	for _, tc := range []struct {
		name      string
		old, new  Config
		hot, rmnt []string
	}{
		{"changed", one, other, []string{"template"}, nil},
		{"first", none, one, nil, []string{"template"}},
		{"last removed", one, none, nil, []string{"template"}},
	} {
		hot, remount := Diff(tc.old, tc.new)
		if !slices.Equal(hot, tc.hot) || !slices.Equal(remount, tc.rmnt) {
			t.Errorf("%s: hot %v remount %v, want %v %v", tc.name, hot, remount, tc.hot, tc.rmnt)
		}
	}
	var r recorder
	if applied, _, _ := Reload(&r, one, other); !slices.Equal(applied, []string{"template"}) || !slices.Equal(r.calls, []string{"templates 1"}) {
		t.Errorf("Reload applied %v, calls %v", applied, r.calls)
	}
}
