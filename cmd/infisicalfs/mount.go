package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/harden"
	"github.com/spf13/cobra"
)

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// statusDoc is what MOUNT/.status holds.
type statusDoc = daemon.StatusDoc

// mountCommand is `infisicalfs mount`: the flags of config.NewFlagSet,
// which cobra parses GNU style (flags before or after MOUNTPOINT, -o).
func mountCommand(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	fset, flags := config.NewFlagSet("mount")
	var helpConfig bool
	var bg background
	cmd := &cobra.Command{
		Use:   "mount [flags] MOUNTPOINT",
		Short: "Mount in the foreground; SIGINT/SIGTERM unmount cleanly, SIGHUP syncs now",
		Long: `Mount Infisical at MOUNTPOINT and serve it in the foreground until SIGINT or
SIGTERM (or an unmount from outside). Settings come from flags, then the
environment (INFISICAL_URL, INFISICAL_CLIENT_ID, INFISICAL_CLIENT_SECRET or the
*_FILE variants), then the config file (--config), then defaults.

MOUNTPOINT must be an empty directory that is not mounted (--allow-non-empty
lifts the first). Flags may come before or after it; -o takes the config
file's keys as mount(8) writes them: -o ro,refresh_interval=30s,env=dev.`,
		Example: `  infisicalfs mount ~/secrets
  infisicalfs mount /run/secrets --read-only --project webshop --env prod
  infisicalfs mount /run/secrets -o ro,allow_other,refresh_interval=30s --config /etc/infisicalfs/config.toml`,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if helpConfig {
				config.WriteKeyHelp(stdout)
				return nil
			}
			if err := exactlyOne("MOUNTPOINT")(cmd, args); err != nil {
				return err
			}
			mnt, err := absPath(args[0])
			if err != nil {
				return err
			}
			pf := cmd.Flags()
			resolve := func() (config.Config, error) { return config.Resolve(pf, flags, os.Getenv) }
			if bg.on && !bg.child() {
				// The settings are checked here too, so that a typo fails
				// in the foreground before a child is started.
				if _, err := resolve(); err != nil {
					return err
				}
				return bg.start(os.Args[1:], stdout, stderr)
			}
			if !bg.child() {
				bg = background{}
			}
			return cmdMount(ctx, mnt, resolve, stderr, bg)
		},
	}
	cmd.Flags().SortFlags = false
	cmd.Flags().AddFlagSet(fset)
	cmd.Flags().BoolVar(&bg.on, "daemon", false, "run in the background once the mount is ready (for use without systemd or mount(8)); stop it with SIGTERM or 'infisicalfs unmount'")
	cmd.Flags().StringVar(&bg.pidFile, "pid-file", "", "with --daemon: write the background process's pid to this `file` (removed at exit)")
	cmd.Flags().StringVar(&bg.logFile, "log-file", "", "with --daemon: append the log to this `file` once mounted (default: discarded)")
	cmd.Flags().BoolVar(&helpConfig, "help-config", false, "list every config file key (and -o option) with its flag, default and meaning, then exit")
	for name, values := range map[string][]string{
		"auth-method":  {"universal", "kubernetes", "token"},
		"token-policy": {"per-cycle", "renew"},
		"log-level":    {"debug", "info", "warn", "error"},
		"log-format":   {"text", "json"},
		"state-hash":   {"hmac-sha256", "sha256"},
		"audit":        {"daemon-opens", "all-opens"},
	} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
	_ = cmd.MarkFlagFilename("config", "toml")
	return cmd
}

func absPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", p, err)
	}
	return abs, nil
}

// cmdMount runs daemon.Start, then takes signals until the mount ends.
func cmdMount(ctx context.Context, mnt string, resolve func() (config.Config, error), stderr io.Writer, bg background) error {
	cfg, err := resolve()
	if err != nil {
		return err
	}
	// With an agent config the credentials may come from it: Start
	// validates once it has applied it.
	if cfg.AgentConfig == "" && cfg.AgentConfigBase64 == "" {
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	log, level := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	// A reader of stderr that went away (`make demo | tee` then Ctrl-C)
	// must not kill the daemon with SIGPIPE before it unmounts: writes
	// then fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	// Signals are ours from here on, before anything is mounted: a
	// SIGTERM's default action during the mount would kill the process
	// while go-fuse's own poll of the new mount waits for an answer that
	// then never comes, leaving an unkillable process and a dead mount.
	// One arriving during the start cancels it.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	startDone := make(chan struct{})
	stopRequested := make(chan os.Signal, 1)
	go func() {
		for {
			select {
			case <-startDone:
				return
			case sg := <-sig:
				if sg == syscall.SIGHUP {
					continue // nothing to refresh yet
				}
				stopRequested <- sg
				cancelStart()
				return
			}
		}
	}()
	tuneGC()
	if err := harden.DisableCoreDumps(); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	if cfg.DebugFUSE {
		log.Warn("--debug-fuse prints the bytes of every read and write: secret values will appear in the log")
	}
	d, err := daemon.Start(startCtx, daemon.Options{
		Config: cfg, Mountpoint: mnt, Logger: log, Level: level,
		Version: version, Notice: stderr, Resolve: resolve,
	})
	close(startDone)
	if err != nil {
		select {
		case sg := <-stopRequested:
			log.Info("signal during start: stopped", "signal", sg.String())
			return nil
		default:
		}
		return err
	}
	select {
	case sg := <-stopRequested:
		log.Info("signal: unmounting", "signal", sg.String())
		return stop(d, log, mnt)
	default:
	}
	notifySystemd("READY=1")
	if bg.child() {
		defer bg.done()
		if err := bg.ready(); err != nil {
			log.Error("--daemon: could not report ready; unmounting", "err", err)
			_ = stop(d, log, mnt)
			return err
		}
	}

	for {
		select {
		case <-d.Done():
			log.Info("unmounted from outside", "mountpoint", mnt)
			return d.Stop(context.Background())
		case <-ctx.Done():
			return stop(d, log, mnt)
		case sg := <-stopRequested:
			// The start-up forwarder took a signal in the instant
			// between the start's end and the check above (it raced
			// startDone): without this case that SIGTERM was lost and
			// the process ran on.
			log.Info("signal: unmounting", "signal", sg.String())
			notifySystemd("STOPPING=1")
			return stop(d, log, mnt)
		case sg := <-sig:
			if sg == syscall.SIGHUP {
				log.Info("SIGHUP: syncing now")
				d.Trigger()
				continue
			}
			log.Info("signal: unmounting", "signal", sg.String())
			notifySystemd("STOPPING=1")
			return stop(d, log, mnt)
		}
	}
}

func stop(d *daemon.Daemon, log *slog.Logger, mnt string) error {
	if err := d.Stop(context.Background()); err != nil {
		log.Error("stopping failed", "mountpoint", mnt, "err", err)
		return err
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
