package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/metrics"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Options configure Start.
type Options struct {
	Config     config.Config
	Mountpoint string // absolute
	Logger     *slog.Logger
	// Level, when set, is the logger's level: log_level applies live.
	Level   *slog.LevelVar
	Version string
	// Notice receives the few lines meant for the person starting the
	// mount (a stale mount cleared); nil discards them.
	Notice io.Writer
	// Resolve re-reads the settings when the config file or a credential
	// file changes; nil disables hot reload.
	Resolve func() (config.Config, error)

	// For tests and benchmarks: nil or zero keeps what Config says.
	HTTPClient  *http.Client
	Retry       *infisical.RetryPolicy
	PushTimeout time.Duration
	SlowAnswer  time.Duration // infisical.Config.SlowAnswer
}

// Daemon is one running `infisicalfs mount`: a Source, its Mount, the
// metrics listener and the config watcher.
type Daemon struct {
	src     *Source
	mnt     *Mount
	log     *slog.Logger
	cancel  context.CancelFunc
	metrics net.Addr
	watch   io.Closer
}

// Start checks the mountpoint, logs in, syncs, mounts, and starts the
// refresh loop, the metrics listener and the config watcher. Whatever
// fails, nothing is left mounted or running.
func Start(ctx context.Context, o Options) (_ *Daemon, err error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	notice := o.Notice
	if notice == nil {
		notice = io.Discard
	}
	// An agent config stands in for the settings it holds (agent.go).
	agent, err := agentSettings(cfg)
	if err != nil {
		return nil, err
	}
	var onToken func([]byte)
	if agent != nil {
		var kept string
		if cfg, kept, err = withAgent(cfg, agent, ""); err != nil {
			return nil, err
		}
		if w := agent.Warning(); w != "" {
			log.Warn(w)
		}
		fmt.Fprintf(notice, "agent config: its templates appear under the mount point as they would under %s (mount there to keep the agent's paths)\n", agent.Root)
		if len(agent.Sinks) > 0 {
			onToken = func(tok []byte) {
				if err := agent.WriteSinks(tok); err != nil {
					log.Warn("writing the agent config's token sink failed", "err", err)
				}
			}
		}
		if resolve := o.Resolve; resolve != nil {
			o.Resolve = func() (config.Config, error) {
				next, err := resolve()
				if err != nil {
					return next, err
				}
				as, err := agentSettings(next)
				if err != nil || as == nil {
					return next, err
				}
				next, _, err = withAgent(next, as, kept)
				return next, err
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The mountpoint is checked before Infisical is contacted: a typo
	// should not cost a login and a full pull to find out.
	if err := CheckMountpoint(o.Mountpoint, cfg.AllowNonEmpty, notice); err != nil {
		return nil, err
	}
	statePath := cfg.StateFile
	if statePath == "" {
		if statePath, err = state.DefaultPath(o.Mountpoint); err != nil {
			return nil, err
		}
	}
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d := &Daemon{log: log, cancel: cancel}
	defer func() {
		if err != nil {
			d.stop(ctx)
		}
	}()
	// The listener comes before the login too: a port in use is a
	// start-up error, not a log line after the mount.
	if m != nil {
		if d.metrics, err = metrics.Serve(runCtx, cfg.MetricsAddr, m, log); err != nil {
			return nil, fmt.Errorf("metrics_addr %s: %w", cfg.MetricsAddr, err)
		}
		log.Info("serving metrics", "addr", d.metrics.String())
	}
	d.src, err = NewSource(ctx, SourceOptions{
		Config: cfg, StatePath: statePath, Mountpoint: o.Mountpoint, Logger: log, Metrics: m,
		UserAgent:  "infisicalfs/" + o.Version,
		HTTPClient: o.HTTPClient, Retry: o.Retry, PushTimeout: o.PushTimeout, SlowAnswer: o.SlowAnswer,
		OnToken: onToken,
	})
	if err != nil {
		return nil, err
	}
	// A mount (not a CSI volume, which checks its one scope itself) whose
	// filter matched nothing fails here, before anything is mounted.
	if d.src.tmpl == nil {
		if err = checkScopes(cfg, d.src.sync.Projects()); err != nil {
			return nil, err
		}
	}
	// Watch before mounting: a file changed as soon as the mount answers
	// must not be missed. Reloads wait until the start is done.
	started := make(chan struct{})
	if o.Resolve != nil {
		w, err := watchConfig(runCtx, cfg, o.Resolve, d.src, o.Level, log, started)
		if err != nil {
			log.Warn("config hot reload disabled", "err", err)
		} else if w != nil {
			d.watch = w
		}
	}
	view := ViewOf(cfg)
	view.Version = o.Version
	if d.mnt, err = d.src.Mount(o.Mountpoint, view); err != nil {
		return nil, err
	}
	log.Info("mounted", "mountpoint", o.Mountpoint, "projects", len(d.src.sync.Projects()), "secrets", d.src.vault.Len(), "read_only", cfg.ReadOnly)
	if m != nil {
		m.SetMaxStale(cfg.MaxStale())
		m.SyncedAt(time.Now()) // Mount ran the first sync
		m.SetReady(true)
	}
	d.src.Run(runCtx)
	close(started)
	return d, nil
}

// Done is closed when the mount is gone, also when unmounted from outside.
func (d *Daemon) Done() <-chan struct{} { return d.mnt.Done() }

// Trigger asks for a sync now (SIGHUP, `infisicalfs refresh`).
func (d *Daemon) Trigger() { d.src.sync.Trigger() }

// Source, Syncer, Vault and FS expose the parts, for tests and benchmarks.
func (d *Daemon) Source() *Source           { return d.src }
func (d *Daemon) Syncer() *syncer.Syncer    { return d.src.sync }
func (d *Daemon) Vault() *vault.Vault       { return d.src.vault }
func (d *Daemon) FS() *fs.FS                { return d.mnt.fsys }
func (d *Daemon) MetricsAddr() net.Addr     { return d.metrics }
func (d *Daemon) Mountpoint() string        { return d.mnt.dir }
func (d *Daemon) Logger() *slog.Logger      { return d.log }
func (d *Daemon) Client() *infisical.Client { return d.src.client }

// Stop unmounts (retrying while the mount is busy), stops the refresh
// loop, the watcher and the listener, saves the state file and revokes
// the access token. If the mount stays busy it is left mounted and
// serving, and the error says so.
func (d *Daemon) Stop(ctx context.Context) error {
	if err := d.mnt.Unmount(); err != nil {
		return err
	}
	return d.stop(ctx)
}

func (d *Daemon) stop(ctx context.Context) error {
	var errs []error
	if d.watch != nil {
		d.watch.Close()
	}
	if d.mnt != nil {
		if err := d.mnt.Unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	d.cancel()
	if d.src != nil {
		if err := d.src.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
