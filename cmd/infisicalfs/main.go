// Command infisicalfs mounts Infisical secrets as files.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `infisicalfs mounts Infisical secrets as files.

Usage:
  infisicalfs mount [--config FILE] [flags] MOUNTPOINT   foreground; SIGINT/SIGTERM unmount cleanly
  infisicalfs unmount MOUNTPOINT                         also clears a stale mount
  infisicalfs refresh MOUNTPOINT                         sync now
  infisicalfs status MOUNTPOINT                          human summary of .status
  infisicalfs dev-server [--addr 127.0.0.1:8222]         embedded Infisical-compatible server with sample data
  infisicalfs csi --endpoint unix:///csi/csi.sock --node-id NODE --url URL   Kubernetes CSI node plugin
  infisicalfs version

Run 'infisicalfs COMMAND --help' for a command's flags.
`

// run is main without the exit: it returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "mount":
		err = cmdMount(ctx, rest, stdout, stderr)
	case "unmount", "umount":
		err = cmdUnmount(rest, stdout, stderr)
	case "refresh":
		err = cmdRefresh(rest, stdout, stderr)
	case "status":
		err = cmdStatus(rest, stdout, stderr)
	case "dev-server":
		err = cmdDevServer(ctx, rest, stdout, stderr)
	case "csi":
		err = cmdCSI(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "infisicalfs", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "infisicalfs: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == errHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "infisicalfs:", err)
		if e, ok := err.(interface{ ExitCode() int }); ok {
			return e.ExitCode()
		}
		return 1
	}
	return 0
}
