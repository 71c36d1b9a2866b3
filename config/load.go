package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// badValuePrefix marks errors from our own value parsers, whose messages
// tomlError may show.
const badValuePrefix = "bad value: "

// fileConfig is the TOML shape: Config plus the fields whose text form
// differs from their Go type.
type fileConfig struct {
	Config
	FileMode fileMode `toml:"file_mode"`
}

// fileMode is a permission mode written as an octal string ("0440").
// TOML integers are refused: `file_mode = 440` would silently mean 0670.
type fileMode uint32

func (m *fileMode) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%sfile_mode: write it as an octal string, like \"0440\"", badValuePrefix)
	}
	mode, err := ParseFileMode(s)
	if err != nil {
		return fmt.Errorf("%s%w", badValuePrefix, err)
	}
	*m = fileMode(mode)
	return nil
}

func (m fileMode) MarshalText() ([]byte, error) { return []byte(FormatFileMode(uint32(m))), nil }

// ParseFileMode reads an octal permission mode: "0440", "440" or "0o440".
func ParseFileMode(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil || t == "" {
		return 0, fmt.Errorf("file mode %q: want octal permission bits, like 0440", s)
	}
	if v > 0o777 {
		return 0, fmt.Errorf("file mode %q: only permission bits (up to 0777) are allowed", s)
	}
	return uint32(v), nil
}

// FormatFileMode writes a mode the way ParseFileMode reads it.
func FormatFileMode(m uint32) string { return fmt.Sprintf("%04o", m) }

// Load reads a TOML config file over Default(). It reads only the file:
// credential files named in it are read by Resolve. Relative paths in the
// file (credential files, state_file, pid_file) are taken relative to the
// file's directory. Unknown keys are an error that names each one.
func Load(path string) (Config, toml.MetaData, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, toml.MetaData{}, fmt.Errorf("read config: %w", err)
	}
	c, md, err := parse(b)
	if err != nil {
		return Config{}, md, fmt.Errorf("config %s: %w", path, err)
	}
	c.ConfigFile = path
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.ClientIDFile = abs(c.ClientIDFile)
	c.ClientSecretFile = abs(c.ClientSecretFile)
	c.TokenFile = abs(c.TokenFile)
	c.KubernetesTokenPath = abs(c.KubernetesTokenPath)
	c.StateFile = abs(c.StateFile)
	if c.AuditLog != "-" {
		c.AuditLog = abs(c.AuditLog)
	}
	for i := range c.OnChange {
		c.OnChange[i].PIDFile = abs(c.OnChange[i].PIDFile)
	}
	for i := range c.Templates {
		c.Templates[i].Source = abs(c.Templates[i].Source)
	}
	return c, md, nil
}

// parse decodes TOML bytes over Default().
func parse(b []byte) (Config, toml.MetaData, error) {
	fc := fileConfig{Config: Default()}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&fc)
	if err != nil {
		return Config{}, md, tomlError(err)
	}
	if err := undecoded(md); err != nil {
		return Config{}, md, err
	}
	c := fc.Config
	c.FileMode = uint32(fc.FileMode)
	c.normalize()
	return c, md, nil
}

// tomlError reports where a syntax error is without quoting the line: a
// config file is where someone might have pasted a secret by mistake.
func tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		where := fmt.Sprintf("line %d, column %d", pe.Position.Line, pe.Position.Col)
		if pe.LastKey != "" {
			where += fmt.Sprintf(" (key %s)", pe.LastKey)
		}
		// Our own value parsers' messages are safe to show; the lexer's may
		// quote the line.
		if strings.HasPrefix(pe.Message, badValuePrefix) {
			return fmt.Errorf("%s: %s", where, pe.Message)
		}
		return fmt.Errorf("TOML syntax error at %s", where)
	}
	return fmt.Errorf("decode TOML: %w", err)
}

func undecoded(md toml.MetaData) error {
	var unknown []string
	secretInFile := false
	for _, k := range md.Undecoded() {
		s := k.String()
		if s == "client_secret" {
			secretInFile = true
			continue
		}
		if s == "token" {
			return errors.New("token is not read from the config file: name a file holding it with token_file, or set INFISICAL_TOKEN")
		}
		unknown = append(unknown, s)
	}
	if secretInFile {
		return errors.New("client_secret is not read from the config file: name a file holding it with client_secret_file, or set INFISICAL_CLIENT_SECRET")
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown keys: %s (every key: 'infisicalfs mount --help-config', or the README's Configuration section)", strings.Join(unknown, ", "))
	}
	return nil
}

// normalize fills hook defaults and gives empty lists one form (nil), so
// that configs compare equal however they were written.
func (c *Config) normalize() {
	if len(c.Projects) == 0 {
		c.Projects = nil
	}
	if len(c.Envs) == 0 {
		c.Envs = nil
	}
	if len(c.OnChange) == 0 {
		c.OnChange = nil
	}
	if len(c.Templates) == 0 {
		c.Templates = nil
	}
	for i := range c.Templates {
		t := &c.Templates[i]
		t.Path = strings.Trim(t.Path, "/")
		if len(t.OnChange) == 0 {
			t.OnChange = nil
		}
		if t.Timeout.Duration == 0 {
			t.Timeout.Duration = DefaultHookTimeout
		}
	}
	if len(c.Access) == 0 {
		c.Access = nil
	}
	for i := range c.OnChange {
		h := &c.OnChange[i]
		h.Path = strings.Trim(h.Path, "/")
		if len(h.Command) == 0 {
			h.Command = nil
		}
		if h.Debounce.Duration == 0 {
			h.Debounce.Duration = DefaultHookDebounce
		}
		if h.Timeout.Duration == 0 {
			h.Timeout.Duration = DefaultHookTimeout
		}
	}
}

// TOML writes the settings as a config file that Load reads back to
// the same Config. The client secret and a token are never written.
func (c Config) TOML() ([]byte, error) {
	c.ClientSecret, c.Token = "", ""
	var buf bytes.Buffer
	fc := fileConfig{Config: c, FileMode: fileMode(c.FileMode)}
	if err := toml.NewEncoder(&buf).Encode(fc); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
