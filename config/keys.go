package config

import (
	"reflect"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
)

// Live is what a running mount can change without a remount; the daemon
// implements it. Each method is called only for a key whose value changed.
type Live interface {
	SetRefreshInterval(d time.Duration)
	SetLogLevel(level string)
	SetCredentials(clientID, clientSecret string)
	SetFilter(projects, envs []string)
	SetHooks(hooks []Hook)
	SetTemplates(ts []Template)
	// SetAccess installs new [[access]] rules; rules it cannot apply
	// (they need a remount) it logs, keeping the old ones.
	SetAccess(rules []access.Spec)
}

// Key is one setting: its TOML name, the Config field holding it, and how a
// running mount applies a change. A nil Apply means the change waits for
// the next mount (the kernel, the FUSE options, the HTTP client or a
// listener fixed it at mount time).
type Key struct {
	Name  string
	Field string
	Apply func(l Live, c Config)
	// LiveIf narrows Apply: where it reports false the change needs a
	// remount after all.
	LiveIf func(old, new Config) bool
}

func setCredentials(l Live, c Config) { l.SetCredentials(c.ClientID, c.ClientSecret) }
func setFilter(l Live, c Config)      { l.SetFilter(c.Projects, c.Envs) }

// notFlat: in flat mode the project and env are the mount's root, so
// changing them is a different mount.
func notFlat(old, new Config) bool { return !old.Flat && !new.Flat }

// Keys is every setting, once: Diff, Reload and the documentation test read
// it, so classifying a key and applying it cannot disagree.
//
// Reload applies live keys in this order, so credentials come first: a
// new interval starts a sync at once, which must log in with the new ones.
var Keys = []Key{
	{Name: "client_id", Field: "ClientID", Apply: setCredentials},
	{Name: "client_secret", Field: "ClientSecret", Apply: setCredentials},
	{Name: "client_id_file", Field: "ClientIDFile", Apply: setCredentials},
	{Name: "client_secret_file", Field: "ClientSecretFile", Apply: setCredentials},
	{Name: "refresh_interval", Field: "RefreshInterval", Apply: func(l Live, c Config) { l.SetRefreshInterval(c.RefreshInterval.Duration) }},
	{Name: "log_level", Field: "LogLevel", Apply: func(l Live, c Config) { l.SetLogLevel(c.LogLevel) }},
	{Name: "project", Field: "Projects", Apply: setFilter, LiveIf: notFlat},
	{Name: "env", Field: "Envs", Apply: setFilter, LiveIf: notFlat},
	{Name: "on_change", Field: "OnChange", Apply: func(l Live, c Config) { l.SetHooks(c.OnChange) }},
	// Templates reload live once the mount has some: a mount started
	// without any shows no template files, and adding the first needs a
	// remount (as does removing the last).
	{Name: "template", Field: "Templates", Apply: func(l Live, c Config) { l.SetTemplates(c.Templates) },
		LiveIf: func(old, new Config) bool { return len(old.Templates) > 0 && len(new.Templates) > 0 }},

	// The client's retry waits are fixed when it is made.
	{Name: "server_error_delay", Field: "ServerErrorDelay"},
	{Name: "rate_limit_delay", Field: "RateLimitDelay"},
	{Name: "url", Field: "URL"},
	{Name: "read_only", Field: "ReadOnly"},
	{Name: "flat", Field: "Flat"},
	{Name: "allow_other", Field: "AllowOther"},
	{Name: "allow_non_empty", Field: "AllowNonEmpty"},
	{Name: "uid", Field: "UID"},
	{Name: "gid", Field: "GID"},
	{Name: "file_mode", Field: "FileMode"},
	{Name: "state_file", Field: "StateFile"},
	{Name: "state_hash", Field: "StateHash"}, // the hasher is fixed when the file opens
	{Name: "state_flush_interval", Field: "StateFlushInterval"},
	{Name: "metrics_addr", Field: "MetricsAddr"},
	{Name: "healthz_max_stale", Field: "HealthzMaxStale"},
	{Name: "trim_newline", Field: "TrimNewline"},
	{Name: "include_imports", Field: "IncludeImports"},
	// Expanded values are computed as listings are applied.
	{Name: "expand_references", Field: "ExpandReferences"},
	{Name: "token_policy", Field: "TokenPolicy"},
	{Name: "log_format", Field: "LogFormat"},
	{Name: "debug_fuse", Field: "DebugFUSE"},
	// The auth method and its settings are fixed when the client is built.
	// A rewritten token or JWT file needs no remount: the client rereads it
	// at every login; only a new path does.
	{Name: "auth_method", Field: "AuthMethod"},
	{Name: "identity_id", Field: "IdentityID"},
	{Name: "kubernetes_token_path", Field: "KubernetesTokenPath"},
	{Name: "token_file", Field: "TokenFile"},
	{Name: "token", Field: "Token"}, // from the environment, which a reload does not change
	// The agent config's settings apply through the keys above, at every
	// (re)load; naming another file is another mount.
	{Name: "agent_config", Field: "AgentConfig"},
	{Name: "agent_config_base64", Field: "AgentConfigBase64"}, // from the environment
	// Rules reload live: the kernel's attributes they change are
	// invalidated. A read-only mount answering opens in the kernel keeps
	// its rules when the new ones need the daemon (SetAccess logs it).
	{Name: "access", Field: "Access", Apply: func(l Live, c Config) { l.SetAccess(c.Access) }},
	// The audit log's file and coverage are fixed at mount.
	{Name: "audit", Field: "Audit"},
	{Name: "audit_log", Field: "AuditLog"},
	{Name: "audit_max_size", Field: "AuditMaxSize"},
	{Name: "audit_keep", Field: "AuditKeep"},
}

func (k Key) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByName(k.Field)
}

func (k Key) changed(old, new Config) bool {
	return !reflect.DeepEqual(k.field(&old).Interface(), k.field(&new).Interface())
}

func (k Key) live(old, new Config) bool {
	return k.Apply != nil && (k.LiveIf == nil || k.LiveIf(old, new))
}

// Diff lists the keys that differ between two configs, split into those
// the running mount can apply live and those that need a remount.
func Diff(old, new Config) (hot, remount []string) {
	for _, k := range Keys {
		switch {
		case !k.changed(old, new):
		case k.live(old, new):
			hot = append(hot, k.Name)
		default:
			remount = append(remount, k.Name)
		}
	}
	return hot, remount
}

// Reload applies to l what changed from running to next and can change
// live, each Apply once even where several keys share it (the credential
// files). It returns the keys applied, those that wait for a remount, and
// the settings now in effect: next's live values over running's others, so
// later diffs compare against what really runs.
func Reload(l Live, running, next Config) (applied, remount []string, now Config) {
	now = running
	done := map[uintptr]bool{}
	for _, k := range Keys {
		if !k.changed(running, next) {
			continue
		}
		if !k.live(running, next) {
			remount = append(remount, k.Name)
			continue
		}
		k.field(&now).Set(k.field(&next))
		applied = append(applied, k.Name)
	}
	// Apply from the settings now in effect, after every live field moved,
	// so that setCredentials sees the new id and secret together.
	for _, k := range Keys {
		if !k.changed(running, next) || !k.live(running, next) {
			continue
		}
		p := reflect.ValueOf(k.Apply).Pointer()
		if done[p] {
			continue
		}
		done[p] = true
		k.Apply(l, now)
	}
	return applied, remount, now
}
