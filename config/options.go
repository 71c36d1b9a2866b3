package config

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// Mount options: `-o key=value,...` as mount(8), fstab and rclone write
// them. Each key is a TOML key (or its flag spelling) and sets that flag,
// so an option and a flag cannot disagree about what a key means; a later
// flag on the command line beats an earlier -o.

// optionAliases are mount(8)'s and FUSE's spellings of our keys.
var optionAliases = map[string]string{
	"ro":       "read-only",
	"nonempty": "allow-non-empty",
}

// ignoredOption reports the generic options that mount(8) and fstab pass
// to every filesystem and that mean nothing to this one.
func ignoredOption(name string) bool {
	switch name {
	case "rw", "defaults", "auto", "noauto", "nofail", "_netdev", "user", "users", "nouser", "owner", "group",
		"suid", "nosuid", "dev", "nodev", "exec", "noexec", "atime", "noatime", "relatime", "norelatime",
		"strictatime", "diratime", "nodiratime", "sync", "async", "dirsync", "lazytime", "nolazytime",
		"silent", "loud", "mand", "nomand", "fsname", "subtype", "comment":
		return true
	}
	return strings.HasPrefix(name, "x-")
}

// MountOption is one parsed `-o` item.
type MountOption struct {
	Name     string // the flag name, e.g. read-only
	Value    string
	HasValue bool
}

// ParseMountOptions splits "ro,refresh_interval=30s,env=dev" into options
// named by their flags. It knows nothing of which flags exist; ApplyMountOptions checks.
func ParseMountOptions(s string) ([]MountOption, error) {
	var out []MountOption
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("mount option %q has no name", item)
		}
		if ignoredOption(name) {
			continue
		}
		if a, ok := optionAliases[name]; ok {
			name = a
		}
		out = append(out, MountOption{Name: strings.ReplaceAll(name, "_", "-"), Value: value, HasValue: hasValue})
	}
	return out, nil
}

// mountOptions is the -o flag: each Set applies its options to the other
// flags of the same set at once. Its error waits for Resolve instead of
// going back to pflag, which would quote the whole argument, a credential
// given by mistake included.
type mountOptions struct {
	fs   *pflag.FlagSet
	err  *error
	seen []string
}

func (m *mountOptions) String() string { return strings.Join(m.seen, ",") }
func (m *mountOptions) Type() string   { return "key=value,..." }

func (m *mountOptions) Set(s string) error {
	if err := ApplyMountOptions(m.fs, s); err != nil {
		if *m.err == nil {
			*m.err = fmt.Errorf("-o: %w", err)
		}
		return nil
	}
	m.seen = append(m.seen, s)
	return nil
}

// ApplyMountOptions sets fs's flags from a -o list. A key that is not a
// flag is an error naming it: the client secret and the token are never
// options (mount options are visible to every user in ps and mountinfo).
func ApplyMountOptions(fs *pflag.FlagSet, s string) error {
	opts, err := ParseMountOptions(s)
	if err != nil {
		return err
	}
	for _, o := range opts {
		fl := fs.Lookup(o.Name)
		if fl == nil || o.Name == "options" || o.Name == "help" {
			if o.Name == "client-secret" || o.Name == "token" {
				return fmt.Errorf("mount option %s: credentials are never mount options (every user can read them in ps); use the environment or a file", o.Name)
			}
			return fmt.Errorf("unknown mount option %q (options are the config file's keys, e.g. read_only, refresh_interval=30s; see 'infisicalfs mount --help-config')", o.Name)
		}
		v := o.Value
		if !o.HasValue {
			if fl.NoOptDefVal == "" {
				return fmt.Errorf("mount option %s needs a value: %s=VALUE", o.Name, strings.ReplaceAll(o.Name, "-", "_"))
			}
			v = fl.NoOptDefVal
		}
		if err := fs.Set(o.Name, v); err != nil {
			return fmt.Errorf("mount option %s: %w", o.Name, err)
		}
	}
	return nil
}
