package config

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testDebounce = 50 * time.Millisecond

type reloads struct {
	ch  chan struct{}
	mu  sync.Mutex
	log bytes.Buffer
}

func (r *reloads) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}

func (r *reloads) logged() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func startWatch(t *testing.T, cfg string, creds []string, reload func() error) (*reloads, *Watcher) {
	t.Helper()
	r := &reloads{ch: make(chan struct{}, 100)}
	if reload == nil {
		reload = func() error { return nil }
	}
	logger := slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := Watch(context.Background(), cfg, creds, testDebounce, logger, func() error {
		err := reload()
		r.ch <- struct{}{}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return r, w
}

func (r *reloads) expect(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no reload", what)
	}
}

// expectNone waits several debounce periods: the only way to see that
// something did not happen.
func (r *reloads) expectNone(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.ch:
		t.Fatalf("%s: unexpected reload", what)
	case <-time.After(6 * testDebounce):
	}
}

func TestWatchWriteInPlace(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", "url = \"a\"\n")
	r, _ := startWatch(t, cfg, nil, nil)
	writeFile(t, dir, "c.toml", "url = \"b\"\n")
	r.expect(t, "write in place")
}

func TestWatchRenameOver(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", "url = \"a\"\n")
	secret := writeFile(t, dir, "secret", "old")
	r, _ := startWatch(t, cfg, []string{secret}, nil)
	// As vim and most editors save: write a new file, rename it over.
	tmp := writeFile(t, dir, ".c.toml.swp", "url = \"b\"\n")
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "rename over config")
	tmp = writeFile(t, dir, "secret.new", "new")
	if err := os.Rename(tmp, secret); err != nil {
		t.Fatal(err)
	}
	r.expect(t, "rename over credential")
}

// TestWatchKubernetesSymlinkSwap replays how the kubelet updates a mounted
// Secret: a new timestamped directory, a ..data_tmp symlink to it, renamed
// over ..data; the visible file is a symlink through ..data and never
// changes itself.
func TestWatchKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "..2024_01_01_00_00_00.1")
	if err := os.Mkdir(v1, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, v1, "client-secret", "one\n")
	must(t, os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data")))
	secret := filepath.Join(dir, "client-secret")
	must(t, os.Symlink("..data/client-secret", secret))

	var got string
	r, _ := startWatch(t, "", []string{secret}, func() error {
		v, err := ReadCredentialFile(secret)
		got = v
		return err
	})
	v2 := filepath.Join(dir, "..2024_01_02_00_00_00.2")
	must(t, os.Mkdir(v2, 0o755))
	writeFile(t, v2, "client-secret", "two\n")
	must(t, os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(v1))
	r.expect(t, "..data swap")
	if got != "two" {
		t.Errorf("after the swap the reload read %q, want two", got)
	}
}

func TestWatchBurstAndUnrelatedFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", "")
	r, _ := startWatch(t, cfg, nil, nil)
	writeFile(t, dir, "other.toml", "x")
	writeFile(t, dir, "c.toml.bak", "x")
	r.expectNone(t, "unrelated files")
	for i := 0; i < 10; i++ {
		fh, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		_, err = fh.WriteString("# line\n")
		must(t, err)
		must(t, fh.Close())
	}
	r.expect(t, "burst")
	r.expectNone(t, "second reload after one burst")
}

func TestWatchReloadErrorKeepsWatching(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", "")
	calls := 0
	r, w := startWatch(t, cfg, nil, func() error {
		calls++
		if calls == 1 {
			return errors.New("bad config")
		}
		return nil
	})
	writeFile(t, dir, "c.toml", "a")
	r.expect(t, "first change")
	writeFile(t, dir, "c.toml", "b")
	r.expect(t, "change after a failed reload")
	if !strings.Contains(r.logged(), "bad config") {
		t.Errorf("failed reload not logged: %s", r.logged())
	}
	must(t, w.Close())
	must(t, w.Close())
	writeFile(t, dir, "c.toml", "c")
	r.expectNone(t, "after Close")
}

func TestWatchMissingDirectory(t *testing.T) {
	_, err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "c.toml"), nil, testDebounce, nil, func() error { return nil })
	if err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
