package csi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/templates"
)

// DaemonSources opens registry sources as internal/daemon Sources.
type DaemonSources struct {
	// Base holds the driver-wide settings (refresh interval, delays, token
	// policy, trim_newline); each source sets URL, credentials and scope.
	Base    config.Config
	Logger  *slog.Logger
	Version string

	// For tests: nil keeps the defaults.
	HTTPClient *http.Client
	Retry      *infisical.RetryPolicy
}

// Open is an Opener: log in, first sync, check the scope is readable, start
// the refresh loop. The loop runs on its own context: it outlives the
// publish call that opened it.
func (d *DaemonSources) Open(ctx context.Context, key Key, creds Credentials, tokens *TokenBox) (Source, error) {
	if key.Scope.Path != "/" {
		return nil, fmt.Errorf("path %q: %w: a volume shows an environment's root folder; use subPath in the pod's volumeMount for a folder", key.Scope.Path, ErrUnsupported)
	}
	cfg := d.Base
	cfg.URL = key.URL
	cfg.Projects = []string{key.Scope.Project}
	cfg.Envs = []string{key.Scope.Env}
	cfg.Flat = true
	cfg.ClientIDFile, cfg.ClientSecretFile, cfg.ConfigFile = "", "", ""
	cfg.OnChange = nil // hooks run commands: not for pod-supplied volumes
	cfg.Templates = nil
	if key.Scope.Templates != "" {
		var ts []Template
		if err := json.Unmarshal([]byte(key.Scope.Templates), &ts); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		for _, t := range ts {
			cfg.Templates = append(cfg.Templates, config.Template{Path: t.Path, Content: t.Content, Mode: t.Mode})
		}
	}
	cfg.MetricsAddr = ""
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("source", key.String())
	var tok *memToken
	switch creds.Method {
	case AuthKubernetes:
		// The client rereads the token file at every login; the newest
		// token any volume of this source brought is swapped in there.
		var err error
		if tok, err = newMemToken(tokens.Get()); err != nil {
			return nil, err
		}
		tokens.OnSet(func(jwt string) {
			if err := tok.Set(jwt); err != nil {
				log.Warn("could not hand the source a newer service-account token", "err", err)
			}
		})
		cfg.AuthMethod, cfg.IdentityID, cfg.KubernetesTokenPath = config.AuthKubernetes, creds.IdentityID, tok.Path()
		cfg.ClientID, cfg.ClientSecret = "", ""
	default:
		cfg.AuthMethod = config.AuthUniversal
		cfg.ClientID, cfg.ClientSecret = creds.ClientID, creds.ClientSecret
	}
	fail := func(err error) (Source, error) {
		if tok != nil {
			tokens.OnSet(nil)
			tok.Close()
		}
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadSettings, err))
	}
	if len(cfg.Templates) > 0 { // a template that does not parse is the pod's mistake, not ours
		specs, err := templates.FromConfig(cfg.Templates)
		if err == nil {
			_, err = templates.New(specs)
		}
		if err != nil {
			return fail(fmt.Errorf("%w: templates: %w", ErrBadSettings, err))
		}
	}
	src, err := daemon.NewSource(ctx, daemon.SourceOptions{
		Config: cfg, Logger: log, UserAgent: "infisicalfs-csi/" + d.Version,
		HTTPClient: d.HTTPClient, Retry: d.Retry,
	})
	if err != nil {
		return fail(err)
	}
	if !hasScope(src, key.Scope) {
		closeSource(src, log)
		return fail(fmt.Errorf("%s/%s: %w: the identity cannot read it (check the slugs, and grant the identity a role on the project)", key.Scope.Project, key.Scope.Env, ErrScopeNotFound))
	}
	src.Run(context.Background())
	return &daemonSource{src: src, log: log, scope: key.Scope, trim: cfg.TrimNewline, version: d.Version, tok: tok, tokens: tokens}, nil
}

func hasScope(src *daemon.Source, s Scope) bool {
	for _, p := range src.Syncer().Projects() {
		if (p.ID == s.Project || p.Dir == s.Project) && slices.Contains(p.Envs, s.Env) {
			return true
		}
	}
	return false
}

func closeSource(src *daemon.Source, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		log.Warn("closing source", "err", err)
	}
}

type daemonSource struct {
	src     *daemon.Source
	log     *slog.Logger
	scope   Scope
	trim    bool
	version string
	tok     *memToken // Kubernetes auth only
	tokens  *TokenBox
}

// Mount serves a flat view: the volume root is the environment's root.
// AllowOther because the driver mounts as root and the pod's user must
// read; the file mode (default_permissions) decides who may.
func (s *daemonSource) Mount(target string, v View) (Mounted, error) {
	return s.src.Mount(target, daemon.View{
		ReadOnly: v.ReadOnly, Flat: true, Project: s.scope.Project, Env: s.scope.Env,
		UID: v.UID, GID: v.GID, FileMode: v.FileMode, TrimNewline: s.trim,
		AllowOther: true, Version: s.version,
	})
}

func (s *daemonSource) Close() {
	closeSource(s.src, s.log)
	if s.tok != nil {
		s.tokens.OnSet(nil)
		s.tok.Close()
	}
}
