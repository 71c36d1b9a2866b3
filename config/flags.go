package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Environment variables read by Resolve.
const (
	EnvConfig           = "INFISICALFS_CONFIG"
	EnvURL              = "INFISICAL_URL"
	EnvClientID         = "INFISICAL_CLIENT_ID"
	EnvClientIDAlt      = "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID" // the official CLI's name
	EnvClientIDFile     = "INFISICAL_CLIENT_ID_FILE"
	EnvClientSecret     = "INFISICAL_CLIENT_SECRET"
	EnvClientSecretAlt  = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"
	EnvClientSecretFile = "INFISICAL_CLIENT_SECRET_FILE"
	// The official CLI's and agent's names for Kubernetes and token auth.
	EnvIdentityID           = "INFISICAL_MACHINE_IDENTITY_ID"
	EnvKubernetesTokenPath  = "INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH"
	EnvToken                = "INFISICAL_TOKEN"
	EnvTokenFile            = "INFISICAL_TOKEN_FILE"
	EnvAgentConfigBase64    = "INFISICAL_AGENT_CONFIG_BASE64" // the agent's name
	maxCredentialFileLength = 64 << 10
)

// Flags holds the values of the mount flags registered by NewFlagSet. Only
// flags given on the command line count: Resolve asks the FlagSet which.
type Flags struct {
	ConfigPath string
	v          Config
	fileMode   string
	optionsErr error // the first bad -o, reported by Resolve
}

// stringList is a repeatable flag.
type stringList struct{ p *[]string }

func (s stringList) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Join(*s.p, ",")
}

func (s stringList) Set(v string) error {
	*s.p = append(*s.p, v)
	return nil
}

func (stringList) Type() string { return "string" }

// durationFlag parses "30s" without the TOML error prefix.
type durationFlag struct{ d *Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return shortDuration(f.d.Duration)
}

func (durationFlag) Type() string { return "duration" }

// shortDuration writes 60s as "1m", not Go's "1m0s", for --help.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a number with a unit, like 30s or 5m")
	}
	f.d.Duration = v
	return nil
}

// NewFlagSet registers every mount flag. There is deliberately no
// --client-secret: command lines are visible to every user in ps.
//
// The set is pflag's (GNU style: flags anywhere among the arguments,
// --name=value, -o); cmd/infisicalfs hands it to cobra, which builds
// --help, the completions and the man page from these same definitions.
func NewFlagSet(name string) (*pflag.FlagSet, *Flags) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	f := &Flags{v: Default()}
	v := &f.v
	fs.StringVar(&f.ConfigPath, "config", "", "TOML config `file` (also $"+EnvConfig+"); flags beat environment beats file")
	fs.StringVar(&v.URL, "url", "", "Infisical site `URL`, e.g. https://app.infisical.com (also $"+EnvURL+")")
	fs.StringVar(&v.AuthMethod, "auth-method", v.AuthMethod, "how to log in: universal (client id + secret), kubernetes (identity id + service-account JWT) or token (a given access token)")
	fs.StringVar(&v.IdentityID, "identity-id", "", "machine identity `id` for Kubernetes auth (also $"+EnvIdentityID+")")
	fs.StringVar(&v.KubernetesTokenPath, "kubernetes-token-path", "", "service-account JWT `file`, reread at every login (default /var/run/secrets/kubernetes.io/serviceaccount/token; also $"+EnvKubernetesTokenPath+")")
	fs.StringVar(&v.TokenFile, "token-file", "", "`file` holding the access token for token auth, reread at every login (also $"+EnvTokenFile+", or the value in $"+EnvToken+")")
	fs.StringVar(&v.ClientID, "client-id", "", "universal-auth client `id` (also $"+EnvClientID+")")
	fs.StringVar(&v.ClientIDFile, "client-id-file", "", "`file` holding the client id; watched for rotation (also $"+EnvClientIDFile+")")
	fs.StringVar(&v.ClientSecretFile, "client-secret-file", "", "`file` holding the client secret; watched for rotation (also $"+EnvClientSecretFile+", or the value in $"+EnvClientSecret+")")
	fs.Var(stringList{&v.Projects}, "project", "project `slug or id` to mount; repeat for more (default: every project the identity can read)")
	fs.Var(stringList{&v.Envs}, "env", "environment `slug` to mount; repeat for more (default: all)")
	fs.BoolVar(&v.Flat, "flat", v.Flat, "mount one project's one environment at the mount point itself (needs exactly one --project and --env)")
	fs.BoolVar(&v.ReadOnly, "read-only", v.ReadOnly, "refuse writes; reads are served from the kernel cache")
	fs.Var(durationFlag{&v.RefreshInterval}, "refresh-interval", "how often to sync from Infisical (at least 1s)")
	fs.StringVar(&v.StateFile, "state-file", "", "sync state `file` (default $XDG_STATE_HOME/infisicalfs/<mount point>/infisical_sync_state.json, or /var/lib/infisicalfs/... without a home)")
	fs.Var(durationFlag{&v.StateFlushInterval}, "state-flush-interval", "longest wait before counters and sync times alone are written to the state file; changed secrets are written at once")
	fs.StringVar(&v.StateHash, "state-hash", v.StateHash, "state file hashes: hmac-sha256 (keyed per mount) or sha256 (the original plain hash)")
	fs.IntVar(&v.UID, "uid", v.UID, "owner `uid` of files (-1: the mounting user)")
	fs.IntVar(&v.GID, "gid", v.GID, "group `gid` of files (-1: the mounting user)")
	fs.StringVar(&f.fileMode, "file-mode", "", "file permission `mode` in octal, e.g. 0440 (default 0600, or 0400 when read-only)")
	fs.BoolVar(&v.AllowOther, "allow-other", v.AllowOther, "let other users access the mount (non-root needs user_allow_other in /etc/fuse.conf)")
	fs.BoolVar(&v.AllowNonEmpty, "allow-non-empty", v.AllowNonEmpty, "mount over a directory that is not empty (its files are hidden while mounted)")
	fs.BoolVar(&v.TrimNewline, "trim-newline", v.TrimNewline, "remove one trailing newline from written values (--trim-newline=false keeps it)")
	fs.BoolVar(&v.IncludeImports, "include-imports", v.IncludeImports, "show imported secrets, read-only, beside a folder's own")
	fs.BoolVar(&v.ExpandReferences, "expand-references", v.ExpandReferences, "show values with ${...} references expanded as Infisical's clients get them (--expand-references=false shows raw values)")
	fs.StringVar(&v.TokenPolicy, "token-policy", v.TokenPolicy, "access tokens: per-cycle (fresh token each sync, old one revoked) or renew")
	fs.StringVar(&v.LogLevel, "log-level", v.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&v.LogFormat, "log-format", v.LogFormat, "log `format`: text or json")
	fs.StringVar(&v.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on this `address`, e.g. 127.0.0.1:9464")
	fs.Var(durationFlag{&v.HealthzMaxStale}, "healthz-max-stale", "/healthz answers 503 once the last successful sync is older than this (0: 5 refresh intervals, at least 5m)")
	fs.BoolVar(&v.DebugFUSE, "debug-fuse", v.DebugFUSE, "trace FUSE requests; WARNING: prints secret values")
	fs.Var(durationFlag{&v.ServerErrorDelay}, "server-error-delay", "wait before retrying a 5xx answer")
	fs.StringVar(&v.AgentConfig, "agent-config", "", "the official Infisical agent's YAML config `file`: its address, auth, templates, polling interval and sinks (also $"+EnvAgentConfigBase64+", base64)")
	fs.Var(durationFlag{&v.RateLimitDelay}, "rate-limit-delay", "wait after a 429 without Retry-After")
	fs.StringVar(&v.AuditLog, "audit-log", "", "audit log `file` of decided opens (JSON lines, 0600; - for stderr/the journal)")
	fs.Var(&v.AuditMaxSize, "audit-max-size", "rotate the audit log at this `size`, e.g. 100MiB (0: never)")
	fs.IntVar(&v.AuditKeep, "audit-keep", v.AuditKeep, "rotated audit files to keep")
	fs.StringVar(&v.Audit, "audit", v.Audit, "which opens are audited: daemon-opens or all-opens (every open reaches the daemon)")
	fs.VarP(&mountOptions{fs: fs, err: &f.optionsErr}, "options", "o", "mount options as mount(8) writes them: the config file's keys, comma-separated, e.g. -o ro,refresh_interval=30s,env=dev (ro, nonempty and the generic fstab options are understood)")
	return fs, f
}

// Resolve combines, from highest precedence: flags given on fs's command
// line, the environment (through getenv), the config file (--config or
// $INFISICALFS_CONFIG), defaults. It then reads the credential files.
// Call it again to reload: it rereads the file and the credential files.
//
// A flag counts as given when pflag marks it Changed, so fs may be the
// set NewFlagSet returned or any set its flags were added to (cobra's).
func Resolve(fs *pflag.FlagSet, f *Flags, getenv func(string) string) (Config, error) {
	if f.optionsErr != nil {
		return Config{}, f.optionsErr
	}
	set := map[string]bool{}
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed {
			set[fl.Name] = true
		}
	})

	c := Default()
	path := f.ConfigPath
	if path == "" {
		path = getenv(EnvConfig)
	}
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return Config{}, fmt.Errorf("config path: %w", err)
		}
		if c, _, err = Load(abs); err != nil {
			return Config{}, err
		}
		if c.ClientID != "" && c.ClientIDFile != "" {
			return Config{}, fmt.Errorf("config %s: set client_id or client_id_file, not both", abs)
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return Config{}, err
	}
	if err := applyFlags(&c, f, set); err != nil {
		return Config{}, err
	}
	if err := readCredentials(&c); err != nil {
		return Config{}, err
	}
	c.normalize()
	return c, nil
}

// credential picks a credential from the environment: a value (under either
// name) or a file, never both.
func credential(getenv func(string) string, name, alt, fileVar string) (value, file string, err error) {
	value = getenv(name)
	if value == "" {
		value = getenv(alt)
	}
	file = getenv(fileVar)
	if value != "" && file != "" {
		return "", "", fmt.Errorf("both %s and %s are set: set only one", name, fileVar)
	}
	return value, file, nil
}

func applyEnv(c *Config, getenv func(string) string) error {
	if u := getenv(EnvURL); u != "" {
		c.URL = u
	}
	id, idFile, err := credential(getenv, EnvClientID, EnvClientIDAlt, EnvClientIDFile)
	if err != nil {
		return err
	}
	switch {
	case id != "":
		c.ClientID, c.ClientIDFile = id, ""
	case idFile != "":
		c.ClientID, c.ClientIDFile = "", idFile
	}
	secret, secretFile, err := credential(getenv, EnvClientSecret, EnvClientSecretAlt, EnvClientSecretFile)
	if err != nil {
		return err
	}
	switch {
	case secret != "":
		c.ClientSecret, c.ClientSecretFile = secret, ""
	case secretFile != "":
		c.ClientSecret, c.ClientSecretFile = "", secretFile
	}
	if v := getenv(EnvIdentityID); v != "" {
		c.IdentityID = v
	}
	if v := getenv(EnvKubernetesTokenPath); v != "" {
		c.KubernetesTokenPath = v
	}
	c.AgentConfigBase64 = getenv(EnvAgentConfigBase64)
	tok, tokFile, err := credential(getenv, EnvToken, EnvToken, EnvTokenFile)
	if err != nil {
		return err
	}
	switch {
	case tok != "":
		c.Token, c.TokenFile = tok, ""
	case tokFile != "":
		c.Token, c.TokenFile = "", tokFile
	}
	return nil
}

func applyFlags(c *Config, f *Flags, set map[string]bool) error {
	v := &f.v
	if set["client-id"] && set["client-id-file"] {
		return errors.New("--client-id and --client-id-file are both given: give only one")
	}
	strs := map[string][2]*string{
		"url": {&c.URL, &v.URL}, "state-file": {&c.StateFile, &v.StateFile},
		"token-policy": {&c.TokenPolicy, &v.TokenPolicy}, "log-level": {&c.LogLevel, &v.LogLevel},
		"log-format": {&c.LogFormat, &v.LogFormat}, "metrics-addr": {&c.MetricsAddr, &v.MetricsAddr},
		"auth-method": {&c.AuthMethod, &v.AuthMethod}, "identity-id": {&c.IdentityID, &v.IdentityID},
		"kubernetes-token-path": {&c.KubernetesTokenPath, &v.KubernetesTokenPath},
		"state-hash":            {&c.StateHash, &v.StateHash},
		"agent-config":          {&c.AgentConfig, &v.AgentConfig},
		"audit-log":             {&c.AuditLog, &v.AuditLog}, "audit": {&c.Audit, &v.Audit},
	}
	for name, p := range strs {
		if set[name] {
			*p[0] = *p[1]
		}
	}
	bools := map[string][2]*bool{
		"flat": {&c.Flat, &v.Flat}, "read-only": {&c.ReadOnly, &v.ReadOnly},
		"allow-other": {&c.AllowOther, &v.AllowOther}, "allow-non-empty": {&c.AllowNonEmpty, &v.AllowNonEmpty},
		"trim-newline":    {&c.TrimNewline, &v.TrimNewline},
		"include-imports": {&c.IncludeImports, &v.IncludeImports}, "debug-fuse": {&c.DebugFUSE, &v.DebugFUSE},
		"expand-references": {&c.ExpandReferences, &v.ExpandReferences},
	}
	for name, p := range bools {
		if set[name] {
			*p[0] = *p[1]
		}
	}
	durs := map[string][2]*Duration{
		"refresh-interval":     {&c.RefreshInterval, &v.RefreshInterval},
		"server-error-delay":   {&c.ServerErrorDelay, &v.ServerErrorDelay},
		"rate-limit-delay":     {&c.RateLimitDelay, &v.RateLimitDelay},
		"state-flush-interval": {&c.StateFlushInterval, &v.StateFlushInterval},
		"healthz-max-stale":    {&c.HealthzMaxStale, &v.HealthzMaxStale},
	}
	for name, p := range durs {
		if set[name] {
			*p[0] = *p[1]
		}
	}
	if set["uid"] {
		c.UID = v.UID
	}
	if set["audit-max-size"] {
		c.AuditMaxSize = v.AuditMaxSize
	}
	if set["audit-keep"] {
		c.AuditKeep = v.AuditKeep
	}
	if set["gid"] {
		c.GID = v.GID
	}
	if set["project"] {
		c.Projects = append([]string(nil), v.Projects...)
	}
	if set["env"] {
		c.Envs = append([]string(nil), v.Envs...)
	}
	if set["file-mode"] {
		m, err := ParseFileMode(f.fileMode)
		if err != nil {
			return fmt.Errorf("--file-mode: %w", err)
		}
		c.FileMode = m
	}
	if set["client-id"] {
		c.ClientID, c.ClientIDFile = v.ClientID, ""
	}
	if set["client-id-file"] {
		c.ClientID, c.ClientIDFile = "", v.ClientIDFile
	}
	if set["client-secret-file"] {
		c.ClientSecret, c.ClientSecretFile = "", v.ClientSecretFile
	}
	if set["token-file"] {
		c.Token, c.TokenFile = "", v.TokenFile
	}
	return nil
}

// readCredentials reads the credential files named in c. One trailing
// newline is removed (echo and most editors add one). The token file and
// the Kubernetes JWT file are not read here: the client rereads them at
// every login, so only their paths are made absolute.
// ReadCredentials reads the credential files c names into c, as Resolve
// does: for settings changed after Resolve (an agent config).
func (c *Config) ReadCredentials() error {
	if err := readCredentials(c); err != nil {
		return err
	}
	c.normalize()
	return nil
}

func readCredentials(c *Config) error {
	for _, p := range []*string{&c.TokenFile, &c.KubernetesTokenPath, &c.AgentConfig} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("credential file %s: %w", *p, err)
		}
		*p = abs
	}
	for _, cr := range []struct {
		what  string
		file  *string
		value *string
	}{
		{"client id", &c.ClientIDFile, &c.ClientID},
		{"client secret", &c.ClientSecretFile, &c.ClientSecret},
	} {
		if *cr.file == "" {
			continue
		}
		abs, err := filepath.Abs(*cr.file)
		if err != nil {
			return fmt.Errorf("%s file: %w", cr.what, err)
		}
		*cr.file = abs
		v, err := ReadCredentialFile(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", cr.what, err)
		}
		*cr.value = v
	}
	return nil
}

// ReadCredentialFile reads a file holding one credential, without one
// trailing newline. Its errors never contain the content.
func ReadCredentialFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read credential file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxCredentialFileLength+1))
	if err != nil {
		return "", fmt.Errorf("read credential file %s: %w", path, err)
	}
	defer clear(b)
	if len(b) > maxCredentialFileLength {
		return "", fmt.Errorf("credential file %s is over %d bytes: is it the right file?", path, maxCredentialFileLength)
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	return s, nil
}
