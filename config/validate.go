package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infisicalfs/infisicalfs/access"
)

// Validate checks every setting and reports each problem on its own line,
// naming the setting and where it can be set. Messages never contain a
// credential.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.URL == "":
		bad("missing Infisical URL: set %s, --url or url", EnvURL)
	default:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url %q: want http(s)://host[:port], e.g. https://app.infisical.com", redactURL(c.URL))
		} else if u.User != nil {
			bad("url: leave credentials out of the URL; use the client id and secret settings")
		}
	}
	switch c.AuthMethod {
	case AuthUniversal:
		// The client id and secret are needed only here.
		switch {
		case c.ClientID == "" && c.ClientIDFile != "":
			bad("client id file %s is empty", c.ClientIDFile)
		case c.ClientID == "":
			bad("missing client id: set %s, %s or client_id_file", EnvClientID, EnvClientIDFile)
		}
		switch {
		case c.ClientSecret == "" && c.ClientSecretFile != "":
			bad("client secret file %s is empty", c.ClientSecretFile)
		case c.ClientSecret == "":
			bad("missing client secret: set %s, %s or client_secret_file", EnvClientSecret, EnvClientSecretFile)
		}
	case AuthKubernetes:
		if strings.TrimSpace(c.IdentityID) == "" {
			bad("auth_method kubernetes needs the machine identity id: set %s, --identity-id or identity_id", EnvIdentityID)
		}
		if c.KubernetesTokenPath != "" && !filepath.IsAbs(c.KubernetesTokenPath) {
			bad("kubernetes_token_path %q: want an absolute path", c.KubernetesTokenPath)
		}
	case AuthToken:
		switch {
		case c.Token != "" && c.TokenFile != "":
			bad("auth_method token: set %s or token_file (%s), not both", EnvToken, EnvTokenFile)
		case strings.TrimSpace(c.Token) == "" && c.TokenFile == "":
			bad("auth_method token needs an access token: set %s, %s, --token-file or token_file", EnvToken, EnvTokenFile)
		}
	default:
		bad("auth_method %q: want %q, %q or %q", c.AuthMethod, AuthUniversal, AuthKubernetes, AuthToken)
	}
	if c.RefreshInterval.Duration < time.Second {
		bad("refresh_interval %s: must be at least 1s", c.RefreshInterval.Duration)
	}
	if c.HealthzMaxStale.Duration < 0 {
		bad("healthz_max_stale %s: must not be negative", c.HealthzMaxStale.Duration)
	}
	if c.StateFlushInterval.Duration < time.Second {
		bad("state_flush_interval %s: must be at least 1s", c.StateFlushInterval.Duration)
	}
	if c.StateHash != StateHashHMAC && c.StateHash != StateHashSHA256 {
		bad("state_hash %q: want %q (keyed, the default) or %q (the original plain hash)", c.StateHash, StateHashHMAC, StateHashSHA256)
	}
	if c.ServerErrorDelay.Duration < 0 {
		bad("server_error_delay %s: must not be negative", c.ServerErrorDelay.Duration)
	}
	if c.RateLimitDelay.Duration < 0 {
		bad("rate_limit_delay %s: must not be negative", c.RateLimitDelay.Duration)
	}
	if c.TokenPolicy != TokenPerCycle && c.TokenPolicy != TokenRenew {
		bad("token_policy %q: want %q or %q", c.TokenPolicy, TokenPerCycle, TokenRenew)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format %q: want text or json", c.LogFormat)
	}
	if c.Flat && (len(c.Projects) != 1 || len(c.Envs) != 1) {
		bad("flat needs exactly one project and one env (have %d projects, %d envs): set --project and --env once each", len(c.Projects), len(c.Envs))
	}
	for _, p := range c.Projects {
		if strings.TrimSpace(p) == "" || strings.Contains(p, "/") {
			bad("project %q: want a project slug or id", p)
		}
	}
	for _, e := range c.Envs {
		if strings.TrimSpace(e) == "" || strings.Contains(e, "/") {
			bad("env %q: want an environment slug", e)
		}
	}
	if c.UID < -1 {
		bad("uid %d: want a user id, or -1 for the mounting user", c.UID)
	}
	if c.GID < -1 {
		bad("gid %d: want a group id, or -1 for the mounting user", c.GID)
	}
	if c.FileMode > 0o777 {
		bad("file_mode %s: only permission bits (up to 0777) are allowed", FormatFileMode(c.FileMode))
	}
	// Rules are compiled here only to check them (names resolve, globs
	// parse); the mount compiles them again with its owner and modes.
	if _, err := access.Compile(c.Access, access.Defaults{}); err != nil {
		errs = append(errs, err)
	}
	if c.Audit != AuditDaemonOpens && c.Audit != AuditAllOpens {
		bad("audit %q: want %q or %q", c.Audit, AuditDaemonOpens, AuditAllOpens)
	}
	if c.AuditKeep < 0 {
		bad("audit_keep %d: must not be negative", c.AuditKeep)
	}
	for i, h := range c.OnChange {
		if err := h.validate(); err != nil {
			bad("on_change[%d] (path %q): %w", i, h.Path, err)
		}
	}
	seen := map[string]int{}
	for i, t := range c.Templates {
		if err := t.validate(); err != nil {
			bad("template[%d] (path %q): %w", i, t.Path, err)
		}
		if j, ok := seen[t.Path]; ok && t.Path != "" {
			bad("template[%d] and template[%d] both have path %q", j, i, t.Path)
		}
		seen[t.Path] = i
	}
	return errors.Join(errs...)
}

func (t Template) validate() error {
	switch {
	case t.Path == "":
		return errors.New("path: name where the file appears, relative to the mount root")
	case (t.Source == "") == (t.Content == ""):
		return errors.New("set source (a template file) or content, not both")
	case len(t.OnChange) > 0 && t.OnChange[0] == "":
		return errors.New("on_change: the first element is the program to run")
	case t.Timeout.Duration < 0:
		return errors.New("timeout must not be negative")
	}
	for _, c := range strings.Split(t.Path, "/") {
		if c == "" || c == "." || c == ".." {
			return errors.New("path: want a clean relative path like rendered/app.env")
		}
	}
	if t.Mode != "" {
		if _, err := ParseFileMode(t.Mode); err != nil {
			return fmt.Errorf("mode: %w", err)
		}
	}
	return nil
}

func (h Hook) validate() error {
	switch {
	case len(h.Command) > 0 && h.Signal != "":
		return errors.New("set command or signal, not both")
	case len(h.Command) == 0 && h.Signal == "":
		return errors.New("set command or signal")
	case len(h.Command) > 0 && h.Command[0] == "":
		return errors.New("command: the first element is the program to run")
	}
	if h.Signal != "" {
		if _, err := ParseSignal(h.Signal); err != nil {
			return err
		}
		switch {
		case h.PID > 0 && h.PIDFile != "":
			return errors.New("set pid or pid_file, not both")
		case h.PID <= 0 && h.PIDFile == "":
			return errors.New("signal needs pid or pid_file")
		}
	}
	if h.Debounce.Duration < 0 || h.Timeout.Duration < 0 {
		return errors.New("debounce and timeout must not be negative")
	}
	return nil
}

// ParseSignal reads a signal name: "SIGHUP", "HUP" or "hup".
func ParseSignal(name string) (unix.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	s := unix.SignalNum(n)
	if s == 0 {
		return 0, fmt.Errorf("signal %q: unknown; want a name like SIGHUP or SIGUSR1", name)
	}
	return s, nil
}

// redactURL drops any userinfo from a URL before it is shown.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	if i := strings.Index(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}
