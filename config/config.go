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

// Auth methods (auth_method).
const (
	AuthUniversal  = "universal"  // client id + client secret (the default)
	AuthKubernetes = "kubernetes" // identity_id + the pod's service-account JWT
	AuthToken      = "token"      // a given access token (INFISICAL_TOKEN or token_file)
)

// State file hash schemes (state_hash); the names of state.HashHMAC and
// state.HashSHA256.
const (
	StateHashHMAC   = "hmac-sha256" // keyed, per mount: the default
	StateHashSHA256 = "sha256"      // the original design's plain hash, for tools that expect it
)

// MaxStale is the age of the last successful sync past which /healthz
// reports the mount unhealthy: healthz_max_stale, or by default five
// refresh intervals and at least five minutes, so that one or two failed
// cycles do not make a probe restart a mount that still serves good values.
func (c Config) MaxStale() time.Duration {
	if c.HealthzMaxStale.Duration > 0 {
		return c.HealthzMaxStale.Duration
	}
	return max(5*c.RefreshInterval.Duration, 5*time.Minute)
}

// DefaultStateFlushInterval is state_flush_interval's default.
const DefaultStateFlushInterval = 5 * time.Minute

// Token policies (token_policy).
const (
	TokenPerCycle = "per-cycle" // a fresh access token each sync cycle, the old one revoked
	TokenRenew    = "renew"     // one token, renewed at two thirds of its TTL
)

// Config is one mount's complete settings. TOML keys are the snake_case of
// the flag names; 'infisicalfs mount --help-config' lists every key.
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
	Token           string   `toml:"-"`
	TokenFile       string   `toml:"token_file"`
	Projects        []string `toml:"project"`
	Envs            []string `toml:"env"`
	Flat            bool     `toml:"flat"`
	ReadOnly        bool     `toml:"read_only"`
	RefreshInterval Duration `toml:"refresh_interval"`
	StateFile       string   `toml:"state_file"` // "" = state.DefaultPath(mountpoint)
	// StateFlushInterval: counters and sync times wait this long before the
	// state file is rewritten for them alone (records rewrite it at once).
	StateFlushInterval Duration `toml:"state_flush_interval"`
	StateHash          string   `toml:"state_hash"`      // StateHashHMAC or StateHashSHA256
	UID                int      `toml:"uid"`             // -1 = the mounting user
	GID                int      `toml:"gid"`             // -1 = the mounting user
	FileMode           uint32   `toml:"-"`               // decoded through fileConfig as an octal string
	AllowOther         bool     `toml:"allow_other"`     // needs user_allow_other in /etc/fuse.conf unless root
	AllowNonEmpty      bool     `toml:"allow_non_empty"` // mount over a directory that holds files, hiding them
	TrimNewline        bool     `toml:"trim_newline"`
	IncludeImports     bool     `toml:"include_imports"`
	ExpandReferences   bool     `toml:"expand_references"` // false: files show raw values, as before
	TokenPolicy        string   `toml:"token_policy"`
	LogLevel           string   `toml:"log_level"`
	LogFormat          string   `toml:"log_format"`
	MetricsAddr        string   `toml:"metrics_addr"`
	// HealthzMaxStale: /healthz answers 503 once the last successful sync
	// is older than this; 0 means 5 refresh intervals, at least 5m.
	HealthzMaxStale  Duration   `toml:"healthz_max_stale"`
	DebugFUSE        bool       `toml:"debug_fuse"`
	ServerErrorDelay Duration   `toml:"server_error_delay"`
	RateLimitDelay   Duration   `toml:"rate_limit_delay"`
	OnChange         []Hook     `toml:"on_change"`
	Templates        []Template `toml:"template"`
	// AgentConfig is the official Infisical agent's YAML config
	// (--agent-config): its address, auth, templates, polling interval
	// and sinks take the place of the same settings here (package
	// agentconfig; the daemon applies it). AgentConfigBase64 is the same
	// from $INFISICAL_AGENT_CONFIG_BASE64, as the agent reads it.
	AgentConfig       string `toml:"agent_config"`
	AgentConfigBase64 string `toml:"-"`

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

// Type names the value in --help (pflag.Value).
func (*ByteSize) Type() string { return "size" }

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
		AuthMethod:         AuthUniversal,
		RefreshInterval:    Duration{60 * time.Second},
		StateFlushInterval: Duration{DefaultStateFlushInterval},
		StateHash:          StateHashHMAC,
		UID:                -1,
		GID:                -1,
		TrimNewline:        true,
		IncludeImports:     true,
		ExpandReferences:   true,
		TokenPolicy:        TokenPerCycle,
		LogLevel:           "info",
		LogFormat:          "text",
		ServerErrorDelay:   Duration{30 * time.Second},
		RateLimitDelay:     Duration{60 * time.Second},
		AuditMaxSize:       ByteSize{100 << 20},
		AuditKeep:          5,
		Audit:              AuditDaemonOpens,
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
	for _, f := range []string{c.ClientIDFile, c.ClientSecretFile, c.TokenFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
