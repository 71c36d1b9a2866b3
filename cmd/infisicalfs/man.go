package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand writes the man pages (infisicalfs.1, infisicalfs-mount.1, ...)
// from the command tree, so that they list the same flags as --help. Hidden:
// `make install` runs it; users read the result with man(1).
func manCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages into DIR",
		Hidden: true,
		Args:   exactlyOne("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root.DisableAutoGenTag = true // no date: the pages build reproducibly
			hdr := &doc.GenManHeader{Title: "INFISICALFS", Section: "1", Source: "infisicalfs " + version, Manual: "infisicalfs manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			return nil
		},
	}
}
