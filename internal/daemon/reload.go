package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/templates"
)

// reloadDebounce coalesces the burst of events an editor's save or a
// Kubernetes secret update makes.
const reloadDebounce = 300 * time.Millisecond

// live applies reloaded settings to a running Source; config.Keys says
// which settings reach which method.
type live struct {
	src   *Source
	level *slog.LevelVar
}

func (l live) SetRefreshInterval(d time.Duration) { l.src.sync.SetInterval(d) }
func (l live) SetCredentials(id, secret string)   { l.src.client.SetCredentials(id, secret) }
func (l live) SetFilter(projects, envs []string)  { l.src.setFilter(projects, envs) }
func (l live) SetTemplates(ts []config.Template) {
	if l.src.tmpl != nil {
		l.src.tmpl.reload(ts)
	}
}
func (l live) SetAccess(specs []access.Spec) { l.src.setAccess(specs) }
func (l live) SetHooks(hooks []config.Hook)  { l.src.hooks.Update(hooks) }
func (l live) SetLogLevel(level string) {
	if l.level != nil {
		_ = l.level.UnmarshalText([]byte(level))
	}
}

// reloader watches the config file and the credential files (their
// directories: editors and Kubernetes replace files by rename) and applies
// what can change live.
type reloader struct {
	ctx     context.Context
	resolve func() (config.Config, error)
	live    live
	log     *slog.Logger

	mu      sync.Mutex // one reload at a time; guards running
	running config.Config

	wmu sync.Mutex // guards w; taken after mu when both are held
	w   *config.Watcher
}

// watchConfig starts a reloader; with nothing to watch it returns a no-op.
func watchConfig(ctx context.Context, cfg config.Config, resolve func() (config.Config, error), src *Source, level *slog.LevelVar, log *slog.Logger) (io.Closer, error) {
	r := &reloader{ctx: ctx, resolve: resolve, live: live{src, level}, log: log, running: cfg}
	creds := watched(cfg)
	if cfg.ConfigFile == "" && len(creds) == 0 {
		return nil, nil
	}
	w, err := config.Watch(ctx, cfg.ConfigFile, creds, reloadDebounce, log, r.reload)
	if err != nil {
		return nil, err
	}
	r.w = w
	return r, nil
}

func (r *reloader) Close() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return r.w.Close()
}

// reload re-resolves the settings; a config that fails to parse or
// validate keeps the running one (the watcher logs the error).
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := r.resolve()
	if err == nil {
		err = next.Validate()
	}
	if err != nil {
		return fmt.Errorf("config reload failed, keeping the running settings: %w", err)
	}
	// A rewritten credential file changes no key (a token or JWT file is
	// reread at every login), but after failed logins the next one would
	// wait out the backoff: let it try now.
	r.live.src.client.ResetLoginBackoff()
	applied, remount, now := config.Reload(r.live, r.running, next)
	if len(remount) > 0 {
		r.log.Warn("these settings changed but need a remount; the running values stay", "keys", remount)
	}
	// A rewritten template source file changes no key either: the
	// templates compare their text and re-render only when it changed.
	if len(now.Templates) > 0 {
		r.live.SetTemplates(now.Templates)
	}
	if !slices.Equal(watched(r.running), watched(now)) {
		// The watcher's file list is fixed when it starts: watch the new
		// paths from a new watcher (not from inside this callback).
		go r.rewatch(now.ConfigFile, watched(now))
	}
	r.running = now
	if len(applied) > 0 {
		r.log.Info("config reloaded", "applied", applied)
	}
	return nil
}

// watched are the files besides the config file whose change reloads:
// the credential files, the templates' source files and an agent config.
func watched(cfg config.Config) []string {
	files := append(cfg.CredentialFiles(), templates.SourceFiles(cfg.Templates)...)
	if cfg.AgentConfig != "" {
		files = append(files, cfg.AgentConfig)
	}
	return files
}

func (r *reloader) rewatch(configFile string, creds []string) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	nw, err := config.Watch(r.ctx, configFile, creds, reloadDebounce, r.log, r.reload)
	if err != nil {
		r.log.Warn("could not watch the new credential files; keeping the old watch", "err", err)
		return
	}
	r.w.Close()
	r.w = nw
	r.log.Info("watching new credential files", "files", creds)
}
