package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
)

func oneMountpoint(name string, args []string, stderr io.Writer) (string, error) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.Usage = func() { fmt.Fprintf(fset.Output(), "Usage: infisicalfs %s MOUNTPOINT\n", name) }
	if err := parseFlags(fset, args, stderr); err != nil {
		return "", err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return "", &exitError{2, fmt.Errorf("%s needs exactly one MOUNTPOINT", name)}
	}
	return filepath.Abs(fset.Arg(0))
}

func cmdUnmount(args []string, stdout, stderr io.Writer) error {
	mnt, err := oneMountpoint("unmount", args, stderr)
	if err != nil {
		return err
	}
	mounted, err := daemon.IsMounted(mnt)
	if err != nil {
		return err
	}
	if !mounted {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	return daemon.ForceUnmount(mnt, stderr)
}

// readStatus reads MOUNT/.status.
func readStatus(mnt string) (*statusDoc, error) {
	b, err := os.ReadFile(filepath.Join(mnt, ".status"))
	if err != nil {
		if daemon.Stale(mnt) {
			return nil, fmt.Errorf("%s is a stale mount (its process died); run 'infisicalfs unmount %s'", mnt, mnt)
		}
		return nil, fmt.Errorf("%s does not look like an infisicalfs mount: %w", mnt, err)
	}
	var st statusDoc
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s/.status: %w", mnt, err)
	}
	return &st, nil
}

// cmdRefresh asks the mount's process for a sync now (SIGHUP) and waits
// until .status shows a newer sync, so that the command returns after it.
func cmdRefresh(args []string, stdout, stderr io.Writer) error {
	mnt, err := oneMountpoint("refresh", args, stderr)
	if err != nil {
		return err
	}
	st, err := readStatus(mnt)
	if err != nil {
		return err
	}
	if st.PID <= 0 {
		return fmt.Errorf("%s/.status names no process", mnt)
	}
	before := st.Counts.Pulls + st.Counts.Errors
	if err := syscall.Kill(st.PID, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal process %d: %w", st.PID, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now, err := readStatus(mnt)
		if err != nil {
			return err
		}
		if now.Counts.Pulls+now.Counts.Errors > before {
			if now.Stale {
				return fmt.Errorf("sync failed: %s", now.LastError)
			}
			fmt.Fprintf(stdout, "synced %d secrets\n", now.Secrets)
			return nil
		}
	}
	return errors.New("no sync finished within 30s; see the mount's log")
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	mnt, err := oneMountpoint("status", args, stderr)
	if err != nil {
		return err
	}
	st, err := readStatus(mnt)
	if err != nil {
		return err
	}
	mode := "read-write"
	if st.ReadOnly {
		mode = "read-only"
	}
	fmt.Fprintf(stdout, "%s: infisicalfs %s, pid %d, %s\n", st.Mountpoint, st.Version, st.PID, mode)
	switch {
	case st.LastSync == nil:
		fmt.Fprintln(stdout, "last sync: never")
	default:
		fmt.Fprintf(stdout, "last sync: %s (%s ago)\n", st.LastSync.Format(time.RFC3339), time.Since(*st.LastSync).Round(time.Second))
	}
	if st.Stale && st.StaleSince != nil {
		fmt.Fprintf(stdout, "STALE since %s: serving the last values; last error: %s\n", st.StaleSince.Format(time.RFC3339), st.LastError)
	}
	fmt.Fprintf(stdout, "secrets: %d; pulls %d, pushes %d, push errors %d, errors %d\n",
		st.Secrets, st.Counts.Pulls, st.Counts.Pushes, st.Counts.PushErrors, st.Counts.Errors)
	for _, sc := range st.Scopes {
		line := fmt.Sprintf("  %s/%s: %d secrets", sc.Project, sc.Env, sc.Secrets)
		if sc.LastError != "" {
			line += "; error: " + sc.LastError
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

func cmdDevServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("dev-server", flag.ContinueOnError)
	addr := fset.String("addr", "127.0.0.1:8222", "address to listen on (loopback only)")
	// Hidden (left out of the usage): bench/ seeds a project "bench" (env
	// dev) with this many secrets in folders of 1000, to measure the daemon
	// against a server in another process.
	seed := fset.Int("seed-secrets", 0, "")
	fset.Usage = func() {
		fmt.Fprintf(fset.Output(), "Usage: infisicalfs dev-server [--addr 127.0.0.1:8222]\n\nAn in-memory Infisical-compatible server with sample data, for trying infisicalfs.\n\n")
		fset.VisitAll(func(f *flag.Flag) {
			if f.Name != "seed-secrets" {
				fmt.Fprintf(fset.Output(), "  --%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := parseFlags(fset, args, stderr); err != nil {
		return err
	}
	srv, err := infisicaltest.Start(*addr)
	if err != nil {
		return fmt.Errorf("dev-server: %w", err)
	}
	defer srv.Close()
	id, secret := srv.LoadSample()
	if *seed > 0 {
		seedBench(srv, id, *seed)
	}
	fmt.Fprintf(stdout, "infisicalfs dev-server listening on %s\n\n", srv.URL())
	fmt.Fprintf(stdout, "export INFISICAL_URL=%s\nexport INFISICAL_CLIENT_ID=%s\nexport INFISICAL_CLIENT_SECRET=%s\n\n", srv.URL(), id, secret)
	fmt.Fprintln(stdout, "Sample data only: these credentials are not secret. Ctrl-C stops the server.")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-sig:
	case <-ctx.Done():
	}
	return nil
}

// seedBench adds project "bench" (env dev) holding n secrets
// /fNNN/K_NNNNNN in folders of 1000, each a distinct 64-byte value, readable
// by the sample identity.
func seedBench(srv *infisicaltest.Server, clientID string, n int) {
	pid := srv.AddProject("bench", "Bench", "dev")
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
	for i := range n {
		v := fmt.Sprintf("bench-value-%06d-", i)
		v += strings.Repeat("x", 64-len(v))
		srv.SetSecret(pid, "dev", fmt.Sprintf("/f%03d", i/1000), fmt.Sprintf("K_%06d", i), v)
	}
}
