package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// BenchmarkDaemon measures the real binary from outside, as issue 12 asks:
// bin/infisicalfs is built, `infisicalfs dev-server --seed-secrets N` runs
// as a separate process, and `infisicalfs mount --read-only` of the one
// seeded environment (refresh every 1 s) is read through /proc/PID of the
// daemon alone: time to ready, VmRSS/VmHWM after ready, after a
// `find -type f -exec cat {} +` walk and after 2 and 10 idle cycles, and
// CPU (utime+stime) and write_bytes per idle cycle between cycle 2 and 10.
// The baseline ("base") is the floor: a child process that logs in, lists
// the same secrets into a plain Go map and then polls with If-None-Match at
// the same interval, measured the same way.
//
// Each iteration is one daemon run; -benchtime 1x is the intended use.
func BenchmarkDaemon(b *testing.B) {
	testutil.RequireFUSE(b)
	sizes := []int{1000, 10000, 100000}
	if testing.Short() {
		sizes = []int{1000}
	}
	bin := buildBinary(b)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			srv := startDevServer(b, bin, n)
			b.Run("fs", func(b *testing.B) { report(b, func() (procFigures, error) { return measureDaemon(b, bin, srv, n) }) })
			b.Run("base", func(b *testing.B) { report(b, func() (procFigures, error) { return measureFloor(srv) }) })
		})
	}
}

// idleFrom and idleTo are the idle cycles between which CPU and disk writes
// are counted: cycle 1 may still finish work of the mount's start.
const (
	idleFrom      = 2
	idleTo        = 10
	benchInterval = "1s"
)

// procFigures is one run's measurements of one process.
type procFigures struct {
	ready               time.Duration
	cpuReady            time.Duration // utime+stime until ready: the process's own share of ready
	load                float64       // 1-minute load average at ready: wall times mean little under load
	rssReady, hwmReady  int64         // bytes
	rssWalk, hwmWalk    int64
	rssIdle2, rssIdle10 int64
	hwmIdle10           int64
	cpuPerCycle         time.Duration
	writePerCycle       float64 // bytes
}

func report(b *testing.B, measure func() (procFigures, error)) {
	var sum procFigures
	for range b.N {
		f, err := measure()
		if err != nil {
			b.Fatal(err)
		}
		sum.ready += f.ready
		sum.cpuReady += f.cpuReady
		sum.load += f.load
		sum.rssReady += f.rssReady
		sum.hwmReady += f.hwmReady
		sum.rssWalk += f.rssWalk
		sum.hwmWalk += f.hwmWalk
		sum.rssIdle2 += f.rssIdle2
		sum.rssIdle10 += f.rssIdle10
		sum.hwmIdle10 += f.hwmIdle10
		sum.cpuPerCycle += f.cpuPerCycle
		sum.writePerCycle += f.writePerCycle
	}
	n := float64(b.N)
	// ns/op is the mount-ready time, not the benchmark's wall time (which
	// is mostly waiting for idle cycles).
	b.ReportMetric(float64(sum.ready.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(sum.cpuReady.Nanoseconds())/n, "cpu-ns/ready")
	b.ReportMetric(sum.load/n, "load-1m")
	b.ReportMetric(float64(sum.rssReady)/n, "rss-ready-B")
	b.ReportMetric(float64(sum.hwmReady)/n, "hwm-ready-B")
	b.ReportMetric(float64(sum.rssWalk)/n, "rss-walk-B")
	b.ReportMetric(float64(sum.hwmWalk)/n, "hwm-walk-B")
	b.ReportMetric(float64(sum.rssIdle2)/n, "rss-idle2-B")
	b.ReportMetric(float64(sum.rssIdle10)/n, "rss-idle10-B")
	b.ReportMetric(float64(sum.hwmIdle10)/n, "hwm-idle10-B")
	b.ReportMetric(float64(sum.cpuPerCycle.Nanoseconds())/n, "cpu-ns/idle-cycle")
	b.ReportMetric(sum.writePerCycle/n, "write-B/idle-cycle")
}

// repoRoot is the module root: the benchmark runs in bench/.
func repoRoot(b testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Dir(wd)
}

// buildBinary builds bin/infisicalfs as `make build` does.
func buildBinary(b testing.TB) string {
	root := repoRoot(b)
	bin := filepath.Join(root, "bin", "infisicalfs")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/infisicalfs")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devServer struct {
	url, id, secret string
}

// startDevServer runs the seeded dev server in its own process and waits
// for its credentials on stdout.
func startDevServer(b testing.TB, bin string, n int) devServer {
	cmd := exec.Command(bin, "dev-server", "--addr", "127.0.0.1:0", "--seed-secrets", strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var srv devServer
	sc := bufio.NewScanner(out)
	for sc.Scan() && (srv.url == "" || srv.id == "" || srv.secret == "") {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "export INFISICAL_URL="); ok {
			srv.url = v
		}
		if v, ok := strings.CutPrefix(line, "export INFISICAL_CLIENT_ID="); ok {
			srv.id = v
		}
		if v, ok := strings.CutPrefix(line, "export INFISICAL_CLIENT_SECRET="); ok {
			srv.secret = v
		}
	}
	if srv.secret == "" {
		b.Fatalf("dev-server printed no credentials: %v", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return srv
}

// lineWatcher counts lines containing given markers in a process's output
// and lets a caller wait for the n-th one.
type lineWatcher struct {
	mu     sync.Mutex
	cond   *sync.Cond
	counts map[string]int
	tail   []string // the last lines, for error messages
	closed bool
}

func watchLines(r io.Reader, markers ...string) *lineWatcher {
	w := &lineWatcher{counts: map[string]int{}}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			for _, m := range markers {
				if strings.Contains(line, m) {
					w.counts[m]++
				}
			}
			w.tail = append(w.tail, line)
			if len(w.tail) > 20 {
				w.tail = w.tail[1:]
			}
			w.cond.Broadcast()
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.closed = true
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	return w
}

func (w *lineWatcher) count(marker string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[marker]
}

// wait blocks until marker has been seen n times, the output ends or the
// timeout passes.
func (w *lineWatcher) wait(marker string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.counts[marker] < n {
		if w.closed {
			return fmt.Errorf("output ended after %d of %d %q lines; last lines:\n%s", w.counts[marker], n, marker, strings.Join(w.tail, "\n"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d %q lines within %s; last lines:\n%s", w.counts[marker], n, marker, timeout, strings.Join(w.tail, "\n"))
		}
		w.cond.Wait()
	}
	return nil
}

// procSample is what /proc says about one process at one moment.
type procSample struct {
	rss, hwm   int64 // bytes
	cpu        time.Duration
	writeBytes int64
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields after it follow
	// its closing parenthesis: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * clockTick
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			s.writeBytes, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if s.rss == 0 || s.hwm == 0 {
		return s, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return s, nil
}

// idleFigures fills the idle part of f from samples taken at cycles
// idleFrom and idleTo.
func idleFigures(f *procFigures, at2, at10 procSample) {
	f.rssIdle2 = at2.rss
	f.rssIdle10 = at10.rss
	f.hwmIdle10 = at10.hwm
	cycles := idleTo - idleFrom
	f.cpuPerCycle = (at10.cpu - at2.cpu) / time.Duration(cycles)
	f.writePerCycle = float64(at10.writeBytes-at2.writeBytes) / float64(cycles)
}

const (
	markMounted = "msg=mounted"
	markCycle   = `msg="sync cycle done"`
)

// measureDaemon runs one mount of the seeded environment and measures it.
func measureDaemon(b *testing.B, bin string, srv devServer, n int) (procFigures, error) {
	var f procFigures
	dir := b.TempDir() // on the root file system here, so write_bytes counts state-file writes
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return f, err
	}
	stateHome := filepath.Join(dir, "state")
	cmd := exec.Command(bin, "mount", "--read-only", "--project", "bench", "--env", "dev",
		"--refresh-interval", benchInterval, "--log-level", "debug", mnt)
	cmd.Env = append(os.Environ(),
		"INFISICAL_URL="+srv.url, "INFISICAL_CLIENT_ID="+srv.id, "INFISICAL_CLIENT_SECRET="+srv.secret,
		"XDG_STATE_HOME="+stateHome)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return f, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return f, err
	}
	pid := cmd.Process.Pid
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return errors.New("daemon did not stop within 30s of SIGTERM")
		}
	}
	defer func() {
		_ = stop()
		_ = exec.Command("umount", "-l", mnt).Run() // only if the daemon left it behind
	}()
	lines := watchLines(errPipe, markMounted, markCycle)
	if err := lines.wait(markMounted, 1, 2*time.Minute); err != nil {
		return f, fmt.Errorf("daemon did not mount: %w", err)
	}
	f.ready = time.Since(start)
	s, err := readProc(pid)
	if err != nil {
		return f, err
	}
	f.rssReady, f.hwmReady, f.cpuReady, f.load = s.rss, s.hwm, s.cpu, loadAvg()

	// The walk, with a check that it read every secret.
	var files, bytes int64
	// The secrets themselves: not the .raw/ mirror (the same values again)
	// nor .history/ (each version a fetch).
	walk := exec.Command("sh", "-c", `find "$1" \( -name .raw -o -name .history \) -prune -o -type f -exec cat {} + | wc -c
find "$1" \( -name .raw -o -name .history \) -prune -o -type f -name 'K_*' -print | wc -l`, "sh", mnt)
	out, err := walk.Output()
	if err != nil {
		return f, fmt.Errorf("walk: %w", err)
	}
	if _, err := fmt.Sscan(string(out), &bytes, &files); err != nil {
		return f, fmt.Errorf("walk output %q: %w", out, err)
	}
	if files != int64(n) || bytes < int64(n)*64 {
		return f, fmt.Errorf("walk saw %d secret files and %d bytes, want %d files and at least %d bytes", files, bytes, n, n*64)
	}
	s, err = readProc(pid)
	if err != nil {
		return f, err
	}
	f.rssWalk, f.hwmWalk = s.rss, s.hwm

	base := lines.count(markCycle)
	if err := lines.wait(markCycle, base+idleFrom, time.Minute); err != nil {
		return f, err
	}
	at2, err := readProc(pid)
	if err != nil {
		return f, err
	}
	if err := lines.wait(markCycle, base+idleTo, 2*time.Minute); err != nil {
		return f, err
	}
	at10, err := readProc(pid)
	if err != nil {
		return f, err
	}
	idleFigures(&f, at2, at10)
	if err := stop(); err != nil {
		return f, fmt.Errorf("daemon exit: %w", err)
	}
	return f, nil
}

// The floor child: the test binary run again with floorEnv set.
const floorEnv = "INFISICALFS_BENCH_FLOOR"

// measureFloor runs TestFloorChild in a child process and measures it the
// way measureDaemon measures the daemon.
func measureFloor(srv devServer) (procFigures, error) {
	var f procFigures
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	cmd := exec.Command(self, "-test.run=^TestFloorChild$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), floorEnv+"=1",
		"INFISICAL_URL="+srv.url, "INFISICAL_CLIENT_ID="+srv.id, "INFISICAL_CLIENT_SECRET="+srv.secret)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return f, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return f, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return f, err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	lines := watchLines(stdout, "floor: ready", "floor: walked", "floor: cycle")
	if err := lines.wait("floor: ready", 1, 2*time.Minute); err != nil {
		return f, err
	}
	f.ready = time.Since(start)
	s, err := readProc(pid)
	if err != nil {
		return f, err
	}
	f.rssReady, f.hwmReady, f.cpuReady, f.load = s.rss, s.hwm, s.cpu, loadAvg()
	if _, err := io.WriteString(stdin, "walk\n"); err != nil {
		return f, err
	}
	if err := lines.wait("floor: walked", 1, time.Minute); err != nil {
		return f, err
	}
	s, err = readProc(pid)
	if err != nil {
		return f, err
	}
	f.rssWalk, f.hwmWalk = s.rss, s.hwm
	base := lines.count("floor: cycle")
	if err := lines.wait("floor: cycle", base+idleFrom, time.Minute); err != nil {
		return f, err
	}
	at2, err := readProc(pid)
	if err != nil {
		return f, err
	}
	if err := lines.wait("floor: cycle", base+idleTo, 2*time.Minute); err != nil {
		return f, err
	}
	at10, err := readProc(pid)
	if err != nil {
		return f, err
	}
	idleFigures(&f, at2, at10)
	return f, nil
}

// TestFloorChild is the floor process of BenchmarkDaemon (it does nothing
// unless started by it): it logs in, lists project "bench" env "dev" into a
// plain map of strings, says "floor: ready", reads every value on "walk",
// then polls the listing with If-None-Match every interval, saying
// "floor: cycle" after each.
func TestFloorChild(t *testing.T) {
	if os.Getenv(floorEnv) != "1" {
		t.Skip("the floor process of BenchmarkDaemon; runs only when started by it")
	}
	if err := floorChild(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func floorChild(stdin io.Reader, stdout io.Writer) error {
	ctx := context.Background()
	c, err := infisical.New(infisical.Config{
		SiteURL: os.Getenv("INFISICAL_URL"), ClientID: os.Getenv("INFISICAL_CLIENT_ID"),
		ClientSecret: os.Getenv("INFISICAL_CLIENT_SECRET"), TokenPolicy: infisical.TokenRenew,
	})
	if err != nil {
		return err
	}
	if err := c.BeginCycle(ctx); err != nil {
		return err
	}
	projects, err := c.ListProjects(ctx)
	if err != nil {
		return err
	}
	pid := ""
	for _, p := range projects {
		if p.Slug == "bench" {
			pid = p.ID
		}
	}
	if pid == "" {
		return errors.New("no project bench")
	}
	opt := infisical.ListOptions{ProjectID: pid, Environment: "dev", Path: "/", Recursive: true}
	res, err := c.ListSecrets(ctx, opt)
	if err != nil {
		return err
	}
	m := make(map[string]string, len(res.Secrets))
	for _, s := range res.Secrets {
		m[s.Path+"/"+s.Key] = string(s.Value)
	}
	opt.IfNoneMatch = res.ETag
	res = nil
	fmt.Fprintln(stdout, "floor: ready")
	interval, _ := time.ParseDuration(benchInterval)
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return nil
	}
	total := 0
	for _, v := range m {
		total += len(v)
	}
	fmt.Fprintln(stdout, "floor: walked", total)
	for {
		time.Sleep(interval)
		if err := c.BeginCycle(ctx); err != nil {
			return err
		}
		r, err := c.ListSecrets(ctx, opt)
		if err != nil {
			return err
		}
		if !r.NotModified {
			return errors.New("the listing changed during the idle cycles")
		}
		fmt.Fprintln(stdout, "floor: cycle")
		runtime.KeepAlive(m)
	}
}
