package config

import (
	"fmt"
	"io"
	"strings"
)

// fileOnlyKeys are the keys with no flag, and why.
var fileOnlyKeys = map[string]string{
	"client_secret":       "environment only (INFISICAL_CLIENT_SECRET or INFISICAL_CLIENT_SECRET_FILE): never a flag or a file key",
	"token":               "environment only (INFISICAL_TOKEN): never a flag or a file key",
	"agent_config_base64": "environment only (INFISICAL_AGENT_CONFIG_BASE64)",
	"on_change":           "file only: [[on_change]] tables, hooks run after a sync changed something",
	"template":            "file only: [[template]] tables, files rendered inside the mount",
	"access":              "file only: [[access]] rules, which processes may open what",
}

// WriteKeyHelp prints every config-file key from Keys with its flag and
// what the flag's help says: the reference an unknown-key error points to,
// from the same definitions as --help.
func WriteKeyHelp(w io.Writer) {
	fs, _ := NewFlagSet("mount")
	fmt.Fprintf(w, "Config file keys (TOML; --config FILE or $%s). Each is also a flag (_ written as -)\nand a mount option (-o key=value,...). Precedence: flags, environment, file, defaults.\n\n", EnvConfig)
	for _, k := range Keys {
		if why, ok := fileOnlyKeys[k.Name]; ok {
			fmt.Fprintf(w, "  %-24s %s\n", k.Name, why)
			continue
		}
		fl := fs.Lookup(strings.ReplaceAll(k.Name, "_", "-"))
		if fl == nil {
			fmt.Fprintf(w, "  %-24s\n", k.Name)
			continue
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "[]" {
			def = " (default " + fl.DefValue + ")"
		}
		live := ""
		if k.Apply != nil {
			live = " [applies live on reload]"
		}
		fmt.Fprintf(w, "  %-24s --%s: %s%s%s\n", k.Name, fl.Name, strings.ReplaceAll(fl.Usage, "`", ""), def, live)
	}
	fmt.Fprintln(w, "\nThe README's Configuration section and config/README.md in the source describe each key at length.")
}
