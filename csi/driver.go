package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// Options configure a Driver.
type Options struct {
	Endpoint string // unix:///csi/csi.sock (or a plain socket path)
	NodeID   string
	Name     string // default DriverName
	Version  string
	URL      string // the Infisical site every volume reads from
	// TargetRoot is where kubelet puts volume targets
	// (/var/lib/kubelet/pods); at start every infisicalfs mount under it is
	// a leftover of an earlier driver process and is removed.
	TargetRoot string
	Mounter    Mounter // the volumes' mounter
	Logger     *slog.Logger
	// Mountinfo is /proc/self/mountinfo unless a test says otherwise.
	Mountinfo string
}

// Driver is a running CSI node plugin.
type Driver struct {
	opt   Options
	log   *slog.Logger
	srv   *grpc.Server
	ln    net.Listener
	ready atomic.Bool
	node  *node
}

// socketPath turns a CSI endpoint into a socket path.
func socketPath(endpoint string) (string, error) {
	if !strings.Contains(endpoint, "://") && !strings.HasPrefix(endpoint, "unix:") {
		return endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "unix" {
		return "", fmt.Errorf("endpoint %q: only unix:// sockets are supported", endpoint)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if u.Host != "" {
		p = u.Host + p // unix://relative/path
	}
	if p == "" {
		return "", fmt.Errorf("endpoint %q names no socket", endpoint)
	}
	return p, nil
}

// New cleans up stale mounts under TargetRoot and listens on the endpoint;
// Serve then answers calls.
func New(opt Options) (*Driver, error) {
	if opt.NodeID == "" {
		return nil, errors.New("csi: a node id is required (--node-id, usually the Kubernetes node name)")
	}
	if opt.Mounter == nil {
		return nil, errors.New("csi: no mounter")
	}
	if opt.Name == "" {
		opt.Name = DriverName
	}
	if opt.Mountinfo == "" {
		opt.Mountinfo = "/proc/self/mountinfo"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Driver{opt: opt, log: opt.Logger}
	if opt.TargetRoot != "" {
		cleared, err := CleanupStale(opt.Mountinfo, opt.TargetRoot)
		for _, t := range cleared {
			d.log.Info("removed a mount left by an earlier driver process", "target", t)
		}
		if err != nil {
			return nil, fmt.Errorf("csi: clean up old mounts under %s: %w", opt.TargetRoot, err)
		}
	}
	sock, err := socketPath(opt.Endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(sock), 0o750); err != nil {
		return nil, fmt.Errorf("csi: socket directory: %w", err)
	}
	// A socket file left by a killed driver refuses the new listen.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("csi: remove old socket: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("csi: listen on %s: %w", sock, err)
	}
	d.ln = ln
	d.node = newNode(opt.NodeID, opt.Mounter, d.log)
	d.srv = grpc.NewServer(grpc.UnaryInterceptor(d.logCalls))
	csi.RegisterIdentityServer(d.srv, &identity{name: opt.Name, version: opt.Version, ready: &d.ready})
	csi.RegisterNodeServer(d.srv, d.node)
	d.ready.Store(true)
	return d, nil
}

// Addr is the socket path.
func (d *Driver) Addr() string { return d.ln.Addr().String() }

// Serve answers calls until ctx ends or Stop is called.
func (d *Driver) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, d.srv.GracefulStop)
	defer stop()
	d.log.Info("csi driver serving", "endpoint", d.opt.Endpoint, "node", d.opt.NodeID, "name", d.opt.Name)
	err := d.srv.Serve(d.ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop ends Serve.
func (d *Driver) Stop() { d.srv.GracefulStop() }

// logCalls logs each call's method and outcome: never the request, whose
// secrets field holds credentials and whose volume context holds tokens.
func (d *Driver) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		d.log.Info("csi call failed", "method", info.FullMethod, "err", err)
	} else {
		d.log.Debug("csi call", "method", info.FullMethod)
	}
	return resp, err
}
