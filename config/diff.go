package config

import (
	"reflect"
	"slices"
)

// Diff lists the keys (TOML names) that differ between two configs, split
// into those the running mount can apply live and those that need a remount.
// The config_file itself is not a setting and is not reported.
func Diff(old, new Config) (hot []string, remount []string) {
	add := func(changed bool, key string, live bool) {
		switch {
		case !changed:
		case live:
			hot = append(hot, key)
		default:
			remount = append(remount, key)
		}
	}
	// Live: the syncer, the API client's credentials and delays, the logger's
	// level and the hook runner can all change under a running mount.
	add(old.RefreshInterval != new.RefreshInterval, "refresh_interval", true)
	add(old.LogLevel != new.LogLevel, "log_level", true)
	add(old.ClientID != new.ClientID, "client_id", true)
	add(old.ClientSecret != new.ClientSecret, "client_secret", true)
	add(old.ClientIDFile != new.ClientIDFile, "client_id_file", true)
	add(old.ClientSecretFile != new.ClientSecretFile, "client_secret_file", true)
	// In flat mode the project and env are the mount's root: changing
	// them is a different mount.
	add(!slices.Equal(old.Projects, new.Projects), "project", !old.Flat && !new.Flat)
	add(!slices.Equal(old.Envs, new.Envs), "env", !old.Flat && !new.Flat)
	add(!reflect.DeepEqual(old.OnChange, new.OnChange), "on_change", true)
	add(old.ServerErrorDelay != new.ServerErrorDelay, "server_error_delay", true)
	add(old.RateLimitDelay != new.RateLimitDelay, "rate_limit_delay", true)
	// Rules swap atomically (access.Engine.Swap) and fs invalidates the
	// modes that changed.
	add(!reflect.DeepEqual(old.Access, new.Access), "access", true)

	// Remount: fixed at mount time by the kernel, the FUSE options, the
	// HTTP client or a listener.
	add(old.URL != new.URL, "url", false)
	add(old.ReadOnly != new.ReadOnly, "read_only", false)
	add(old.Flat != new.Flat, "flat", false)
	add(old.AllowOther != new.AllowOther, "allow_other", false)
	add(old.UID != new.UID, "uid", false)
	add(old.GID != new.GID, "gid", false)
	add(old.FileMode != new.FileMode, "file_mode", false)
	add(old.StateFile != new.StateFile, "state_file", false)
	add(old.MetricsAddr != new.MetricsAddr, "metrics_addr", false)
	add(old.TrimNewline != new.TrimNewline, "trim_newline", false)
	add(old.IncludeImports != new.IncludeImports, "include_imports", false)
	add(old.TokenPolicy != new.TokenPolicy, "token_policy", false)
	add(old.LogFormat != new.LogFormat, "log_format", false)
	add(old.DebugFUSE != new.DebugFUSE, "debug_fuse", false)
	// all-opens changes how the kernel is told to cache opens; the audit
	// file is opened once at mount.
	add(old.Audit != new.Audit, "audit", false)
	add(old.AuditLog != new.AuditLog, "audit_log", false)
	add(old.AuditMaxSize != new.AuditMaxSize, "audit_max_size", false)
	add(old.AuditKeep != new.AuditKeep, "audit_keep", false)
	return hot, remount
}
