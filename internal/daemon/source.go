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

	"github.com/infisicalfs/infisicalfs/access"
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
	// Mountpoint names the mount the state file's hash key is derived
	// for; "" uses StatePath.
	Mountpoint string
	Logger     *slog.Logger
	Metrics    *metrics.Metrics // may be nil
	UserAgent  string

	// For tests and benchmarks: nil or zero keeps what Config says.
	HTTPClient  *http.Client
	Retry       *infisical.RetryPolicy
	PushTimeout time.Duration
	SlowAnswer  time.Duration // infisical.Config.SlowAnswer
	// OnToken receives every new access token (the agent config's sinks).
	OnToken func(token []byte)
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
	tmpl   *tmplState // nil without [[template]]s (templates.go)
	filter scopeFilter

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
	// Templates are parsed before anything is contacted: a typo should not
	// cost a login and a full pull to find out.
	tm, err := newTemplates(cfg, newVaultSource(v), log)
	if err != nil {
		v.Destroy()
		return nil, err
	}
	var st *state.Store
	if o.StatePath != "" {
		keyFor := o.Mountpoint
		if keyFor == "" {
			keyFor = o.StatePath
		}
		hasher, keySource, err := state.HasherFor(cfg.StateHash, []byte(cfg.ClientSecret), keyFor)
		if err != nil {
			v.Destroy()
			return nil, err
		}
		log.Debug("state file", "path", o.StatePath, "hash", hasher.Scheme(), "key", keySource)
		if st, err = state.OpenWith(o.StatePath, state.Options{Logger: log, Hasher: hasher}); err != nil {
			v.Destroy()
			return nil, err
		}
	}
	retry := infisical.RetryPolicy{ServerErrorWait: cfg.ServerErrorDelay.Duration, RateLimitWait: cfg.RateLimitDelay.Duration}
	if o.Retry != nil {
		retry = *o.Retry
	}
	// The client exists before the syncer it reports outages to.
	var syn atomic.Pointer[syncer.Syncer]
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
		OnToken:             o.OnToken,
		SlowAnswer:          o.SlowAnswer,
		OnNoAnswer: func(err error) {
			if sy := syn.Load(); sy != nil {
				sy.NoAnswer(err)
			}
		},
	})
	if err != nil {
		v.Destroy()
		return nil, err
	}
	s := &Source{cfg: cfg, log: log, client: client, vault: v, state: st, hooks: hooks.New(cfg.OnChange, log), tmpl: tm}
	projects, envs := s.filter.set(cfg.Projects, cfg.Envs)
	if tm != nil {
		// What the templates' text names is synced from the first cycle
		// on (templates.go).
		projects, envs, _ = s.filter.need(tm.current().Scopes(), nil)
	}
	s.sync = syncer.New(syncer.Options{
		API: client, Vault: v, State: st, Logger: log,
		Projects: projects, Envs: envs, IncludeImports: cfg.IncludeImports, ExpandReferences: cfg.ExpandReferences,
		Interval:            cfg.RefreshInterval.Duration,
		StateFlushInterval:  cfg.StateFlushInterval.Duration,
		BackgroundFirstSave: true,
		PushTimeout:         o.PushTimeout,
		Invalidator:         s,
		OnChange:            s.changed,
		OnSync:              syncObserver(o.Metrics, v),
		OnPush:              pushObserver(o.Metrics),
	})
	syn.Store(s.sync)
	// A server that does not answer at all is a typo or a down server:
	// say so at once, not after the login's retry wait (30 s by default).
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	_, perr := client.Status(pctx)
	pcancel()
	if errors.Is(perr, infisical.ErrUnreachable) {
		s.Close(ctx)
		return nil, fmt.Errorf("Infisical at %s does not answer: %w", cfg.URL, perr)
	}
	if err := s.sync.Sync(ctx, true); err != nil && len(s.sync.Projects()) == 0 {
		s.Close(ctx)
		return nil, fmt.Errorf("first sync with %s failed: %w", cfg.URL, err)
	}
	if len(s.sync.Projects()) == 0 {
		log.Warn("the identity can read no project: the mount will be empty; grant it a role in Access Control")
	}
	if err := s.startTemplates(ctx); err != nil {
		s.Close(ctx)
		return nil, err
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
	if s.tmpl != nil && s.started.Load() {
		s.tmpl.changed(ch)
	}
	s.mu.Lock()
	views := append([]*fs.FS(nil), s.views...)
	s.mu.Unlock()
	for _, f := range views {
		f.Invalidate(ch)
	}
}

// setAccess installs reloaded [[access]] rules in every mounted view; a
// view that cannot take them (they do not compile for its owner and
// modes, or they need a remount) keeps its rules, and the log says so.
func (s *Source) setAccess(specs []access.Spec) {
	s.mu.Lock()
	views := append([]*fs.FS(nil), s.views...)
	s.mu.Unlock()
	for _, f := range views {
		rules, err := access.Compile(specs, f.AccessDefaults())
		if err == nil {
			err = f.SetAccess(rules)
		}
		if err != nil {
			s.log.Error("access rules not applied, the old ones stay", "err", err)
			continue
		}
		s.log.Info("access rules applied", "rules", rules.Len())
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
	if s.tmpl != nil {
		s.tmpl.close()
	}
	var errs []error
	// Counters and sync times wait for state_flush_interval: save them now.
	if err := s.sync.FlushState(); err != nil {
		errs = append(errs, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if err := s.client.Close(rctx); err != nil {
		// The mount is gone either way; a token Infisical could not be
		// told about (it is down, say) expires by itself. Not a failed stop.
		s.log.Warn("could not revoke the access token; it stays valid until it expires", "err", err)
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
