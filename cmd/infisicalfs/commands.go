package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/spf13/cobra"
)

func cmdUnmount(mnt string, stderr io.Writer) error {
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
func cmdRefresh(mnt string, stdout io.Writer) error {
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

// cmdStatus prints the summary; it fails (exit 1) when the mount is stale
// or a scope has an error, and with exit 2 when MOUNTPOINT is no live
// mount, so that scripts and probes can act on it.
func cmdStatus(mnt string, stdout io.Writer) error {
	st, err := readStatus(mnt)
	if err != nil {
		return &exitError{2, err}
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
	if st.Stale {
		return fmt.Errorf("%s is stale: %s", mnt, st.LastError)
	}
	var failing []string
	for _, sc := range st.Scopes {
		if sc.LastError != "" {
			failing = append(failing, sc.Project+"/"+sc.Env)
		}
	}
	if len(failing) > 0 {
		return fmt.Errorf("%s: errors in %s", mnt, strings.Join(failing, ", "))
	}
	return nil
}

func devServerCommand(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	var addr string
	var seed int
	cmd := &cobra.Command{
		Use:   "dev-server [--addr 127.0.0.1:8222]",
		Short: "Embedded Infisical-compatible server with sample data, on loopback only",
		Long: `An in-memory Infisical-compatible server with sample data, for trying infisicalfs.
It listens on loopback only: its credentials are printed and not secret, so an
address on another interface is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loopbackOnly(addr); err != nil {
				return usageError(err)
			}
			return cmdDevServer(ctx, addr, seed, stdout)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8222", "loopback `address` to listen on (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)")
	// Hidden: bench/ seeds a project "bench" (env dev) with this many
	// secrets in folders of 1000, to measure the daemon against a server in
	// another process.
	cmd.Flags().IntVar(&seed, "seed-secrets", 0, "")
	_ = cmd.Flags().MarkHidden("seed-secrets")
	return cmd
}

// loopbackOnly refuses an address that would listen beyond this machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--addr %s is not a loopback address: the dev server's credentials are printed and not secret, so it listens on 127.0.0.1, [::1] or localhost only", addr)
}

func cmdDevServer(ctx context.Context, addr string, seed int, stdout io.Writer) error {
	srv, err := infisicaltest.Start(addr)
	if err != nil {
		return fmt.Errorf("dev-server: %w", err)
	}
	defer srv.Close()
	id, secret := srv.LoadSample()
	if seed > 0 {
		seedBench(srv, id, seed)
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
