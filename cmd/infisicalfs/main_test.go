package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// binary is the infisicalfs built once for every test here: the tests run
// the real program as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "infisicalfs-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "infisicalfs")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testID     = "cmd-test-client"
	testSecret = "cmd-test-secret-5d1c"
)

// world is a test server with project "webshop" (dev, prod) and a temp dir.
type world struct {
	t       *testing.T
	srv     *infisicaltest.Server
	project string
	dir     string
}

func newWorld(t *testing.T) *world {
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev", "prod")
	srv.AddIdentity(testID, testSecret)
	srv.Grant(testID, pid, infisicaltest.PermReadWrite)
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", "postgres://dev")
	srv.SetSecret(pid, "dev", "/app", "PORT", "8080")
	return &world{t: t, srv: srv, project: pid, dir: t.TempDir()}
}

func (w *world) env(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "XDG_STATE_HOME=" + filepath.Join(w.dir, "state"),
		"INFISICAL_URL=" + w.srv.URL(), "INFISICAL_CLIENT_ID=" + testID, "INFISICAL_CLIENT_SECRET=" + testSecret,
	}
	return append(env, extra...)
}

// proc is one running `infisicalfs mount`.
type proc struct {
	cmd  *exec.Cmd
	mnt  string
	logs *testutil.Buffer
	done chan error
}

// mount starts `infisicalfs mount ARGS MNT` and waits until .status reads.
func (w *world) mount(mnt string, env []string, args ...string) *proc {
	w.t.Helper()
	return w.mountArgv(mnt, env, append(args, mnt)...)
}

// mountArgv starts `infisicalfs mount ARGV` (ARGV names MNT somewhere) and
// waits until MNT/.status reads.
func (w *world) mountArgv(mnt string, env []string, argv ...string) *proc {
	w.t.Helper()
	testutil.RequireFUSE(w.t)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		w.t.Fatal(err)
	}
	d := &proc{mnt: mnt, logs: &testutil.Buffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, append([]string{"mount"}, argv...)...)
	d.cmd.Env = env
	d.cmd.Stderr = d.logs
	d.cmd.Stdout = d.logs
	if err := d.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	w.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				d.cmd.Process.Kill()
			}
		}
		exec.Command(binary, "unmount", mnt).Run()
		if w.t.Failed() {
			w.t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.ReadFile(filepath.Join(mnt, ".status")); err == nil {
			return d
		}
		select {
		case err := <-d.done:
			w.t.Fatalf("daemon exited: %v\n%s", err, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("mount not ready in 20s\n%s", d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runCmd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func mounted(mnt string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), " "+mnt+" ")
}

func TestUsageAndVersion(t *testing.T) {
	if out, code := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "infisicalfs ") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, c := range []string{"mount", "unmount", "refresh", "status", "dev-server"} {
		out, code := runCmd(t, nil, c, "--help")
		if code != 0 || !strings.Contains(out, "Usage:\n  infisicalfs "+c) {
			t.Errorf("%s --help: %d %q", c, code, out)
		}
	}
	if _, code := runCmd(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}

func TestMissingCredentialNamedInOneLine(t *testing.T) {
	w := newWorld(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "INFISICAL_URL=" + w.srv.URL(), "INFISICAL_CLIENT_ID=" + testID}
	out, code := runCmd(t, env, "mount", filepath.Join(w.dir, "mnt"))
	if code == 0 || !strings.Contains(out, "client secret") || !strings.Contains(out, "INFISICAL_CLIENT_SECRET") {
		t.Errorf("exit %d, output %q: want a line naming the missing client secret", code, out)
	}
	env = append(env, "INFISICAL_CLIENT_SECRET=")
	if out, code := runCmd(t, env, "mount", filepath.Join(w.dir, "mnt")); code == 0 || !strings.Contains(out, "client secret") {
		t.Errorf("empty secret: exit %d, %q", code, out)
	}
}

func TestStartFailuresAreClear(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	// Wrong secret: authentication failed, with what to check.
	out, code := runCmd(t, w.env("INFISICAL_CLIENT_SECRET=wrong"), "mount", mnt)
	if code == 0 || !strings.Contains(out, "authentication failed") {
		t.Errorf("bad secret: exit %d, %q", code, out)
	}
	// Unreachable: the URL and what /api/status said.
	w.srv.SetOutage(true)
	out, code = runCmd(t, w.env(), "mount", mnt)
	if code == 0 || !strings.Contains(out, w.srv.URL()) || !strings.Contains(out, "status") {
		t.Errorf("unreachable: exit %d, %q", code, out)
	}
	if strings.Contains(out, testSecret) {
		t.Error("the client secret was printed")
	}
	if mounted(mnt) {
		t.Error("a failed start left a mount")
	}
}

func TestMountRefreshStatusUnmount(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	d := w.mount(mnt, w.env(), "--refresh-interval", "1h")
	if b, _ := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL")); string(b) != "postgres://dev" {
		t.Fatalf("read %q", b)
	}
	w.srv.SetSecret(w.project, "dev", "/", "DATABASE_URL", "postgres://changed")
	if out, code := runCmd(t, w.env(), "refresh", mnt); code != 0 || !strings.Contains(out, "synced") {
		t.Fatalf("refresh: %d %q", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL")); string(b) != "postgres://changed" {
		t.Errorf("after refresh: %q", b)
	}
	out, code := runCmd(t, w.env(), "status", mnt)
	if code != 0 || !strings.Contains(out, "read-write") || !strings.Contains(out, "webshop/dev: 2 secrets") {
		t.Errorf("status: %d %q", code, out)
	}
	var st statusDoc
	b, _ := os.ReadFile(filepath.Join(mnt, ".status"))
	if err := json.Unmarshal(b, &st); err != nil || st.PID != d.cmd.Process.Pid || st.Counts.Pulls < 2 {
		t.Errorf(".status = %+v %v", st, err)
	}
	// SIGTERM unmounts cleanly and exits 0.
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if mounted(mnt) {
		t.Error("still mounted after SIGTERM")
	}
	if w.srv.LiveTokens(testID) != 0 {
		t.Errorf("%d access tokens left alive after shutdown", w.srv.LiveTokens(testID))
	}
	if strings.Contains(d.logs.String(), "postgres://") {
		t.Error("a value reached the log")
	}
}

// waitStarted waits for the daemon's "mounted" line: the mount answers
// (.status) a little before go-fuse's start has closed the probe file it
// opens in the mount, and a kill -9 inside that window leaves the process
// unkillable until `infisicalfs unmount` aborts the connection
// (docs/behaviour.md). Tests that kill at once wait for this.
func (d *proc) waitStarted(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(d.logs.String(), "msg=mounted"); {
		if time.Now().After(deadline) {
			t.Fatalf("no \"mounted\" line in 20s\n%s", d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// `infisicalfs unmount` of a live mount: the daemon sees a plain umount
// and exits 0; with a file held open by a shell the mount is busy, and the
// command still succeeds (abort, then detach) with the daemon gone.
func TestUnmountLiveMount(t *testing.T) {
	w := newWorld(t)
	for _, busy := range []bool{false, true} {
		mnt := filepath.Join(w.dir, fmt.Sprintf("mnt-busy-%v", busy))
		d := w.mount(mnt, w.env())
		d.waitStarted(t)
		if busy {
			holder := exec.Command("sh", "-c", "exec 9<"+filepath.Join(mnt, "webshop/dev/DATABASE_URL")+"; sleep 30")
			if err := holder.Start(); err != nil {
				t.Fatal(err)
			}
			defer holder.Process.Kill()
			time.Sleep(200 * time.Millisecond) // the shell has opened the file
		}
		if out, code := runCmd(t, w.env(), "unmount", mnt); code != 0 {
			t.Errorf("busy=%v: unmount of a live mount: %d %q", busy, code, out)
		}
		select {
		case err := <-d.done:
			if !busy && err != nil {
				t.Errorf("exit after a plain unmount: %v\n%s", err, d.logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("busy=%v: daemon still running after unmount", busy)
		}
		if mounted(mnt) {
			t.Errorf("busy=%v: still mounted after unmount", busy)
		}
	}
}

func TestKill9ThenRemount(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	d := w.mount(mnt, w.env())
	d.waitStarted(t)
	d.cmd.Process.Kill()
	<-d.done
	if !mounted(mnt) {
		t.Fatal("expected a stale mount after kill -9")
	}
	if out, code := runCmd(t, w.env(), "status", mnt); code == 0 || !strings.Contains(out, "stale") {
		t.Errorf("status on a stale mount: %d %q", code, out)
	}
	d2 := w.mount(mnt, w.env()) // clears the stale mount itself
	if b, err := os.ReadFile(filepath.Join(mnt, "webshop/dev/app/PORT")); err != nil || string(b) != "8080" {
		t.Errorf("after remount: %q %v", b, err)
	}
	if !strings.Contains(d2.logs.String(), "stale mount") {
		t.Errorf("no word of the stale mount in the log:\n%s", d2.logs.String())
	}
	// The state file written before the kill loads whole.
	matches, _ := filepath.Glob(filepath.Join(w.dir, "state", "infisicalfs", "*", "infisical_sync_state.json"))
	if len(matches) != 1 {
		t.Fatalf("state files: %v", matches)
	}
	b, _ := os.ReadFile(matches[0])
	if !json.Valid(b) || strings.Contains(string(b), "postgres://dev") {
		t.Errorf("state file invalid or holds a value: %s", b)
	}
	// unmount clears a stale mount too.
	d2.waitStarted(t)
	d2.cmd.Process.Kill()
	<-d2.done
	if out, code := runCmd(t, w.env(), "unmount", mnt); code != 0 || mounted(mnt) {
		t.Errorf("unmount of a stale mount: %d %q", code, out)
	}
}

func TestHotReload(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	cfgPath := filepath.Join(w.dir, "config.toml")
	secretPath := filepath.Join(w.dir, "client-secret")
	os.WriteFile(secretPath, []byte(testSecret+"\n"), 0o600)
	os.WriteFile(cfgPath, []byte("refresh_interval = \"1h\"\nclient_secret_file = \""+secretPath+"\"\n"), 0o600)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "XDG_STATE_HOME=" + filepath.Join(w.dir, "state"),
		"INFISICAL_URL=" + w.srv.URL(), "INFISICAL_CLIENT_ID=" + testID}
	d := w.mount(mnt, env, "--config", cfgPath, "--log-level", "debug")

	// Rotate the client secret: the server takes only the new one now.
	const rotated = "rotated-secret-77a0"
	w.srv.AddIdentity(testID, rotated)
	tmp := secretPath + ".new"
	os.WriteFile(tmp, []byte(rotated+"\n"), 0o600)
	os.Rename(tmp, secretPath) // as Kubernetes and editors replace files
	// A shorter interval takes effect without a remount.
	os.WriteFile(cfgPath, []byte("refresh_interval = \"1s\"\nclient_secret_file = \""+secretPath+"\"\n"), 0o600)
	w.srv.SetSecret(w.project, "dev", "/", "DATABASE_URL", "after-reload")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL"))
		if string(b) == "after-reload" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new interval or secret did not take effect; file %q", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(d.logs.String(), "config reloaded") {
		t.Error("no log line for the reload")
	}
	// A change that needs a remount says so and keeps the old value.
	os.WriteFile(cfgPath, []byte("refresh_interval = \"1s\"\nread_only = true\nclient_secret_file = \""+secretPath+"\"\n"), 0o600)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs.String(), "need a remount") {
		if time.Now().After(deadline) {
			t.Fatal("no log line for a remount-only change")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(mnt, "webshop/dev/STILL_RW"), []byte("x"), 0o600); err != nil {
		t.Errorf("the mount stopped being read-write: %v", err)
	}
	// A config that does not parse keeps the running one.
	os.WriteFile(cfgPath, []byte("refresh_interval = [broken"), 0o600)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs.String(), "keeping the running settings") {
		if time.Now().After(deadline) {
			t.Fatal("no log line for a broken config")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(d.logs.String(), rotated) || strings.Contains(d.logs.String(), testSecret) {
		t.Error("a client secret reached the log")
	}
}

func TestMetricsAndHardening(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	d := w.mount(mnt, w.env(), "--metrics-addr", "127.0.0.1:0")
	re := regexp.MustCompile(`serving metrics"? addr=(\S+)`)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(d.logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics address in the log:\n%s", d.logs.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The listener is up before the mount (a port in use is a start-up
	// error), so /healthz says 503 until the mount is ready: wait for it.
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err = http.Get("http://" + addr + "/healthz")
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never became ready: %v %v", resp, err)
		}
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"infisicalfs_secrets 2", "infisicalfs_sync_total", "infisicalfs_api_requests_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Core dumps are off for the daemon.
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.cmd.Process.Pid))
	sc := bufio.NewScanner(bytes.NewReader(limits))
	found := false
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); strings.HasPrefix(sc.Text(), "Max core file size") && len(f) >= 6 {
			found = true
			if f[4] != "0" || f[5] != "0" {
				t.Errorf("core limit of the daemon: %q", sc.Text())
			}
		}
	}
	if !found {
		t.Error("no core limit line in /proc/PID/limits")
	}
	st, _ := os.Stat(mnt)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mount root mode %v, want 0700", st.Mode())
	}
}

// Flags after the mount point and -o options, as mount(8) and rclone
// take them (this printed the whole usage and exited 2).
func TestFlagsAfterMountpointAndOptions(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	w.mountArgv(mnt, w.env(), mnt, "--flat", "-o", "ro,project=webshop,env=dev,refresh_interval=30s,_netdev")
	if b, err := os.ReadFile(filepath.Join(mnt, "DATABASE_URL")); err != nil || string(b) != "postgres://dev" {
		t.Errorf("flat read: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "DATABASE_URL"), []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write with -o ro: %v, want EROFS", err)
	}
	if v, _, _ := w.srv.Secret(w.project, "dev", "/", "DATABASE_URL"); v != "postgres://dev" {
		t.Errorf("server value %q after a refused write", v)
	}
	out, code := runCmd(t, w.env(), "mount", filepath.Join(w.dir, "other"), "-o", "frobnicate")
	if code == 0 || !strings.Contains(out, `unknown mount option "frobnicate"`) || !strings.Contains(out, "--help-config") {
		t.Errorf("unknown -o: exit %d, %q", code, out)
	}
}

func TestReadOnlyFlatMount(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	w.mount(mnt, w.env(), "--read-only", "--flat", "--project", "webshop", "--env", "dev")
	if b, err := os.ReadFile(filepath.Join(mnt, "DATABASE_URL")); err != nil || string(b) != "postgres://dev" {
		t.Errorf("flat read: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, ".env")); err != nil {
		t.Errorf("flat root has no .env: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "DATABASE_URL"), []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write on a read-only mount: %v, want EROFS", err)
	}
}

// TestMountHelper mounts through mount(8) with deploy/mount.infisicalfs
// installed as the helper for type fuse.infisicalfs.
func TestMountHelper(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("mount(8) with a helper needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount(8)")
	}
	helper := "/sbin/mount.fuse.infisicalfs"
	if _, err := os.Stat(helper); err == nil {
		t.Skip(helper + " exists already; not replacing it")
	}
	src, err := os.ReadFile("../../deploy/mount.infisicalfs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, src, 0o755); err != nil {
		t.Skip("cannot install the helper:", err)
	}
	t.Cleanup(func() { os.Remove(helper) })
	w := newWorld(t)
	logFile := filepath.Join(w.dir, "daemon.log")
	for _, tc := range []struct{ name, opts string }{
		{"log discarded", "ro,env=dev"},
		{"log to a file", "ro,env=dev,log=" + logFile},
	} {
		mnt := filepath.Join(w.dir, "mnt-"+strings.ReplaceAll(tc.name, " ", "-"))
		os.Mkdir(mnt, 0o755)
		cmd := exec.Command("mount", "-t", "fuse.infisicalfs", "infisicalfs", mnt, "-o", tc.opts)
		cmd.Env = w.env("INFISICALFS_BIN="+binary, "INFISICALFS_MOUNT_TIMEOUT=20")
		// The daemon must let go of mount(8)'s output: a caller reading
		// it would otherwise wait until the unmount. WaitDelay turns that
		// wait into an error instead of a hung test.
		cmd.WaitDelay = 5 * time.Second
		t.Cleanup(func() { stopHelperMount(t, mnt) })
		out, err := cmd.CombinedOutput()
		if errors.Is(err, exec.ErrWaitDelay) {
			t.Errorf("%s: mount(8) returned but its stdout/stderr stayed open (the daemon kept them)", tc.name)
		} else if err != nil {
			t.Fatalf("%s: mount -t fuse.infisicalfs: %v\n%s", tc.name, err, out)
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL")); err != nil || string(b) != "postgres://dev" {
			t.Errorf("%s: read through the helper's mount: %q %v", tc.name, b, err)
		}
		if _, err := os.Stat(filepath.Join(mnt, "webshop/prod")); err == nil {
			t.Errorf("%s: env=dev did not reach the daemon", tc.name)
		}
	}
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), "msg=mounted") {
		t.Errorf("log=%s has no \"mounted\" line: %v\n%s", logFile, err, b)
	}
}

// stopHelperMount unmounts a mount made through mount(8), and kills its
// daemon if the unmount did not end it, so that a failed test leaves no
// mount or process behind.
func stopHelperMount(t *testing.T, mnt string) {
	var st statusDoc
	if b, err := os.ReadFile(filepath.Join(mnt, ".status")); err == nil {
		json.Unmarshal(b, &st)
	}
	exec.Command(binary, "unmount", mnt).Run()
	if pid := st.PID; pid > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("the daemon (pid %d) outlived the unmount of %s; killing it", pid, mnt)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	syscall.Unmount(mnt, syscall.MNT_DETACH)
}

// TestOwnerFlags: --uid and --gid set the owner of everything.
func TestOwnerFlags(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	w.mount(mnt, w.env(), "--uid", "1234", "--gid", "5678", "--file-mode", "0440")
	for _, p := range []string{"", "webshop", "webshop/dev", "webshop/dev/DATABASE_URL"} {
		st, err := os.Stat(filepath.Join(mnt, p))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != 1234 || sys.Gid != 5678 {
			t.Errorf("%q owned by %d:%d, want 1234:5678", p, sys.Uid, sys.Gid)
		}
		if p == "webshop/dev/DATABASE_URL" && st.Mode().Perm() != 0o440 {
			t.Errorf("file mode %v, want 0440", st.Mode())
		}
	}
}

// TestMountAsNormalUser mounts through fusermount3 as an unprivileged user.
func TestMountAsNormalUser(t *testing.T) {
	testutil.RequireFUSE(t)
	setpriv, err := exec.LookPath("setpriv")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("needs root to switch to an unprivileged user, and setpriv")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if os.Getenv("REQUIRE_FUSE") == "1" {
			t.Fatal("fusermount3 missing (apt-get install fuse3)")
		}
		t.Skip("no fusermount3")
	}
	// Distributions ship /dev/fuse as 0666 (fusermount3 opens it as the
	// user); a machine whose device is root-only gets that for this test.
	if st, err := os.Stat("/dev/fuse"); err == nil && st.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/fuse", 0o666); err != nil {
			t.Skip("cannot make /dev/fuse usable by other users:", err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", st.Mode().Perm()) })
	}
	w := newWorld(t)
	// A world-traversable home for user nobody, with a copy of the binary.
	home, err := os.MkdirTemp("/tmp", "infisicalfs-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0o755)
	bin := filepath.Join(home, "infisicalfs")
	b, _ := os.ReadFile(binary)
	os.WriteFile(bin, b, 0o755)
	mnt := filepath.Join(home, "mnt")
	os.Mkdir(mnt, 0o755)
	os.Chown(mnt, 65534, 65534)
	state := filepath.Join(home, "state")
	os.Mkdir(state, 0o755)
	os.Chown(state, 65534, 65534)
	logs := &testutil.Buffer{}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "mount", mnt)
	cmd.Env = append(w.env(), "HOME="+home, "XDG_STATE_HOME="+state)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !mounted(mnt) {
		select {
		case err := <-done:
			t.Fatalf("daemon exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted in 20s\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without allow_other only the mounting user may enter: read as nobody.
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "cat", filepath.Join(mnt, "webshop/dev/DATABASE_URL")).CombinedOutput()
	if err != nil || string(out) != "postgres://dev" {
		t.Errorf("read as the mounting user: %q %v", out, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if mounted(mnt) {
		t.Error("still mounted after SIGTERM")
	}
}

// TestSignalDuringStartLeavesNothing: SIGTERM at any moment of the start
// (login, first sync, the mount itself, go-fuse's poll of the new mount)
// ends the process promptly and leaves no mount behind. Before signals were
// taken at the very start, one landing during the mount killed the process
// while a thread of it waited on its own mount: unkillable, mount dead.
func TestSignalDuringStartLeavesNothing(t *testing.T) {
	testutil.RequireFUSE(t)
	w := newWorld(t)
	for i := 0; i < 24; i++ {
		mnt := filepath.Join(w.dir, fmt.Sprintf("mnt%d", i))
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, "mount", mnt)
		cmd.Env = w.env()
		var logs testutil.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Spread the signal over the start: from before the login to
		// after the mount is ready.
		time.Sleep(time.Duration(i) * 3 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			// Before the handler exists (runtime start, flags) the
			// default action ends it, with nothing mounted yet.
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
				t.Errorf("signal after %d ms: exit %v\n%s", i*3, err, logs.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("signal after %d ms: still running 15 s after SIGTERM\n%s", i*3, logs.String())
		}
		if mounted(mnt) {
			t.Errorf("signal after %d ms: %s left mounted\n%s", i*3, mnt, logs.String())
			exec.Command(binary, "unmount", mnt).Run()
		}
	}
}

// `infisicalfs mount --agent-config agent.yaml MNT` with no other
// settings: the agent file gives the address, the credentials and the
// template, which renders in the mount; rewriting the template's source
// file re-renders it live (the source files are watched like the config).
func TestAgentConfigThroughBinary(t *testing.T) {
	w := newWorld(t)
	write := func(name, text string) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("id", testID)
	write("secret", testSecret)
	tmpl := write("app.tmpl", `{{ range listSecrets "`+w.project+`" "dev" "/app" }}{{ .Key }}={{ .Value }}{{ end }}`)
	agent := write("agent.yaml", `infisical:
  address: "`+w.srv.URL()+`"
auth:
  type: universal-auth
  config:
    client-id: ./id
    client-secret: ./secret
templates:
  - source-path: ./app.tmpl
    destination-path: /etc/app/app.env
`)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "XDG_STATE_HOME=" + filepath.Join(w.dir, "state")}
	mnt := filepath.Join(w.dir, "mnt")
	p := w.mount(mnt, env, "--agent-config", agent)
	file := filepath.Join(mnt, "app.env")
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "PORT=8080" {
		t.Fatalf("app.env: %q %v\n%s", b, err, p.logs)
	}
	if !strings.Contains(p.logs.String(), "/etc/app") {
		t.Errorf("the start-up notice does not name /etc/app:\n%s", p.logs)
	}
	// Replace the template file by rename, as editors and Kubernetes do.
	write("app.tmpl.new", `port {{ (getSecretByName "`+w.project+`" "dev" "/app" "PORT").Value }}`)
	if err := os.Rename(filepath.Join(w.dir, "app.tmpl.new"), tmpl); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err = os.ReadFile(file)
		if err == nil && string(b) == "port 8080" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rewriting the template: %q %v\n%s", b, err, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGINTAfterStderrReaderExits: `make demo 2>&1 | tee log`, then Ctrl-C.
// tee is gone before the daemon's SIGINT handler logs, and a write to a
// pipe without a reader raised SIGPIPE, killing the daemon before it
// unmounted: a dead mount ("Transport endpoint is not connected").
func TestSIGINTAfterStderrReaderExits(t *testing.T) {
	testutil.RequireFUSE(t)
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "mount", "--log-level", "debug", mnt)
	cmd.Env = w.env()
	cmd.Stdout, cmd.Stderr = wr, wr // an *os.File: the child's fd 2 is the pipe itself
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close() // the child holds the only write end now
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		exec.Command(binary, "unmount", mnt).Run()
	})
	// The reader drains the log, as tee would, until the mount is ready.
	var logs testutil.Buffer
	readerDone := make(chan struct{})
	stopReading := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			logs.Write(buf[:n])
			if err != nil {
				return
			}
			select {
			case <-stopReading:
				return
			default:
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.ReadFile(filepath.Join(mnt, ".status")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted in 20s\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The reader exits: close the only read end.
	close(stopReading)
	r.Close()
	<-readerDone
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws := ee.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
				t.Errorf("the daemon died of %v after its stderr reader exited", ws.Signal())
			}
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15 s after SIGINT")
	}
	if mounted(mnt) {
		t.Errorf("%s is still mounted after SIGINT", mnt)
	}
	if _, err := os.ReadDir(mnt); err != nil {
		t.Errorf("the mount point is not clean: %v", err)
	}
}

// TestMakeInstallAndMountWithoutPathOrHome: `make install DESTDIR=...`
// lays out everything, and the installed helper mounts through
// `mount -t fuse.infisicalfs` run with no PATH and no HOME, as mount(8)
// and fstab run it. A failing start prints the daemon's first error line.
func TestMakeInstallAndMountWithoutPathOrHome(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("mount(8) with a helper needs root")
	}
	mountBin, err := exec.LookPath("mount")
	if err != nil {
		t.Skip("no mount(8)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	helper := "/sbin/mount.fuse.infisicalfs"
	if _, err := os.Lstat(helper); err == nil {
		t.Skip(helper + " exists already; not replacing it")
	}
	w := newWorld(t)
	repo, _ := filepath.Abs("../..")
	make := func(args ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-C", repo, "--no-print-directory", "install", "BIN=" + filepath.Join(w.dir, "build", "infisicalfs")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install %v: %v\n%s", args, err, out)
		}
	}
	// A staged install: every file in place under DESTDIR.
	stage := filepath.Join(w.dir, "stage")
	make("DESTDIR="+stage, "PREFIX=/usr")
	for _, p := range []string{
		"usr/bin/infisicalfs", "sbin/mount.infisicalfs", "sbin/mount.fuse.infisicalfs",
		"usr/lib/systemd/system/infisicalfs.service", "usr/share/man/man1/infisicalfs.1",
		"usr/share/man/man1/infisicalfs-mount.1", "usr/share/bash-completion/completions/infisicalfs",
		"usr/share/zsh/site-functions/_infisicalfs", "usr/share/fish/vendor_completions.d/infisicalfs.fish",
		"usr/share/doc/infisicalfs/examples/config.toml",
	} {
		if st, err := os.Stat(filepath.Join(stage, p)); err != nil || st.Size() == 0 {
			t.Errorf("make install: %s missing or empty: %v", p, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(stage, "sbin/mount.infisicalfs"))
	if !strings.Contains(string(b), "installed='/usr/bin/infisicalfs'") {
		t.Error("the installed helper does not name the binary by its absolute path")
	}
	unit, _ := os.ReadFile(filepath.Join(stage, "usr/lib/systemd/system/infisicalfs.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/infisicalfs mount") || !strings.Contains(string(unit), "StateDirectory=infisicalfs") {
		t.Errorf("installed unit:\n%s", unit)
	}
	man, _ := os.ReadFile(filepath.Join(stage, "usr/share/man/man1/infisicalfs-mount.1"))
	bash, _ := os.ReadFile(filepath.Join(stage, "usr/share/bash-completion/completions/infisicalfs"))
	if !strings.Contains(string(man), "refresh-interval") || !strings.Contains(string(bash), "infisicalfs") {
		t.Errorf("man page or completion lacks the flags")
	}

	// A live install under a private prefix, the helper linked where
	// mount(8) looks for it.
	prefix := filepath.Join(w.dir, "prefix")
	make("PREFIX="+prefix, "SBINDIR="+prefix+"/sbin")
	if err := os.Symlink(prefix+"/sbin/mount.fuse.infisicalfs", helper); err != nil {
		t.Skip("cannot install the helper:", err)
	}
	t.Cleanup(func() { os.Remove(helper) })
	mnt := filepath.Join(w.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	stateDir := filepath.Join("/var/lib/infisicalfs", strings.ReplaceAll(strings.TrimPrefix(mnt, "/"), "/", "-"))
	t.Cleanup(func() { stopHelperMount(t, mnt); os.RemoveAll(stateDir) })
	noPathNoHome := []string{"INFISICAL_URL=" + w.srv.URL(), "INFISICAL_CLIENT_ID=" + testID, "INFISICAL_CLIENT_SECRET=" + testSecret, "INFISICALFS_MOUNT_TIMEOUT=20"}
	cmd := exec.Command(mountBin, "-t", "fuse.infisicalfs", "infisicalfs", mnt, "-o", "ro,env=dev")
	cmd.Env = noPathNoHome
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t fuse.infisicalfs without PATH and HOME: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL")); err != nil || string(b) != "postgres://dev" {
		t.Errorf("read through the installed helper's mount: %q %v", b, err)
	}
	stopHelperMount(t, mnt)

	// A start that fails says why, not only "mount again with -o log=FILE".
	cmd = exec.Command(mountBin, "-t", "fuse.infisicalfs", "infisicalfs", mnt, "-o", "refresh_interval=soon")
	cmd.Env = noPathNoHome
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refresh-interval") {
		t.Errorf("bad option through the helper: %v, want the daemon's error line\n%s", err, out)
	}
	if strings.Contains(string(out), testSecret) {
		t.Error("the helper printed the client secret")
	}
}

// /healthz stayed 200 once mounted; now it answers 503 once the last good
// sync is older than healthz_max_stale, and 200 again after a good sync.
func TestHealthzReportsStaleness(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	d := w.mount(mnt, w.env(), "--metrics-addr", "127.0.0.1:0", "-o", "refresh_interval=1s,healthz_max_stale=2s,server_error_delay=10ms")
	re := regexp.MustCompile(`serving metrics"? addr=(\S+)`)
	m := re.FindStringSubmatch(d.logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", d.logs.String())
	}
	healthz := func() (int, string) {
		resp, err := http.Get("http://" + m[1] + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, body := healthz()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz stayed %d %q, want %d\n%s", code, body, want, d.logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(200)
	if out, code := runCmd(t, w.env(), "status", mnt); code != 0 {
		t.Errorf("status of a fresh mount: exit %d\n%s", code, out)
	}
	// Every sync fails fast: Infisical answers 500 to every listing.
	w.srv.FailPath("GET", "/api/v4/secrets", 500, -1)
	if body := waitFor(503); !strings.Contains(body, "stale") {
		t.Errorf("503 body %q does not say stale", body)
	}
	// status agrees, for scripts and probes: exit 1 while scopes err.
	if out, code := runCmd(t, w.env(), "status", mnt); code != 1 || !strings.Contains(out, "errors in webshop/dev") {
		t.Errorf("status while every scope errs: exit %d, want 1\n%s", code, out)
	}
	w.srv.ClearFaults()
	waitFor(200)
	if out, code := runCmd(t, w.env(), "status", mnt); code != 0 {
		t.Errorf("status after recovery: exit %d\n%s", code, out)
	}
	// A whole cycle that fails (the login is refused) makes the mount
	// stale: status exits 1 and says so.
	w.srv.FailPath("POST", "/api/v1/auth", 401, -1)
	w.srv.RevokeAllTokens()
	staleDeadline := time.Now().Add(10 * time.Second)
	for {
		out, code := runCmd(t, w.env(), "status", mnt)
		if code == 1 && strings.Contains(out, "STALE since") {
			break
		}
		if time.Now().After(staleDeadline) {
			t.Fatalf("status never reported STALE with exit 1: exit %d\n%s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := runCmd(t, w.env(), "status", w.dir); code != 2 {
		t.Errorf("status of a directory that is no mount: exit %d, want 2\n%s", code, out)
	}
}

// doctor checks against a real server: every check passes for a good
// setup; a read-only grant shows as "write: denied", a non-empty mount
// point and a wrong secret fail with what to fix, and nothing changes in
// Infisical.
func TestDoctor(t *testing.T) {
	w := newWorld(t)
	ro := w.srv.AddProject("audit", "Audit", "prod")
	w.srv.Grant(testID, ro, infisicaltest.PermRead)
	w.srv.SetSecret(ro, "prod", "/", "LOG_KEY", "audit-canary-77f1")
	mnt := filepath.Join(w.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	before := len(w.srv.Secrets(w.project, "dev"))
	out, code := runCmd(t, w.env(), "doctor", mnt)
	for _, want := range []string{"ok    url", "ok    login", "ok    clock", "ok    mount point", "webshop/dev            read: 1 secrets at /; write: allowed", "audit/prod             read: 1 secrets at /; write: denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("doctor on a good setup: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "audit-canary-77f1") || strings.Contains(out, testSecret) {
		t.Error("doctor printed a secret")
	}
	if n := len(w.srv.Secrets(w.project, "dev")); n != before {
		t.Errorf("doctor changed Infisical: %d secrets, had %d", n, before)
	}
	os.WriteFile(filepath.Join(mnt, "file"), nil, 0o600)
	out, code = runCmd(t, w.env("INFISICAL_CLIENT_SECRET=wrong"), "doctor", mnt)
	if code != 1 || !strings.Contains(out, "FAIL  mount point") || !strings.Contains(out, "--allow-non-empty") || !strings.Contains(out, "FAIL  login") {
		t.Errorf("doctor on a bad setup: exit %d\n%s", code, out)
	}
	out, code = runCmd(t, w.env(), "doctor", "--env", "nope")
	if code != 1 || !strings.Contains(out, "FAIL  scopes") {
		t.Errorf("doctor --env nope: exit %d\n%s", code, out)
	}
}

// mount --daemon returns once the mount is ready, leaves a pid file, logs
// to --log-file, and stops cleanly on SIGTERM (removing the pid file); a
// start that fails prints why and exits non-zero in the foreground.
func TestDaemonFlag(t *testing.T) {
	testutil.RequireFUSE(t)
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	pidFile, logFile := filepath.Join(w.dir, "pid"), filepath.Join(w.dir, "log")
	cmd := exec.Command(binary, "mount", mnt, "--daemon", "--pid-file", pidFile, "--log-file", logFile)
	cmd.Env = w.env()
	cmd.WaitDelay = 5 * time.Second // the child must not keep our output open
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { stopHelperMount(t, mnt) })
	if err != nil {
		t.Fatalf("mount --daemon: %v\n%s", err, out)
	}
	// Ready when the command returned: no polling.
	if b, err := os.ReadFile(filepath.Join(mnt, "webshop/dev/DATABASE_URL")); err != nil || string(b) != "postgres://dev" {
		t.Fatalf("read right after mount --daemon returned: %q %v", b, err)
	}
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid file: %q %v", b, err)
	}
	if !strings.Contains(string(out), fmt.Sprintf("pid %d", pid)) {
		t.Errorf("output does not name pid %d: %s", pid, out)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if mounted(mnt) {
		t.Error("still mounted after SIGTERM to the background process")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after exit: %v", err)
	}
	if lb, _ := os.ReadFile(logFile); !strings.Contains(string(lb), "signal: unmounting") || strings.Contains(string(lb), testSecret) {
		t.Errorf("log file:\n%s", lb)
	}
	// A start that fails: the foreground command says why.
	out2, code := runCmd(t, w.env("INFISICAL_CLIENT_SECRET=wrong"), "mount", "--daemon", mnt)
	if code == 0 || !strings.Contains(out2, "authentication failed") {
		t.Errorf("failed background start: exit %d\n%s", code, out2)
	}
	if mounted(mnt) {
		t.Error("a failed background start left a mount")
	}
}

// An on_change hook does not run for what the first sync found (it ran
// with changed=13 at every start); it runs once a refresh changes something.
func TestHooksSkipTheFirstSync(t *testing.T) {
	w := newWorld(t)
	runs := filepath.Join(w.dir, "runs")
	cfg := filepath.Join(w.dir, "c.toml")
	os.WriteFile(cfg, []byte(`[[on_change]]
path = "webshop/dev"
command = ["/bin/sh", "-c", "echo run >> `+runs+`"]
debounce = "10ms"
`), 0o600)
	mnt := filepath.Join(w.dir, "mnt")
	w.mount(mnt, w.env(), "--config", cfg, "--refresh-interval", "1s")
	time.Sleep(1500 * time.Millisecond) // the start and one unchanged refresh
	if b, err := os.ReadFile(runs); err == nil {
		t.Fatalf("the hook ran at start: %q", b)
	}
	w.srv.SetSecret(w.project, "dev", "/", "NEW_KEY", "v")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") == 1 {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(runs)
			t.Fatalf("hook after a change: %q, want one run", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The completions and the man pages come from the same flag table as
// --help: a mount flag shows in all three, with the same text.
func TestCompletionAndManFromTheFlags(t *testing.T) {
	help, _ := runCmd(t, nil, "mount", "--help")
	comp, code := runCmd(t, nil, "__complete", "mount", "--refr")
	if code != 0 || !strings.Contains(comp, "--refresh-interval\thow often to sync from Infisical") {
		t.Errorf("completion of --refr: %d %q", code, comp)
	}
	if !strings.Contains(help, "--refresh-interval duration") || !strings.Contains(help, "how often to sync from Infisical") {
		t.Errorf("--help lacks the flag:\n%s", help)
	}
	levels, _ := runCmd(t, nil, "__complete", "mount", "--log-level", "")
	if !strings.Contains(levels, "debug\ninfo\nwarn\nerror") {
		t.Errorf("--log-level values: %q", levels)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out, code := runCmd(t, nil, "completion", sh); code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
	dir := t.TempDir()
	if out, code := runCmd(t, nil, "gen-man", dir); code != 0 {
		t.Fatalf("gen-man: %d %s", code, out)
	}
	man, err := os.ReadFile(filepath.Join(dir, "infisicalfs-mount.1"))
	if err != nil || !strings.Contains(string(man), `\fB--refresh-interval\fP`) || !strings.Contains(string(man), "how often to sync from Infisical") {
		t.Errorf("infisicalfs-mount.1: %v\n%.600s", err, man)
	}
	for _, page := range []string{"infisicalfs.1", "infisicalfs-status.1", "infisicalfs-doctor.1"} {
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			t.Errorf("man page %s: %v", page, err)
		}
	}
}

// The Makefile's -ldflags stamp reaches `version`, and `go version -m`
// shows it (it printed "dev").
func TestVersionStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "infisicalfs")
	ld := "-X main.version=v9.8.7-3-gabcdef0 -X main.commit=abcdef0123456789abcdef0123456789abcdef01"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "infisicalfs v9.8.7-3-gabcdef0 (commit abcdef012345)" {
		t.Errorf("version: %q %v", out, err)
	}
	if out, _ := exec.Command(bin, "--version").CombinedOutput(); !strings.Contains(string(out), "v9.8.7-3-gabcdef0") {
		t.Errorf("--version: %q", out)
	}
	m, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil || !strings.Contains(string(m), "main.version=v9.8.7-3-gabcdef0") {
		t.Errorf("go version -m: %v\n%s", err, m)
	}
}

// --project nope and --env nope mounted an empty tree and exited 0; now the
// start fails, before anything is mounted, naming the filter.
func TestFiltersThatMatchNothingFailTheStart(t *testing.T) {
	w := newWorld(t)
	mnt := filepath.Join(w.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--project", "nope"}, "no project matches --project nope"},
		{[]string{"--env", "nope"}, "no environment matches --env nope in webshop"},
	} {
		out, code := runCmd(t, w.env(), append(append([]string{"mount"}, tc.args...), mnt)...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("mount %v: exit %d, want %q in\n%s", tc.args, code, tc.want, out)
		}
		if mounted(mnt) {
			t.Errorf("mount %v left a mount", tc.args)
		}
	}
	// A filter that matches something still mounts.
	w.mount(mnt, w.env(), "--project", "webshop", "--env", "prod", "--env", "nope")
	if _, err := os.Stat(filepath.Join(mnt, "webshop/prod")); err != nil {
		t.Errorf("webshop/prod: %v", err)
	}
}
