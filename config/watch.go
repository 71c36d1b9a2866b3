package config

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kubeDataLink is the symlink Kubernetes swaps atomically when a mounted
// Secret or ConfigMap changes; the visible files are links through it.
const kubeDataLink = "..data"

// Watcher calls a reload function after the config file or a credential
// file changes, once per burst of changes.
type Watcher struct {
	fsw    *fsnotify.Watcher
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error

	// interesting maps a watched directory to the base names in it whose
	// events count. Set once in Watch, read only by the loop.
	interesting map[string]map[string]bool
}

// Watch watches configPath (may be "") and credFiles. It watches their
// directories, not the files: editors save by renaming a new file over the
// old one and Kubernetes swaps a "..data" symlink, and a watch on the file
// itself would follow the old inode and go quiet. Events on other files in
// those directories are ignored. After the last event of a burst plus
// debounce, reload runs on the watcher's goroutine; its error is logged.
func Watch(ctx context.Context, configPath string, credFiles []string, debounce time.Duration, logger *slog.Logger, reload func() error) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	w := &Watcher{fsw: fsw, done: make(chan struct{}), log: logger, interesting: map[string]map[string]bool{}}
	files := append([]string{configPath}, credFiles...)
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := w.add(f); err != nil {
			fsw.Close()
			return nil, err
		}
		// A file that is a symlink to another directory (a dotfiles
		// checkout, say) changes there: watch its target too.
		if target, err := filepath.EvalSymlinks(f); err == nil && filepath.Dir(target) != filepath.Dir(mustAbs(f)) {
			_ = w.add(target)
		}
	}
	ctx, w.cancel = context.WithCancel(ctx)
	go w.loop(ctx, debounce, reload)
	return w, nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (w *Watcher) add(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("watch %s: %w", file, err)
	}
	dir := filepath.Dir(abs)
	if w.interesting[dir] == nil {
		if err := w.fsw.Add(dir); err != nil {
			return fmt.Errorf("watch directory %s: %w", dir, err)
		}
		w.interesting[dir] = map[string]bool{kubeDataLink: true}
	}
	w.interesting[dir][filepath.Base(abs)] = true
	return nil
}

func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Remove) {
		return false
	}
	names := w.interesting[filepath.Dir(ev.Name)]
	return names[filepath.Base(ev.Name)]
}

func (w *Watcher) loop(ctx context.Context, debounce time.Duration, reload func() error) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				w.log.Debug("config change seen", "file", ev.Name, "op", ev.Op.String())
				timer.Reset(debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("config watcher error", "err", err)
		case <-timer.C:
			if err := reload(); err != nil {
				w.log.Error("config reload failed; keeping the running settings", "err", err)
			}
		}
	}
}

// Close stops the watcher and waits for its goroutine (and any reload in
// progress) to finish. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
		w.closeErr = w.fsw.Close()
	})
	return w.closeErr
}
