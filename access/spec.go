package access

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Allow values.
const (
	AllowRead  = "read"  // read only
	AllowWrite = "write" // read and write
	AllowNone  = "none"  // nothing
)

// Spec is one [[access]] table as written in TOML. Fields of different
// kinds must all match (and); the values of one field are alternatives
// (or). uids, gids, users and groups together are one field: the caller
// matches when its uid is among uids/users or one of its groups is among
// gids/groups. An empty field matches every caller.
type Spec struct {
	Path        string   `toml:"path"`                  // glob over mount paths: `*` one segment, `**` any depth
	UIDs        []int64  `toml:"uids,omitempty"`        //
	GIDs        []int64  `toml:"gids,omitempty"`        // the caller's primary or supplementary groups
	Users       []string `toml:"users,omitempty"`       // names, resolved to uids when the rules are compiled
	Groups      []string `toml:"groups,omitempty"`      // names, resolved to gids when the rules are compiled
	Executables []string `toml:"executables,omitempty"` // realpath of /proc/PID/exe
	SHA256      []string `toml:"sha256,omitempty"`      // hex SHA-256 of that executable's content
	Cgroups     []string `toml:"cgroups,omitempty"`     // globs over the caller's cgroup v2 path
	Allow       string   `toml:"allow"`                 // read | write | none
}

// specKeys are the TOML keys of Spec, for the unknown-key check.
var specKeys = []string{"path", "uids", "gids", "users", "groups", "executables", "sha256", "cgroups", "allow"}

// ParseRules reads the [[access]] tables of a TOML document (other keys are
// ignored: they belong to the rest of the config). Unknown keys inside a
// table are an error naming the table's index. It checks only the shape;
// Compile checks the values.
func ParseRules(b []byte) ([]Spec, error) {
	// First as plain maps, to name unknown keys with their table's index,
	// which toml.MetaData.Undecoded cannot.
	var raw struct {
		Access []map[string]any `toml:"access"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return nil, tomlError(err)
	}
	for i, t := range raw.Access {
		var unknown []string
		for k := range t {
			if !slices.Contains(specKeys, k) {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, fmt.Errorf("access[%d]: unknown keys %s (known: %s)", i, strings.Join(unknown, ", "), strings.Join(specKeys, ", "))
		}
	}
	var doc struct {
		Access []Spec `toml:"access"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil, tomlError(err)
	}
	return doc.Access, nil
}

// tomlError says where a syntax or type error is without quoting the
// line, as config does: a config file may hold a pasted secret.
func tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		where := fmt.Sprintf("line %d, column %d", pe.Position.Line, pe.Position.Col)
		if pe.LastKey != "" {
			where += fmt.Sprintf(" (key %s)", pe.LastKey)
		}
		return fmt.Errorf("access rules: TOML error at %s", where)
	}
	return fmt.Errorf("access rules: %w", err)
}

// Lookup resolves user and group names. Compile uses os/user unless a test
// gives its own.
type Lookup struct {
	User  func(name string) (uint32, error)
	Group func(name string) (uint32, error)
}

// SystemLookup resolves names through os/user (the passwd and group
// databases, NSS included where cgo is on).
func SystemLookup() Lookup {
	return Lookup{
		User: func(name string) (uint32, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return 0, err
			}
			v, err := strconv.ParseUint(u.Uid, 10, 32)
			return uint32(v), err
		},
		Group: func(name string) (uint32, error) {
			g, err := user.LookupGroup(name)
			if err != nil {
				return 0, err
			}
			v, err := strconv.ParseUint(g.Gid, 10, 32)
			return uint32(v), err
		},
	}
}

// Compile checks every rule and resolves names, reporting each problem
// with the rule's index and field. def is the "as today" behaviour used
// where no rule matches.
func Compile(specs []Spec, def Defaults) (*Rules, error) {
	return CompileWith(specs, def, SystemLookup())
}

// CompileWith is Compile with a given name lookup.
func CompileWith(specs []Spec, def Defaults, lk Lookup) (*Rules, error) {
	rs := &Rules{def: def}
	var errs []error
	for i, s := range specs {
		r, err := compileRule(i, s, lk)
		if err != nil {
			errs = append(errs, fmt.Errorf("access[%d] (path %q): %w", i, s.Path, err))
			continue
		}
		rs.rules = append(rs.rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rs.finish()
	return rs, nil
}

func compileRule(i int, s Spec, lk Lookup) (*rule, error) {
	r := &rule{index: i, spec: s}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if s.Path == "" {
		bad("path", "missing: every rule names the paths it covers (** for all)")
	} else if g, err := CompileGlob(s.Path); err != nil {
		bad("path", "%v", err)
	} else {
		r.path = g
	}
	switch s.Allow {
	case AllowRead:
		r.allow = permRead
	case AllowWrite:
		r.allow = permRead | permWrite
	case AllowNone:
		r.allow = 0
	case "":
		bad("allow", `missing: want "read", "write" or "none"`)
	default:
		bad("allow", `%q: want "read", "write" or "none"`, s.Allow)
	}
	id := func(field string, v int64) (uint32, bool) {
		// 2^32-1 is (uid_t)-1, which no process can have.
		if v < 0 || v >= 1<<32-1 {
			bad(field, "%d is not a valid id", v)
			return 0, false
		}
		return uint32(v), true
	}
	for _, v := range s.UIDs {
		if u, ok := id("uids", v); ok {
			r.uids = append(r.uids, u)
		}
	}
	for _, v := range s.GIDs {
		if g, ok := id("gids", v); ok {
			r.gids = append(r.gids, g)
		}
	}
	// names resolves user or group names (field, kind) into ids.
	names := func(field, kind string, list []string, lookup func(string) (uint32, error), ids *[]uint32) {
		for _, name := range list {
			if name == "" {
				bad(field, "empty name")
				continue
			}
			id, err := lookup(name)
			if err != nil {
				bad(field, "unknown %s %q: %v", kind, name, err)
				continue
			}
			*ids = append(*ids, id)
		}
	}
	names("users", "user", s.Users, lk.User, &r.uids)
	names("groups", "group", s.Groups, lk.Group, &r.gids)
	for _, e := range s.Executables {
		if !filepath.IsAbs(e) {
			bad("executables", "%q: want an absolute path", e)
			continue
		}
		// /proc/PID/exe is a realpath, so compare against one: /bin/sh on
		// a merged-/usr system is /usr/bin/dash. A program not installed
		// yet keeps the path as written.
		p := filepath.Clean(e)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		r.exes = append(r.exes, p)
	}
	for _, h := range s.SHA256 {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != 32 {
			bad("sha256", "%q: want 64 hex digits (sha256sum's output)", h)
			continue
		}
		r.hashes = append(r.hashes, [32]byte(b))
	}
	for _, c := range s.Cgroups {
		g, err := CompileGlob(c)
		if err != nil {
			bad("cgroups", "%v", err)
			continue
		}
		r.cgroups = append(r.cgroups, g)
	}
	slices.Sort(r.uids)
	r.uids = slices.Compact(r.uids)
	slices.Sort(r.gids)
	r.gids = slices.Compact(r.gids)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}
