package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/csi"
	"github.com/infisicalfs/infisicalfs/internal/harden"
)

// cmdCSI runs the Kubernetes CSI node plugin until SIGINT or SIGTERM; then
// it unmounts every volume it serves, so that nothing is left mounted.
func cmdCSI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("csi", flag.ContinueOnError)
	endpoint := fset.String("endpoint", envOr("CSI_ENDPOINT", "unix:///csi/csi.sock"), "CSI `endpoint` kubelet dials (also $CSI_ENDPOINT)")
	nodeID := fset.String("node-id", os.Getenv("NODE_NAME"), "this node's `name` (also $NODE_NAME)")
	url := fset.String("url", os.Getenv(config.EnvURL), "Infisical site `URL` every volume reads from (also $"+config.EnvURL+")")
	root := fset.String("target-root", "/var/lib/kubelet/pods", "kubelet's pods `directory`: mounts of ours left there by an earlier process are removed at start")
	name := fset.String("driver-name", csi.DriverName, "CSI driver `name` (the CSIDriver object's)")
	interval := fset.Duration("refresh-interval", time.Minute, "how often each shared source syncs")
	tokenPolicy := fset.String("token-policy", config.TokenPerCycle, "per-cycle or renew")
	level := fset.String("log-level", "info", "debug, info, warn or error")
	format := fset.String("log-format", "text", "text or json")
	fset.Usage = func() {
		fmt.Fprintf(fset.Output(), "Usage: infisicalfs csi --endpoint unix:///csi/csi.sock --node-id NODE --url URL\n\nFlags:\n")
		fset.PrintDefaults()
	}
	if err := parseFlags(fset, args, stderr); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		fset.Usage()
		return &exitError{2, errors.New("csi takes no arguments")}
	}
	base := config.Default()
	base.URL = *url
	base.RefreshInterval.Duration = *interval
	base.TokenPolicy = *tokenPolicy
	base.LogLevel, base.LogFormat = *level, *format
	// Validate the driver-wide part now with stand-in credentials: each
	// volume brings its own.
	probe := base
	probe.ClientID, probe.ClientSecret = "-", "-"
	if err := probe.Validate(); err != nil {
		return &exitError{2, err}
	}
	if *nodeID == "" {
		return &exitError{2, errors.New("missing --node-id (or $NODE_NAME): the Kubernetes node's name")}
	}
	log, _ := newLogger(stderr, *level, *format)
	signal.Ignore(syscall.SIGPIPE)
	tuneGC()
	if err := harden.DisableCoreDumps(); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	sources := &csi.DaemonSources{Base: base, Logger: log, Version: version}
	mounter := csi.NewSharedMounter(csi.NewRegistry(sources.Open, log), base.URL, log)
	d, err := csi.New(csi.Options{
		Endpoint: *endpoint, NodeID: *nodeID, Name: *name, Version: version,
		URL: base.URL, TargetRoot: *root, Mounter: mounter, Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	serveErr := d.Serve(ctx)
	log.Info("stopping: unmounting every volume")
	if err := mounter.Close(); err != nil {
		log.Error("unmount at exit", "err", err)
		return errors.Join(serveErr, err)
	}
	return serveErr
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
