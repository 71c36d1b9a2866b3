package fs_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// BenchmarkTemplatesIdle: one idle refresh cycle (nothing changed in
// Infisical) of a mount with 10 templates, each listing its own folder of
// 100 secrets (1k secrets in all), with token_policy renew on both sides.
// The mount's cycle is one conditional listing per environment (a 304) and
// renders nothing. Baseline: the official agent's documented behaviour
// for the same templates, done for real against the same server with the
// API client: each template, every polling interval, fetches its full
// listing (GET /api/v3/secrets/raw or v4, no ETag), on a kept token.
func BenchmarkTemplatesIdle(b *testing.B) {
	const templates, perFolder = 10, 100
	testutil.RequireFUSE(b)
	srv := infisicaltest.New()
	b.Cleanup(srv.Close)
	pid := srv.AddProject("webshop", "Webshop", "dev")
	srv.AddIdentity(clientID, clientSecret)
	srv.Grant(clientID, pid, infisicaltest.PermReadWrite)
	tmp := b.TempDir()
	cfg := config.Default()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = srv.URL(), clientID, clientSecret
	cfg.RefreshInterval = config.Duration{Duration: time.Hour}
	cfg.StateFile = filepath.Join(tmp, "state.json")
	cfg.TokenPolicy = config.TokenRenew
	cfg.ReadOnly = true
	for t := range templates {
		folder := fmt.Sprintf("/t%d", t)
		for i := range perFolder {
			srv.SetSecret(pid, "dev", folder, fmt.Sprintf("K_%03d", i), benchValue)
		}
		cfg.Templates = append(cfg.Templates, config.Template{Path: fmt.Sprintf("rendered/t%d.env", t),
			Content: `{{ range listSecrets "` + pid + `" "dev" "` + folder + `" }}{{ .Key }}={{ .Value }}
{{ end }}`})
	}
	ct := newCountingTransport()
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), daemon.Options{Config: cfg, Mountpoint: mnt, HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Stop(context.Background()) })
	want := strings.Repeat("K_000="+benchValue+"\n", 1)
	for t := range templates {
		got, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("rendered/t%d.env", t)))
		if err != nil || !strings.HasPrefix(string(got), want) || strings.Count(string(got), "\n") != perFolder {
			b.Fatalf("template %d rendered %d bytes, %v", t, len(got), err)
		}
	}
	ctx := context.Background()
	measure := func(b *testing.B, run func() error) {
		srv.ResetRequests()
		bytes0 := ct.bytes.Load()
		for b.Loop() {
			if err := run(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(srv.Count("", ""))/float64(b.N), "api-reqs/op")
		b.ReportMetric(float64(ct.bytes.Load()-bytes0)/float64(b.N), "resp-B/op")
	}
	agent, err := infisical.New(infisical.Config{SiteURL: srv.URL(), ClientID: clientID, ClientSecret: clientSecret,
		TokenPolicy: infisical.TokenRenew, HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		b.Fatal(err)
	}
	if err := agent.BeginCycle(ctx); err != nil { // the agent's login, once
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("templates=%d/secrets=%d/fs", templates, templates*perFolder), func(b *testing.B) {
		measure(b, func() error {
			if err := d.Syncer().Sync(ctx, false); err != nil {
				return err
			}
			d.FS().Flush()
			return nil
		})
	})
	b.Run(fmt.Sprintf("templates=%d/secrets=%d/base", templates, templates*perFolder), func(b *testing.B) {
		measure(b, func() error {
			for t := range templates {
				r, err := agent.ListSecrets(ctx, infisical.ListOptions{ProjectID: pid, Environment: "dev",
					Path: fmt.Sprintf("/t%d", t), IncludeImports: true, ExpandReferences: true})
				if err != nil {
					return err
				}
				if len(r.Secrets) != perFolder {
					return fmt.Errorf("template %d listed %d secrets", t, len(r.Secrets))
				}
			}
			return nil
		})
	})
}
