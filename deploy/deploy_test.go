package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
)

// fakeDaemon stands in for infisicalfs: it records its argv one per line
// and, in "mount" mode, adds its mount point (the last argument) to the
// fake mountinfo as the kernel would, escaped. "fail" exits 3 at once;
// "hang" never mounts.
const fakeDaemon = `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done > "$ARGV_FILE"
case $FAKE_MODE in
mount)
	eval "mp=\${$#}"
	esc=$(printf '%s' "$mp" | sed 's/\\/\\134/g; s/ /\\040/g')
	printf '99 1 0:50 / %s rw,nosuid,nodev - fuse.infisicalfs infisicalfs rw\n' "$esc" >> "$INFISICALFS_MOUNTINFO"
	;;
fail) exit 3 ;;
hang) exec sleep 30 ;;
esac
`

type run struct {
	argv   []string
	stderr string
	err    error
	took   time.Duration
}

func helper(t *testing.T, mode string, args ...string) run {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "infisicalfs"), []byte(fakeDaemon), 0o755); err != nil {
		t.Fatal(err)
	}
	mountinfo := filepath.Join(dir, "mountinfo")
	// An unrelated mount, and one at a prefix of the mount point's name.
	if err := os.WriteFile(mountinfo, []byte("22 1 0:21 / / rw - ext4 /dev/sda1 rw\n23 22 0:22 / /mn rw - tmpfs tmpfs rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	argvFile := filepath.Join(dir, "argv")
	shell := "sh"
	if p, err := exec.LookPath("dash"); err == nil {
		shell = p // the strictest POSIX shell at hand
	}
	cmd := exec.Command(shell, append([]string{"./mount.infisicalfs"}, args...)...)
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ARGV_FILE="+argvFile, "FAKE_MODE="+mode,
		"INFISICALFS_MOUNTINFO="+mountinfo, "INFISICALFS_MOUNT_TIMEOUT=2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := run{stderr: stderr.String(), err: err, took: time.Since(start)}
	if b, rerr := os.ReadFile(argvFile); rerr == nil {
		r.argv = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	return r
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestMountHelperTranslatesOptions(t *testing.T) {
	mnt := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("url = \"http://x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := helper(t, "mount", cfg, mnt, "-o",
		"rw,ro,allow_other,uid=1000,gid=1001,project=webshop,env=dev,flat,noauto,nofail,_netdev,x-systemd.automount,defaults,nosuid,nodev,refresh_interval=30s,user,users")
	if r.err != nil {
		t.Fatalf("helper failed: %v\n%s", r.err, r.stderr)
	}
	want := []string{"mount", "--read-only", "--allow-other", "--uid", "1000", "--gid", "1001",
		"--project", "webshop", "--env", "dev", "--flat", "--refresh-interval=30s", "--config", cfg, mnt}
	if !slices.Equal(r.argv, want) {
		t.Errorf("daemon argv:\n got %q\nwant %q", r.argv, want)
	}
}

func TestMountHelperSourceForms(t *testing.T) {
	mnt := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// "infisicalfs" as SOURCE: no config unless config= names one; options
	// may come as -oX, and repeated -o lists add up.
	r := helper(t, "mount", "infisicalfs", mnt, "-n", "-oproject=a", "-o", "project=b", "-t", "fuse.infisicalfs")
	if want := []string{"mount", "--project", "a", "--project", "b", mnt}; r.err != nil || !slices.Equal(r.argv, want) {
		t.Errorf("no config: argv %q, err %v %s", r.argv, r.err, r.stderr)
	}
	r = helper(t, "mount", "infisicalfs", mnt, "-o", "config="+cfg)
	if want := []string{"mount", "--config", cfg, mnt}; r.err != nil || !slices.Equal(r.argv, want) {
		t.Errorf("config=: argv %q, err %v %s", r.argv, r.err, r.stderr)
	}
	r = helper(t, "mount", filepath.Join(t.TempDir(), "missing.toml"), mnt)
	if exitCode(r.err) != 32 || !strings.Contains(r.stderr, "not found") || r.argv != nil {
		t.Errorf("missing config: code %d, stderr %q, daemon ran: %v", exitCode(r.err), r.stderr, r.argv != nil)
	}
	r = helper(t, "mount", "infisicalfs")
	if exitCode(r.err) != 1 || !strings.Contains(r.stderr, "usage") {
		t.Errorf("no mount point: code %d, %q", exitCode(r.err), r.stderr)
	}
}

func TestMountHelperSpacesAndGlobs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "my secrets")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	r := helper(t, "mount", "infisicalfs", mnt, "-o", "env=*")
	if want := []string{"mount", "--env", "*", mnt}; r.err != nil || !slices.Equal(r.argv, want) {
		t.Errorf("argv %q, err %v %s", r.argv, r.err, r.stderr)
	}
}

func TestMountHelperFakeMode(t *testing.T) {
	mnt := t.TempDir()
	r := helper(t, "mount", "infisicalfs", mnt, "-fv", "-o", "ro")
	if r.err != nil || r.argv != nil || !strings.Contains(r.stderr, "infisicalfs mount --read-only "+mnt) {
		t.Errorf("-f must only print: err %v, daemon ran %v, stderr %q", r.err, r.argv != nil, r.stderr)
	}
}

func TestMountHelperDaemonFails(t *testing.T) {
	r := helper(t, "fail", "infisicalfs", t.TempDir())
	if exitCode(r.err) != 32 || !strings.Contains(r.stderr, "status 3") {
		t.Errorf("daemon exit: code %d, stderr %q", exitCode(r.err), r.stderr)
	}
	if r.took > 1500*time.Millisecond {
		t.Errorf("took %s to notice the daemon died", r.took)
	}
}

func TestMountHelperTimeout(t *testing.T) {
	r := helper(t, "hang", "infisicalfs", t.TempDir())
	if exitCode(r.err) != 32 || !strings.Contains(r.stderr, "not mounted within 2s") {
		t.Errorf("timeout: code %d, stderr %q", exitCode(r.err), r.stderr)
	}
}

func TestMountHelperIsPOSIX(t *testing.T) {
	for _, sh := range []string{"sh", "dash", "bash"} {
		p, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		args := []string{"-n", "mount.infisicalfs"}
		if sh == "bash" {
			args = []string{"--posix", "-n", "mount.infisicalfs"}
		}
		if out, err := exec.Command(p, args...).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
	st, err := os.Stat("mount.infisicalfs")
	if err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("mount.infisicalfs must be executable: %v", err)
	}
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// directives returns a unit file's directives (comments left out).
func directives(unit string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

// TestServiceUnitKeepsMountVisible guards the unit's one easy mistake: any
// option that gives the service its own mount namespace hides the FUSE
// mount from every other process.
func TestServiceUnitKeepsMountVisible(t *testing.T) {
	d := directives(readDeploy(t, "infisicalfs.service"))
	for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
		"ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "RuntimeDirectory",
		"MountFlags", "PrivateNetwork", "ProtectHostname"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s would hide the mount in a private mount namespace", k)
		}
	}
	for k, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "LimitCORE": "0",
		"DeviceAllow": "/dev/fuse rw", "NoNewPrivileges": "yes",
	} {
		if d[k] != want {
			t.Errorf("%s=%q, want %q", k, d[k], want)
		}
	}
	if !strings.Contains(d["CapabilityBoundingSet"], "CAP_SYS_ADMIN") {
		t.Error("CapabilityBoundingSet lacks CAP_SYS_ADMIN: the mount would fail")
	}
}

func TestContainerFiles(t *testing.T) {
	df := readDeploy(t, "Dockerfile")
	for _, want := range []string{`ENTRYPOINT ["tini", "--", "infisicalfs", "mount"]`, `CMD ["/secrets"]`, "fuse3", "tini", "AS build",
		"ENV INFISICALFS_MOUNTPOINT=/secrets", `infisicalfs status \"$INFISICALFS_MOUNTPOINT\"`, "apparmor=unconfined"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	k8s := readDeploy(t, "kubernetes/sidecar.yaml")
	for _, want := range []string{"mountPropagation: Bidirectional", "mountPropagation: HostToContainer",
		"add: [SYS_ADMIN]", `auth_method = "kubernetes"`, "identity_id = ", "serviceAccountName: webshop",
		"flat = true", "/dev/fuse"} {
		if !strings.Contains(k8s, want) {
			t.Errorf("sidecar.yaml lacks %s", want)
		}
	}
	// Kubernetes auth: no client secret anywhere in the pod spec.
	for _, unwanted := range []string{"client-secret", "CLIENT_SECRET", "client_secret", "kind: Secret"} {
		if strings.Contains(k8s, unwanted) {
			t.Errorf("sidecar.yaml still carries %s: the example logs in with Kubernetes auth", unwanted)
		}
	}
	compose := readDeploy(t, "docker-compose.yml")
	for _, want := range []string{"dev-server", "propagation: rshared", "propagation: rslave", "/dev/fuse", "init: true", "apparmor=unconfined"} {
		if !strings.Contains(compose, want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	if strings.Contains(df+compose+readDeploy(t, "README.md"), "apparmor:unconfined") {
		t.Error("the deprecated apparmor:unconfined spelling is back; docker wants apparmor=unconfined")
	}
	// The build context leaves out what a running demo or compose puts in
	// the tree: a live mount's files must never be copied into an image.
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mnt/", "deploy/secrets", "bin/", ".git"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	gitignore, _ := os.ReadFile("../.gitignore")
	if !strings.Contains(string(gitignore), "deploy/secrets") {
		t.Error(".gitignore lacks deploy/secrets (compose's mount point)")
	}
	if strings.Contains(k8s+compose, "\t") {
		t.Error("YAML must not contain tabs")
	}
}

// The sidecar's config.toml is a valid Kubernetes-auth config for the
// config package itself, with nothing but the identity id to fill in.
func TestSidecarConfigIsKubernetesAuth(t *testing.T) {
	k8s := readDeploy(t, "kubernetes/sidecar.yaml")
	_, rest, ok := strings.Cut(k8s, "config.toml: |\n")
	if !ok {
		t.Fatal("sidecar.yaml has no config.toml")
	}
	block, _, _ := strings.Cut(rest, "\n---")
	var toml strings.Builder
	for _, line := range strings.Split(block, "\n") {
		toml.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatalf("the sidecar's config.toml does not load: %v\n%s", err, toml.String())
	}
	if cfg.AuthMethod != config.AuthKubernetes || cfg.IdentityID == "" || cfg.ClientSecretFile != "" || cfg.ClientIDFile != "" {
		t.Errorf("sidecar config: auth_method %q identity_id %q client files %q %q", cfg.AuthMethod, cfg.IdentityID, cfg.ClientIDFile, cfg.ClientSecretFile)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the sidecar's config does not validate: %v", err)
	}
}
