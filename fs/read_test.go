package fs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

const pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----"

func seedBasic(srv *infisicaltest.Server, pid string) {
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://u:p@db/shop")
	srv.SetSecret(pid, "dev", "/", "API_KEY", "k-123")
	srv.SetSecret(pid, "dev", "/", "TLS_KEY", pem)
	srv.SetSecret(pid, "dev", "/app", "PORT", "8080")
	srv.SetSecret(pid, "dev", "/app/deep", "NESTED", "n")
	srv.SetSecret(pid, "prod", "/", "DATABASE_URL", "postgres://prod")
}

func withSeed(f func(*infisicaltest.Server, string)) func(*mountConfig) {
	return func(c *mountConfig) { c.seed = f }
}

func TestReadSecretsAsFiles(t *testing.T) {
	m := mountForTest(t, withSeed(seedBasic))
	cases := map[string]string{
		"webshop/dev/DATABASE_URL":    "postgres://u:p@db/shop",
		"webshop/dev/API_KEY":         "k-123",
		"webshop/dev/TLS_KEY":         pem,
		"webshop/dev/app/PORT":        "8080",
		"webshop/dev/app/deep/NESTED": "n",
		"webshop/prod/DATABASE_URL":   "postgres://prod",
	}
	for p, want := range cases {
		if got := m.mustSh("cat " + p); got != want {
			t.Errorf("cat %s = %q, want %q", p, got, want)
		}
		st, err := os.Stat(m.path(p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != int64(len(want)) {
			t.Errorf("%s size %d, want %d", p, st.Size(), len(want))
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode())
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != os.Getuid() || int(sys.Gid) != os.Getgid() {
			t.Errorf("%s owner %d:%d, want %d:%d", p, sys.Uid, sys.Gid, os.Getuid(), os.Getgid())
		}
		if st.ModTime().IsZero() || st.ModTime().Year() < 2000 {
			t.Errorf("%s mtime %v, want the secret's updatedAt", p, st.ModTime())
		}
	}
	if got := m.mustSh("head -c 8 webshop/dev/DATABASE_URL"); got != "postgres" {
		t.Errorf("head -c 8 = %q", got)
	}
	if got := m.mustSh("ls webshop/dev"); got != "API_KEY\nDATABASE_URL\nTLS_KEY\napp\n" {
		t.Errorf("ls = %q", got)
	}
	if got := m.mustSh("ls -A webshop/dev | tr '\\n' ' '"); got != ".env .history .json .raw .yaml API_KEY DATABASE_URL TLS_KEY app " {
		t.Errorf("ls -A = %q", got)
	}
	if got := m.mustSh("ls"); got != "webshop\n" {
		t.Errorf("ls root = %q", got)
	}
	if got := m.mustSh("find webshop -name '.*' -prune -o -type f -print | sort"); got != "webshop/dev/API_KEY\nwebshop/dev/DATABASE_URL\nwebshop/dev/TLS_KEY\nwebshop/dev/app/PORT\nwebshop/dev/app/deep/NESTED\nwebshop/prod/DATABASE_URL\n" {
		t.Errorf("find = %q", got)
	}
	os.WriteFile(m.t.(*testing.T).TempDir()+"/x", nil, 0o600)
	local := t.TempDir() + "/pem"
	if err := os.WriteFile(local, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	m.mustSh("diff " + local + " webshop/dev/TLS_KEY")
	st, err := os.Stat(m.path("webshop", "dev", "app"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("dir app: %v %v, want a 0700 directory", st, err)
	}
	if _, err := os.Stat(m.path("webshop/dev/NOPE")); !os.IsNotExist(err) {
		t.Errorf("stat missing secret: %v, want ENOENT", err)
	}
}

func TestOutOfBandChangesAfterRefresh(t *testing.T) {
	m := mountForTest(t, withSeed(seedBasic))
	// Prime every kernel cache: content, attributes, a negative entry,
	// and the directory listing.
	if got := m.readFile("webshop/dev/API_KEY"); got != "k-123" {
		t.Fatalf("API_KEY = %q", got)
	}
	m.mustSh("ls webshop/dev >/dev/null; cat webshop/dev/.env >/dev/null")
	if _, err := os.Stat(m.path("webshop/dev/NEW_KEY")); !os.IsNotExist(err) {
		t.Fatalf("NEW_KEY before: %v", err)
	}
	m.srv.SetSecret(m.project, "dev", "/", "API_KEY", "k-456-longer-than-before")
	m.srv.SetSecret(m.project, "dev", "/", "NEW_KEY", "fresh")
	m.srv.DeleteSecret(m.project, "dev", "/", "DATABASE_URL")
	m.srv.AddFolder(m.project, "dev", "/newfolder")
	m.refresh()

	if got := m.readFile("webshop/dev/API_KEY"); got != "k-456-longer-than-before" {
		t.Errorf("API_KEY after change = %q (stale or truncated cache)", got)
	}
	if got := m.readFile("webshop/dev/NEW_KEY"); got != "fresh" {
		t.Errorf("NEW_KEY = %q", got)
	}
	if _, err := os.Stat(m.path("webshop/dev/DATABASE_URL")); !os.IsNotExist(err) {
		t.Errorf("deleted secret still there: %v", err)
	}
	if got := m.mustSh("ls webshop/dev"); got != "API_KEY\nNEW_KEY\nTLS_KEY\napp\nnewfolder\n" {
		t.Errorf("ls after refresh = %q", got)
	}
	if got := m.readFile("webshop/dev/.env"); !strings.Contains(got, "API_KEY='k-456-longer-than-before'") || strings.Contains(got, "DATABASE_URL") {
		t.Errorf(".env after refresh = %q", got)
	}
}

func TestOutageServesLastValues(t *testing.T) {
	m := mountForTest(t, withSeed(seedBasic))
	m.srv.SetOutage(true)
	if err := m.sync.Sync(t.Context(), false); err == nil {
		t.Fatal("sync during an outage succeeded")
	}
	m.fsys.Flush()
	if got := m.readFile("webshop/dev/API_KEY"); got != "k-123" {
		t.Errorf("read during outage = %q", got)
	}
	var st struct {
		Stale      bool    `json:"stale"`
		StaleSince *string `json:"stale_since"`
		LastError  string  `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(m.readFile(".status")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Stale || st.StaleSince == nil || st.LastError == "" {
		t.Errorf(".status during outage = %+v, want stale with a since and an error", st)
	}
	m.srv.SetOutage(false)
	m.refresh()
	if err := json.Unmarshal([]byte(m.readFile(".status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Stale {
		t.Errorf(".status after recovery still stale: %+v", st)
	}
}

// An outage shows in .status, and at open for writing, as soon as one
// request goes unanswered, not when the cycle's retry gives up (here after
// an hour's wait). Writes land as soon as Infisical answers; the mount
// stays stale until a cycle succeeds (TestWritesLandRightAfterRecovery).
func TestOutageShowsAtTheFirstUnansweredRequest(t *testing.T) {
	slow := testRetry
	slow.ServerErrorWait = time.Hour
	// With a token kept across cycles the cycle's first request is the
	// listing, a GET, which the client retries after any failure.
	m := mountForTest(t, withSeed(seedBasic), func(mc *mountConfig) {
		mc.retry, mc.tokenPolicy = &slow, infisical.TokenRenew
	})
	m.srv.SetOutage(true)
	cycle := make(chan error, 1)
	go func() { cycle <- m.sync.Sync(t.Context(), false) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := m.status()
		if st.Stale && st.StaleSince != nil && strings.Contains(st.LastError, "unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf(".status 10 s into an outage = %+v, want stale with a since and the error", st)
		}
	}
	select {
	case err := <-cycle:
		t.Fatalf("the cycle ended (%v); its retry should still be waiting", err)
	default:
	}
	if got := m.readFile("webshop/dev/API_KEY"); got != "k-123" {
		t.Errorf("read during the outage = %q", got)
	}
	err := os.WriteFile(m.path("webshop/dev/API_KEY"), []byte("k-during"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("write during the outage: %v, want EIO at open", err)
	}
	m.srv.SetOutage(false)
	if err := os.WriteFile(m.path("webshop/dev/API_KEY"), []byte("k-after"), 0o644); err != nil {
		t.Fatalf("write once Infisical answers: %v", err)
	}
	if v, _, _ := m.srv.Secret(m.project, "dev", "/", "API_KEY"); v != "k-after" {
		t.Errorf("server has %q after the write, want k-after", v)
	}
}

// TestHungServerShowsStale: a server that accepts requests and does not
// answer (hung, or stopped with SIGSTOP) shows in .status after
// SlowAnswer, not when the transport gives up a minute later; a shell's
// write then fails at open within the probe's bound instead of hanging in
// close, reads are served, and once it answers again writes land.
func TestHungServerShowsStale(t *testing.T) {
	m := mountForTest(t, withSeed(seedBasic), func(mc *mountConfig) {
		mc.slowAnswer, mc.tokenPolicy = 200*time.Millisecond, infisical.TokenRenew
	})
	m.srv.SetLatency(time.Minute)
	cycle := make(chan error, 1)
	go func() { cycle <- m.sync.Sync(t.Context(), false) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := m.status()
		if st.Stale && strings.Contains(st.LastError, "no answer after 200ms") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf(".status 10 s into a hung server = %+v, want stale, no answer", st)
		}
	}
	if got := m.readFile("webshop/dev/API_KEY"); got != "k-123" {
		t.Errorf("read while the server hangs = %q", got)
	}
	start := time.Now()
	_, err := m.sh(`echo k-during > webshop/dev/API_KEY`)
	if took := time.Since(start); err == nil || took > 20*time.Second {
		t.Errorf("write while the server hangs: %v after %s, want a failure at open within the probe's bound", err, took)
	}
	m.srv.SetLatency(0)
	if v, _, _ := m.srv.Secret(m.project, "dev", "/", "API_KEY"); v != "k-123" {
		t.Errorf("server has %q after the refused write", v)
	}
	if out, err := m.sh(`echo k-after > webshop/dev/API_KEY`); err != nil {
		t.Fatalf("write once Infisical answers: %v\n%s", err, out)
	}
	if v, _, _ := m.srv.Secret(m.project, "dev", "/", "API_KEY"); v != "k-after" {
		t.Errorf("server has %q after the write, want k-after", v)
	}
}

func TestForbiddenProjectDoesNotHideOthers(t *testing.T) {
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		seedBasic(srv, pid)
		other := srv.AddProject("payments", "Payments", "dev")
		srv.SetSecret(other, "dev", "/", "STRIPE", "sk")
		srv.Grant(clientID, other, infisicaltest.PermRead, "staging") // no grant on dev
	}))
	if got := m.readFile("webshop/dev/API_KEY"); got != "k-123" {
		t.Errorf("API_KEY = %q", got)
	}
	if _, err := os.ReadFile(m.path("payments/dev/STRIPE")); err == nil {
		t.Errorf("read a secret the identity may not read")
	}
	if !strings.Contains(m.readFile(".status"), "payments") {
		t.Logf(".status: %s", m.readFile(".status"))
	}
}

func TestExpiredTokenMidRunIsTransparent(t *testing.T) {
	m := mountForTest(t, withSeed(seedBasic), func(c *mountConfig) { c.tokenPolicy = infisical.TokenRenew })
	m.srv.ExpireAllTokens()
	m.srv.SetSecret(m.project, "dev", "/", "API_KEY", "after-expiry")
	m.refresh()
	if got := m.readFile("webshop/dev/API_KEY"); got != "after-expiry" {
		t.Errorf("API_KEY = %q", got)
	}
}

// TestDotenvIsInert sources .env in a shell: hostile values run nothing and
// come back byte for byte.
func TestDotenvIsInert(t *testing.T) {
	canary := t.TempDir() + "/pwned"
	hostile := map[string]string{
		"CMD":     "$(touch " + canary + ")",
		"TICKS":   "`touch " + canary + "`",
		"QUOTES":  `it's "quoted" \ back'slash`,
		"NEWLINE": "line1\nline2",
		"DOLLAR":  "$HOME ${PATH}",
	}
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		for k, v := range hostile {
			srv.SetSecret(pid, "dev", "/", k, v)
		}
		srv.SetSecret(pid, "dev", "/", "not-a-shell-name", "x")
	}))
	env := m.readFile("webshop/dev/.env")
	// The key is named only in the closing comment, never assigned.
	body, comment, _ := strings.Cut(env, "# infisicalfs: left out")
	if strings.Contains(body, "not-a-shell-name") || !strings.Contains(comment, `"not-a-shell-name"`) {
		t.Errorf(".env should leave out not-a-shell-name and say so in its comment:\n%s", env)
	}
	var y map[string]string
	if err := yaml.Unmarshal([]byte(m.readFile("webshop/dev/.yaml")), &y); err != nil {
		t.Fatal(err)
	}
	for k, want := range hostile {
		if y[k] != want {
			t.Errorf(".yaml %s = %q, want %q", k, y[k], want)
		}
	}
	if y["not-a-shell-name"] != "x" {
		t.Errorf(".yaml lacks not-a-shell-name: %v", y)
	}
	for k, want := range hostile {
		cmd := shIn(m.path("webshop", "dev"), `set -a; . ./.env; printf %s "$`+k+`"`)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sourcing .env: %v\n%s", err, out)
		}
		if string(out) != want {
			t.Errorf("%s = %q, want %q", k, out, want)
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("sourcing .env ran a command")
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(m.readFile("webshop/dev/.json")), &js); err != nil {
		t.Fatal(err)
	}
	for k, want := range hostile {
		if js[k] != want {
			t.Errorf(".json %s = %q, want %q", k, js[k], want)
		}
	}
}

// TestNoTornReadsDuringRefresh reads while refreshes swap values of
// different sizes (over a page and under): every read() returns one whole
// version, on both kinds of mount. A reader that loops over several read()
// calls can straddle a refresh between them; an O_RDWR open reads a
// snapshot (TestReadWriteOpenSeesOneVersion).
func TestNoTornReadsDuringRefresh(t *testing.T) {
	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprint("readOnly=", ro), func(t *testing.T) { testNoTornReads(t, ro) })
	}
}

func testNoTornReads(t *testing.T, ro bool) {
	a, b := strings.Repeat("a", 9000), strings.Repeat("b", 3000)
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "BIG", a)
	}), func(c *mountConfig) { c.readOnly = ro })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				f, err := os.Open(m.path("webshop/dev/BIG"))
				if err != nil {
					errs <- err.Error()
					return
				}
				// One pread(2): os.File.ReadAt would loop over several.
				k, err := syscall.Pread(int(f.Fd()), buf, 0)
				f.Close()
				if err != nil {
					errs <- err.Error()
					return
				}
				if s := string(buf[:k]); s != a && s != b {
					errs <- fmt.Sprintf("torn read: %d bytes: %s", len(s), runs(s))
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		v := a
		if i%2 == 0 {
			v = b
		}
		m.srv.SetSecret(m.project, "dev", "/", "BIG", v)
		m.refresh()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestReadWriteOpenSeesOneVersion: an O_RDWR open reads the snapshot taken
// at open, whatever refreshes happen while it is open.
func TestReadWriteOpenSeesOneVersion(t *testing.T) {
	a := strings.Repeat("a", 9000)
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "BIG", a)
	}))
	f, err := os.OpenFile(m.path("webshop/dev/BIG"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	m.srv.SetSecret(m.project, "dev", "/", "BIG", "short")
	m.refresh()
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(head) + string(rest); got != a {
		t.Errorf("an O_RDWR open read %d bytes: %s", len(got), runs(got))
	}
}

// TestCachedReadRequests counts the kernel requests a repeat read costs:
// none on a read-only mount; on a read-write mount, where every open reads
// its own snapshot with direct I/O, the OPEN, os.ReadFile's two READs
// (the value, then end of file) and its fstat's GETATTR (a direct read
// marks the kernel's atime stale).
func TestCachedReadRequests(t *testing.T) {
	for _, ro := range []bool{true, false} {
		t.Run(fmt.Sprint("readOnly=", ro), func(t *testing.T) {
			m := mountForTest(t, withSeed(seedBasic), func(c *mountConfig) { c.readOnly = ro })
			p := m.path("webshop/dev/API_KEY")
			for i := 0; i < 3; i++ { // warm every cache
				if _, err := os.ReadFile(p); err != nil {
					t.Fatal(err)
				}
			}
			before := m.fsys.Requests()
			const n = 50
			for i := 0; i < n; i++ {
				b, err := os.ReadFile(p)
				if err != nil || string(b) != "k-123" {
					t.Fatalf("read %q %v", b, err)
				}
			}
			per := float64(m.fsys.Requests()-before) / n
			want := 4.0
			if ro {
				want = 0
			}
			if per > want+0.1 {
				t.Errorf("%.2f requests per repeat read, want %.0f", per, want)
			}
		})
	}
}

// runs describes s as runs of equal bytes, e.g. "3000×b 6000×\x00".
func runs(s string) string {
	var out []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%d×%q", j-i, s[i]))
		i = j
	}
	return strings.Join(out, " ")
}
