package fs_test

// Benchmarks for `make bench` (see bench/). Every figure comes as a pair of
// sub-benchmarks measured in the same run: ".../fs" on an infisicalfs mount
// and ".../base" on its baseline (the same operation on tmpfs, or the same
// data fetched straight from the API). bench/ pairs them by name and writes
// the ratios to docs/bench.md.
//
// Custom metrics:
//   fuse-reqs/op  kernel requests the daemon saw (fs.FS.Requests; RELEASE,
//                 WRITE, CREATE and SETATTR are not counted)
//   api-reqs/op   HTTP requests that reached the Infisical server
//   resp-B/op     HTTP response bytes (status line, headers and body)
//   cpu-ns/op     user+system CPU of the whole process, in-process server included
//   heap-B/secret, rss-B/secret  memory held per secret after a GC

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
	"github.com/infisicalfs/infisicalfs/syncer"
)

// benchValue is a typical secret: a 64-byte connection string.
const benchValue = "postgres://app:Zq8xR2vLk9WmT4pY@db.internal:5432/shop?sslmode=on"

// benchTmpfs returns a fresh directory on tmpfs: a tmpfs mounted in a temp
// dir when we may mount, else a directory in /dev/shm.
func benchTmpfs(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512m"); err == nil {
		b.Cleanup(func() {
			if err := syscall.Unmount(dir, 0); err != nil {
				b.Errorf("unmount tmpfs: %v", err)
			}
		})
		return dir
	}
	d, err := os.MkdirTemp("/dev/shm", "infisicalfs-bench-")
	if err != nil {
		b.Skipf("no tmpfs to compare with: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// benchSeed puts n secrets named K_00000… into folder of env dev.
func benchSeed(srv *infisicaltest.Server, pid, folder string, n int) {
	for i := range n {
		srv.SetSecret(pid, "dev", folder, fmt.Sprintf("K_%05d", i), benchValue)
	}
}

// benchSeedSpread spreads n secrets over folders of at most 1000.
func benchSeedSpread(srv *infisicaltest.Server, pid string, n int) {
	for i := range n {
		srv.SetSecret(pid, "dev", fmt.Sprintf("/f%03d", i/1000), fmt.Sprintf("K_%06d", i), benchValue)
	}
}

// readOnce is one open+read+close, as a program reading a secret does.
func readOnce(path string, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	_, err = f.Read(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// parallelOps runs b.N calls of op spread over n goroutines; ns/op is then
// wall time per operation, the inverse of throughput.
func parallelOps(b *testing.B, n int, op func(buf []byte) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for next.Add(1) <= int64(b.N) {
				if err := op(buf); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCachedRead: open+read+close of a secret the kernel has cached,
// against the same bytes on tmpfs, with 1, 2 and 8 parallel readers.
func BenchmarkCachedRead(b *testing.B) {
	tmp := benchTmpfs(b)
	local := filepath.Join(tmp, "DATABASE_URL")
	if err := os.WriteFile(local, []byte(benchValue), 0o600); err != nil {
		b.Fatal(err)
	}
	seed := func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "DATABASE_URL", benchValue)
	}
	for _, mode := range []string{"ro", "rw"} {
		m := mountForTest(b, withSeed(seed), func(c *mountConfig) { c.readOnly = mode == "ro" })
		p := m.path("webshop/dev/DATABASE_URL")
		buf := make([]byte, 4096)
		for range 3 { // warm the kernel caches: entry, attributes, pages
			if err := readOnce(p, buf); err != nil {
				b.Fatal(err)
			}
		}
		for _, readers := range []int{1, 2, 8} {
			b.Run(fmt.Sprintf("%s/readers=%d/fs", mode, readers), func(b *testing.B) {
				before := m.fsys.Requests()
				parallelOps(b, readers, func(buf []byte) error { return readOnce(p, buf) })
				b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
			})
			b.Run(fmt.Sprintf("%s/readers=%d/base", mode, readers), func(b *testing.B) {
				parallelOps(b, readers, func(buf []byte) error { return readOnce(local, buf) })
				b.ReportMetric(0, "fuse-reqs/op")
			})
		}
	}
}

// BenchmarkFirstReadAfterChange: another user changes a secret, a refresh
// runs, and a program reads the new value. Baseline: the program fetches
// the changed secret from the API itself.
func BenchmarkFirstReadAfterChange(b *testing.B) {
	const n = 100
	seed := func(srv *infisicaltest.Server, pid string) { benchSeed(srv, pid, "/", n) }
	m := mountForTest(b, withSeed(seed))
	p := m.path("webshop/dev/K_00007")
	values := [2]string{benchValue + "-a", benchValue + "-b"}
	b.Run(fmt.Sprintf("secrets=%d/fs", n), func(b *testing.B) {
		if _, err := os.ReadFile(p); err != nil { // cached before the change
			b.Fatal(err)
		}
		m.srv.ResetRequests()
		i := 0
		for b.Loop() {
			want := values[i%2]
			i++
			m.srv.SetSecret(m.project, "dev", "/", "K_00007", want)
			m.refresh()
			got, err := os.ReadFile(p)
			if err != nil || string(got) != want {
				b.Fatalf("read after change: %v (stale: %t)", err, string(got) != want)
			}
		}
		b.ReportMetric(float64(m.srv.Count("", ""))/float64(b.N), "api-reqs/op")
	})
	b.Run(fmt.Sprintf("secrets=%d/base", n), func(b *testing.B) {
		c := benchClient(b, m.srv, nil)
		ctx := context.Background()
		ref := infisical.Ref{ProjectID: m.project, Environment: "dev", Path: "/", Key: "K_00007"}
		if _, err := c.GetSecret(ctx, ref); err != nil { // log in outside the loop
			b.Fatal(err)
		}
		m.srv.ResetRequests()
		i := 0
		for b.Loop() {
			want := values[i%2]
			i++
			m.srv.SetSecret(m.project, "dev", "/", "K_00007", want)
			s, err := c.GetSecret(ctx, ref)
			if err != nil || string(s.Value) != want {
				b.Fatalf("get after change: %v", err)
			}
		}
		b.ReportMetric(float64(m.srv.Count("", ""))/float64(b.N), "api-reqs/op")
	})
}

// BenchmarkReaddir: list a folder of 100, 1k and 10k secrets (names only,
// as `ls` without -l) against a tmpfs directory with as many files.
func BenchmarkReaddir(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		tmp := benchTmpfs(b)
		for i := range n {
			if err := os.WriteFile(filepath.Join(tmp, fmt.Sprintf("K_%05d", i)), []byte(benchValue), 0o600); err != nil {
				b.Fatal(err)
			}
		}
		seed := func(srv *infisicaltest.Server, pid string) { benchSeed(srv, pid, "/big", n) }
		for _, mode := range []string{"ro", "rw"} {
			m := mountForTest(b, withSeed(seed), func(c *mountConfig) { c.readOnly = mode == "ro" })
			dir := m.path("webshop/dev/big")
			// The mount adds the folder's .env, .json and .yaml views.
			list := func(d string, want int) error {
				f, err := os.Open(d)
				if err != nil {
					return err
				}
				defer f.Close()
				names, err := f.Readdirnames(-1)
				if err == nil && len(names) != want {
					err = fmt.Errorf("%s: %d names, want %d", d, len(names), want)
				}
				return err
			}
			if err := list(dir, n+3); err != nil { // warm
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/secrets=%d/fs", mode, n), func(b *testing.B) {
				before := m.fsys.Requests()
				for b.Loop() {
					if err := list(dir, n+3); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
			})
			b.Run(fmt.Sprintf("%s/secrets=%d/base", mode, n), func(b *testing.B) {
				for b.Loop() {
					if err := list(tmp, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(0, "fuse-reqs/op")
			})
		}
	}
}

// countingTransport counts HTTP response bytes: status line, headers and
// body, as they would cross the wire (without chunking overhead).
type countingTransport struct {
	rt    http.RoundTripper
	bytes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	n := len(resp.Proto) + len(resp.Status) + 4
	for k, vs := range resp.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	c.bytes.Add(int64(n))
	resp.Body = &countingBody{resp.Body, &c.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func newCountingTransport() *countingTransport {
	return &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
}

// benchClient is an API client for the bench identity; a non-nil ct counts
// its response bytes.
func benchClient(b *testing.B, srv *infisicaltest.Server, ct *countingTransport) *infisical.Client {
	b.Helper()
	cfg := infisical.Config{SiteURL: srv.URL(), ClientID: clientID, ClientSecret: clientSecret, TokenPolicy: infisical.TokenRenew}
	if ct != nil {
		cfg.HTTPClient = &http.Client{Transport: ct}
		cfg.TokenPolicy = infisical.TokenPerCycle
	}
	c, err := infisical.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// refreshStack is the daemon wired as mountServer wires it, but with an
// HTTP client that counts response bytes, so that a refresh's traffic can
// be reported.
type refreshStack struct {
	srv  *infisicaltest.Server
	pid  string
	ct   *countingTransport
	sync *syncer.Syncer
	fsys *fs.FS
	dir  string
}

func newRefreshStack(b *testing.B, n int) *refreshStack {
	b.Helper()
	testutil.RequireFUSE(b)
	srv := infisicaltest.New()
	b.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
	benchSeedSpread(srv, pid, n)
	ct := newCountingTransport()
	m := mountServer(b, srv, pid, mountConfig{trimNewline: true, tokenPolicy: infisical.TokenPerCycle, httpClient: &http.Client{Transport: ct}})
	return &refreshStack{srv: srv, pid: pid, ct: ct, sync: m.sync, fsys: m.fsys, dir: m.dir}
}

// BenchmarkRefresh: one refresh cycle of 1k, 10k and 100k secrets, unchanged
// (one listing answered 304) and with one secret changed, every cached value
// read first so that invalidation has work. Baseline: a poller fetching
// the same listing from the API without an ETag, as an agent does.
func BenchmarkRefresh(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		if n == 100000 && testing.Short() {
			continue
		}
		st := newRefreshStack(b, n)
		// Cache one value per folder in the kernel.
		for i := 0; i < n; i += 1000 {
			if _, err := os.ReadFile(filepath.Join(st.dir, "webshop/dev", fmt.Sprintf("f%03d/K_%06d", i/1000, i))); err != nil {
				b.Fatal(err)
			}
		}
		ctx := context.Background()
		measure := func(b *testing.B, change func(i int), run func() error) {
			st.srv.ResetRequests()
			bytes0, cpu0 := st.ct.bytes.Load(), cpuNanos()
			i := 0
			for b.Loop() {
				if change != nil {
					b.StopTimer()
					change(i)
					b.StartTimer()
				}
				i++
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.srv.Count("", ""))/float64(b.N), "api-reqs/op")
			b.ReportMetric(float64(st.ct.bytes.Load()-bytes0)/float64(b.N), "resp-B/op")
			b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/op")
		}
		syncNow := func() error {
			if err := st.sync.Sync(ctx, false); err != nil {
				return err
			}
			st.fsys.Flush()
			return nil
		}
		change := func(i int) {
			st.srv.SetSecret(st.pid, "dev", "/f000", "K_000000", fmt.Sprintf("%s-%d", benchValue, i))
		}
		// The baseline client is the stack's own, without ETags: same
		// connection, same token policy.
		client, err := infisical.New(infisical.Config{SiteURL: st.srv.URL(), ClientID: clientID, ClientSecret: clientSecret,
			TokenPolicy: infisical.TokenPerCycle, HTTPClient: &http.Client{Transport: st.ct}})
		if err != nil {
			b.Fatal(err)
		}
		poll := func() error {
			if err := client.BeginCycle(ctx); err != nil {
				return err
			}
			r, err := client.ListSecrets(ctx, infisical.ListOptions{ProjectID: st.pid, Environment: "dev", Recursive: true})
			if err == nil && len(r.Secrets) != n {
				err = fmt.Errorf("listed %d secrets, want %d", len(r.Secrets), n)
			}
			return err
		}
		b.Run(fmt.Sprintf("unchanged/secrets=%d/fs", n), func(b *testing.B) { measure(b, nil, syncNow) })
		b.Run(fmt.Sprintf("unchanged/secrets=%d/base", n), func(b *testing.B) { measure(b, nil, poll) })
		b.Run(fmt.Sprintf("one-changed/secrets=%d/fs", n), func(b *testing.B) { measure(b, change, syncNow) })
		b.Run(fmt.Sprintf("one-changed/secrets=%d/base", n), func(b *testing.B) { measure(b, change, poll) })
	}
}

// memNow is the live heap and the resident set after a full GC with freed
// memory returned to the system.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f, err := os.Open("/proc/self/status")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				rss = kb * 1024
			}
		}
	}
	return ms.HeapAlloc, rss
}

func perSecret(after, before uint64, n int) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) / float64(n)
}

// BenchmarkMountReady: from nothing to a mounted tree (login, first sync,
// mount) at 1k, 10k and 100k secrets, and the memory the daemon then holds
// per secret. Baseline: log in and fetch the same secrets from the API into
// memory, as an application using the SDK would.
func BenchmarkMountReady(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		if n == 100000 && testing.Short() {
			continue
		}
		srv := infisicaltest.New()
		b.Cleanup(srv.Close)
		pid := srv.AddProject("webshop", "Webshop", "dev", "prod")
		srv.AddIdentity(clientID, clientSecret)
		srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
		benchSeedSpread(srv, pid, n)
		b.Run(fmt.Sprintf("secrets=%d/fs", n), func(b *testing.B) {
			var heap, rss float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				h0, r0 := memNow()
				b.StartTimer()
				m := mountServer(b, srv, pid, mountConfig{trimNewline: true, tokenPolicy: infisical.TokenPerCycle})
				if _, err := os.Stat(m.path("webshop/dev/f000/K_000000")); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				h1, r1 := memNow()
				heap += perSecret(h1, h0, n)
				rss += perSecret(r1, r0, n)
				runtime.KeepAlive(m)
				b.StartTimer()
			}
			b.ReportMetric(heap/float64(b.N), "heap-B/secret")
			b.ReportMetric(rss/float64(b.N), "rss-B/secret")
		})
		b.Run(fmt.Sprintf("secrets=%d/base", n), func(b *testing.B) {
			var heap, rss float64
			var keep []*infisical.ListResult
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				h0, r0 := memNow()
				b.StartTimer()
				c := benchClient(b, srv, nil)
				r, err := c.ListSecrets(context.Background(), infisical.ListOptions{ProjectID: pid, Environment: "dev", Recursive: true})
				if err != nil || len(r.Secrets) != n {
					b.Fatalf("list: %v", err)
				}
				b.StopTimer()
				keep = append(keep, r)
				h1, r1 := memNow()
				heap += perSecret(h1, h0, n)
				rss += perSecret(r1, r0, n)
				b.StartTimer()
			}
			runtime.KeepAlive(keep)
			b.ReportMetric(heap/float64(b.N), "heap-B/secret")
			b.ReportMetric(rss/float64(b.N), "rss-B/secret")
		})
	}
}

// BenchmarkWrite: `printf v > KEY` through sh for a known key and a new
// key, with the requests each write costs, against the same command on
// tmpfs. The sh start-up is in both.
func BenchmarkWrite(b *testing.B) {
	seed := func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "DATABASE_URL", benchValue)
	}
	m := mountForTest(b, withSeed(seed))
	tmp := benchTmpfs(b)
	if err := os.WriteFile(filepath.Join(tmp, "DATABASE_URL"), []byte(benchValue), 0o600); err != nil {
		b.Fatal(err)
	}
	fsDir := m.path("webshop/dev")
	printf := func(dir, key, value string) error {
		cmd := shIn(dir, `printf %s "$1" > "$2"`, value, key)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("printf > %s: %v: %s", key, err, out)
		}
		return nil
	}
	run := func(b *testing.B, dir string, fuse bool, key func(i int) string) {
		m.srv.ResetRequests()
		before := m.fsys.Requests()
		i := 0
		for b.Loop() {
			k := key(i)
			i++
			v := fmt.Sprintf("%s-%d", benchValue, i)
			if err := printf(dir, k, v); err != nil {
				b.Fatal(err)
			}
			if fuse {
				b.StopTimer()
				if got, ok := m.serverValue("dev", "/", k); !ok || got != v {
					b.Fatalf("server has %s=%t after the write", k, ok)
				}
				b.StartTimer()
			}
		}
		if fuse {
			b.ReportMetric(float64(m.srv.Count("", ""))/float64(b.N), "api-reqs/op")
			b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
		} else {
			b.ReportMetric(0, "api-reqs/op")
			b.ReportMetric(0, "fuse-reqs/op")
		}
	}
	known := func(int) string { return "DATABASE_URL" }
	fresh := func(prefix string) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s_%d", prefix, i) }
	}
	b.Run("known-key/fs", func(b *testing.B) { run(b, fsDir, true, known) })
	b.Run("known-key/base", func(b *testing.B) { run(b, tmp, false, known) })
	// A guarded write (issue 18): sed -i reads the key and renames its
	// scratch file onto it, so the push is checked against the version it
	// read: one GET of the secret before the PATCH.
	sedEdit := func(b *testing.B, dir string, fuse bool) {
		m.srv.ResetRequests()
		before := m.fsys.Requests()
		i := 0
		for b.Loop() {
			i++
			cmd := shIn(dir, `sed -i "s/-[0-9]*$//; s/$/-$1/" DATABASE_URL`, strconv.Itoa(i))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("sed -i: %v: %s", err, out)
			}
		}
		if fuse {
			b.StopTimer()
			if got, _ := m.serverValue("dev", "/", "DATABASE_URL"); !strings.HasSuffix(got, "-"+strconv.Itoa(i)) {
				b.Fatalf("server holds %q after %d edits", got, i)
			}
			b.ReportMetric(float64(m.srv.Count("", ""))/float64(b.N), "api-reqs/op")
			b.ReportMetric(float64(m.srv.Count("GET", "/api/v4/secrets"))/float64(b.N), "check-reqs/op")
			b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
		} else {
			b.ReportMetric(0, "api-reqs/op")
			b.ReportMetric(0, "check-reqs/op")
			b.ReportMetric(0, "fuse-reqs/op")
		}
	}
	b.Run("guarded-edit/fs", func(b *testing.B) { sedEdit(b, fsDir, true) })
	b.Run("guarded-edit/base", func(b *testing.B) { sedEdit(b, tmp, false) })
	// New names differ per sub-benchmark run: go test calls each several times.
	var round atomic.Int64
	b.Run("new-key/fs", func(b *testing.B) { run(b, fsDir, true, fresh(fmt.Sprintf("NEW%d", round.Add(1)))) })
	b.Run("new-key/base", func(b *testing.B) { run(b, tmp, false, fresh(fmt.Sprintf("NEW%d", round.Add(1)))) })
}

// BenchmarkReferencingRead: open+read+close of a cached secret whose raw
// value references two others (served expanded), against the expanded
// bytes on tmpfs. Expansion happens when a listing is applied, so a read
// costs what a read of any secret costs.
func BenchmarkReferencingRead(b *testing.B) {
	tmp := benchTmpfs(b)
	local := filepath.Join(tmp, "DATABASE_URL")
	want := "postgres://app:Zq8xR2vLk9WmT4pY@db.internal:5432/shop?sslmode=on"
	if err := os.WriteFile(local, []byte(want), 0o600); err != nil {
		b.Fatal(err)
	}
	seed := func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "DB_PASS", "Zq8xR2vLk9WmT4pY")
		srv.SetSecret(pid, "prod", "/", "DB_HOST", "db.internal")
		srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://app:${DB_PASS}@${prod.DB_HOST}:5432/shop?sslmode=on")
	}
	for _, mode := range []string{"ro", "rw"} {
		m := mountForTest(b, withSeed(seed), func(c *mountConfig) { c.readOnly = mode == "ro" })
		p := m.path("webshop/dev/DATABASE_URL")
		if got, err := os.ReadFile(p); err != nil || string(got) != want {
			b.Fatalf("read %q, %v; want the expanded value", got, err)
		}
		buf := make([]byte, 4096)
		for range 3 {
			if err := readOnce(p, buf); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(mode+"/fs", func(b *testing.B) {
			before := m.fsys.Requests()
			parallelOps(b, 1, func(buf []byte) error { return readOnce(p, buf) })
			b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
		})
		b.Run(mode+"/base", func(b *testing.B) {
			parallelOps(b, 1, func(buf []byte) error { return readOnce(local, buf) })
			b.ReportMetric(0, "fuse-reqs/op")
		})
	}
}

// BenchmarkGetxattr: getxattr(2) of user.infisical.version on a secret,
// against a user xattr on tmpfs. FUSE does not cache xattrs, so every call
// is a round trip to the daemon.
func BenchmarkGetxattr(b *testing.B) {
	tmp := benchTmpfs(b)
	local := filepath.Join(tmp, "API_KEY")
	if err := os.WriteFile(local, []byte(benchValue), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Setxattr(local, "user.infisical.version", []byte("3"), 0); err != nil {
		b.Skipf("tmpfs takes no user xattrs here: %v", err)
	}
	seed := func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "API_KEY", benchValue)
	}
	get := func(p string) func([]byte) error {
		return func(buf []byte) error {
			n, err := syscall.Getxattr(p, "user.infisical.version", buf)
			if err == nil && n == 0 {
				err = fmt.Errorf("empty xattr")
			}
			return err
		}
	}
	for _, mode := range []string{"ro", "rw"} {
		m := mountForTest(b, withSeed(seed), func(c *mountConfig) { c.readOnly = mode == "ro" })
		p := m.path("webshop/dev/API_KEY")
		if err := get(p)(make([]byte, 64)); err != nil {
			b.Fatal(err)
		}
		b.Run(mode+"/fs", func(b *testing.B) {
			before := m.fsys.Requests()
			parallelOps(b, 1, get(p))
			b.ReportMetric(float64(m.fsys.Requests()-before)/float64(b.N), "fuse-reqs/op")
		})
		b.Run(mode+"/base", func(b *testing.B) {
			parallelOps(b, 1, get(local))
			b.ReportMetric(0, "fuse-reqs/op")
		})
	}
}
