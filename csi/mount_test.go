package csi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

const canaryValue = "CANARY-db-password-51c2e0"

// world is a real infisicaltest server and a driver whose volumes are real
// infisicalfs mounts through internal/daemon.
type world struct {
	srv     *infisicaltest.Server
	shop    string // project id
	c       clients
	reg     *Registry
	root    string // kubelet's pods directory
	logs    *testutil.Buffer
	mounter *SharedMounter
}

func newWorld(t *testing.T) *world {
	t.Helper()
	testutil.RequireFUSE(t)
	srv := infisicaltest.New()
	t.Cleanup(srv.Close)
	w := &world{srv: srv, root: filepath.Join(t.TempDir(), "pods"), logs: &testutil.Buffer{}}
	w.shop = srv.AddProject("webshop", "Web Shop")
	srv.AddIdentity("cid-1", canarySecret)
	srv.Grant("cid-1", w.shop, infisicaltest.PermRead)
	srv.AddIdentity("cid-2", canarySecret+"-2")
	srv.Grant("cid-2", w.shop, infisicaltest.PermRead)
	srv.AddIdentity("cid-none", "s")
	srv.AddKubernetesIdentity("k8s-id", canaryJWT+"-1")
	srv.Grant("k8s-id", w.shop, infisicaltest.PermRead)
	srv.SetSecret(w.shop, "dev", "/", "DATABASE_PASSWORD", canaryValue)
	srv.SetSecret(w.shop, "dev", "/", "API_URL", "http://api.dev")
	srv.SetSecret(w.shop, "dev", "/backend", "REDIS_URL", "redis://r")

	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := config.Default()
	base.RefreshInterval.Duration = time.Second // the least Validate allows
	fast := infisical.RetryPolicy{ServerErrorWait: 10 * time.Millisecond, RateLimitWait: 10 * time.Millisecond, LoginBackoff: 10 * time.Millisecond}
	ds := &DaemonSources{Base: base, Logger: log, Version: "test", Retry: &fast}
	w.reg = NewRegistry(ds.Open, log)
	w.mounter = NewSharedMounter(w.reg, srv.URL(), log)
	w.c = startDriver(t, w.mounter, Options{TargetRoot: w.root})
	t.Cleanup(func() {
		if err := w.mounter.Close(); err != nil {
			t.Errorf("close mounter: %v", err)
		}
		if ms, _ := ourMounts("/proc/self/mountinfo", w.root); len(ms) > 0 {
			t.Errorf("left mounted: %v", ms)
		}
		for _, s := range []string{canaryValue, canarySecret, canaryJWT} {
			if strings.Contains(w.logs.String(), s) {
				t.Errorf("log holds %q", s)
			}
		}
	})
	return w
}

// testCtx bounds a test's calls, so that a hang fails with a message
// instead of running into the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (w *world) target(pod string) string {
	return filepath.Join(w.root, pod, "volumes", "kubernetes.io~csi", "secrets", "mount")
}

func (w *world) req(id, pod string, attrs map[string]string, clientID, secret string) *csi.NodePublishVolumeRequest {
	r := publishReq(id, w.target(pod), attrs)
	r.Secrets = map[string]string{"clientId": clientID, "clientSecret": secret}
	return r
}

func mountedAt(t *testing.T, target string) int {
	t.Helper()
	ms, err := daemon.ReadMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Target == target && m.FSType == FSType {
			n++
		}
	}
	return n
}

func TestRealPublishReadsAndUnpublishLeavesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)
	tgt := w.target("pod-a")
	req := w.req("vol-a", "pod-a", nil, "cid-1", canarySecret)
	req.VolumeCapability = mountCap("2000") // the pod's fsGroup
	if _, err := w.c.node.NodePublishVolume(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := mountedAt(t, tgt); n != 1 {
		t.Fatalf("%d infisicalfs mounts at the target, want 1", n)
	}
	for key, want := range map[string]string{"DATABASE_PASSWORD": canaryValue, "API_URL": "http://api.dev", "backend/REDIS_URL": "redis://r"} {
		got, err := os.ReadFile(filepath.Join(tgt, key))
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v; want %q", key, got, err, want)
		}
		if v, _, _ := w.srv.Secret(w.shop, "dev", "/"+strings.TrimSuffix(filepath.Dir(key), "."), filepath.Base(key)); v != want {
			t.Fatalf("server holds %q for %s", v, key)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(tgt, "API_URL"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o440 || st.Gid != 2000 || st.Uid != 0 {
		t.Fatalf("mode %o uid %d gid %d; want 0440, 0, 2000 (fsGroup)", st.Mode&0o777, st.Uid, st.Gid)
	}
	// Read-only by default: a write fails and the server keeps its value.
	if err := os.WriteFile(filepath.Join(tgt, "API_URL"), []byte("x"), 0); err == nil {
		t.Fatal("write to a read-only volume succeeded")
	}
	if v, _, _ := w.srv.Secret(w.shop, "dev", "/", "API_URL"); v != "http://api.dev" {
		t.Fatalf("server value changed to %q", v)
	}

	// Repeat publish: OK, still one mount.
	if _, err := w.c.node.NodePublishVolume(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := mountedAt(t, tgt); n != 1 {
		t.Fatalf("%d mounts after a repeat publish, want 1", n)
	}

	for range 2 {
		if _, err := w.c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "vol-a", TargetPath: tgt}); err != nil {
			t.Fatal(err)
		}
	}
	if n := mountedAt(t, tgt); n != 0 {
		t.Fatalf("%d mounts left after unpublish", n)
	}
	if _, err := os.Stat(tgt); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target directory left: %v", err)
	}
	if w.reg.Len() != 0 {
		t.Fatal("the source outlived its last volume")
	}
	// Closing the source revoked its token.
	if n := w.srv.LiveTokens("cid-1"); n != 0 {
		t.Fatalf("%d live tokens after the last volume went", n)
	}
}

func TestRealPublishRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		id    string
		sec   string
		code  codes.Code
		msg   string
	}{
		{"bad attribute", map[string]string{"uid": "root"}, "cid-1", canarySecret, codes.InvalidArgument, `"uid"`},
		{"sub-path", map[string]string{"path": "/backend"}, "cid-1", canarySecret, codes.InvalidArgument, "subPath"},
		{"wrong secret", nil, "cid-1", "nope", codes.Unauthenticated, "authentication"},
		{"unknown project", map[string]string{"project": "nosuch"}, "cid-1", canarySecret, codes.NotFound, "nosuch/dev"},
		{"identity without rights", nil, "cid-none", "s", codes.NotFound, "webshop/dev"},
		{"kubernetes token refused", map[string]string{"identityId": "k8s-id", ctxSATokens: tokens("infisical", canaryJWT+"-stale"), ctxSAName: "web"}, "", "", codes.Unauthenticated, "authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.req("v", "pod-r", tc.attrs, tc.id, tc.sec)
			if tc.id == "" {
				r.Secrets = nil
			}
			_, err := w.c.node.NodePublishVolume(ctx, r)
			wantCode(t, err, tc.code, tc.msg)
			if n := mountedAt(t, w.target("pod-r")); n != 0 {
				t.Fatalf("a refused publish left %d mounts", n)
			}
			if w.reg.Len() != 0 {
				t.Fatal("a refused publish left a source open")
			}
		})
	}
}

// TestRealKubernetesAuth: a volume logs in with the pod's own
// service-account token; pods of one service account share the source and
// the newest token any of them brought is the one the next login sends, so
// kubelet's rotation does not end the sync; another service account gets a
// source of its own.
func TestRealKubernetesAuth(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)
	k8sReq := func(id, pod, sa, jwt string) *csi.NodePublishVolumeRequest {
		r := w.req(id, pod, map[string]string{"identityId": "k8s-id", ctxSAName: sa, ctxSATokens: tokens(DefaultAudience, jwt)}, "", "")
		r.Secrets = nil
		return r
	}
	if _, err := w.c.node.NodePublishVolume(ctx, k8sReq("v1", "pod-1", "web", canaryJWT+"-1")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(w.target("pod-1"), "API_URL")); err != nil || string(b) != "http://api.dev" {
		t.Fatalf("read %q, %v", b, err)
	}
	if got := w.srv.KubernetesLoginJWTs(); len(got) == 0 || got[len(got)-1] != canaryJWT+"-1" {
		t.Fatalf("logins sent %d tokens, not the pod's", len(got))
	}
	// kubelet gives the second pod a newer token; the first one's is then
	// rotated away on the server.
	if _, err := w.c.node.NodePublishVolume(ctx, k8sReq("v2", "pod-2", "web", canaryJWT+"-2")); err != nil {
		t.Fatal(err)
	}
	if w.reg.Len() != 1 {
		t.Fatalf("%d sources for one service account and scope, want 1", w.reg.Len())
	}
	w.srv.SetKubernetesJWTs("k8s-id", canaryJWT+"-2", canaryJWT+"-3")
	w.srv.SetSecret(w.shop, "dev", "/", "API_URL", "http://api.k8s")
	waitRead(t, filepath.Join(w.target("pod-1"), "API_URL"), "http://api.k8s")
	// A republish (requiresRepublish) brings the next token.
	if _, err := w.c.node.NodePublishVolume(ctx, k8sReq("v1", "pod-1", "web", canaryJWT+"-3")); err != nil {
		t.Fatal(err)
	}
	w.srv.SetKubernetesJWTs("k8s-id", canaryJWT+"-3")
	w.srv.SetSecret(w.shop, "dev", "/", "API_URL", "http://api.k8s.3")
	waitRead(t, filepath.Join(w.target("pod-2"), "API_URL"), "http://api.k8s.3")
	if got := w.srv.KubernetesLoginJWTs(); got[len(got)-1] != canaryJWT+"-3" {
		t.Fatal("the latest login did not send the republished token")
	}
	// Another service account of the same identity: its own source.
	w.srv.SetKubernetesJWTs("k8s-id", canaryJWT+"-3", canaryJWT+"-admin")
	if _, err := w.c.node.NodePublishVolume(ctx, k8sReq("v3", "pod-3", "admin", canaryJWT+"-admin")); err != nil {
		t.Fatal(err)
	}
	if w.reg.Len() != 2 {
		t.Fatalf("%d sources: another service account must not share", w.reg.Len())
	}
	for _, pod := range []string{"pod-1", "pod-2", "pod-3"} {
		if _, err := w.c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: w.target(pod)}); err != nil {
			t.Fatal(err)
		}
	}
	if w.reg.Len() != 0 || w.srv.LiveTokens("k8s-id") != 0 {
		t.Fatalf("after the last volume: %d sources, %d live tokens", w.reg.Len(), w.srv.LiveTokens("k8s-id"))
	}
}

func waitRead(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(6 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reads %q, want %q", path, b, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealTemplates: a volume's templates render into files of its mount
// from the synced secrets; a template that does not parse is refused; a
// volume with other templates does not share the source.
func TestRealTemplates(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)
	// Templates name the project by id, as the official agent's do.
	tmpl := `[{"path":"rendered/app.env","content":"API={{ with getSecretByName \"` + w.shop + `\" \"dev\" \"/\" \"API_URL\" }}{{ .Value }}{{ end }}\n","mode":"0400"}]`
	if _, err := w.c.node.NodePublishVolume(ctx, w.req("v1", "pod-1", map[string]string{"templates": tmpl}, "cid-1", canarySecret)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(w.target("pod-1"), "rendered", "app.env")
	waitRead(t, p, "API=http://api.dev\n")
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Mode&0o777 != 0o400 {
		t.Fatalf("mode %o, %v; want 0400", st.Mode&0o777, err)
	}
	w.srv.SetSecret(w.shop, "dev", "/", "API_URL", "http://api.tmpl")
	waitRead(t, p, "API=http://api.tmpl\n")
	if b, err := os.ReadFile(filepath.Join(w.target("pod-1"), "API_URL")); err != nil || string(b) != "http://api.tmpl" {
		t.Fatalf("the secrets beside the template: %q, %v", b, err)
	}

	_, err := w.c.node.NodePublishVolume(ctx, w.req("v2", "pod-2", map[string]string{"templates": `[{"path":"x","content":"{{ nope"}]`}, "cid-1", canarySecret))
	wantCode(t, err, codes.InvalidArgument, "templates")
	if n := mountedAt(t, w.target("pod-2")); n != 0 || w.reg.Len() != 1 {
		t.Fatalf("a refused template left %d mounts, %d sources", n, w.reg.Len())
	}
	if _, err := w.c.node.NodePublishVolume(ctx, w.req("v3", "pod-3", nil, "cid-1", canarySecret)); err != nil {
		t.Fatal(err)
	}
	if w.reg.Len() != 2 {
		t.Fatalf("%d sources: a volume without the templates must not share", w.reg.Len())
	}
	if _, err := os.Stat(filepath.Join(w.target("pod-3"), "rendered")); err == nil {
		t.Fatal("the other volume shows the first one's template")
	}
	for _, pod := range []string{"pod-1", "pod-3"} {
		if _, err := w.c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: w.target(pod)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealSharedSource: two volumes of one identity and scope are one
// source: one listing per interval for the environment, whatever the
// number of pods; each keeps its own view. Also measures what an extra
// volume of that scope costs in memory.
func TestRealSharedSource(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)
	rss0 := vmRSS(t)
	if _, err := w.c.node.NodePublishVolume(ctx, w.req("v1", "pod-1", nil, "cid-1", canarySecret)); err != nil {
		t.Fatal(err)
	}
	rss1 := vmRSS(t)
	if _, err := w.c.node.NodePublishVolume(ctx, w.req("v2", "pod-2", map[string]string{"fileMode": "0400", "uid": "1000"}, "cid-1", canarySecret)); err != nil {
		t.Fatal(err)
	}
	if w.reg.Len() != 1 {
		t.Fatalf("%d sources for one identity and scope, want 1", w.reg.Len())
	}
	for _, tc := range []struct {
		pod  string
		mode uint32
		uid  uint32
	}{{"pod-1", 0o444, 0}, {"pod-2", 0o400, 1000}} {
		var st syscall.Stat_t
		p := filepath.Join(w.target(tc.pod), "API_URL")
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o777 != tc.mode || st.Uid != tc.uid {
			t.Fatalf("%s: mode %o uid %d, want %o %d", tc.pod, st.Mode&0o777, st.Uid, tc.mode, tc.uid)
		}
	}

	// Count the environment's listings over a window of intervals.
	w.srv.ResetRequests()
	const window = 3500 * time.Millisecond // interval 1 s, jitter up to 10%: 3 or 4 cycles
	time.Sleep(window)
	lists := listings(w.srv)
	if len(lists) < 2 || len(lists) > 4 {
		t.Fatalf("%d listings of webshop/dev in %v with two volumes; want one per interval (2..4)", len(lists), window)
	}
	for _, r := range lists {
		if r.Status != 304 || r.IfNoneMatch == "" {
			t.Fatalf("an unchanged environment answered %d (If-None-Match %q), want 304", r.Status, r.IfNoneMatch)
		}
	}
	t.Logf("two volumes, one scope: %d listings in %v (%d logins)", len(lists), window, w.srv.Count("POST", "/api/v1/auth/universal-auth/login"))

	// A change reaches both views from the one sync.
	w.srv.SetSecret(w.shop, "dev", "/", "API_URL", "http://api.v2")
	deadline := time.Now().Add(5 * time.Second)
	for _, pod := range []string{"pod-1", "pod-2"} {
		for {
			b, _ := os.ReadFile(filepath.Join(w.target(pod), "API_URL"))
			if string(b) == "http://api.v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still reads %q", pod, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Memory of extra volumes of the same scope (reported, not asserted).
	const extra = 8
	rssA := vmRSS(t)
	for i := range extra {
		if _, err := w.c.node.NodePublishVolume(ctx, w.req(fmt.Sprint("x", i), fmt.Sprint("pod-x", i), nil, "cid-1", canarySecret)); err != nil {
			t.Fatal(err)
		}
	}
	rssB := vmRSS(t)
	// And a second identity on the same scope: a source of its own.
	if _, err := w.c.node.NodePublishVolume(ctx, w.req("other", "pod-other", nil, "cid-2", canarySecret+"-2")); err != nil {
		t.Fatal(err)
	}
	if w.reg.Len() != 2 {
		t.Fatalf("%d sources: another identity must not share", w.reg.Len())
	}
	t.Logf("memory (VmRSS): first volume incl. its source +%d KiB; per extra volume of the same scope %+.0f KiB (%d extra: %d -> %d KiB)",
		rss1-rss0, float64(rssB-rssA)/extra, extra, rssA, rssB)

	for _, pod := range []string{"pod-1", "pod-2", "pod-other"} {
		if _, err := w.c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: w.target(pod)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range extra {
		if _, err := w.c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: w.target(fmt.Sprint("pod-x", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if ms, _ := ourMounts("/proc/self/mountinfo", w.root); len(ms) != 0 || w.reg.Len() != 0 {
		t.Fatalf("after unpublishing all: mounts %v, sources %d", ms, w.reg.Len())
	}
}

func listings(srv *infisicaltest.Server) []infisicaltest.Request {
	var out []infisicaltest.Request
	for _, r := range srv.Requests() {
		if r.Method == "GET" && r.Path == "/api/v4/secrets" && strings.Contains(r.RawQuery, "environment=dev") {
			out = append(out, r)
		}
	}
	return out
}

// vmRSS is the test process's resident set in KiB, after a GC.
func vmRSS(t *testing.T) int {
	t.Helper()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestRealStartupCleanup: a driver process killed with -9 leaves dead
// mounts; the next one finds the infisicalfs mounts in CSI volume
// directories under its target root and removes them, and leaves a
// sidecar's mount (an emptyDir) alone.
func TestRealStartupCleanup(t *testing.T) {
	w := newWorld(t)
	ctx := testCtx(t)

	// A driver process that publishes one volume and is then killed.
	dead := w.target("pod-1")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "CSI_CRASH_HELPER=1", "CSI_URL="+w.srv.URL(), "CSI_TARGET="+dead, "CSI_SECRET="+canarySecret, "REQUIRE_FUSE=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(out).ReadString('\n'); lines <- l }()
	var line string
	select {
	case line = <-lines:
	case <-time.After(time.Minute):
		err = errors.New("no word from the helper in a minute")
	}
	if err != nil || line != "mounted\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", line, err)
	}
	cmd.Process.Kill() // SIGKILL: no unmount
	cmd.Wait()
	if n := mountedAt(t, dead); n != 1 {
		t.Fatalf("the killed driver left %d mounts, want the 1 dead one", n)
	}
	if _, err := os.ReadDir(dead); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("the dead mount answers %v, want ENOTCONN", err)
	}

	// A sidecar-style mount under an emptyDir, alive.
	side := filepath.Join(w.root, "pod-2", "volumes", "kubernetes.io~empty-dir", "secrets")
	if err := os.MkdirAll(side, 0o755); err != nil {
		t.Fatal(err)
	}
	creds := Credentials{Method: AuthUniversal, ClientID: "cid-1", ClientSecret: canarySecret}
	key := (&Volume{Scope: Scope{Project: "webshop", Env: "dev", Path: "/"}, Creds: creds}).Key(w.srv.URL())
	src, err := w.reg.Acquire(ctx, key, creds)
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Mount(side, View{ReadOnly: true, FileMode: 0o444})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.Unmount(); w.reg.Release(key) }()

	// The restarted driver.
	c2 := startDriver(t, NewSharedMounter(NewRegistry(newFakeOpener().open, nil), "u", nil), Options{TargetRoot: w.root})
	if n := mountedAt(t, dead); n != 0 {
		t.Fatalf("the dead volume is still mounted (%d)", n)
	}
	if !strings.Contains(c2.logs.String(), "removed a mount left by an earlier driver process") {
		t.Fatalf("the cleanup is not logged:\n%s", c2.logs)
	}
	if n := mountedAt(t, side); n != 1 {
		t.Fatalf("the sidecar's mount was touched (%d mounts)", n)
	}
	if b, err := os.ReadFile(filepath.Join(side, "API_URL")); err != nil || string(b) != "http://api.dev" {
		t.Fatalf("sidecar mount reads %q, %v", b, err)
	}
	// kubelet's unpublish of the cleared volume succeeds and removes the directory.
	if _, err := c2.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v1", TargetPath: dead}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target left: %v", err)
	}
}

// TestCrashHelper is the driver process TestRealStartupCleanup kills; it
// does nothing unless started by it.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("CSI_CRASH_HELPER") != "1" {
		t.Skip("helper process for TestRealStartupCleanup")
	}
	base := config.Default()
	ds := &DaemonSources{Base: base}
	sm := NewSharedMounter(NewRegistry(ds.Open, nil), os.Getenv("CSI_URL"), nil)
	v := &Volume{ID: "v1", Target: os.Getenv("CSI_TARGET"), Scope: Scope{Project: "webshop", Env: "dev", Path: "/"}, View: View{ReadOnly: true, FileMode: 0o444},
		Creds: Credentials{Method: AuthUniversal, ClientID: "cid-1", ClientSecret: os.Getenv("CSI_SECRET")}}
	if err := sm.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	fmt.Println("mounted")
	select {}
}
