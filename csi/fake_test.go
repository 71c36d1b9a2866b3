package csi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// fakeOpener counts opens and closes; its sources record their mounts.
// It stands in for daemon sources in the tests of the registry and the
// services; the real-mount tests use the daemon.
type fakeOpener struct {
	opens, closes atomic.Int32
	fail          atomic.Pointer[error]
	gate          chan struct{} // if set, Open waits on it
	entered       chan struct{} // if set, gets a value when Open starts waiting

	mu      sync.Mutex
	sources map[Key]*fakeSource
}

type fakeSource struct {
	o      *fakeOpener
	key    Key
	tokens *TokenBox
	mu     sync.Mutex
	mounts map[string]View
	closed bool
}

type fakeMounted struct {
	s      *fakeSource
	target string
}

func newFakeOpener() *fakeOpener { return &fakeOpener{sources: map[Key]*fakeSource{}} }

func (o *fakeOpener) open(ctx context.Context, key Key, creds Credentials, tokens *TokenBox) (Source, error) {
	if o.gate != nil {
		if o.entered != nil {
			select {
			case o.entered <- struct{}{}:
			default:
			}
		}
		select {
		case <-o.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	o.opens.Add(1)
	if p := o.fail.Load(); p != nil {
		return nil, *p
	}
	s := &fakeSource{o: o, key: key, tokens: tokens, mounts: map[string]View{}}
	o.mu.Lock()
	o.sources[key] = s
	o.mu.Unlock()
	return s, nil
}

func (o *fakeOpener) failWith(err error) { o.fail.Store(&err) }

func (s *fakeSource) Mount(target string, v View) (Mounted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("mount on a closed source")
	}
	if _, ok := s.mounts[target]; ok {
		return nil, fmt.Errorf("%s mounted twice", target)
	}
	s.mounts[target] = v
	return &fakeMounted{s, target}, nil
}

func (s *fakeSource) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("closed twice")
	}
	s.closed = true
	s.o.closes.Add(1)
}

func (m *fakeMounted) Unmount() error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if _, ok := m.s.mounts[m.target]; !ok {
		return fmt.Errorf("%s unmounted twice", m.target)
	}
	delete(m.s.mounts, m.target)
	return nil
}
