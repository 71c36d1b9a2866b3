package syncer

import (
	"sync"

	"github.com/infisicalfs/infisicalfs/internal/tree"
)

// Kernel cache invalidations are delivered from one goroutine, in order,
// never from inside a FUSE request: a notify sent while the kernel holds a
// lock for the request being served can deadlock (libfuse documents it).
//
// The queue is unbounded: a push runs inside a FUSE request (a rename holds
// its directories' locks), so queueing must never wait for the notifier,
// which may itself be waiting for the kernel to release those locks.

type notifyItem struct {
	ch   tree.Changes
	done chan struct{} // closed when delivered; only for Flush
}

// notifier is the queue and its goroutine.
type notifier struct {
	mu     sync.Mutex
	items  []notifyItem
	wake   chan struct{} // one pending wake-up
	closed bool
	end    chan struct{}
}

func newNotifier() *notifier {
	return &notifier{wake: make(chan struct{}, 1), end: make(chan struct{})}
}

func (q *notifier) put(it notifyItem) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		if it.done != nil {
			close(it.done)
		}
		return
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *notifier) loop(deliver func(tree.Changes)) {
	defer close(q.end)
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		for _, it := range items {
			if it.done != nil {
				close(it.done)
				continue
			}
			deliver(it.ch)
		}
		if closed {
			return
		}
		if len(items) == 0 {
			<-q.wake
		}
	}
}

func (q *notifier) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.end
}

func (s *Syncer) invalidator() Invalidator {
	b, _ := s.inv.Load().(invalidatorBox)
	return b.Invalidator
}

func (s *Syncer) notify(ch tree.Changes, statusOnly bool) {
	if s.invalidator() == nil {
		return
	}
	if statusOnly {
		ch.Status = true
	}
	if ch.Empty() {
		return
	}
	s.notifyQ.put(notifyItem{ch: ch})
}

func (s *Syncer) deliver(ch tree.Changes) {
	if inv := s.invalidator(); inv != nil {
		inv.Invalidate(ch)
	}
}

// Flush waits until every invalidation queued so far has been delivered.
func (s *Syncer) Flush() {
	done := make(chan struct{})
	s.notifyQ.put(notifyItem{done: done})
	<-done
}

// Close stops the notifier after delivering what is queued. The syncer must
// not be used for writes afterwards.
func (s *Syncer) Close() {
	s.closeOnce.Do(s.notifyQ.close)
}

// SetInvalidator sets who is told of changes; the filesystem is created after
// the syncer, so this is set before it mounts.
func (s *Syncer) SetInvalidator(inv Invalidator) {
	s.inv.Store(invalidatorBox{inv})
}
