package csi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRegistryShares(t *testing.T) {
	o := newFakeOpener()
	r := NewRegistry(o.open, nil)
	ctx := context.Background()
	k1 := Key{Identity: "a", URL: "u", Scope: Scope{Project: "p", Env: "dev", Path: "/"}}
	k2 := Key{Identity: "a", URL: "u", Scope: Scope{Project: "p", Env: "prod", Path: "/"}}
	creds := Credentials{Method: AuthUniversal, ClientID: "c", ClientSecret: "s"}

	// Ten concurrent acquirers of one key: one open.
	var wg sync.WaitGroup
	srcs := make([]Source, 10)
	for i := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.Acquire(ctx, k1, creds)
			if err != nil {
				t.Error(err)
			}
			srcs[i] = s
		}()
	}
	wg.Wait()
	if n := o.opens.Load(); n != 1 {
		t.Fatalf("%d opens for one key, want 1", n)
	}
	for _, s := range srcs {
		if s != srcs[0] {
			t.Fatal("acquirers of one key got different sources")
		}
	}
	if _, err := r.Acquire(ctx, k2, creds); err != nil {
		t.Fatal(err)
	}
	if n := o.opens.Load(); n != 2 || r.Len() != 2 {
		t.Fatalf("opens %d, len %d; want 2 and 2", n, r.Len())
	}
	for range 9 {
		r.Release(k1)
	}
	if o.closes.Load() != 0 {
		t.Fatal("closed while a volume still holds it")
	}
	r.Release(k1)
	if o.closes.Load() != 1 || r.Len() != 1 {
		t.Fatalf("closes %d, len %d after the last release; want 1 and 1", o.closes.Load(), r.Len())
	}
	// Acquired again after closing: a fresh source.
	if s, err := r.Acquire(ctx, k1, creds); err != nil || s == srcs[0] {
		t.Fatalf("reacquire: %v (same source: %v)", err, s == srcs[0])
	}
	r.Close()
	if o.closes.Load() != 3 {
		t.Fatalf("Close closed %d in all, want 3", o.closes.Load())
	}
}

func TestRegistryFailedOpenIsRetried(t *testing.T) {
	o := newFakeOpener()
	r := NewRegistry(o.open, nil)
	k := Key{Identity: "a", Scope: Scope{Project: "p", Env: "dev", Path: "/"}}
	boom := errors.New("boom")
	o.failWith(boom)
	if _, err := r.Acquire(context.Background(), k, Credentials{}); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if r.Len() != 0 {
		t.Fatal("a failed open stays registered")
	}
	o.fail.Store(nil)
	if _, err := r.Acquire(context.Background(), k, Credentials{}); err != nil {
		t.Fatal(err)
	}
	if o.opens.Load() != 2 {
		t.Fatalf("opens %d, want 2", o.opens.Load())
	}
}

func TestRegistryWaiterGivesUp(t *testing.T) {
	o := newFakeOpener()
	o.gate, o.entered = make(chan struct{}), make(chan struct{}, 1)
	r := NewRegistry(o.open, nil)
	k := Key{Identity: "a"}
	done := make(chan error)
	go func() { _, err := r.Acquire(context.Background(), k, Credentials{}); done <- err }()
	<-o.entered // the first acquirer is opening
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.Acquire(ctx, k, Credentials{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want deadline", err)
	}
	close(o.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Release(k)
	if o.closes.Load() != 1 {
		t.Fatalf("closes %d: the waiter that gave up must not keep the source open", o.closes.Load())
	}
}

func TestRegistryTokens(t *testing.T) {
	o := newFakeOpener()
	r := NewRegistry(o.open, nil)
	k := Key{Identity: "k8s"}
	c := Credentials{Method: AuthKubernetes, IdentityID: "id", JWT: "t1"}
	s, _ := r.Acquire(context.Background(), k, c)
	box := s.(*fakeSource).tokens
	if box.Get() != "t1" {
		t.Fatalf("token %q", box.Get())
	}
	c.JWT = "t2"
	if _, err := r.Acquire(context.Background(), k, c); err != nil {
		t.Fatal(err)
	}
	if box.Get() != "t2" {
		t.Fatal("a second pod's newer token did not reach the source")
	}
	c.JWT = "t3"
	r.Refresh(k, c)
	if box.Get() != "t3" {
		t.Fatal("republish did not refresh the token")
	}
}
