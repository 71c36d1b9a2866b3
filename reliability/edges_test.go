package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// soakRecovery (issue 12): with the default 60 s refresh interval, so that
// no sync cycle runs during the test, a fault is injected, a write is
// tried while it lasts, the fault clears, and writes follow at once through
// tee, Go's Close and sh's printf. Every write after the fault cleared
// must land: the mount checks Infisical at the open, not at its next cycle.
func soakRecovery(t *testing.T, rep *report) {
	marker := newMarker()
	srv, pid := newServer(t)
	srv.SetRetryAfter(0)
	srv.SetSecret(pid, "dev", "/", "REC", makeValue(marker, "REC", 0))
	run := startRunner(t)
	logs := &scanLog{marker: marker}
	mnt, _, d, _, unmount := mountInProcess(t, srv, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer func() { _ = unmount() }()
	d.Syncer().SetInterval(60 * time.Second) // the default: no cycle comes to the rescue
	p := filepath.Join(mnt, "webshop", "dev", "REC")

	faults := []struct {
		name        string
		start, stop func()
	}{
		{"outage", func() { srv.SetOutage(true) }, func() { srv.SetOutage(false) }},
		{"5xx on every request", func() { srv.FailNext(1000, http.StatusBadGateway) }, srv.ClearFaults},
		{"5xx on secret writes", func() { srv.FailPath("", "/api/v4/secrets/", 500, 1000) }, srv.ClearFaults},
		{"token expiry", srv.ExpireAllTokens, func() {}},
	}
	const rounds = 3
	var after, afterFailed, during, duringFailed int
	var fails []string
	seq := 0
	for r := range rounds {
		for _, f := range faults {
			f.start()
			seq++
			during++
			if err := goWrite(p, makeValue(marker, "REC", seq)); err != nil {
				duringFailed++
			}
			f.stop()
			for _, how := range []string{"tee", "go", "printf"} {
				seq++
				val := makeValue(marker, "REC", seq)
				err := writeWith(run, how, p, val)
				after++
				if got, _, _ := srv.Secret(pid, "dev", "/", "REC"); err == nil && got != val {
					err = fmt.Errorf("acknowledged, but Infisical holds another value")
				}
				if err != nil {
					afterFailed++
					fails = append(fails, fmt.Sprintf("round %d, after %s, %s: %v", r, f.name, how, err))
				}
			}
		}
	}
	rep.add("writes right after a fault cleared (60 s refresh interval; outage, 5xx, 5xx on writes, token expiry; tee, Go Close, sh printf)", "%d", after)
	rep.add("of which failed (bug)", "%d", afterFailed)
	rep.add("writes while the fault lasted, failed visibly / tried", "%d / %d", duringFailed, during)
	for _, f := range fails {
		t.Error(f)
	}
	if logs.leaks > 0 {
		t.Errorf("%d daemon log lines hold a value", logs.leaks)
	}
}

// soakStorm (issue 12): readers (cat and single read() calls) and writers
// (tee and Go) all on one key, with out-of-band edits of it and refreshes
// every 250 ms. Every read returns one whole value that was written,
// never an empty or a torn one; at the end the server holds one of the
// values written and the mount shows it.
func soakStorm(t *testing.T, dur time.Duration, rep *report) {
	marker := newMarker()
	srv, pid := newServer(t)
	const key = "STORM"
	first := makeValue(marker, key, 0)
	srv.SetSecret(pid, "dev", "/", key, first)
	const readers, writers = 4, 4
	runners := make(chan *runner, readers+writers)
	for range cap(runners) {
		runners <- startRunner(t)
	}
	logs := &scanLog{marker: marker}
	mnt, _, d, _, unmount := mountInProcess(t, srv, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer func() { _ = unmount() }()
	p := filepath.Join(mnt, "webshop", "dev", key)

	var sentMu sync.Mutex
	sent := map[string]bool{first: true}
	send := func(v string) {
		sentMu.Lock()
		sent[v] = true
		sentMu.Unlock()
	}
	var seq, reads, empty, torn, unknown, acked, failed, oob atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := <-runners
			for !isClosed(stop) {
				var got []byte
				var err error
				if i%2 == 0 {
					got, err = run.run("cat", p)
				} else {
					got, err = readOnce(p)
				}
				reads.Add(1)
				sentMu.Lock()
				known := sent[string(got)]
				sentMu.Unlock()
				switch {
				case err != nil:
					t.Errorf("read: %v", err)
				case len(got) == 0:
					empty.Add(1)
				case !wholeValue(string(got), key):
					torn.Add(1)
				case !known:
					unknown.Add(1)
				}
			}
		}()
	}
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := <-runners
			for !isClosed(stop) {
				val := makeValue(marker, key, int(seq.Add(1)))
				send(val)
				if err := writeWith(run, []string{"tee", "go"}[i%2], p, val); err != nil {
					failed.Add(1)
				} else {
					acked.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			val := makeValue(marker, key, int(seq.Add(1)))
			send(val)
			srv.SetSecret(pid, "dev", "/", key, val)
			oob.Add(1)
		}
	}()
	time.Sleep(dur)
	close(stop)
	wg.Wait()
	if err := d.Syncer().Sync(context.Background(), true); err != nil {
		t.Fatalf("final sync: %v", err)
	}
	final, _, _ := srv.Secret(pid, "dev", "/", key)
	shown, err := os.ReadFile(p)
	if !sent[final] {
		t.Errorf("the server holds a value nobody wrote")
	}
	if err != nil || string(shown) != final {
		t.Errorf("after the final refresh the mount shows another value than the server (%v)", err)
	}
	rep.add("one-key storm", "%s, %d readers (cat, read()), %d writers (tee, Go), out-of-band edits every 30 ms", dur, readers, writers)
	rep.add("one-key storm: reads / empty / torn / of a value never written (bugs)", "%d / %d / %d / %d", reads.Load(), empty.Load(), torn.Load(), unknown.Load())
	rep.add("one-key storm: writes acknowledged / failed visibly / out-of-band edits", "%d / %d / %d", acked.Load(), failed.Load(), oob.Load())
	if n := empty.Load() + torn.Load() + unknown.Load(); n > 0 {
		t.Errorf("%d reads of one key under a storm were empty, torn or of a value never written", n)
	}
	if acked.Load() == 0 || reads.Load() == 0 {
		t.Errorf("the storm exercised nothing: %d writes acknowledged, %d reads", acked.Load(), reads.Load())
	}
	if logs.leaks > 0 {
		t.Errorf("%d daemon log lines hold a value", logs.leaks)
	}
}

// soakIdleWrites (issue 12): the real binary, read-write, refreshing every
// second with nothing changing, writes nothing to disk between its 2nd and
// 10th cycle (write_bytes of /proc/PID/io: what the process caused to be
// written to storage, the state file included).
func soakIdleWrites(t *testing.T, bin string, rep *report) {
	srv, pid := newServer(t)
	for i := range 50 {
		srv.SetSecret(pid, "dev", "/", fmt.Sprintf("K_%02d", i), "value")
	}
	tmp := t.TempDir()
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "mount", "--refresh-interval", "1s", "--state-file", filepath.Join(tmp, "state.json"), mnt)
	cmd.Env = append(os.Environ(), "INFISICAL_URL="+srv.URL(), "INFISICAL_CLIENT_ID="+clientID, "INFISICAL_CLIENT_SECRET="+clientSecret)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if isMounted(t, mnt) {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", tail(out.String(), 4000))
		}
	}()
	pulls := func() int {
		b, err := os.ReadFile(filepath.Join(mnt, ".status"))
		var st struct {
			Counts struct {
				Pulls int `json:"pulls"`
			} `json:"counts"`
		}
		if err != nil || json.Unmarshal(b, &st) != nil {
			return -1
		}
		return st.Counts.Pulls
	}
	waitFor(t, "mount ready", func() bool { return pulls() >= 1 })
	if writeBytes(t, cmd.Process.Pid) == 0 {
		// The first sync saved (and fsynced) the state file: a file
		// system that write_bytes does not see (tmpfs) cannot show this.
		t.Skipf("write_bytes saw no state-file save under %s: not measurable on this file system", tmp)
	}
	base := pulls()
	waitFor(t, "idle cycle 2", func() bool { return pulls() >= base+2 })
	w2 := writeBytes(t, cmd.Process.Pid)
	waitFor(t, "idle cycle 10", func() bool { return pulls() >= base+10 })
	w10 := writeBytes(t, cmd.Process.Pid)
	perCycle := float64(w10-w2) / 8
	rep.add("bytes written to disk per idle cycle (the daemon's /proc/PID/io write_bytes, cycles 2 to 10, 1 s interval)", "%.0f", perCycle)
	if w10 != w2 {
		t.Errorf("idle cycles wrote %d bytes to disk (%.0f per cycle)", w10-w2, perCycle)
	}
}

// writeBytes is write_bytes of /proc/PID/io.
func writeBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no write_bytes in /proc/%d/io", pid)
	return 0
}
