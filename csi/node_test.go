package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

type clients struct {
	addr string // the socket path
	id   csi.IdentityClient
	node csi.NodeClient
	logs *testutil.Buffer
}

// startDriver serves a driver on a real unix socket in t's temp dir and
// connects to it as kubelet would.
func startDriver(t *testing.T, m Mounter, opt Options) clients {
	t.Helper()
	logs := &testutil.Buffer{}
	opt.Endpoint = "unix://" + filepath.Join(t.TempDir(), "csi.sock")
	if opt.NodeID == "" {
		opt.NodeID = "node-1"
	}
	opt.Mounter = m
	opt.Version = "test"
	opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- d.Serve(ctx) }()
	conn, err := grpc.NewClient("unix://"+d.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if strings.Contains(logs.String(), canarySecret) || strings.Contains(logs.String(), canaryJWT) {
			t.Errorf("a credential reached the log:\n%s", logs)
		}
	})
	return clients{d.Addr(), csi.NewIdentityClient(conn), csi.NewNodeClient(conn), logs}
}

func mountCap(group string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{VolumeMountGroup: group}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func publishReq(id, target string, attrs map[string]string) *csi.NodePublishVolumeRequest {
	a := map[string]string{"project": "webshop", "env": "dev", ctxPodNS: "shop", ctxPodName: "web-" + id, ctxEphemeral: "true"}
	for k, v := range attrs {
		a[k] = v
	}
	return &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: mountCap(""), VolumeContext: a, Secrets: universalSecrets()}
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err %v, want %v", err, code)
	}
	if !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("message %q lacks %q", status.Convert(err).Message(), msg)
	}
}

func TestIdentityService(t *testing.T) {
	c := startDriver(t, NewSharedMounter(NewRegistry(newFakeOpener().open, nil), "u", nil), Options{})
	ctx := context.Background()
	info, err := c.id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.Name != DriverName || info.VendorVersion != "test" {
		t.Fatalf("GetPluginInfo %v, %v", info, err)
	}
	caps, err := c.id.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil || len(caps.Capabilities) != 0 {
		t.Fatalf("GetPluginCapabilities %v, %v: want none (no controller)", caps, err)
	}
	p, err := c.id.Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !p.GetReady().GetValue() {
		t.Fatalf("Probe %v, %v", p, err)
	}
	ni, err := c.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || ni.NodeId != "node-1" {
		t.Fatalf("NodeGetInfo %v, %v", ni, err)
	}
	nc, err := c.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil || len(nc.Capabilities) != 1 || nc.Capabilities[0].GetRpc().GetType() != csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP {
		t.Fatalf("NodeGetCapabilities %v, %v", nc, err)
	}
	if _, err := c.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("NodeStageVolume: %v, want Unimplemented", err)
	}
}

func TestNodePublishLifecycle(t *testing.T) {
	o := newFakeOpener()
	c := startDriver(t, NewSharedMounter(NewRegistry(o.open, nil), "http://infisical", nil), Options{})
	ctx := context.Background()
	dir := t.TempDir()
	t1, t2 := filepath.Join(dir, "pod1", "mount"), filepath.Join(dir, "pod2", "mount")

	if _, err := c.node.NodePublishVolume(ctx, publishReq("v1", t1, nil)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(t1); err != nil || !fi.IsDir() {
		t.Fatalf("target not created: %v", err)
	}
	// Repeat: OK, no second mount (the fake refuses a double mount).
	if _, err := c.node.NodePublishVolume(ctx, publishReq("v1", t1, nil)); err != nil {
		t.Fatalf("repeat publish: %v", err)
	}
	// Same target, other options: refused.
	_, err := c.node.NodePublishVolume(ctx, publishReq("v1", t1, map[string]string{"readOnly": "false"}))
	wantCode(t, err, codes.AlreadyExists, "other options")
	// A second pod of the same scope, other view: the same source.
	req2 := publishReq("v2", t2, map[string]string{"fileMode": "0400", "uid": "1000"})
	if _, err := c.node.NodePublishVolume(ctx, req2); err != nil {
		t.Fatal(err)
	}
	if o.opens.Load() != 1 {
		t.Fatalf("%d sources opened for one scope, want 1", o.opens.Load())
	}
	var src *fakeSource
	for _, s := range o.sources {
		src = s
	}
	src.mu.Lock()
	v1, v2 := src.mounts[t1], src.mounts[t2]
	src.mu.Unlock()
	if v1 != (View{ReadOnly: true, FileMode: 0o444}) || v2 != (View{ReadOnly: true, FileMode: 0o400, UID: 1000}) {
		t.Fatalf("views %+v %+v", v1, v2)
	}
	if src.key.URL != "http://infisical" || src.key.Scope != (Scope{Project: "webshop", Env: "dev", Path: "/"}) || strings.Contains(src.key.Identity, canarySecret) {
		t.Fatalf("key %+v", src.key)
	}

	if _, err := c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v1", TargetPath: t1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(t1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target left behind: %v", err)
	}
	if o.closes.Load() != 0 {
		t.Fatal("source closed while pod2 uses it")
	}
	for range 2 { // the second is a repeat: OK
		if _, err := c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v2", TargetPath: t2}); err != nil {
			t.Fatal(err)
		}
	}
	if o.closes.Load() != 1 {
		t.Fatalf("closes %d after the last volume, want 1", o.closes.Load())
	}
	// Unknown target: OK (kubelet retries unpublish until it is).
	if _, err := c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v9", TargetPath: filepath.Join(dir, "never")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.logs.String(), "AlreadyExists") {
		t.Fatalf("the refused publish is not in the log:\n%s", c.logs)
	}
}

func TestNodePublishRefusals(t *testing.T) {
	o := newFakeOpener()
	c := startDriver(t, NewSharedMounter(NewRegistry(o.open, nil), "u", nil), Options{})
	ctx := context.Background()
	target := filepath.Join(t.TempDir(), "t")
	good := func() *csi.NodePublishVolumeRequest { return publishReq("v", target, nil) }
	cases := []struct {
		name string
		edit func(r *csi.NodePublishVolumeRequest)
		msg  string
	}{
		{"no volume id", func(r *csi.NodePublishVolumeRequest) { r.VolumeId = "" }, "volume_id"},
		{"no target", func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "" }, "target_path"},
		{"no capability", func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability = nil }, "volume_capability"},
		{"no access type", func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.AccessType = nil }, "access type mount"},
		{"block", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}, "block"},
		{"staging", func(r *csi.NodePublishVolumeRequest) { r.StagingTargetPath = "/s" }, "NodeStageVolume"},
		{"bad attribute", func(r *csi.NodePublishVolumeRequest) { r.VolumeContext["fileMode"] = "rw" }, `"fileMode"`},
		{"unknown attribute", func(r *csi.NodePublishVolumeRequest) { r.VolumeContext["projectt"] = "x" }, "unknown attribute"},
		{"no credentials", func(r *csi.NodePublishVolumeRequest) { r.Secrets = nil }, "no credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(r)
			_, err := c.node.NodePublishVolume(ctx, r)
			wantCode(t, err, codes.InvalidArgument, tc.msg)
		})
	}
	if o.opens.Load() != 0 {
		t.Fatal("a refused request reached the source")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused request created the target")
	}
	for _, r := range []*csi.NodeUnpublishVolumeRequest{{TargetPath: target}, {VolumeId: "v"}} {
		_, err := c.node.NodeUnpublishVolume(ctx, r)
		wantCode(t, err, codes.InvalidArgument, "required")
	}
}

func TestNodePublishErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{&infisical.APIError{Op: "login", Status: 401, Err: infisical.ErrAuthFailed}, codes.Unauthenticated},
		{&infisical.APIError{Op: "list", Status: 403, Err: infisical.ErrPermissionDenied}, codes.PermissionDenied},
		{fmt.Errorf("first sync: %w", &infisical.APIError{Op: "list", Status: 404, Err: infisical.ErrNotFound}), codes.NotFound},
		{fmt.Errorf("flat: %w", ErrScopeNotFound), codes.NotFound},
		{&infisical.APIError{Op: "list", Err: infisical.ErrUnreachable}, codes.Unavailable},
		{errors.New("fuse: mount failed"), codes.Internal},
	} {
		o := newFakeOpener()
		o.failWith(tc.err)
		c := startDriver(t, NewSharedMounter(NewRegistry(o.open, nil), "u", nil), Options{})
		_, err := c.node.NodePublishVolume(context.Background(), publishReq("v", filepath.Join(t.TempDir(), "t"), nil))
		wantCode(t, err, tc.code, "")
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///csi/csi.sock": "/csi/csi.sock", "unix:/csi/csi.sock": "/csi/csi.sock", "/csi/csi.sock": "/csi/csi.sock",
	} {
		if got, err := socketPath(in); err != nil || got != want {
			t.Errorf("socketPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := socketPath("tcp://127.0.0.1:9000"); err == nil {
		t.Error("tcp endpoint accepted")
	}
	if _, err := New(Options{Endpoint: "unix:///x", Mounter: NewSharedMounter(NewRegistry(nil, nil), "", nil)}); err == nil || !strings.Contains(err.Error(), "node id") {
		t.Errorf("no node id: %v", err)
	}
}

// TestNodeConcurrentCallsAborted: a second call on a target whose publish
// is still running gets Aborted (kubelet retries), not a second mount.
func TestNodeConcurrentCallsAborted(t *testing.T) {
	o := newFakeOpener()
	o.gate, o.entered = make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	release := func() { once.Do(func() { close(o.gate) }) }
	defer release() // before the driver's cleanup: a held call would block GracefulStop
	c := startDriver(t, NewSharedMounter(NewRegistry(o.open, nil), "u", nil), Options{})
	ctx := testCtx(t)
	target := filepath.Join(t.TempDir(), "t")
	first := make(chan error, 1)
	go func() {
		_, err := c.node.NodePublishVolume(ctx, publishReq("v", target, nil))
		first <- err
	}()
	select { // the first call holds the target once it is opening the source
	case <-o.entered:
	case <-ctx.Done():
		t.Fatal("the first publish never reached the source")
	}
	_, err := c.node.NodePublishVolume(ctx, publishReq("v", target, nil))
	wantCode(t, err, codes.Aborted, "already running")
	_, err = c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target})
	wantCode(t, err, codes.Aborted, "already running")
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if o.opens.Load() != 1 {
		t.Fatalf("%d opens", o.opens.Load())
	}
}
