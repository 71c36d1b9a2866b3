package syncer

import "github.com/infisicalfs/infisicalfs/vault"

// Kernel cache invalidations are delivered from this one goroutine, in order,
// never from inside a FUSE request: a notify sent while the kernel holds a
// lock for the request being served can deadlock (libfuse documents it).

type notifyItem struct {
	ch   vault.Changes
	done chan struct{} // closed when delivered; only for Flush
}

func (s *Syncer) invalidator() Invalidator {
	b, _ := s.inv.Load().(invalidatorBox)
	return b.Invalidator
}

func (s *Syncer) notify(ch Changes, statusOnly bool) {
	if s.invalidator() == nil {
		return
	}
	if statusOnly {
		ch.Status = true
	}
	if ch.Empty() {
		return
	}
	if !ch.Secrets() {
		// A status-only update may be dropped when the queue is full;
		// the next cycle sends another.
		select {
		case s.notifyQ <- notifyItem{ch: ch}:
		default:
		}
		return
	}
	s.notifyQ <- notifyItem{ch: ch}
}

func (s *Syncer) notifyLoop() {
	defer close(s.notifyEnd)
	for it := range s.notifyQ {
		if it.done != nil {
			close(it.done)
			continue
		}
		if inv := s.invalidator(); inv != nil {
			inv.Invalidate(it.ch)
		}
	}
}

// Flush waits until every invalidation queued so far has been delivered.
func (s *Syncer) Flush() {
	done := make(chan struct{})
	s.notifyQ <- notifyItem{done: done}
	<-done
}

// Close stops the notifier after delivering what is queued. The syncer must
// not be used for writes afterwards.
func (s *Syncer) Close() {
	s.closeOnce.Do(func() {
		close(s.notifyQ)
		<-s.notifyEnd
	})
}

// SetInvalidator sets who is told of changes; the filesystem is created after
// the syncer, so this is set before it mounts.
func (s *Syncer) SetInvalidator(inv Invalidator) {
	s.inv.Store(invalidatorBox{inv})
}
