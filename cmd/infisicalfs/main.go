// Command infisicalfs mounts Infisical secrets as files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are stamped at build time (the Makefile):
//
//	go build -ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD)"
//
// Unstamped builds fall back to what the Go toolchain recorded (vcs.revision).
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// versionString is "VERSION (commit C)", with the commit from the build
// info when -ldflags did not give one.
func versionString() string {
	c := commit
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if c == "" {
		return version
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if dirty {
		c += "-dirty"
	}
	return version + " (commit " + c + ")"
}

// usageError marks a command-line mistake: exit 2, as the stdlib flag
// package and most tools do.
func usageError(err error) error { return &exitError{2, err} }

// newRoot builds the command tree. Every flag is defined once (the mount
// flags in config.NewFlagSet); --help, the completions and the man page
// are all generated from these definitions.
func newRoot(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "infisicalfs",
		Short: "Mount Infisical secrets as files",
		Long: `infisicalfs mounts Infisical secrets as files: MOUNT/<project>/<env>/<folder...>/<KEY>
holds the secret's value. Writes go back to Infisical; a sync runs every refresh interval.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q", args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return &exitError{2, errors.New("no command given")}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("infisicalfs {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(
		mountCommand(ctx, stdout, stderr),
		mountpointCommand("unmount MOUNTPOINT", "Unmount; also clears a stale mount whose process died", func(mnt string) error { return cmdUnmount(mnt, stderr) }, "umount"),
		mountpointCommand("refresh MOUNTPOINT", "Sync now and wait for the sync to finish", func(mnt string) error { return cmdRefresh(mnt, stdout) }),
		mountpointCommand("status MOUNTPOINT", "Summary of MOUNT/.status; exits 1 when stale or erroring, 2 when not a mount", func(mnt string) error { return cmdStatus(mnt, stdout) }),
		devServerCommand(ctx, stdout, stderr),
		doctorCommand(ctx, stdout),
		&cobra.Command{
			// csi parses its own (stdlib) flags: csi.go's table.
			Use: "csi --endpoint unix:///csi/csi.sock --node-id NODE --url URL", Short: "Kubernetes CSI node plugin",
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return cmdCSI(ctx, args, stdout, stderr)
			},
		},
		&cobra.Command{
			Use: "version", Short: "Print the version and commit", Args: cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) { fmt.Fprintln(stdout, "infisicalfs", versionString()) },
		},
		manCommand(root),
	)
	return root
}

// mountpointCommand is a command taking exactly one MOUNTPOINT.
func mountpointCommand(use, short string, do func(mnt string) error, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Aliases: aliases,
		Args: exactlyOne("MOUNTPOINT"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			mnt, err := absPath(args[0])
			if err != nil {
				return err
			}
			return do(mnt)
		},
	}
}

func exactlyOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return usageError(fmt.Errorf("%s needs exactly one %s, got %d arguments", cmd.Name(), what, len(args)))
		}
		return nil
	}
}

// errHelp is a stdlib FlagSet's -h (csi's flags).
var errHelp = errors.New("help shown")

// parseFlags parses a stdlib FlagSet (csi's): -h is errHelp, an error exit 2.
func parseFlags(fset *flag.FlagSet, args []string, stderr io.Writer) error {
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{2, err}
	}
	return nil
}

// run is main without the exit: it returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(ctx, stdout, stderr)
	root.SetArgs(args)
	_, err := root.ExecuteC()
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "infisicalfs:", err)
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		return 2
	}
	return 1
}
