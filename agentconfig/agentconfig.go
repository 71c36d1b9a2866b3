// Package agentconfig reads the official Infisical agent's YAML config
// (agent-config.yaml, as Infisical/cli packages/cmd/agent.go defines it) and
// translates it into infisicalfs settings, so that an agent user switches
// with one flag.
//
// What maps to what:
//
//   - infisical.address → url (default https://app.infisical.com).
//   - auth type universal-auth: client-id and client-secret are files →
//     client_id_file, client_secret_file; remove_client_secret_on_read is
//     passed on. auth type kubernetes: identity-id is a file holding the
//     identity id (as the agent reads it) → identity_id_file (and its
//     content, identity_id, when readable); service-account-token is the
//     token's path (default /var/run/secrets/kubernetes.io/serviceaccount/token)
//     → kubernetes_token_path. Any other auth type is an error: the mount
//     could not log in.
//   - sinks of type file: the access token is written to each path, mode
//     0600, by WriteToken.
//   - templates: source-path, else template-content, else
//     base64-template-content (the agent's order). Each destination-path
//     becomes a [[template]] path relative to the deepest directory that
//     holds every destination (Settings.Root): mount infisicalfs at Root and
//     each file appears where the agent wrote it. One template at
//     /run/secrets/app.env becomes app.env under Root /run/secrets;
//     /etc/app/a.env and /run/b.env become etc/app/a.env and run/b.env
//     under /. Relative paths are taken from the config file's directory.
//   - config.polling-interval (the agent's units ms, s, m, h, d, w; default
//     5m; at least 60s) → the shortest becomes refresh_interval.
//   - config.execute.command → the template's on_change, run as
//     ["/bin/sh", "-c", command] (the agent runs $SHELL -c, falling back to
//     sh); execute.timeout (seconds) → its timeout, 0 meaning our default
//     30s rather than the agent's none.
//
// Everything else the file holds (exit-after-auth, revoke-credentials-on-
// shutdown, retry-strategy, cache, certificates, other sink types, unknown
// keys) is not supported and is listed in Settings.Unsupported, for one
// start-up warning line.
package agentconfig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/infisicalfs/infisicalfs/config"
)

// Defaults the agent uses.
const (
	DefaultAddress         = "https://app.infisical.com"
	DefaultPollingInterval = 5 * time.Minute
	DefaultTokenPath       = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Auth methods, as infisicalfs's auth_method names them.
const (
	AuthUniversal  = "universal"
	AuthKubernetes = "kubernetes"
)

// Settings is an agent config translated to infisicalfs settings. Field
// names follow the config keys they feed.
type Settings struct {
	URL                      string
	AuthMethod               string // AuthUniversal or AuthKubernetes
	ClientIDFile             string
	ClientSecretFile         string
	RemoveClientSecretOnRead bool   // delete client_secret_file once read, as the agent does
	IdentityIDFile           string // kubernetes: the file holding the identity id
	IdentityID               string // its content, trimmed, when it could be read
	KubernetesTokenPath      string
	RefreshInterval          time.Duration // shortest polling interval; 0 without templates
	Root                     string        // the directory template paths are relative to
	Templates                []config.Template
	Sinks                    []string // files the access token is written to
	Unsupported              []string // what is ignored, for Warning
}

// Warning is the one start-up line naming what the agent config holds that
// infisicalfs ignores; "" when there is nothing.
func (s *Settings) Warning() string {
	if len(s.Unsupported) == 0 {
		return ""
	}
	return "agent config: not supported by infisicalfs, ignored: " + strings.Join(s.Unsupported, "; ")
}

// Apply sets the keys config.Config has today onto c: url, the client
// files, refresh_interval and the templates. The auth method, identity and
// token path are for the auth settings (auth_method, identity_id,
// kubernetes_token_path).
func (s *Settings) Apply(c *config.Config) {
	c.URL = s.URL
	if s.ClientIDFile != "" {
		c.ClientIDFile = s.ClientIDFile
	}
	if s.ClientSecretFile != "" {
		c.ClientSecretFile = s.ClientSecretFile
	}
	if s.RefreshInterval > 0 {
		c.RefreshInterval.Duration = s.RefreshInterval
	}
	c.Templates = append([]config.Template(nil), s.Templates...)
}

// Load reads and translates an agent config file; relative paths in it are
// taken from the file's directory.
func Load(path string) (*Settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	s, err := Parse(b, abs)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return s, nil
}

// LoadBase64 reads the config the agent takes from INFISICAL_AGENT_CONFIG_BASE64;
// relative paths are taken from dir.
func LoadBase64(encoded, dir string) (*Settings, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, fmt.Errorf("agent config from base64: %w", err)
	}
	return Parse(b, dir)
}

// file is the agent's Config, the parts we read.
type file struct {
	Infisical struct {
		Address                     string    `yaml:"address"`
		ExitAfterAuth               bool      `yaml:"exit-after-auth"`
		RevokeCredentialsOnShutdown bool      `yaml:"revoke-credentials-on-shutdown"`
		RetryStrategy               yaml.Node `yaml:"retry-strategy"`
	} `yaml:"infisical"`
	Auth struct {
		Type   string    `yaml:"type"`
		Config yaml.Node `yaml:"config"`
	} `yaml:"auth"`
	Sinks []struct {
		Type   string `yaml:"type"`
		Config struct {
			Path string `yaml:"path"`
		} `yaml:"config"`
	} `yaml:"sinks"`
	Cache                 yaml.Node `yaml:"cache"`
	CertificateManagement string    `yaml:"certificate-management"`
	Certificates          yaml.Node `yaml:"certificates"`
	Templates             []struct {
		SourcePath      string `yaml:"source-path"`
		Base64Content   string `yaml:"base64-template-content"`
		DestinationPath string `yaml:"destination-path"`
		Content         string `yaml:"template-content"`
		Config          struct {
			PollingInterval string `yaml:"polling-interval"`
			Execute         struct {
				Command string `yaml:"command"`
				Timeout int64  `yaml:"timeout"`
			} `yaml:"execute"`
		} `yaml:"config"`
	} `yaml:"templates"`
}

type universalAuth struct {
	ClientID                 string `yaml:"client-id"`
	ClientSecret             string `yaml:"client-secret"`
	RemoveClientSecretOnRead bool   `yaml:"remove_client_secret_on_read"`
}

type kubernetesAuth struct {
	IdentityID          string `yaml:"identity-id"`
	ServiceAccountToken string `yaml:"service-account-token"`
}

// known is the schema the agent reads; other keys are reported as ignored.
var known = map[string]any{
	"infisical": map[string]any{"address": nil, "exit-after-auth": nil, "revoke-credentials-on-shutdown": nil, "retry-strategy": nil},
	"auth":      map[string]any{"type": nil, "config": nil}, // config is checked per type
	"sinks":     []any{map[string]any{"type": nil, "config": map[string]any{"path": nil}}},
	"cache":     nil, "certificate-management": nil, "certificates": nil,
	"templates": []any{map[string]any{
		"source-path": nil, "base64-template-content": nil, "destination-path": nil, "template-content": nil,
		"config": map[string]any{"polling-interval": nil, "execute": map[string]any{"command": nil, "timeout": nil}},
	}},
}

var authKnown = map[string]map[string]any{
	"universal-auth": {"client-id": nil, "client-secret": nil, "remove_client_secret_on_read": nil},
	"kubernetes":     {"identity-id": nil, "service-account-token": nil},
}

// Parse translates agent config bytes; relative paths are taken from dir.
// Errors never quote the file's text (a config may hold a pasted secret):
// YAML errors give the line.
func Parse(b []byte, dir string) (*Settings, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(err)
	}
	var f file
	if err := root.Decode(&f); err != nil {
		return nil, yamlError(err)
	}
	s := &Settings{URL: strings.TrimSpace(f.Infisical.Address)}
	if s.URL == "" {
		s.URL = DefaultAddress
	}
	if len(root.Content) > 0 {
		unknownKeys(root.Content[0], known, "", &s.Unsupported)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	if err := s.auth(&f, abs); err != nil {
		return nil, err
	}
	for i, sk := range f.Sinks {
		switch {
		case sk.Type != "file":
			s.Unsupported = append(s.Unsupported, fmt.Sprintf("sinks[%d] of type %q (only file)", i, sk.Type))
		case sk.Config.Path == "":
			return nil, fmt.Errorf("sinks[%d]: config.path is empty", i)
		default:
			s.Sinks = append(s.Sinks, abs(sk.Config.Path))
		}
	}
	if err := s.templates(&f, abs); err != nil {
		return nil, err
	}
	if f.Infisical.ExitAfterAuth {
		s.Unsupported = append(s.Unsupported, "infisical.exit-after-auth (a mount keeps running)")
	}
	if f.Infisical.RevokeCredentialsOnShutdown {
		s.Unsupported = append(s.Unsupported, "infisical.revoke-credentials-on-shutdown")
	}
	if !f.Infisical.RetryStrategy.IsZero() {
		s.Unsupported = append(s.Unsupported, "infisical.retry-strategy (infisicalfs has its own retry delays)")
	}
	if !f.Cache.IsZero() {
		s.Unsupported = append(s.Unsupported, "cache (nothing is cached on disk)")
	}
	if f.CertificateManagement != "" || !f.Certificates.IsZero() {
		s.Unsupported = append(s.Unsupported, "certificates")
	}
	return s, nil
}

func (s *Settings) auth(f *file, abs func(string) string) error {
	t := f.Auth.Type
	if k, ok := authKnown[t]; ok && !f.Auth.Config.IsZero() {
		unknownKeys(&f.Auth.Config, k, "auth.config", &s.Unsupported)
	}
	switch t {
	case "universal-auth":
		var ua universalAuth
		if err := decodeAuth(f, &ua); err != nil {
			return err
		}
		s.AuthMethod = AuthUniversal
		s.ClientIDFile, s.ClientSecretFile = abs(ua.ClientID), abs(ua.ClientSecret)
		s.RemoveClientSecretOnRead = ua.RemoveClientSecretOnRead
	case "kubernetes":
		var ka kubernetesAuth
		if err := decodeAuth(f, &ka); err != nil {
			return err
		}
		s.AuthMethod = AuthKubernetes
		s.IdentityIDFile = abs(ka.IdentityID)
		if b, err := os.ReadFile(s.IdentityIDFile); err == nil && s.IdentityIDFile != "" {
			s.IdentityID = strings.TrimSpace(string(b))
		}
		s.KubernetesTokenPath = DefaultTokenPath
		if ka.ServiceAccountToken != "" {
			s.KubernetesTokenPath = abs(ka.ServiceAccountToken)
		}
	case "":
		return errors.New("auth.type is missing: want universal-auth or kubernetes")
	default:
		return fmt.Errorf("auth.type %q is not supported by infisicalfs: use universal-auth or kubernetes", t)
	}
	return nil
}

func decodeAuth(f *file, v any) error {
	if f.Auth.Config.IsZero() {
		return nil
	}
	if err := f.Auth.Config.Decode(v); err != nil {
		return fmt.Errorf("auth.config: %w", yamlError(err))
	}
	return nil
}

func (s *Settings) templates(f *file, abs func(string) string) error {
	var dests []string
	for i, t := range f.Templates {
		if t.DestinationPath == "" {
			return fmt.Errorf("templates[%d]: destination-path is empty", i)
		}
		d := abs(t.DestinationPath)
		if slices.Contains(dests, d) {
			return fmt.Errorf("templates[%d]: destination-path %s is used twice", i, d)
		}
		dests = append(dests, d)
	}
	s.Root = commonDir(dests)
	var shortest time.Duration
	for i, t := range f.Templates {
		ct := config.Template{Path: relative(s.Root, dests[i])}
		if ct.Path == "" {
			return fmt.Errorf("templates[%d]: destination-path %s names a directory, not a file", i, t.DestinationPath)
		}
		switch {
		case t.SourcePath != "":
			ct.Source = abs(t.SourcePath)
		case t.Content != "":
			ct.Content = t.Content
		case t.Base64Content != "":
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(t.Base64Content))
			if err != nil {
				return fmt.Errorf("templates[%d] (%s): base64-template-content: %w", i, t.DestinationPath, err)
			}
			ct.Content = string(b)
		default:
			return fmt.Errorf("templates[%d] (%s): set source-path, template-content or base64-template-content", i, t.DestinationPath)
		}
		interval := DefaultPollingInterval
		if t.Config.PollingInterval != "" {
			d, err := ParseTimeDurationString(t.Config.PollingInterval)
			if err != nil {
				return fmt.Errorf("templates[%d] (%s): polling-interval %q: %w", i, t.DestinationPath, t.Config.PollingInterval, err)
			}
			interval = d
		}
		if shortest == 0 || interval < shortest {
			shortest = interval
		}
		if c := t.Config.Execute.Command; strings.TrimSpace(c) != "" {
			ct.OnChange = []string{"/bin/sh", "-c", c}
		}
		switch to := t.Config.Execute.Timeout; {
		case to < 0:
			return fmt.Errorf("templates[%d] (%s): execute.timeout %d: must not be negative", i, t.DestinationPath, to)
		case to > 0:
			ct.Timeout.Duration = time.Duration(to) * time.Second
		default:
			ct.Timeout.Duration = config.DefaultHookTimeout
		}
		s.Templates = append(s.Templates, ct)
	}
	s.RefreshInterval = shortest
	return nil
}

// commonDir is the deepest directory holding every path (all absolute and
// clean).
func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for common != "/" && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	return common
}

func relative(root, p string) string {
	if root == "/" {
		return strings.TrimPrefix(p, "/")
	}
	return strings.TrimPrefix(p, root+"/")
}

// unknownKeys appends, for every mapping key of n that schema does not
// name, "unknown key PATH". schema values: nil (a leaf or anything),
// map[string]any (a mapping), []any{elem} (a sequence of elem).
func unknownKeys(n *yaml.Node, schema any, at string, out *[]string) {
	if n == nil {
		return
	}
	switch sc := schema.(type) {
	case map[string]any:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			name := k
			if at != "" {
				name = at + "." + k
			}
			sub, ok := sc[k]
			if !ok {
				*out = append(*out, "unknown key "+name)
				continue
			}
			unknownKeys(n.Content[i+1], sub, name, out)
		}
	case []any:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			unknownKeys(c, sc[0], at+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// yamlError keeps the line of a YAML error but not the text it quotes.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var lines []string
		for _, e := range te.Errors {
			lines = append(lines, lineOnly(e))
		}
		return fmt.Errorf("agent config YAML: %s", strings.Join(lines, "; "))
	}
	return fmt.Errorf("agent config YAML: %s", lineOnly(err.Error()))
}

// lineOnly reduces "yaml: line 3: mapping values are not allowed" and
// "line 3: cannot unmarshal !!str `oops` into bool" to the line and the
// kind of problem, dropping any quoted text.
func lineOnly(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if i := strings.Index(msg, "`"); i >= 0 {
		if j := strings.Index(msg[i+1:], "`"); j >= 0 {
			msg = msg[:i] + "…" + msg[i+1+j+1:]
		}
	}
	return msg
}
