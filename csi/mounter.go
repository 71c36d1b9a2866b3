package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Mounter is what the node service asks to put a volume at its target and
// take it away. Both calls must be idempotent for a target.
type Mounter interface {
	Publish(ctx context.Context, v *Volume) error
	Unpublish(ctx context.Context, target string) error
}

// SharedMounter mounts views of registry sources: volumes of one key share
// one source, each mount keeps its own view options.
//
// Lock order: SharedMounter.mu, then (inside Registry calls) Registry.mu;
// mu is never held across Acquire, Mount or Unmount. Per-target exclusion
// comes from the node service, which never runs two calls on one target.
type SharedMounter struct {
	reg *Registry
	url string
	log *slog.Logger
	// mountinfo is /proc/self/mountinfo, swappable for tests.
	mountinfo string

	mu     sync.Mutex
	mounts map[string]*published // by target
}

type published struct {
	key Key
	m   Mounted
}

// NewSharedMounter mounts sources from reg; url is the Infisical site every
// key names.
func NewSharedMounter(reg *Registry, url string, log *slog.Logger) *SharedMounter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SharedMounter{reg: reg, url: url, log: log, mountinfo: "/proc/self/mountinfo", mounts: map[string]*published{}}
}

// Publish mounts v's view at v.Target, creating the directory.
func (s *SharedMounter) Publish(ctx context.Context, v *Volume) error {
	s.mu.Lock()
	p := s.mounts[v.Target]
	s.mu.Unlock()
	if p != nil {
		s.reg.Refresh(p.key, v.Creds) // a republish brings a newer pod token
		return nil
	}
	if err := os.MkdirAll(v.Target, 0o750); err != nil {
		return fmt.Errorf("create target %s: %w", v.Target, err)
	}
	// A mount we do not know of (left by an earlier driver process) is
	// dead: its daemon went with that process.
	if err := unmountStale(s.mountinfo, v.Target); err != nil {
		return err
	}
	key := v.Key(s.url)
	src, err := s.reg.Acquire(ctx, key, v.Creds)
	if err != nil {
		return err
	}
	m, err := src.Mount(v.Target, v.View)
	if err != nil {
		s.reg.Release(key)
		return fmt.Errorf("mount %s: %w", v.Target, err)
	}
	s.mu.Lock()
	s.mounts[v.Target] = &published{key: key, m: m}
	s.mu.Unlock()
	s.log.Info("published", "volume", v.ID, "pod", v.Pod, "target", v.Target, "source", key.String(), "read_only", v.View.ReadOnly)
	return nil
}

// Unpublish unmounts target and releases its source. A target we never
// mounted is still cleared of any stale infisicalfs mount, so a restarted
// driver can answer kubelet's unpublish of an old volume.
func (s *SharedMounter) Unpublish(ctx context.Context, target string) error {
	s.mu.Lock()
	p := s.mounts[target]
	s.mu.Unlock()
	if p == nil {
		return unmountStale(s.mountinfo, target)
	}
	if err := p.m.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	s.mu.Lock()
	delete(s.mounts, target)
	s.mu.Unlock()
	s.reg.Release(p.key)
	s.log.Info("unpublished", "target", target, "source", p.key.String())
	return nil
}

// Close unmounts everything, for shutdown: a driver that exits leaves no
// mount whose daemon is gone.
func (s *SharedMounter) Close() error {
	s.mu.Lock()
	targets := make([]string, 0, len(s.mounts))
	for t := range s.mounts {
		targets = append(targets, t)
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range targets {
		errs = append(errs, s.Unpublish(context.Background(), t))
	}
	s.reg.Close()
	return errors.Join(errs...)
}
