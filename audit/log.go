package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Log.
type Options struct {
	// Path is the audit file (created 0600, parent directories 0700); "-"
	// writes the lines to stderr (the journal under systemd); "" writes no
	// file, and denials are still logged.
	Path    string
	MaxSize int64 // rotate before the file would pass this many bytes; 0: never
	Keep    int   // rotated files kept (path.1 … path.Keep); 0: none
	// Buffer is how many records may wait for the writer; more are
	// dropped and counted. Default 4096.
	Buffer int
	// DenialInterval: one log line per rule and caller (uid and
	// executable) per interval; default one minute.
	DenialInterval time.Duration
	Logger         *slog.Logger
	Stderr         io.Writer // for Path "-"; default os.Stderr
}

// Defaults.
const (
	DefaultBuffer         = 4096
	DefaultDenialInterval = time.Minute
)

// Log is the audit log. Record is safe for concurrent use and never
// blocks; one goroutine owns the file.
type Log struct {
	opt     Options
	log     *slog.Logger
	ch      chan Record
	syncReq chan chan struct{}
	quit    chan struct{}
	done    chan struct{}
	closed  atomic.Bool

	written atomic.Uint64
	dropped atomic.Uint64 // buffer full, or after Close
	failed  atomic.Uint64 // write errors

	// Owned by the writer goroutine; no lock.
	w        io.Writer
	f        *os.File // nil for stderr or while failing
	size     int64
	failing  bool
	lost     uint64 // records lost to write errors since failing began
	reported uint64 // drops already reported
	denials  *limiter
}

// Open opens the audit file (so that a bad path fails the mount at start)
// and starts the writer.
func Open(opt Options) (*Log, error) {
	if opt.Buffer <= 0 {
		opt.Buffer = DefaultBuffer
	}
	if opt.DenialInterval <= 0 {
		opt.DenialInterval = DefaultDenialInterval
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Stderr == nil {
		opt.Stderr = os.Stderr
	}
	l := &Log{
		opt: opt, log: opt.Logger,
		ch: make(chan Record, opt.Buffer), syncReq: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{}),
		denials: newLimiter(opt.DenialInterval),
	}
	switch opt.Path {
	case "":
	case "-":
		l.w = opt.Stderr
	default:
		if err := l.open(); err != nil {
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

// Record queues one record. It never blocks: with the buffer full the
// record is dropped and counted.
func (l *Log) Record(r Record) {
	select {
	case l.ch <- r:
	default:
		l.dropped.Add(1)
	}
}

// Stats counts records, for .status and metrics.
type Stats struct {
	Written uint64 `json:"written"`
	Dropped uint64 `json:"dropped"` // the buffer was full (or the log closed)
	Failed  uint64 `json:"failed"`  // a write failed
}

// Stats returns the counts so far.
func (l *Log) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Sync waits until every record queued before it has been handled.
func (l *Log) Sync() {
	if l.closed.Load() {
		return
	}
	ack := make(chan struct{})
	select {
	case l.syncReq <- ack:
		<-ack
	case <-l.done:
	}
}

// Close writes what is queued and closes the file. Records after Close
// are dropped.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	close(l.quit)
	<-l.done
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	for {
		select {
		case r := <-l.ch:
			l.handle(r)
			l.reportDrops()
		case ack := <-l.syncReq:
			l.drain()
			close(ack)
		case <-l.quit:
			l.drain()
			if l.f != nil {
				l.f.Close()
			}
			// Whatever arrives now has nobody to write it.
			l.closed.Store(true)
			return
		}
	}
}

// drain handles what is queued now.
func (l *Log) drain() {
	for {
		select {
		case r := <-l.ch:
			l.handle(r)
		default:
			l.reportDrops()
			return
		}
	}
}

func (l *Log) handle(r Record) {
	if !r.Allowed {
		l.denials.log(l.log, r)
	}
	if l.opt.Path == "" {
		return
	}
	b, err := r.marshal()
	if err == nil {
		err = l.write(b)
	}
	if err != nil {
		l.failed.Add(1)
		l.lost++
		if !l.failing {
			l.failing = true
			l.log.Error("audit log: write failed; records are lost until it works again", "path", l.opt.Path, "err", err)
		}
		return
	}
	l.written.Add(1)
	if l.failing {
		l.failing = false
		l.log.Info("audit log: writing again", "path", l.opt.Path, "lost", l.lost)
		l.lost = 0
	}
}

// reportDrops logs, once per burst, records dropped for a full buffer.
func (l *Log) reportDrops() {
	if d := l.dropped.Load(); d > l.reported {
		l.log.Warn("audit log: buffer full, records dropped", "path", l.opt.Path, "dropped", d-l.reported)
		l.reported = d
	}
}

func (l *Log) write(b []byte) error {
	if l.opt.Path == "-" {
		_, err := l.w.Write(b)
		return err
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			return err
		}
	}
	if l.opt.MaxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.opt.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		// Start over with a fresh open on the next record.
		l.f.Close()
		l.f = nil
		return err
	}
	return nil
}

// open opens (or creates) the audit file for appending, owner-only.
func (l *Log) open() error {
	p := l.opt.Path
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	// O_NOFOLLOW: a symlink planted at the path must not redirect the log.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("audit log %s: not a regular file (use \"-\" for stderr)", p)
	}
	// An existing file keeps records of who read what: owner-only too.
	if st.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fmt.Errorf("audit log: %w", err)
		}
	}
	l.f, l.size = f, st.Size()
	return nil
}

// rotate shifts path.N-1 → path.N … path → path.1 and starts a new file.
func (l *Log) rotate() error {
	p := l.opt.Path
	l.f.Close()
	l.f = nil
	var err error
	if l.opt.Keep <= 0 {
		err = os.Remove(p)
	} else {
		os.Remove(fmt.Sprintf("%s.%d", p, l.opt.Keep))
		for i := l.opt.Keep - 1; i >= 1; i-- {
			if e := os.Rename(fmt.Sprintf("%s.%d", p, i), fmt.Sprintf("%s.%d", p, i+1)); e != nil && !errors.Is(e, os.ErrNotExist) {
				err = e
			}
		}
		if e := os.Rename(p, p+".1"); e != nil {
			err = e
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("audit log: rotation", "path", p, "err", err)
	}
	return l.open()
}
