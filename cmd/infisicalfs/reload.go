package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/hooks"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/syncer"
)

// reloadDebounce coalesces the burst of events an editor's save or a
// Kubernetes secret update makes.
const reloadDebounce = 300 * time.Millisecond

// live is what a config reload can change under a running mount.
type live struct {
	ctx    context.Context
	wmu    sync.Mutex // guards w
	w      *config.Watcher
	mu     sync.Mutex // one reload at a time
	cfg    config.Config
	fset   *flag.FlagSet
	flags  *config.Flags
	sync   *syncer.Syncer
	client *infisical.Client
	hooks  *hooks.Runner
	level  *slog.LevelVar
	log    *slog.Logger
}

// watchConfig watches the config file and the credential files (their
// directories: editors and Kubernetes replace files by rename) and applies
// what can change live. Nothing to watch: nil.
func watchConfig(ctx context.Context, fset *flag.FlagSet, flags *config.Flags, cfg config.Config,
	s *syncer.Syncer, client *infisical.Client, hk *hooks.Runner, level *slog.LevelVar, log *slog.Logger) (io.Closer, error) {
	creds := cfg.CredentialFiles()
	if cfg.ConfigFile == "" && len(creds) == 0 {
		return nil, nil
	}
	l := &live{ctx: ctx, cfg: cfg, fset: fset, flags: flags, sync: s, client: client, hooks: hk, level: level, log: log}
	w, err := config.Watch(ctx, cfg.ConfigFile, creds, reloadDebounce, log, l.reload)
	if err != nil {
		return nil, err
	}
	l.w = w
	return &watching{l}, nil
}

// watching closes whichever watcher is current.
type watching struct{ l *live }

func (w *watching) Close() error {
	w.l.wmu.Lock()
	defer w.l.wmu.Unlock()
	return w.l.w.Close()
}

func (l *live) rewatch(configFile string, creds []string) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	nw, err := config.Watch(l.ctx, configFile, creds, reloadDebounce, l.log, l.reload)
	if err != nil {
		l.log.Warn("could not watch the new credential files; keeping the old watch", "err", err)
		return
	}
	l.w.Close()
	l.w = nw
	l.log.Info("watching new credential files", "files", creds)
}

// reload re-resolves the settings; a config that fails to parse or
// validate keeps the running one.
func (l *live) reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next, err := config.Resolve(l.fset, l.flags, os.Getenv)
	if err == nil {
		err = next.Validate()
	}
	if err != nil {
		// The watcher logs it; the running settings stay.
		return fmt.Errorf("config reload failed, keeping the running settings: %w", err)
	}
	hot, remount := config.Diff(l.cfg, next)
	if len(remount) > 0 {
		l.log.Warn("these settings changed but need a remount; the running values stay", "keys", remount)
	}
	applied := []string{}
	for _, k := range hot {
		switch k {
		case "refresh_interval":
			l.sync.SetInterval(next.RefreshInterval.Duration)
		case "log_level":
			_ = l.level.UnmarshalText([]byte(next.LogLevel))
		case "client_id", "client_secret", "client_id_file", "client_secret_file":
			l.client.SetCredentials(next.ClientID, next.ClientSecret)
		case "project", "env":
			l.sync.SetFilter(next.Projects, next.Envs)
		case "on_change":
			l.hooks.Update(next.OnChange)
		case "server_error_delay", "rate_limit_delay":
			// The client's retry waits are fixed when it is made.
			l.log.Warn("this setting changed but applies at the next mount", "key", k)
		default:
			continue
		}
		if !slices.Contains(applied, k) {
			applied = append(applied, k)
		}
	}
	// Keep the remount-only values as they run, so later diffs compare
	// against what is really in effect.
	kept := l.cfg
	kept.RefreshInterval, kept.LogLevel = next.RefreshInterval, next.LogLevel
	kept.ClientID, kept.ClientSecret = next.ClientID, next.ClientSecret
	kept.ClientIDFile, kept.ClientSecretFile = next.ClientIDFile, next.ClientSecretFile
	kept.Projects, kept.Envs, kept.OnChange = next.Projects, next.Envs, next.OnChange
	kept.ServerErrorDelay, kept.RateLimitDelay = next.ServerErrorDelay, next.RateLimitDelay
	if !slices.Equal(l.cfg.CredentialFiles(), next.CredentialFiles()) {
		// The watcher's file list is fixed when it starts: watch the new
		// paths from a new watcher (not from inside this callback).
		go l.rewatch(next.ConfigFile, next.CredentialFiles())
	}
	l.cfg = kept
	if len(applied) > 0 {
		l.log.Info("config reloaded", "applied", applied)
	}
	return nil
}
