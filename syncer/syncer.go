// Package syncer keeps the vault in step with Infisical: refresh cycles pull
// listings into the vault and tell the filesystem what to invalidate; pushes
// send the filesystem's writes to Infisical and record what the server stored.
package syncer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/refs"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

// API is the part of the Infisical client the syncer uses; *infisical.Client
// implements it.
type API interface {
	BeginCycle(ctx context.Context) error
	ListProjects(ctx context.Context) ([]infisical.Project, error)
	ListSecrets(ctx context.Context, o infisical.ListOptions) (*infisical.ListResult, error)
	ListFolderTree(ctx context.Context, projectID, env string) ([]string, error)
	UpsertSecret(ctx context.Context, r infisical.Ref, value []byte, known bool) (*infisical.Secret, error)
	UpdateSecret(ctx context.Context, r infisical.Ref, u infisical.Update) (*infisical.Secret, error)
	GetSecretVersion(ctx context.Context, r infisical.Ref, version int) (*infisical.Secret, error)
	GetSecret(ctx context.Context, r infisical.Ref) (*infisical.Secret, error)
	DeleteSecret(ctx context.Context, r infisical.Ref) error
	CreateFolder(ctx context.Context, projectID, env, parentPath, name string) (*infisical.Folder, error)
	DeleteFolder(ctx context.Context, projectID, env, parentPath, name string) error
}

// Invalidator is told which names and values changed, so that it can drop
// exactly those kernel cache entries; it is called from inside FUSE
// requests too (a push), so it must not block. The filesystem implements
// it with an ordered queue of its own.
type Invalidator interface {
	Invalidate(ch tree.Changes)
}

// changedPaths lists the mount-relative "project/env/path/KEY" of every
// changed secret, for change hooks.
func changedPaths(c tree.Changes, dirOf func(projectID string) string) []string {
	var out []string
	for _, list := range [][]vault.Addr{c.Updated, c.Added, c.Removed} {
		for _, a := range list {
			p := strings.TrimSuffix(a.Path, "/")
			out = append(out, dirOf(a.Project)+"/"+a.Env+p+"/"+a.Key)
		}
	}
	sort.Strings(out)
	return out
}

// Options configure a Syncer.
type Options struct {
	API    API
	Vault  *vault.Vault
	State  *state.Store // may be nil
	Logger *slog.Logger

	Projects       []string // slugs or IDs; empty = every accessible project
	Envs           []string // environment slugs; empty = all
	IncludeImports bool
	// ExpandReferences serves values with ${...} references expanded, as
	// Infisical's clients read them; the raw value stays beside it.
	ExpandReferences bool
	Interval         time.Duration // between refresh cycles (default 60s)
	Jitter           float64       // fraction of Interval added at random (default 0.1)
	PushTimeout      time.Duration // per push, on a context of our own (default 2m)
	// StateFlushInterval is how long counters and sync times wait before
	// they are written without a record change (default 5m); see
	// FlushState for unmount.
	StateFlushInterval time.Duration
	// BackgroundFirstSave saves the first cycle's state after Sync
	// returns instead of before: a start need not wait on a disk write
	// that matters only at the next start (0.2 s at 100k secrets).
	// FlushState waits for it.
	BackgroundFirstSave bool

	Invalidator Invalidator                // may be nil
	OnChange    func(paths []string)       // after a refresh that changed something; may be nil
	OnSync      func(time.Duration, error) // metrics; may be nil
	OnPush      func(op string, err error) // metrics; may be nil
}

// Syncer runs refresh cycles and pushes. Its methods are safe for concurrent
// use.
type Syncer struct {
	opt Options
	log *slog.Logger

	cycleMu   sync.Mutex     // one refresh cycle at a time
	firstSave sync.WaitGroup // the first cycle's save, with BackgroundFirstSave

	// mu guards the fields below; scope.applyMu is taken before it, and
	// neither is held across a request.
	mu         sync.Mutex
	projects   []tree.Project
	scopes     map[scopeKey]*scope
	lastOK     time.Time
	staleSince time.Time // zero while the last sync cycle succeeded
	lastErr    error
	// contactErr is the last contact's failure, cleared by any request
	// that succeeds: open-for-write probes Infisical while it is set.
	contactErr error
	refusing   bool // a refused open was logged in this burst
	listing    int  // single-scope listings in flight (see refreshScope)
	writeSeq   uint64
	written    map[vault.Addr]uint64 // local writes since a listing began, to not undo them
	counts     Counts

	keyLocks sync.Map // vault.Addr → *sync.Mutex: pushes to one secret go in order

	// expandMu guards exp and spans every raw change from its expansion
	// to the vault (see expand.go). Lock order: key locks, expandMu, mu.
	expandMu sync.Mutex
	exp      expansion
	allEnvs  map[string][]string // project ID → every environment slug, filtered or not (under mu)

	trigger chan struct{}
	cycles  atomic.Uint64

	inv atomic.Value // invalidatorBox; set once the filesystem exists
}

type invalidatorBox struct{ Invalidator }

type scopeKey struct{ project, env string }

type scope struct {
	etag     string
	lastSync time.Time
	lastErr  error
	writeErr error // a write refused for this environment: fail opens early
	synced   bool
	// A cycle and the open-for-write probe may list one scope at once.
	// Each listing takes a ticket before its request; applyMu (taken
	// after the request, never across it) applies them in ticket order
	// and drops one older than what is applied, so an older listing
	// never undoes a newer one.
	ticket, applied uint64
	applyMu         sync.Mutex
}

// Counts are the syncer's counters, shown in .status and kept in the state
// file.
type Counts struct {
	Pulls      int `json:"pulls"`
	Pushes     int `json:"pushes"`
	PushErrors int `json:"push_errors"`
	Errors     int `json:"errors"`
}

// New returns a syncer; call Start for the first sync, then Run.
func New(opt Options) *Syncer {
	if opt.Interval <= 0 {
		opt.Interval = 60 * time.Second
	}
	if opt.Jitter == 0 {
		opt.Jitter = 0.1
	}
	if opt.PushTimeout <= 0 {
		opt.PushTimeout = 2 * time.Minute
	}
	if opt.StateFlushInterval <= 0 {
		opt.StateFlushInterval = DefaultStateFlushInterval
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{
		opt:     opt,
		log:     opt.Logger,
		scopes:  map[scopeKey]*scope{},
		written: map[vault.Addr]uint64{},
		exp:     expansion{deps: map[string]*refs.Deps{}, origins: map[vault.Addr]refs.Addr{}, unreadable: map[vault.Addr]string{}},
		allEnvs: map[string][]string{},
		trigger: make(chan struct{}, 1),
	}
	if opt.Invalidator != nil {
		s.inv.Store(invalidatorBox{opt.Invalidator})
	}
	if opt.State != nil {
		f := opt.State.Snapshot()
		s.counts = Counts{Pulls: f.PullCount, Pushes: f.PushCount, Errors: f.ErrorCount}
	}
	return s
}

// SetInterval changes the refresh interval from the next wait on (hot reload).
func (s *Syncer) SetInterval(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	s.opt.Interval = d
	s.mu.Unlock()
	s.Trigger() // restart the wait with the new interval
}

// SetFilter changes which projects and environments are shown (hot reload);
// the next cycle applies it.
func (s *Syncer) SetFilter(projects, envs []string) {
	s.mu.Lock()
	s.opt.Projects, s.opt.Envs = projects, envs
	s.mu.Unlock()
	s.Trigger()
}

// Projects returns the mounted projects and environments.
func (s *Syncer) Projects() []tree.Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tree.Project(nil), s.projects...)
}

// Trigger asks for a sync now (SIGHUP, `infisicalfs refresh`).
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run refreshes every interval (with jitter) until ctx is done.
func (s *Syncer) Run(ctx context.Context) {
	for {
		s.mu.Lock()
		d := s.opt.Interval
		s.mu.Unlock()
		d += time.Duration(rand.Float64() * s.opt.Jitter * float64(d))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			_ = s.Sync(ctx, false)
		case <-s.trigger:
			t.Stop()
			_ = s.Sync(ctx, true)
		}
	}
}

// Cycles counts completed refresh cycles (tests wait on it).
func (s *Syncer) Cycles() uint64 { return s.cycles.Load() }
