package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/hooks"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/metrics"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/vault"
)

var errHelp = errors.New("help shown")

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func parseFlags(fset *flag.FlagSet, args []string, stderr io.Writer) error {
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{2, err}
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// statusDoc is .status: the syncer's state plus who serves the mount.
type statusDoc struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	Mountpoint string `json:"mountpoint"`
	ReadOnly   bool   `json:"read_only"`
	syncer.Status
}

func cmdMount(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset, flags := config.NewFlagSet("mount")
	fset.Usage = func() {
		fmt.Fprintf(fset.Output(), "Usage: infisicalfs mount [--config FILE] [flags] MOUNTPOINT\n\nFlags:\n")
		fset.PrintDefaults()
	}
	if err := parseFlags(fset, args, stderr); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return &exitError{2, errors.New("mount needs exactly one MOUNTPOINT")}
	}
	mnt, err := filepath.Abs(fset.Arg(0))
	if err != nil {
		return err
	}
	cfg, err := config.Resolve(fset, flags, os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, level := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)

	if err := vault.DisableCoreDumps(); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	if cfg.DebugFUSE {
		log.Warn("--debug-fuse prints the bytes of every read and write: secret values will appear in the log")
	}

	v, err := vault.New(log)
	if err != nil {
		return fmt.Errorf("create vault: %w", err)
	}
	defer v.Destroy()

	statePath := cfg.StateFile
	if statePath == "" {
		if statePath, err = state.DefaultPath(mnt); err != nil {
			return err
		}
	}
	st, err := state.Open(statePath, log)
	if err != nil {
		return err
	}

	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New()
	}
	client, err := infisical.New(infisical.Config{
		SiteURL:      cfg.URL,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenPolicy:  tokenPolicy(cfg.TokenPolicy),
		Retry: infisical.RetryPolicy{
			ServerErrorWait: cfg.ServerErrorDelay.Duration,
			RateLimitWait:   cfg.RateLimitDelay.Duration,
		},
		Logger:    log,
		UserAgent: "infisicalfs/" + version,
		Observe:   observe(m),
	})
	if err != nil {
		return err
	}

	hk := hooks.New(cfg.OnChange, log)
	defer hk.Close()
	s := syncer.New(syncer.Options{
		API: client, Vault: v, State: st, Logger: log,
		Projects: cfg.Projects, Envs: cfg.Envs, IncludeImports: cfg.IncludeImports,
		Interval: cfg.RefreshInterval.Duration,
		OnChange: hk.Changed,
		OnSync:   syncObserver(m, v),
		OnPush:   pushObserver(m),
	})
	defer s.Close()

	// The first sync decides whether there is anything to mount: an
	// unreachable server or refused credentials stop here, with the reason.
	if err := s.Sync(ctx, true); err != nil && len(s.Projects()) == 0 {
		return fmt.Errorf("first sync with %s failed: %w", cfg.URL, err)
	}
	projects := s.Projects()
	if len(projects) == 0 {
		log.Warn("the identity can read no project: the mount will be empty; grant it a role in Access Control")
	}

	fo := fs.Options{
		Vault: v, Backend: s, Logger: log,
		ReadOnly: cfg.ReadOnly, TrimNewline: cfg.TrimNewline,
		FileMode: cfg.FileMode, AllowOther: cfg.AllowOther, DebugFUSE: cfg.DebugFUSE,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
	}
	if cfg.UID >= 0 {
		fo.UID = uint32(cfg.UID)
	}
	if cfg.GID >= 0 {
		fo.GID = uint32(cfg.GID)
	}
	if cfg.Flat {
		if len(projects) != 1 || len(projects[0].Envs) != 1 {
			return fmt.Errorf("--flat needs exactly one project and one environment; the filters match %d projects", len(projects))
		}
		fo.Flat, fo.FlatProject, fo.FlatEnv = true, projects[0].ID, projects[0].Envs[0]
	}
	var statusMu sync.Mutex
	fo.Status = func() []byte {
		statusMu.Lock()
		defer statusMu.Unlock()
		b, _ := json.MarshalIndent(statusDoc{PID: os.Getpid(), Version: version, Mountpoint: mnt, ReadOnly: cfg.ReadOnly, Status: s.Status()}, "", "  ")
		return append(b, '\n')
	}
	fsys := fs.New(fo)
	s.SetInvalidator(fsys)

	if err := clearStale(mnt, stderr); err != nil {
		return err
	}
	srv, err := fsys.Mount(mnt)
	if err != nil {
		return err
	}
	log.Info("mounted", "mountpoint", mnt, "projects", len(projects), "secrets", v.Len(), "read_only", cfg.ReadOnly)
	notifySystemd("READY=1")

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if m != nil {
		m.SetReady(true)
		addr, err := metrics.Serve(runCtx, cfg.MetricsAddr, m, log)
		if err != nil {
			log.Error("metrics server failed", "err", err)
		} else {
			log.Info("serving metrics", "addr", addr.String())
		}
	}
	go s.Run(runCtx)
	if w, err := watchConfig(runCtx, fset, flags, cfg, s, client, hk, level, log); err != nil {
		log.Warn("config hot reload disabled", "err", err)
	} else if w != nil {
		defer w.Close()
	}

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	for {
		select {
		case <-done:
			log.Info("unmounted from outside", "mountpoint", mnt)
			return nil
		case <-ctx.Done():
			return shutdown(srv, done, client, log, mnt)
		case sg := <-sig:
			if sg == syscall.SIGHUP {
				log.Info("SIGHUP: syncing now")
				s.Trigger()
				continue
			}
			log.Info("signal: unmounting", "signal", sg.String())
			notifySystemd("STOPPING=1")
			return shutdown(srv, done, client, log, mnt)
		}
	}
}

type unmounter interface{ Unmount() error }

// shutdown unmounts (retrying while the mount is busy) and revokes the
// access token so that none is left alive.
func shutdown(srv unmounter, done <-chan struct{}, client *infisical.Client, log *slog.Logger, mnt string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = srv.Unmount(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		log.Error("unmount failed; the mount is busy", "mountpoint", mnt, "err", err)
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Close(ctx); err != nil {
		log.Warn("revoking the access token failed", "err", err)
	}
	log.Info("unmounted", "mountpoint", mnt)
	return nil
}

// notifySystemd speaks sd_notify when started by systemd with Type=notify.
func notifySystemd(msg string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(msg))
}

// tokenPolicy maps the validated config word to the client's policy.
func tokenPolicy(p string) infisical.TokenPolicy {
	if p == "renew" {
		return infisical.TokenRenew
	}
	return infisical.TokenPerCycle
}

func observe(m *metrics.Metrics) func(string, string, int, time.Duration) {
	if m == nil {
		return nil
	}
	return m.ObserveRequest
}

func syncObserver(m *metrics.Metrics, v *vault.Vault) func(time.Duration, error) {
	if m == nil {
		return nil
	}
	return func(d time.Duration, err error) {
		m.SyncDone(d, err)
		m.SetSecrets(v.Len())
	}
}

func pushObserver(m *metrics.Metrics) func(string, error) {
	if m == nil {
		return nil
	}
	return m.Push
}
