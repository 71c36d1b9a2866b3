// Package daemon builds and runs mounts from settings: the one place where
// the Infisical client, vault, state file, syncer, filesystem, metrics,
// hooks and config reload are wired together. The command, the tests, the
// benchmarks, the soak and the CSI driver all start mounts through it.
//
// A Source is one identity's view of Infisical kept in step (client,
// vault, state file, syncer, hooks); a Mount serves one view of a Source at
// a mount point. Start makes one of each, as `infisicalfs mount` does; the
// CSI driver shares one Source among the volumes of one identity and scope.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/hooks"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/metrics"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/vault"
)

// SourceOptions configure a Source. Config must be valid (Validate).
type SourceOptions struct {
	Config    config.Config
	StatePath string // the state file; "" keeps no state file
	Logger    *slog.Logger
	Metrics   *metrics.Metrics // may be nil
	UserAgent string

	// For tests and benchmarks: nil or zero keeps what Config says.
	HTTPClient  *http.Client
	Retry       *infisical.RetryPolicy
	PushTimeout time.Duration
}

// Source is one identity's view of Infisical kept in step with it. Its
// methods are safe for concurrent use.
type Source struct {
	cfg    config.Config
	log    *slog.Logger
	client *infisical.Client
	vault  *vault.Vault
	state  *state.Store
	sync   *syncer.Syncer
	hooks  *hooks.Runner

	mu     sync.Mutex
	views  []*fs.FS // told of every change, in mount order
	cancel context.CancelFunc
	loop   chan struct{} // closed when the refresh loop ends; nil before Run

	// started is set once the first sync is done: hooks fire on changes
	// after it, never for what the mount found at start.
	started atomic.Bool
	closed  atomic.Bool
}

// NewSource logs in and runs the first sync. It fails, with the reason,
// when that sync reached nothing: an unreachable server or refused
// credentials stop here rather than mount an empty tree.
func NewSource(ctx context.Context, o SourceOptions) (*Source, error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := vault.New(log)
	if err != nil {
		return nil, fmt.Errorf("create vault: %w", err)
	}
	var st *state.Store
	if o.StatePath != "" {
		if st, err = state.Open(o.StatePath, log); err != nil {
			v.Destroy()
			return nil, err
		}
	}
	retry := infisical.RetryPolicy{ServerErrorWait: cfg.ServerErrorDelay.Duration, RateLimitWait: cfg.RateLimitDelay.Duration}
	if o.Retry != nil {
		retry = *o.Retry
	}
	client, err := infisical.New(infisical.Config{
		SiteURL:             cfg.URL,
		AuthMethod:          infisical.AuthMethod(cfg.AuthMethod),
		ClientID:            cfg.ClientID,
		ClientSecret:        cfg.ClientSecret,
		IdentityID:          cfg.IdentityID,
		KubernetesTokenPath: cfg.KubernetesTokenPath,
		Token:               cfg.Token,
		TokenFile:           cfg.TokenFile,
		TokenPolicy:         tokenPolicy(cfg.TokenPolicy), // token auth renews whatever this says
		Retry:               retry,
		HTTPClient:          o.HTTPClient,
		Logger:              log,
		UserAgent:           o.UserAgent,
		Observe:             observe(o.Metrics),
	})
	if err != nil {
		v.Destroy()
		return nil, err
	}
	s := &Source{cfg: cfg, log: log, client: client, vault: v, state: st, hooks: hooks.New(cfg.OnChange, log)}
	s.sync = syncer.New(syncer.Options{
		API: client, Vault: v, State: st, Logger: log,
		Projects: cfg.Projects, Envs: cfg.Envs, IncludeImports: cfg.IncludeImports,
		Interval:    cfg.RefreshInterval.Duration,
		PushTimeout: o.PushTimeout,
		Invalidator: s,
		OnChange:    s.changed,
		OnSync:      syncObserver(o.Metrics, v),
		OnPush:      pushObserver(o.Metrics),
	})
	if err := s.sync.Sync(ctx, true); err != nil && len(s.sync.Projects()) == 0 {
		s.Close(ctx)
		return nil, fmt.Errorf("first sync with %s failed: %w", cfg.URL, err)
	}
	if len(s.sync.Projects()) == 0 {
		log.Warn("the identity can read no project: the mount will be empty; grant it a role in Access Control")
	}
	s.started.Store(true)
	return s, nil
}

// Run starts the refresh loop; it ends with ctx or Close.
func (s *Source) Run(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loop != nil || s.closed.Load() {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.loop = make(chan struct{})
	go func() {
		defer close(s.loop)
		s.sync.Run(ctx)
	}()
}

func (s *Source) changed(paths []string) {
	if s.started.Load() {
		s.hooks.Changed(paths)
	}
}

// Invalidate passes a change to every mounted view; the syncer calls it
// from its notifier goroutine.
func (s *Source) Invalidate(ch tree.Changes) {
	s.mu.Lock()
	views := append([]*fs.FS(nil), s.views...)
	s.mu.Unlock()
	for _, f := range views {
		f.Invalidate(ch)
	}
}

func (s *Source) addView(f *fs.FS) {
	s.mu.Lock()
	s.views = append(s.views, f)
	s.mu.Unlock()
}

func (s *Source) removeView(f *fs.FS) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range s.views {
		if g == f {
			s.views = append(s.views[:i], s.views[i+1:]...)
			return
		}
	}
}

// Syncer, Vault and Client expose the parts, for status, tests and reload.
func (s *Source) Syncer() *syncer.Syncer    { return s.sync }
func (s *Source) Vault() *vault.Vault       { return s.vault }
func (s *Source) Client() *infisical.Client { return s.client }
func (s *Source) Hooks() *hooks.Runner      { return s.hooks }

// Close stops the refresh loop, saves the state
// file, revokes the access token (bounded by ctx and 5 s) and wipes the
// vault. Unmount every view first.
func (s *Source) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	cancel, loop := s.cancel, s.loop
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-loop
	}
	s.hooks.Close()
	var errs []error
	if s.state != nil {
		if err := s.state.Save(); err != nil {
			errs = append(errs, fmt.Errorf("save state file: %w", err))
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if err := s.client.Close(rctx); err != nil {
		errs = append(errs, fmt.Errorf("revoke the access token: %w", err))
	}
	s.vault.Destroy()
	return errors.Join(errs...)
}

// tokenPolicy maps the validated config word to the client's policy.
func tokenPolicy(p string) infisical.TokenPolicy {
	if p == config.TokenRenew {
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
