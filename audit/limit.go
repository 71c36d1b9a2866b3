package audit

import (
	"log/slog"
	"time"
)

// limiter lets one denial line per rule and caller through per interval and
// counts the rest. Only the writer goroutine uses it.
type limiter struct {
	every time.Duration
	seen  map[denialKey]*denialSeen
}

// denialKey is "the same caller" for rate limiting: pids change with every
// run of a program, uid and executable do not.
type denialKey struct {
	rule int
	uid  uint32
	exe  string
}

type denialSeen struct {
	last       time.Time
	suppressed int
}

const limiterMax = 4096 // entries before old ones are pruned

func newLimiter(every time.Duration) *limiter {
	return &limiter{every: every, seen: make(map[denialKey]*denialSeen)}
}

func (l *limiter) log(log *slog.Logger, r Record) {
	k := denialKey{r.Rule, r.UID, r.Exe}
	s := l.seen[k]
	if s != nil && r.Time.Sub(s.last) < l.every {
		s.suppressed++
		return
	}
	if s == nil {
		if len(l.seen) >= limiterMax {
			for k, v := range l.seen {
				if r.Time.Sub(v.last) >= l.every {
					delete(l.seen, k)
				}
			}
		}
		s = &denialSeen{}
		l.seen[k] = s
	}
	log.Warn("access denied", "path", r.Path, "mode", r.Mode.String(), "uid", r.UID, "gid", r.GID, "pid", r.PID,
		"executable", r.Exe, "rule", r.Rule, "reason", r.Reason, "suppressed", s.suppressed)
	s.last, s.suppressed = r.Time, 0
}
