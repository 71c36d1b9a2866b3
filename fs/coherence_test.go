package fs

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

func sealedVault(t *testing.T) (*vault.Vault, vault.Addr) {
	t.Helper()
	v, err := vault.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Destroy)
	return v, vault.Addr{Project: "p", Env: "dev", Path: "/", Key: "K"}
}

func (c *coherence) served(t *testing.T, v *vault.Vault, a vault.Addr) string {
	t.Helper()
	var got string
	c.read(func(s vault.Sealed) {
		var val *vault.Value
		var err error
		if s.Empty() {
			val, _, err = v.Get(a)
		} else {
			val, err = v.Open(a, s)
		}
		if err != nil {
			t.Fatal(err)
		}
		got = string(val.Bytes())
		val.Wipe()
	})
	return got
}

// The pinned version is served until a delivery settles untouched, however
// many times the vault changed meanwhile.
func TestCoherenceServesThePinnedVersion(t *testing.T) {
	v, a := sealedVault(t)
	var c coherence
	v.Set(a, []byte("one"), vault.Meta{Version: 1})
	if got := c.served(t, v, a); got != "one" {
		t.Fatalf("before first contact: %q", got)
	}
	seal := func() (vault.Sealed, bool) { return v.Seal(a) }
	if m, ok := c.attr(seal); !ok || m.Size != 3 || m.Version != 1 {
		t.Fatalf("first attr: %+v %v", m, ok)
	}
	v.Set(a, []byte("two!"), vault.Meta{Version: 2})
	v.Set(a, []byte("three"), vault.Meta{Version: 3})
	if m, _ := c.attr(seal); m.Version != 1 {
		t.Errorf("attr moved before a delivery: version %d", m.Version)
	}
	if got := c.served(t, v, a); got != "one" {
		t.Errorf("read moved before a delivery: %q", got)
	}
	next, _ := v.Seal(a)
	c.begin()
	if got := c.served(t, v, a); got != "one" { // a read races the delivery
		t.Errorf("read during a delivery: %q", got)
	}
	if c.settle(next) {
		t.Fatal("settled although a read was served during the delivery")
	}
	if m, _ := c.attr(seal); m.Version != 1 {
		t.Errorf("a touched delivery moved the pin to version %d", m.Version)
	}
	c.begin()
	if !c.settle(next) {
		t.Fatal("an untouched delivery did not settle")
	}
	if m, _ := c.attr(seal); m.Version != 3 || m.Size != 5 {
		t.Errorf("after settling: %+v", m)
	}
	if got := c.served(t, v, a); got != "three" {
		t.Errorf("read after settling: %q", got)
	}
}

// getattr waits for a delivery in progress, at most deliveryWait; abandon
// ends the delivery without moving the pin.
func TestCoherenceGetattrWaitsForDelivery(t *testing.T) {
	v, a := sealedVault(t)
	v.Set(a, []byte("one"), vault.Meta{Version: 1})
	var c coherence
	c.attr(func() (vault.Sealed, bool) { return v.Seal(a) })
	c.begin()
	start := time.Now()
	c.waitDelivery()
	if d := time.Since(start); d < deliveryWait/2 {
		t.Errorf("waitDelivery returned after %v during a delivery", d)
	}
	c.abandon()
	if c.delivering != nil {
		t.Error("abandon left the delivery open: getattr would keep waiting")
	}
	if m, _ := c.attr(nil); m.Version != 1 {
		t.Errorf("abandon moved the pin: %+v", m)
	}
}

// The queue delivers in order, never blocks a caller, and Flush returns
// once everything queued before it was delivered.
func TestQueueOrderedNonBlockingFlush(t *testing.T) {
	q := newQueue()
	var mu sync.Mutex
	var got []string
	release := make(chan struct{})
	go q.run(func(it queued) {
		ch := it.ch
		<-release // a delivery stuck on the kernel
		mu.Lock()
		got = append(got, ch.Updated[0].Key)
		mu.Unlock()
	})
	queued5000 := make(chan struct{})
	go func() {
		for i := 1; i <= 5000; i++ {
			q.put(queued{ch: tree.Changes{Updated: []vault.Addr{{Key: strconv.Itoa(i)}}}})
		}
		close(queued5000)
	}()
	select {
	case <-queued5000:
	case <-time.After(30 * time.Second):
		t.Fatal("put blocked behind a stuck delivery")
	}
	done := make(chan struct{})
	q.put(queued{done: done})
	select {
	case <-done:
		t.Fatal("flush returned before the deliveries ahead of it")
	case <-time.After(10 * time.Millisecond):
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5000 {
		t.Fatalf("delivered %d of 5000", len(got))
	}
	for i, k := range got {
		if k != strconv.Itoa(i+1) {
			t.Fatalf("delivery %d was item %s: out of order", i, k)
		}
	}
	q.close()
	late := make(chan struct{})
	q.put(queued{done: late})
	<-late // a closed queue releases flushes at once
}
