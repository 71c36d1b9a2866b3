package csi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Key names one shared source: who reads it (a fingerprint, never the
// secret), from where, and what.
type Key struct {
	Identity string // Credentials.Fingerprint
	URL      string
	Scope
}

// String is safe to log: the fingerprint is an HMAC under a process key.
func (k Key) String() string {
	return fmt.Sprintf("%s %s/%s%s as %s", k.URL, k.Scope.Project, k.Scope.Env, k.Scope.Path, k.Identity[:min(8, len(k.Identity))])
}

// Source is one logged-in, syncing copy of a scope that views mount.
type Source interface {
	Mount(target string, v View) (Mounted, error)
	Close()
}

// Mounted is one view at one target.
type Mounted interface {
	Unmount() error
}

// Opener opens a source for a key: logs in, syncs once, starts the refresh
// loop. creds.JWT is current at the call; for Kubernetes auth tokens
// returns the newest token any volume of this source brought, for every
// later login (kubelet rotates them, and the first pod may be gone).
type Opener func(ctx context.Context, key Key, creds Credentials, tokens *TokenBox) (Source, error)

// TokenBox holds the newest service-account token for a Kubernetes-auth
// source. Publish and republish put a pod's token in; the source reads it
// at every login.
type TokenBox struct {
	mu   sync.Mutex // also serialises sink calls (memory-only, no I/O)
	jwt  string
	sink func(string)
}

// Set stores a newer token and hands it to the sink, if any.
func (b *TokenBox) Set(jwt string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if jwt == b.jwt {
		return
	}
	b.jwt = jwt
	if b.sink != nil {
		b.sink(jwt)
	}
}

// OnSet makes every later Set also call f with the token.
func (b *TokenBox) OnSet(f func(string)) {
	b.mu.Lock()
	b.sink = f
	b.mu.Unlock()
}

// Get returns the newest token.
func (b *TokenBox) Get() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.jwt
}

// Registry shares sources between volumes of one key and closes a source
// when its last volume goes.
//
// Lock order: Registry.mu only; it is never held across Open, Mount, Unmount
// or Close (each may do network or FUSE I/O). An entry being opened is
// marked by its ready channel, and other acquirers of the key wait on it.
type Registry struct {
	open Opener
	log  *slog.Logger

	mu      sync.Mutex
	entries map[Key]*entry
}

type entry struct {
	ready  chan struct{} // closed when src/err are set
	src    Source
	err    error
	refs   int // volumes holding it, including ones still waiting for ready
	tokens *TokenBox
}

// NewRegistry returns an empty registry.
func NewRegistry(open Opener, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{open: open, log: log, entries: map[Key]*entry{}}
}

// Acquire returns the key's source, opening it on first use; the caller
// must call Release(key) once when done with it. A failed open is not
// cached: the next Acquire tries again (kubelet retries publishes).
func (r *Registry) Acquire(ctx context.Context, key Key, creds Credentials) (Source, error) {
	r.mu.Lock()
	e, ok := r.entries[key]
	if !ok {
		e = &entry{ready: make(chan struct{}), tokens: &TokenBox{}}
		r.entries[key] = e
	}
	e.refs++
	r.mu.Unlock()
	if creds.Method == AuthKubernetes {
		e.tokens.Set(creds.JWT)
	}

	if !ok {
		src, err := r.open(ctx, key, creds, e.tokens)
		r.mu.Lock()
		e.src, e.err = src, err
		if err != nil {
			delete(r.entries, key) // waiters hold e and see err
		}
		r.mu.Unlock()
		close(e.ready)
		if err == nil {
			r.log.Info("source opened", "source", key.String())
		}
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			r.drop(key, e)
			return nil, ctx.Err()
		}
	}
	if e.err != nil {
		r.drop(key, e)
		return nil, e.err
	}
	return e.src, nil
}

// Refresh hands a newer service-account token to the key's source, if
// it is open.
func (r *Registry) Refresh(key Key, creds Credentials) {
	if creds.Method != AuthKubernetes {
		return
	}
	r.mu.Lock()
	e := r.entries[key]
	r.mu.Unlock()
	if e != nil {
		e.tokens.Set(creds.JWT)
	}
}

// Release gives back one Acquire; the last one closes the source.
func (r *Registry) Release(key Key) {
	r.mu.Lock()
	e := r.entries[key]
	r.mu.Unlock()
	if e != nil {
		r.drop(key, e)
	}
}

func (r *Registry) drop(key Key, e *entry) {
	r.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && r.entries[key] == e {
		delete(r.entries, key)
	}
	r.mu.Unlock()
	if last && e.src != nil {
		e.src.Close()
		r.log.Info("source closed: no volume uses it", "source", key.String())
	}
}

// Len is the number of open (or opening) sources.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Close closes every source, for shutdown.
func (r *Registry) Close() {
	r.mu.Lock()
	es := r.entries
	r.entries = map[Key]*entry{}
	r.mu.Unlock()
	for _, e := range es {
		<-e.ready
		if e.src != nil {
			e.src.Close()
		}
	}
}
