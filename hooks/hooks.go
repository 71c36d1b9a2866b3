// Package hooks runs the on_change hooks: after a refresh changes secrets,
// run a command or signal a process. Apps need this because inotify does not
// fire for changes a FUSE daemon makes to its own files.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"golang.org/x/sys/unix"
)

// EnvChanged is set for a hook command to the number of changed secrets
// under the hook's path. Names and values are not passed.
const EnvChanged = "INFISICALFS_CHANGED"

// Runner fires hooks. Each hook has its own goroutine, so a slow command
// delays only its own hook, and Changed never blocks the syncer.
type Runner struct {
	log *slog.Logger

	mu      sync.Mutex // guards hooks, workers and closed
	hooks   []config.Hook
	workers []*worker
	closed  bool
}

type worker struct {
	hook   config.Hook
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{} // capacity 1: "pending has grown"

	mu      sync.Mutex
	pending int // changed secrets not yet reported to the hook
}

// New starts a runner for hooks. A zero Debounce or Timeout takes the
// config package's default.
func New(hooks []config.Hook, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{log: logger}
	r.start(hooks)
	return r
}

// start launches workers for hooks; r.mu is held or r is not yet shared.
func (r *Runner) start(hooks []config.Hook) {
	r.hooks = append([]config.Hook(nil), hooks...)
	r.workers = nil
	for _, h := range hooks {
		h.Path = strings.Trim(h.Path, "/")
		if h.Debounce.Duration <= 0 {
			h.Debounce.Duration = config.DefaultHookDebounce
		}
		if h.Timeout.Duration <= 0 {
			h.Timeout.Duration = config.DefaultHookTimeout
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &worker{hook: h, log: r.log.With("hook_path", h.Path), cancel: cancel,
			done: make(chan struct{}), kick: make(chan struct{}, 1)}
		r.workers = append(r.workers, w)
		go w.loop(ctx)
	}
}

// stop ends every worker, killing a running command; r.mu is held.
func (r *Runner) stop() {
	for _, w := range r.workers {
		w.cancel()
	}
	for _, w := range r.workers {
		<-w.done
	}
	r.workers = nil
}

// Changed reports the mount-relative paths of secrets a refresh changed
// ("webshop/dev/app/DB_URL"). Each hook whose Path is a prefix of at least
// one of them fires once after its debounce, however many calls arrive in
// that time.
func (r *Runner) Changed(paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		n := 0
		for _, p := range paths {
			if matches(w.hook.Path, p) {
				n++
			}
		}
		if n > 0 {
			w.add(n)
		}
	}
}

// matches says whether path is at or under prefix, by whole components.
func matches(prefix, path string) bool {
	path = strings.Trim(path, "/")
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Update replaces the hooks (config hot reload). Unchanged hooks keep
// running undisturbed; otherwise changes not yet reported are dropped with
// the old hooks.
func (r *Runner) Update(hooks []config.Hook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || reflect.DeepEqual(r.hooks, hooks) {
		return
	}
	r.stop()
	r.start(hooks)
	r.log.Info("on_change hooks updated", "hooks", len(hooks))
}

// Close stops the runner and waits for running commands, which are killed.
func (r *Runner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.stop()
}

func (w *worker) add(n int) {
	w.mu.Lock()
	w.pending += n
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // already kicked
	}
}

func (w *worker) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.pending
	w.pending = 0
	return n
}

func (w *worker) loop(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		// Wait out the burst from its first change, so that a steady stream
		// of changes still fires once per debounce period.
		t := time.NewTimer(w.hook.Debounce.Duration)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if n := w.take(); n > 0 {
			w.fire(ctx, n)
		}
	}
}

func (w *worker) fire(ctx context.Context, changed int) {
	start := time.Now()
	var err error
	action := "command"
	if len(w.hook.Command) > 0 {
		err = w.runCommand(ctx, changed)
	} else {
		action = "signal"
		err = w.sendSignal()
	}
	if err != nil {
		w.log.Warn("on_change hook failed", "action", action, "changed", changed, "duration", time.Since(start).Round(time.Millisecond), "err", err)
		return
	}
	w.log.Info("on_change hook ran", "action", action, "changed", changed, "duration", time.Since(start).Round(time.Millisecond))
}

// runCommand runs the hook's argv without a shell. Its output is discarded:
// a hook might print what it read from the mount, and the log must never
// hold a value.
func (w *worker) runCommand(ctx context.Context, changed int) error {
	ctx, cancel := context.WithTimeout(ctx, w.hook.Timeout.Duration)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.hook.Command[0], w.hook.Command[1:]...)
	cmd.Env = append(os.Environ(), EnvChanged+"="+strconv.Itoa(changed))
	// Its own process group, so that a timeout also kills what the
	// command started (sh -c 'sleep …').
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: killed after the %s timeout", w.hook.Command[0], w.hook.Timeout.Duration)
	default:
		return fmt.Errorf("%s: %w", w.hook.Command[0], err)
	}
}

func (w *worker) sendSignal() error {
	sig, err := config.ParseSignal(w.hook.Signal)
	if err != nil {
		return err
	}
	pid := w.hook.PID
	if w.hook.PIDFile != "" {
		b, err := os.ReadFile(w.hook.PIDFile)
		if err != nil {
			return fmt.Errorf("read pid_file: %w", err)
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("pid_file %s does not hold a process id", w.hook.PIDFile)
		}
	}
	if pid <= 0 {
		return errors.New("no pid or pid_file to signal")
	}
	if err := unix.Kill(pid, sig); err != nil {
		return fmt.Errorf("send %s to pid %d: %w", unix.SignalName(sig), pid, err)
	}
	return nil
}
