// Package config gathers infisicalfs settings from a TOML file, the
// environment and command-line flags, validates them, and watches the config
// and credential files so that some settings can change without a remount.
package config

import (
	"fmt"
	"log/slog"
	"time"
)

// Auth methods (auth_method).
const (
	AuthUniversal  = "universal"  // client id + client secret (the default)
	AuthKubernetes = "kubernetes" // identity_id + the pod's service-account JWT
	AuthToken      = "token"      // a given access token (INFISICAL_TOKEN or token_file)
)

// Token policies (token_policy).
const (
	TokenPerCycle = "per-cycle" // a fresh access token each sync cycle, the old one revoked
	TokenRenew    = "renew"     // one token, renewed at two thirds of its TTL
)

// Config is one mount's complete settings. TOML keys are the snake_case of
// the flag names; see testdata/config/full.toml for every key.
type Config struct {
	URL              string `toml:"url"`
	AuthMethod       string `toml:"auth_method"`
	ClientID         string `toml:"client_id"`
	ClientSecret     string `toml:"-"` // never from the file: use client_secret_file
	ClientIDFile     string `toml:"client_id_file"`
	ClientSecretFile string `toml:"client_secret_file"`
	// Kubernetes auth: the machine identity and the JWT file, which the
	// client rereads at every login ("" = the kubelet's default path).
	IdentityID          string `toml:"identity_id"`
	KubernetesTokenPath string `toml:"kubernetes_token_path"`
	// Token auth: the access token from INFISICAL_TOKEN (never from the
	// file or a flag, like the client secret), or a file holding it.
	Token            string     `toml:"-"`
	TokenFile        string     `toml:"token_file"`
	Projects         []string   `toml:"project"`
	Envs             []string   `toml:"env"`
	Flat             bool       `toml:"flat"`
	ReadOnly         bool       `toml:"read_only"`
	RefreshInterval  Duration   `toml:"refresh_interval"`
	StateFile        string     `toml:"state_file"`      // "" = state.DefaultPath(mountpoint)
	UID              int        `toml:"uid"`             // -1 = the mounting user
	GID              int        `toml:"gid"`             // -1 = the mounting user
	FileMode         uint32     `toml:"-"`               // decoded through fileConfig as an octal string
	AllowOther       bool       `toml:"allow_other"`     // needs user_allow_other in /etc/fuse.conf unless root
	AllowNonEmpty    bool       `toml:"allow_non_empty"` // mount over a directory that holds files, hiding them
	TrimNewline      bool       `toml:"trim_newline"`
	IncludeImports   bool       `toml:"include_imports"`
	TokenPolicy      string     `toml:"token_policy"`
	LogLevel         string     `toml:"log_level"`
	LogFormat        string     `toml:"log_format"`
	MetricsAddr      string     `toml:"metrics_addr"`
	DebugFUSE        bool       `toml:"debug_fuse"`
	ServerErrorDelay Duration   `toml:"server_error_delay"`
	RateLimitDelay   Duration   `toml:"rate_limit_delay"`
	OnChange         []Hook     `toml:"on_change"`
	Templates        []Template `toml:"template"`

	// ConfigFile is the TOML file these settings were read from ("" = none),
	// so that the caller knows what to watch.
	ConfigFile string `toml:"-"`
}

// Hook is one [[on_change]] entry: after a refresh changes a secret under
// Path, run Command or send Signal.
type Hook struct {
	Path     string   `toml:"path"`     // "project/env/folder" prefix under the mount; "" = anything
	Command  []string `toml:"command"`  // argv, run without a shell
	Signal   string   `toml:"signal"`   // e.g. "SIGHUP", sent to PID or the pid in PIDFile
	PID      int      `toml:"pid"`      //
	PIDFile  string   `toml:"pid_file"` //
	Debounce Duration `toml:"debounce"` // default 1s: changes within it fire once
	Timeout  Duration `toml:"timeout"`  // default 30s: a Command still running then is killed
}

// Template is one [[template]] entry: a Go text/template (the official
// agent's functions; see package templates) rendered from the vault into a
// read-only file at Path, relative to the mount root.
type Template struct {
	Path     string   `toml:"path"`      // "rendered/app.env"
	Source   string   `toml:"source"`    // template file; or Content
	Content  string   `toml:"content"`   // the template text itself
	Mode     string   `toml:"mode"`      // octal, "0400"; "" = the mount's file mode
	OnChange []string `toml:"on_change"` // argv run (no shell) after a re-render changed the bytes
	Timeout  Duration `toml:"timeout"`   // default 30s: on_change still running then is killed
}

// Hook defaults.
const (
	DefaultHookDebounce = time.Second
	DefaultHookTimeout  = 30 * time.Second
)

// Duration is a time.Duration written as text ("30s", "1m30s") in TOML and
// flags.
type Duration struct{ time.Duration }

// UnmarshalText parses "30s"-style durations.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%sduration %q: want a number with a unit, like 30s or 5m", badValuePrefix, b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as "30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Set implements flag.Value.
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// Default returns the settings used where nothing else is given.
func Default() Config {
	return Config{
		AuthMethod:       AuthUniversal,
		RefreshInterval:  Duration{60 * time.Second},
		UID:              -1,
		GID:              -1,
		TrimNewline:      true,
		IncludeImports:   true,
		TokenPolicy:      TokenPerCycle,
		LogLevel:         "info",
		LogFormat:        "text",
		ServerErrorDelay: Duration{30 * time.Second},
		RateLimitDelay:   Duration{60 * time.Second},
	}
}

const redacted = "[REDACTED]"

// Redacted returns a copy safe to log or print: the client secret and an
// access token are replaced. The client id and identity id are not secrets
// (Infisical shows them in its UI).
func (c Config) Redacted() Config {
	if c.ClientSecret != "" {
		c.ClientSecret = redacted
	}
	if c.Token != "" {
		c.Token = redacted
	}
	c.Projects = append([]string(nil), c.Projects...)
	c.Envs = append([]string(nil), c.Envs...)
	c.OnChange = append([]Hook(nil), c.OnChange...)
	c.Templates = append([]Template(nil), c.Templates...)
	return c
}

// String prints the redacted settings, so that a stray %v never shows the
// secret.
func (c Config) String() string {
	type plain Config // no methods: avoids recursing into String
	return fmt.Sprintf("%+v", plain(c.Redacted()))
}

// GoString covers %#v the same way.
func (c Config) GoString() string { return "config.Config" + c.String() }

// LogValue makes slog print the redacted settings.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// CredentialFiles lists the credential files in use, for Watch.
func (c Config) CredentialFiles() []string {
	var out []string
	for _, f := range []string{c.ClientIDFile, c.ClientSecretFile, c.TokenFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
