// Package reliability holds the soak: a real mount against infisicaltest
// with faults injected at random while real programs read and write, then
// kill -9 of the real binary mid-write. `make reliability` runs it for
// DURATION (default 2m) and writes docs/reliability.md; under plain
// `go test` it runs SOAK_DURATION (default 30s).
package reliability_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/splice"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

const (
	clientID     = "soak-client"
	clientSecret = "soak-client-secret-0123456789"
)

func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SOAK_DURATION")
	if s == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("SOAK_DURATION=%q: want a duration such as 45s or 10m", s)
	}
	return d
}

// marker is in every value the soak writes and in nothing else, so that a
// value found in a log or a file on disk is found by searching for it.
func newMarker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "CANARY" + hex.EncodeToString(b)
}

// Values check themselves: "marker|key|seq|padding|crc", so a torn read
// (half of one value, half of another) fails the checksum.
func makeValue(marker, key string, seq int) string {
	pad := strings.Repeat(string(rune('a'+seq%26)), mrand.IntN(300))
	body := fmt.Sprintf("%s|%s|%d|%s", marker, key, seq, pad)
	return fmt.Sprintf("%s|%08x", body, crc32.ChecksumIEEE([]byte(body)))
}

func wholeValue(v, key string) bool {
	i := strings.LastIndexByte(v, '|')
	if i < 0 {
		return false
	}
	body := v[:i]
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) == v[i+1:] && strings.Contains(body, "|"+key+"|")
}

// scanLog keeps counts and a bounded tail of the daemon log, and counts
// lines that contain the marker (a value in a log).
type scanLog struct {
	marker string
	mu     sync.Mutex
	lines  int
	leaks  int
	tail   []byte
}

func (l *scanLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines += bytes.Count(p, []byte("\n"))
	if bytes.Contains(p, []byte(l.marker)) {
		l.leaks++
	}
	l.tail = append(l.tail, p...)
	if len(l.tail) > 64<<10 {
		l.tail = append([]byte(nil), l.tail[len(l.tail)-32<<10:]...)
	}
	return len(p), nil
}

// keyModel is what the soak knows about one key: every value ever sent
// (for torn and phantom checks), and what the server may hold now.
type keyModel struct {
	mu      sync.Mutex
	all     map[string]bool
	acked   string   // last write acknowledged to its program (or the last out-of-band edit)
	pending []string // writes after it that failed or whose outcome the program could not see
}

func (k *keyModel) sent(v string) {
	k.mu.Lock()
	k.all[v] = true
	k.mu.Unlock()
}

func (k *keyModel) outcome(v string, acked bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if acked {
		k.acked, k.pending = v, nil
	} else {
		k.pending = append(k.pending, v)
	}
}

type counters struct {
	reads, readFails, torn, tornWriter, straddled, emptyReads, phantomReads atomic.Int64
	writes, writesAcked, writesFailed, writesUnknown                        atomic.Int64
	oobEdits                                                                atomic.Int64
	faults                                                                  sync.Map // kind → *atomic.Int64
	failMu                                                                  sync.Mutex
	failKinds                                                               map[string]int
}

func (c *counters) fault(kind string) {
	v, _ := c.faults.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (c *counters) failure(kind string) {
	c.failMu.Lock()
	c.failKinds[kind]++
	c.failMu.Unlock()
}

func fdCount() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

// fdTargets names what each open fd is, for a leak report.
func fdTargets() string {
	es, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range es {
		l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, l)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// settle polls until the goroutine and fd counts are back to at most the
// given ones (plus slack), or gives up after a while; it returns the last
// counts seen.
func settle(tr *http.Transport, maxG, maxFD int) (int, int) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		tr.CloseIdleConnections()
		g, f := runtime.NumGoroutine(), fdCount()
		if (g <= maxG && f <= maxFD) || time.Now().After(deadline) {
			return g, f
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report collects the summary table; TestSoak writes it to SOAK_REPORT.
type report struct {
	mu   sync.Mutex
	rows [][2]string
}

func (r *report) add(k, v string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, [2]string{k, fmt.Sprintf(v, args...)})
}

func (r *report) markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| measure | value |\n| --- | --- |\n")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	return b.String()
}

func TestSoak(t *testing.T) {
	testutil.RequireFUSE(t)
	dur := soakDuration(t)
	rep := &report{}
	start := time.Now()
	t.Run("faults", func(t *testing.T) { soakFaults(t, dur, rep) })
	t.Run("recovery", func(t *testing.T) { soakRecovery(t, rep) })
	t.Run("storm", func(t *testing.T) { soakStorm(t, min(max(dur/12, 5*time.Second), 15*time.Second), rep) })
	t.Run("kill9", func(t *testing.T) { soakKill9(t, rep) })
	t.Run("idle", func(t *testing.T) { soakIdleWrites(t, buildBin(t), rep) })
	md := fmt.Sprintf("# infisicalfs reliability soak\n\nGenerated by `make reliability` (`SOAK_DURATION=%s go test -run TestSoak ./reliability/`) on %s; whole run %s; result: %s.\n\n%s",
		dur, start.UTC().Format("2006-01-02 15:04 UTC"), time.Since(start).Round(time.Second), passFail(t), rep.markdown())
	md += "\nReads: `cat` (which calls read() until it returns 0) and a Go open + one read() + close, of random keys while they are rewritten through the mount and out of band. For keys that change only by refreshes (OOB_*), one read() must return one whole value; no read may ever be empty. Keys rewritten through the mount (W_*) too: every open on a read-write mount reads its own snapshot (direct I/O, docs/behaviour.md), so a read racing a writer of the same key, and a `cat` whose read() calls span a change, must each see one whole value. Any of these fails the soak.\n"
	md += "\nWrites go through `tee` and Go's `Close` (which see a failed push) and `sh -c 'printf … > KEY'` (which does not: bash ignores close errors on its own redirections, so such a write is read back through the mount to learn whether it was pushed; a failure the shell could not see is counted as unknown). Out-of-band edits by \"another user\" go to keys of their own, so that the final state is fully determined: the server must hold, for each key, the last acknowledged value or one of the failed or unknown writes after it (a failed push may still have reached the server when the connection dropped after the request was handled).\n"
	md += "\nRecovery: with the default 60 s refresh interval, so that no cycle runs, each fault (an outage, 5xx on every request, 5xx on secret writes, an expired token) is injected three times, a write is tried while it lasts, and as soon as it clears a write goes through each of tee, Go's Close and sh's printf (read back): every one must land, because an open for writing after a failed contact probes Infisical itself. The one-key storm puts every reader and writer, and out-of-band edits, on a single key. Idle-cycle disk writes are read from the real binary's /proc/PID/io (`write_bytes`), read-write, 1 s cycles, nothing changing.\n"
	t.Logf("\n%s", md)
	if p := os.Getenv("SOAK_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
			t.Errorf("write %s: %v", p, err)
		}
	}
}

func passFail(t *testing.T) string {
	if t.Failed() {
		return "FAIL"
	}
	return "PASS"
}

func soakFaults(t *testing.T, dur time.Duration, rep *report) {
	marker := newMarker()
	srv, pid := newServer(t)
	srv.SetRetryAfter(0)

	var wKeys, oKeys []string
	models := map[string]*keyModel{}
	for i := range 6 {
		wKeys = append(wKeys, fmt.Sprintf("W_%d", i))
	}
	for i := range 4 {
		oKeys = append(oKeys, fmt.Sprintf("OOB_%d", i))
	}
	keys := append(append([]string(nil), wKeys...), oKeys...)
	for _, k := range keys {
		v := makeValue(marker, k, 0)
		srv.SetSecret(pid, "dev", "/", k, v)
		models[k] = &keyModel{all: map[string]bool{v: true}, acked: v}
	}

	// One runner per reader and writer, started before the mount (see
	// runner_test.go).
	const readers = 3
	runners := make(chan *runner, readers+len(wKeys))
	for range cap(runners) {
		runners <- startRunner(t)
	}

	logs := &scanLog{marker: marker}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mnt, stateFile, d, tr, unmount := mountInProcess(t, srv, log)
	s := d.Syncer()
	unmounted := false
	defer func() {
		if !unmounted {
			_ = unmount()
		}
		if t.Failed() {
			logs.mu.Lock()
			t.Logf("daemon log tail:\n%s", logs.tail)
			logs.mu.Unlock()
		}
	}()
	dir := filepath.Join(mnt, "webshop", "dev")
	for _, k := range keys { // warm the kernel cache
		if _, err := os.ReadFile(filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	g0, fd0 := settle(tr, 0, 0)
	splice0 := splice.Total()
	heapWarm := heapNow()

	c := &counters{failKinds: map[string]int{}}
	// The daemon runs the refresh loop itself (every 250 ms here).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	stopped := func() bool { return isClosed(stop) }

	// Readers: cat and Go reads of random keys; every key always has a
	// last-known value, so every read must succeed.
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := <-runners
			for i := 0; !stopped(); i++ {
				k := keys[mrand.IntN(len(keys))]
				var got []byte
				var err error
				multi := (i+r)%2 == 0
				if multi {
					// cat loops over read() until it returns 0.
					got, err = run.run("cat", filepath.Join(dir, k))
				} else {
					got, err = readOnce(filepath.Join(dir, k))
				}
				c.reads.Add(1)
				if err != nil {
					c.readFails.Add(1)
					c.failure("read: " + errText(err))
					continue
				}
				m := models[k]
				m.mu.Lock()
				known := m.all[string(got)]
				m.mu.Unlock()
				switch {
				case len(got) == 0:
					c.emptyReads.Add(1)
				case !wholeValue(string(got), k):
					count, how := &c.torn, "one read()"
					if multi {
						count, how = &c.straddled, "cat"
					} else if strings.HasPrefix(k, "W_") {
						count = &c.tornWriter
					}
					count.Add(1)
					c.failure(k[:1] + "-key " + how + " " + tornKind(string(got), m))
				case !known:
					c.phantomReads.Add(1)
				}
			}
		}()
	}
	// Writers: one per key, so that each key's writes are ordered and the
	// model is exact.
	for wi, k := range wKeys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := models[k]
			p := filepath.Join(dir, k)
			run := <-runners
			for seq := 1; !stopped(); seq++ {
				val := makeValue(marker, k, seq)
				m.sent(val)
				c.writes.Add(1)
				how := []string{"tee", "go", "printf"}[(seq+wi)%3]
				err := writeWith(run, how, p, val)
				if errors.Is(err, errUnseen) {
					c.writesUnknown.Add(1)
					m.outcome(val, false)
					continue
				}
				if err != nil {
					c.writesFailed.Add(1)
					c.failure(how + ": " + errText(err))
					m.outcome(val, false)
					continue
				}
				c.writesAcked.Add(1)
				m.outcome(val, true)
			}
		}()
	}
	// Another user edits its own keys out of band.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 1; !stopped(); seq++ {
			k := oKeys[mrand.IntN(len(oKeys))]
			val := makeValue(marker, k, seq)
			m := models[k]
			m.sent(val)
			srv.SetSecret(pid, "dev", "/", k, val)
			m.outcome(val, true)
			c.oobEdits.Add(1)
			sleepOrStop(stop, 20*time.Millisecond)
		}
	}()
	// Faults at random.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopped() {
			sleepOrStop(stop, time.Duration(200+mrand.IntN(600))*time.Millisecond)
			if stopped() {
				return
			}
			srv.ResetRequests() // the fake keeps a log of every request
			switch mrand.IntN(7) {
			case 0:
				c.fault("latency 20-150ms for 1s")
				srv.SetLatency(time.Duration(20+mrand.IntN(130)) * time.Millisecond)
				sleepOrStop(stop, time.Second)
				srv.SetLatency(0)
			case 1:
				c.fault("429 burst")
				srv.FailNext(1+mrand.IntN(4), http.StatusTooManyRequests)
			case 2:
				c.fault("5xx")
				srv.FailNext(1+mrand.IntN(3), []int{500, 502, 503}[mrand.IntN(3)])
			case 3:
				c.fault("outage 1-3s")
				srv.SetOutage(true)
				sleepOrStop(stop, time.Duration(1000+mrand.IntN(2000))*time.Millisecond)
				srv.SetOutage(false)
			case 4:
				c.fault("token expiry")
				srv.ExpireAllTokens()
			case 5:
				c.fault("5xx on secret writes")
				srv.FailPath("", "/api/v4/secrets/", 500, 1+mrand.IntN(2))
			case 6:
				c.fault("none (quiet spell)")
			}
		}
	}()

	heapMid := uint64(0)
	sleepOrStop(nil, dur/2)
	heapMid = heapNow()
	sleepOrStop(nil, dur-dur/2)
	close(stop)
	wg.Wait()
	srv.SetOutage(false)
	srv.ClearFaults()

	// Final sync: faults are over, so it must succeed (a token expired at
	// the very end costs one re-login inside it).
	var syncErr error
	for range 5 {
		if syncErr = s.Sync(context.Background(), true); syncErr == nil {
			break
		}
	}
	if syncErr != nil {
		t.Fatalf("final sync: %v", syncErr)
	}
	d.FS().Flush()

	lost, phantom, mountDiff := 0, 0, 0
	server := srv.Secrets(pid, "dev")
	for _, k := range keys {
		m := models[k]
		got, ok := server["/"+k]
		allowed := append([]string{m.acked}, m.pending...)
		switch {
		case !ok:
			lost++
			t.Errorf("%s: gone from the server", k)
		case !m.all[got]:
			phantom++
			t.Errorf("%s: server holds a value nobody wrote", k)
		case !contains(allowed, got):
			lost++
			t.Errorf("%s: server holds an older value than the last acknowledged write (lost write)", k)
		}
		b, err := os.ReadFile(filepath.Join(dir, k))
		if err != nil || string(b) != got {
			mountDiff++
			t.Errorf("%s: the mount shows something else than the server after the final refresh (err %v)", k, err)
		}
	}
	raw, err := os.ReadFile(stateFile)
	if err != nil {
		t.Errorf("state file: %v", err)
	} else if bytes.Contains(raw, []byte(marker)) {
		t.Errorf("a value is in the state file")
	}

	unmounted = true
	if err := unmount(); err != nil {
		t.Errorf("unmount: %v", err)
	}
	heapEnd := heapNow()
	// go-fuse keeps a pool of pipe pairs for splicing READ replies, grown
	// to the most used at once and never shrunk: two fds per pair, not a
	// leak.
	splicePairs := splice.Total() - splice0
	fdBudget := fd0 + 2 + 2*splicePairs
	g1, fd1 := settle(tr, g0+5, fdBudget)

	faults := map[string]int64{}
	c.faults.Range(func(k, v any) bool { faults[k.(string)] = v.(*atomic.Int64).Load(); return true })
	var totalFaults int64
	var fk []string
	for k, n := range faults {
		totalFaults += n
		fk = append(fk, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(fk)
	var fails []string
	c.failMu.Lock()
	for k, n := range c.failKinds {
		fails = append(fails, fmt.Sprintf("%s ×%d", k, n))
	}
	c.failMu.Unlock()
	sort.Strings(fails)
	logs.mu.Lock()
	logLines, logLeaks := logs.lines, logs.leaks
	logs.mu.Unlock()

	rep.add("soak duration", "%s", dur)
	rep.add("reads (cat: read() until 0; Go: one read())", "%d", c.reads.Load())
	rep.add("read failures", "%d", c.readFails.Load())
	rep.add("torn reads within one read(), keys changed by refreshes only (bug)", "%d", c.torn.Load())
	rep.add("torn reads within one read(), keys with a writer on the mount (bug)", "%d", c.tornWriter.Load())
	rep.add("cat reads that straddled a change between two read() calls (bug)", "%d", c.straddled.Load())
	rep.add("empty reads (bug)", "%d", c.emptyReads.Load())
	rep.add("reads of a value never written", "%d", c.phantomReads.Load())
	rep.add("writes (tee, Go Close, sh printf)", "%d", c.writes.Load())
	rep.add("writes acknowledged", "%d", c.writesAcked.Load())
	rep.add("writes failed visibly", "%d", c.writesFailed.Load())
	rep.add("sh printf writes not pushed (failure invisible to the shell)", "%d", c.writesUnknown.Load())
	rep.add("out-of-band edits", "%d", c.oobEdits.Load())
	rep.add("refresh cycles", "%d", s.Cycles())
	rep.add("faults injected", "%d: %s", totalFaults, strings.Join(fk, ", "))
	rep.add("failures seen by programs", "%s", orNone(fails))
	rep.add("lost writes", "%d", lost)
	rep.add("phantom writes", "%d", phantom)
	rep.add("keys where mount ≠ server after final refresh", "%d", mountDiff)
	rep.add("daemon log lines / lines with a value", "%d / %d", logLines, logLeaks)
	rep.add("goroutines before → after", "%d → %d", g0, g1)
	rep.add("open fds before → after", "%d → %d (go-fuse's splice pipe pool grew by %d pairs)", fd0, fd1, splicePairs)
	rep.add("heap after warm-up → mid-run → end", "%.1f → %.1f → %.1f MiB", mib(heapWarm), mib(heapMid), mib(heapEnd))

	if n := c.readFails.Load(); n > 0 {
		t.Errorf("%d reads failed although every key had a last-known value: %v", n, fails)
	}
	// The promise (docs/behaviour.md): every read() returns bytes of one
	// value Infisical stored, never a file with a value read empty: also
	// for reads racing a writer on the mount, and for cat's several
	// read() calls, since every open on a read-write mount reads its own
	// snapshot.
	if n := c.torn.Load() + c.emptyReads.Load(); n > 0 {
		t.Errorf("%d reads with one read() of keys changed only by refreshes were not one whole value, and %d reads were empty", c.torn.Load(), c.emptyReads.Load())
	}
	if n := c.straddled.Load() + c.tornWriter.Load(); n > 0 {
		t.Errorf("%d cat reads straddled a change, %d single reads racing a writer were torn", c.straddled.Load(), c.tornWriter.Load())
	}
	if n := c.phantomReads.Load(); n > 0 {
		t.Errorf("%d reads returned a value nobody wrote", n)
	}
	if c.writesAcked.Load() == 0 || c.reads.Load() == 0 {
		t.Errorf("the soak did no work: %d acknowledged writes, %d reads", c.writesAcked.Load(), c.reads.Load())
	}
	if logLeaks > 0 {
		t.Errorf("%d daemon log lines contain a secret value", logLeaks)
	}
	if g1 > g0+5 {
		t.Errorf("goroutine leak: %d before, %d after", g0, g1)
	}
	if fd1 > fdBudget {
		t.Errorf("fd leak: %d before, %d after (%d of them go-fuse's splice pool): %s", fd0, fd1, 2*splicePairs, fdTargets())
	}
	// Flat: the heap at the end of the run may not have grown much past
	// the middle (a leak grows with the number of operations).
	if heapEnd > heapMid*2+16<<20 {
		t.Errorf("heap grew from %.1f MiB mid-run to %.1f MiB at the end", mib(heapMid), mib(heapEnd))
	}
}

// tornKind describes a read that is not a whole value, without the value.
func tornKind(got string, m *keyModel) string {
	if got == "" {
		return "torn read: empty"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for v := range m.all {
		if strings.HasPrefix(v, got) {
			return fmt.Sprintf("torn read: a prefix (%d of %d bytes) of a written value", len(got), len(v))
		}
	}
	if trimmed := strings.TrimRight(got, "\x00"); trimmed != got {
		if m.all[trimmed] {
			return fmt.Sprintf("torn read: a whole written value padded with %d zero bytes (the kernel's size was a newer, longer value's)", len(got)-len(trimmed))
		}
		for v := range m.all {
			if strings.HasPrefix(v, trimmed) {
				return fmt.Sprintf("torn read: a prefix (%d of %d bytes) of a written value padded with %d zero bytes", len(trimmed), len(v), len(got)-len(trimmed))
			}
		}
	}
	for v := range m.all {
		if len(v) < len(got) && strings.HasPrefix(got, v) {
			return fmt.Sprintf("torn read: a whole written value (%d bytes) followed by %d other bytes", len(v), len(got)-len(v))
		}
	}
	return fmt.Sprintf("torn read: %d bytes, no prefix of a written value", len(got))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errText shortens an error to its kind for counting (no values: the
// programs' stderr names files, not contents).
func errText(err error) string {
	if err == nil {
		return "no error"
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if i := strings.LastIndex(ee.stderr, ": "); i >= 0 {
			return fmt.Sprintf("exit %d (%s)", ee.code, ee.stderr[i+2:])
		}
		return fmt.Sprintf("exit %d", ee.code)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// readOnce reads a file with one read() call: values are far shorter
// than the buffer, so this is the whole file, and it must be one version.
func readOnce(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// errUnseen is a sh printf write that did not land, which the shell could
// not see: it ignores close() errors on its own redirections.
var errUnseen = errors.New("not pushed (read back), and the shell could not see it")

// writeWith writes val to p with tee, Go's Close or sh's printf; the last
// is read back to learn its outcome (errUnseen when it did not land).
func writeWith(run *runner, how, p, val string) error {
	switch how {
	case "tee":
		_, err := run.run("sh", "-c", `printf %s "$1" | tee "$2" >/dev/null`, "sh", val, p)
		return err
	case "go":
		return goWrite(p, val)
	case "printf":
		if _, err := run.run("sh", "-c", `printf %s "$1" > "$2"`, "sh", val, p); err != nil {
			return err
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != val {
			return errUnseen
		}
		return nil
	}
	panic("writeWith: no such tool " + how)
}

// isClosed reports whether stop is closed.
func isClosed(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func goWrite(p, val string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(val); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sleepOrStop sleeps d or until stop closes (nil stop: just sleep).
func sleepOrStop(stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// newServer starts infisicaltest with project webshop (environment dev) and
// the soak's identity allowed to read and write it.
func newServer(t *testing.T) (srv *infisicaltest.Server, projectID string) {
	t.Helper()
	srv = infisicaltest.New()
	t.Cleanup(srv.Close)
	projectID = srv.AddProject("webshop", "Webshop", "dev")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, projectID, infisicaltest.PermReadWrite)
	return srv, projectID
}

// mountInProcess mounts srv through daemon.Start, as `infisicalfs mount`
// does, in a temp dir; unmount stops the daemon.
func mountInProcess(t *testing.T, srv *infisicaltest.Server, log *slog.Logger) (mnt, stateFile string, d *daemon.Daemon, tr *http.Transport, unmount func() error) {
	t.Helper()
	tmp := t.TempDir()
	mnt = filepath.Join(tmp, "mnt")
	stateFile = filepath.Join(tmp, "state", "infisical_sync_state.json")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	tr = http.DefaultTransport.(*http.Transport).Clone()
	cfg := config.Default()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = srv.URL(), clientID, clientSecret
	cfg.RefreshInterval = config.Duration{Duration: time.Second}
	cfg.StateFile = stateFile
	retry := infisical.RetryPolicy{RateLimitWait: time.Millisecond, ServerErrorWait: 5 * time.Millisecond,
		MaxRetryAfter: 10 * time.Millisecond, LoginBackoff: 5 * time.Millisecond}
	var err error
	d, err = daemon.Start(context.Background(), daemon.Options{
		Config: cfg, Mountpoint: mnt, Logger: log,
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Retry:      &retry, PushTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	// The soak wants fast cycles; config's floor is 1s.
	d.Syncer().SetInterval(250 * time.Millisecond)
	return mnt, stateFile, d, tr, func() error { return d.Stop(context.Background()) }
}
