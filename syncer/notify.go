package syncer

import "github.com/infisicalfs/infisicalfs/internal/tree"

func (s *Syncer) invalidator() Invalidator {
	b, _ := s.inv.Load().(invalidatorBox)
	return b.Invalidator
}

// notify tells the invalidator what changed. It may run inside a FUSE
// request (a push runs in FLUSH or RENAME): the invalidator only queues,
// and delivers to the kernel from a goroutine of its own.
func (s *Syncer) notify(ch tree.Changes, statusOnly bool) {
	inv := s.invalidator()
	if inv == nil {
		return
	}
	if statusOnly {
		ch.Status = true
	}
	if ch.Empty() {
		return
	}
	inv.Invalidate(ch)
}

// SetInvalidator sets who is told of changes, where the filesystem is made
// after the syncer.
func (s *Syncer) SetInvalidator(inv Invalidator) {
	s.inv.Store(invalidatorBox{inv})
}
