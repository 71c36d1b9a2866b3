package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/spf13/cobra"
)

// doctorCommand checks, without changing anything, what a mount needs:
// the FUSE device and helper, the mount point, the URL, the login, each
// scope's permissions and the clock; each failure says what to fix. It
// takes the mount's own flags, so `doctor` and `mount` read the same
// settings.
func doctorCommand(ctx context.Context, stdout io.Writer) *cobra.Command {
	fset, flags := config.NewFlagSet("doctor")
	cmd := &cobra.Command{
		Use:   "doctor [flags] [MOUNTPOINT]",
		Short: "Check FUSE, the mount point, Infisical, the login, permissions and the clock; print what to fix",
		Long: `Check what a mount needs, without mounting or changing anything: /dev/fuse,
fusermount3, the mount point (when given), the URL and its /api/status, the
login, each project and environment's read and write permission, and the clock
against Infisical's. Takes the same flags, environment and config file as
'infisicalfs mount'. Exits 1 when a check failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pf := cmd.Flags()
			cfg, err := config.Resolve(pf, flags, os.Getenv)
			mnt := ""
			if len(args) == 1 {
				if mnt, err = absPath(args[0]); err != nil {
					return err
				}
			}
			d := &doctor{out: stdout}
			d.run(ctx, cfg, err, mnt)
			if d.failed > 0 {
				return &exitError{1, fmt.Errorf("%d check(s) failed", d.failed)}
			}
			return nil
		},
	}
	cmd.Flags().SortFlags = false
	cmd.Flags().AddFlagSet(fset)
	return cmd
}

type doctor struct {
	out    io.Writer
	failed int
}

func (d *doctor) ok(what, detail string) { fmt.Fprintf(d.out, "ok    %-22s %s\n", what, detail) }
func (d *doctor) warn(what, detail, fix string) {
	fmt.Fprintf(d.out, "warn  %-22s %s\n      fix: %s\n", what, detail, fix)
}
func (d *doctor) fail(what, detail, fix string) {
	d.failed++
	fmt.Fprintf(d.out, "FAIL  %-22s %s\n      fix: %s\n", what, detail, fix)
}

func (d *doctor) run(ctx context.Context, cfg config.Config, cfgErr error, mnt string) {
	d.fuse()
	if mnt != "" {
		d.mountpoint(mnt, cfg.AllowNonEmpty)
	}
	if cfgErr != nil {
		d.fail("settings", cfgErr.Error(), "correct the flag, variable or config key named")
		return
	}
	if cfg.AgentConfig == "" && cfg.AgentConfigBase64 == "" {
		if err := cfg.Validate(); err != nil {
			d.fail("settings", err.Error(), "see 'infisicalfs mount --help-config'")
			return
		}
	}
	if cfg.URL == "" {
		return // an agent config names it; the mount applies it
	}
	if !d.site(ctx, cfg.URL) {
		return
	}
	d.login(ctx, cfg)
}

func (d *doctor) fuse() {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.fail("/dev/fuse", "missing", "load the module (modprobe fuse); in a container pass --device /dev/fuse")
	case err != nil:
		d.fail("/dev/fuse", err.Error(), "run as root, or make /dev/fuse 0666 (the distribution default)")
	default:
		f.Close()
		d.ok("/dev/fuse", "opens read-write")
	}
	if p, err := exec.LookPath("fusermount3"); err == nil {
		d.ok("fusermount3", p)
	} else if os.Geteuid() == 0 {
		d.warn("fusermount3", "not found (root mounts without it)", "apt-get install fuse3, for mounts by other users and unmounts")
	} else {
		d.fail("fusermount3", "not found: a non-root user cannot mount", "apt-get install fuse3")
	}
}

// mountpoint checks what daemon.CheckMountpoint will, without clearing a
// stale mount.
func (d *doctor) mountpoint(mnt string, allowNonEmpty bool) {
	const what = "mount point"
	if mounted, _ := daemon.IsMounted(mnt); mounted {
		if daemon.Stale(mnt) {
			d.fail(what, mnt+" is a stale mount (its process died)", "infisicalfs unmount "+mnt)
		} else {
			d.fail(what, mnt+" is already mounted", "unmount it first, or pick another directory")
		}
		return
	}
	fi, err := os.Stat(mnt)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.fail(what, mnt+" does not exist", "mkdir -p "+mnt)
		return
	case err != nil:
		d.fail(what, err.Error(), "check the path and its permissions")
		return
	case !fi.IsDir():
		d.fail(what, mnt+" is not a directory", "use an empty directory")
		return
	}
	if syscall.Access(mnt, 0o2) != nil && os.Geteuid() != 0 {
		d.fail(what, mnt+" is not writable by this user", "mount where you own the directory")
		return
	}
	if names, _ := readNames(mnt); len(names) > 0 && !allowNonEmpty {
		d.fail(what, fmt.Sprintf("%s is not empty (holds %q)", mnt, names[0]), "empty it, or pass --allow-non-empty to hide its files while mounted")
		return
	}
	d.ok(what, mnt)
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(1)
}

// site checks the URL answers /api/status, and the clock against its Date.
func (d *doctor) site(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status := strings.TrimSuffix(url, "/") + "/api/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, status, nil)
	if err != nil {
		d.fail("url", err.Error(), "set --url / INFISICAL_URL to the site, e.g. https://app.infisical.com")
		return false
	}
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.fail("url", fmt.Sprintf("%s: %v", status, err), "check the URL, DNS, proxy and firewall")
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		d.fail("url", fmt.Sprintf("%s answered %s", status, resp.Status), "is this the Infisical site's base URL (without /api)?")
		return false
	}
	d.ok("url", status+" answered 200")
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// Date has one-second resolution: allow for it and the round trip.
		mid := sent.Add(time.Since(sent) / 2)
		skew := mid.Sub(date).Round(time.Second)
		if skew < 0 {
			skew = -skew
		}
		if skew > 30*time.Second {
			d.fail("clock", fmt.Sprintf("%s off from Infisical's", skew), "run NTP (timedatectl set-ntp true): access tokens and TTLs are checked against the server's clock")
		} else {
			d.ok("clock", fmt.Sprintf("within %s of Infisical's", max(skew, time.Second)))
		}
	} else {
		d.warn("clock", "the server sent no Date header", "none needed; skew cannot be checked")
	}
	return true
}

// login logs in as the mount would, then reads each scope and probes its
// write permission with the delete of a name that does not exist: 403
// means no write permission, 404 that Infisical let the request through.
func (d *doctor) login(ctx context.Context, cfg config.Config) {
	client, err := infisical.New(infisical.Config{
		SiteURL: cfg.URL, AuthMethod: infisical.AuthMethod(cfg.AuthMethod),
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		IdentityID: cfg.IdentityID, KubernetesTokenPath: cfg.KubernetesTokenPath,
		Token: cfg.Token, TokenFile: cfg.TokenFile, TokenPolicy: infisical.TokenPerCycle,
		Retry:     infisical.RetryPolicy{ServerErrorWait: time.Second, RateLimitWait: time.Second},
		UserAgent: "infisicalfs-doctor/" + version,
	})
	if err != nil {
		d.fail("login", err.Error(), "correct the auth settings")
		return
	}
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.BeginCycle(ctx); err != nil {
		d.fail("login", err.Error(), "check the client id and secret (or token), and that the identity is not disabled")
		return
	}
	d.ok("login", cfg.AuthMethod)
	projects, err := client.ListProjects(ctx)
	if err != nil {
		d.fail("projects", err.Error(), "grant the identity a role on a project (Access Control)")
		return
	}
	want := func(list []string, v ...string) bool {
		if len(list) == 0 {
			return true
		}
		for _, l := range list {
			for _, x := range v {
				if l == x {
					return true
				}
			}
		}
		return false
	}
	seen := 0
	probe := make([]byte, 6)
	_, _ = rand.Read(probe)
	probeKey := "INFISICALFS_DOCTOR_PROBE_" + strings.ToUpper(hex.EncodeToString(probe))
	for _, p := range projects {
		if !want(cfg.Projects, p.Slug, p.ID) {
			continue
		}
		for _, e := range p.Environments {
			if !want(cfg.Envs, e.Slug) {
				continue
			}
			seen++
			scope := p.Slug + "/" + e.Slug
			res, err := client.ListSecrets(ctx, infisical.ListOptions{ProjectID: p.ID, Environment: e.Slug, Path: "/"})
			if err != nil {
				d.fail(scope+" read", err.Error(), "grant the identity read access to "+scope)
				continue
			}
			n := len(res.Secrets)
			for i := range res.Secrets {
				clear(res.Secrets[i].Value)
			}
			if cfg.ReadOnly {
				d.ok(scope, fmt.Sprintf("read: %d secrets at /; write not needed (read-only)", n))
				continue
			}
			err = client.DeleteSecret(ctx, infisical.Ref{ProjectID: p.ID, Environment: e.Slug, Path: "/", Key: probeKey})
			switch {
			case err == nil, errors.Is(err, infisical.ErrNotFound):
				d.ok(scope, fmt.Sprintf("read: %d secrets at /; write: allowed", n))
			case errors.Is(err, infisical.ErrPermissionDenied):
				d.warn(scope, fmt.Sprintf("read: %d secrets at /; write: denied", n), "writes will fail with EACCES: grant a role that may edit secrets, or mount --read-only")
			default:
				d.warn(scope, fmt.Sprintf("read: %d secrets at /; write: unknown (%v)", n, err), "try a write after mounting")
			}
		}
	}
	if seen == 0 {
		d.fail("scopes", fmt.Sprintf("no project/environment matches --project %v --env %v among the %d the identity can read", cfg.Projects, cfg.Envs, len(projects)), "check the slugs, or grant the identity a role on the project")
	}
}
