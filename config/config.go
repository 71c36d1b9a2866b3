// Package config gathers infisicalfs settings from a TOML file, the
// environment and command-line flags, validates them, and watches the config
// and credential files so that some settings can change without a remount.
package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
)

// Token policies (token_policy).
const (
	TokenPerCycle = "per-cycle" // a fresh access token each sync cycle, the old one revoked
	TokenRenew    = "renew"     // one token, renewed at two thirds of its TTL
)

// Config is one mount's complete settings. TOML keys are the snake_case of
// the flag names; see testdata/config/full.toml for every key.
type Config struct {
	URL              string   `toml:"url"`
	ClientID         string   `toml:"client_id"`
	ClientSecret     string   `toml:"-"` // never from the file: use client_secret_file
	ClientIDFile     string   `toml:"client_id_file"`
	ClientSecretFile string   `toml:"client_secret_file"`
	Projects         []string `toml:"project"`
	Envs             []string `toml:"env"`
	Flat             bool     `toml:"flat"`
	ReadOnly         bool     `toml:"read_only"`
	RefreshInterval  Duration `toml:"refresh_interval"`
	StateFile        string   `toml:"state_file"`  // "" = state.DefaultPath(mountpoint)
	UID              int      `toml:"uid"`         // -1 = the mounting user
	GID              int      `toml:"gid"`         // -1 = the mounting user
	FileMode         uint32   `toml:"-"`           // decoded through fileConfig as an octal string
	AllowOther       bool     `toml:"allow_other"` // needs user_allow_other in /etc/fuse.conf unless root
	TrimNewline      bool     `toml:"trim_newline"`
	IncludeImports   bool     `toml:"include_imports"`
	TokenPolicy      string   `toml:"token_policy"`
	LogLevel         string   `toml:"log_level"`
	LogFormat        string   `toml:"log_format"`
	MetricsAddr      string   `toml:"metrics_addr"`
	DebugFUSE        bool     `toml:"debug_fuse"`
	ServerErrorDelay Duration `toml:"server_error_delay"`
	RateLimitDelay   Duration `toml:"rate_limit_delay"`
	OnChange         []Hook   `toml:"on_change"`

	// Access rules and the audit log (issue 17; see access/ and audit/).
	Access       []access.Spec `toml:"access"`         // [[access]] tables, first match wins
	AuditLog     string        `toml:"audit_log"`      // "" off, "-" stderr, else a file (0600)
	AuditMaxSize ByteSize      `toml:"audit_max_size"` // rotate at this size; 0 never
	AuditKeep    int           `toml:"audit_keep"`     // rotated files kept
	Audit        string        `toml:"audit"`          // AuditDaemonOpens or AuditAllOpens

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

// Audit coverage (audit).
const (
	AuditDaemonOpens = "daemon-opens" // opens that reach the daemon anyway, and every denial
	AuditAllOpens    = "all-opens"    // every open reaches the daemon (no kernel-cached opens)
)

// ByteSize is a size written as text in TOML and flags: "100MiB", "10MB",
// "4096".
type ByteSize struct{ Bytes int64 }

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}

// UnmarshalText parses "100MiB"-style sizes.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return fmt.Errorf("%ssize %q: want a number of bytes with an optional unit, like 100MiB", badValuePrefix, t)
	}
	b.Bytes = v * mult
	return nil
}

// MarshalText writes the size in bytes.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(b.Bytes, 10)), nil }

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error { return b.UnmarshalText([]byte(s)) }

// String implements flag.Value.
func (b *ByteSize) String() string {
	if b == nil {
		return ""
	}
	return strconv.FormatInt(b.Bytes, 10)
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
		AuditMaxSize:     ByteSize{100 << 20},
		AuditKeep:        5,
		Audit:            AuditDaemonOpens,
	}
}

const redacted = "[REDACTED]"

// Redacted returns a copy safe to log or print: the client secret is
// replaced. The client id is not a secret (Infisical shows it in its UI).
func (c Config) Redacted() Config {
	if c.ClientSecret != "" {
		c.ClientSecret = redacted
	}
	c.Projects = append([]string(nil), c.Projects...)
	c.Envs = append([]string(nil), c.Envs...)
	c.OnChange = append([]Hook(nil), c.OnChange...)
	c.Access = append([]access.Spec(nil), c.Access...)
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
	for _, f := range []string{c.ClientIDFile, c.ClientSecretFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
