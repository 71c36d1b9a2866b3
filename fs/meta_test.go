package fs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

func seedMeta(srv *infisicaltest.Server, pid string) {
	seedRefs(srv, pid)
	c := "rotate monthly"
	srv.SetSecretMeta(pid, "dev", "/", "API_KEY", infisicaltest.SecretMeta{
		Comment: &c, Tags: []string{"backend", "pci"}, Metadata: [][2]string{{"owner", "team-a"}, {"ticket", "OPS-7"}},
	})
}

// getfattrDump is `getfattr -d -m - --absolute-names PATH` as name → value.
func getfattrDump(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("getfattr", "-d", "-m", "-", "--absolute-names", path).CombinedOutput()
	if err != nil {
		t.Fatalf("getfattr -d %s: %v\n%s", path, err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		name, val, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		got[name] = strings.Trim(val, `"`)
	}
	return got
}

func TestXattrs(t *testing.T) {
	m := mountForTest(t, withSeed(seedMeta))
	sec, err := apiClient(t, m.srv).GetSecret(context.Background(), infisical.Ref{ProjectID: m.project, Environment: "dev", Path: "/", Key: "API_KEY"})
	if err != nil {
		t.Fatal(err)
	}
	got := getfattrDump(t, m.path("webshop/dev/API_KEY"))
	want := map[string]string{
		"user.infisical.id":              sec.ID,
		"user.infisical.version":         "2",
		"user.infisical.comment":         "rotate monthly",
		"user.infisical.updated_at":      sec.UpdatedAt.UTC().Format(time.RFC3339),
		"user.infisical.tags":            "backend,pci",
		"user.infisical.metadata.owner":  "team-a",
		"user.infisical.metadata.ticket": "OPS-7",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["user.infisical.raw"]; ok {
		t.Error("user.infisical.raw listed for a secret without references")
	}
	if _, err := time.Parse(time.RFC3339, got["user.infisical.updated_at"]); err != nil {
		t.Errorf("updated_at not RFC 3339: %v", err)
	}
	g := getfattrDump(t, m.path("webshop/dev/GREETING"))
	if g["user.infisical.raw"] != "hello ${API_KEY}" {
		t.Errorf("GREETING user.infisical.raw = %q", g["user.infisical.raw"])
	}
	if _, ok := getfattrDump(t, m.path("webshop/dev/.raw/GREETING"))["user.infisical.raw"]; ok {
		t.Error(".raw/GREETING lists user.infisical.raw, which equals the file")
	}

	// setfattr on the comment: one PATCH, the server's comment, the new version.
	m.srv.ResetRequests()
	m.mustSh(`setfattr -n user.infisical.comment -v "new owner: team-b" webshop/dev/API_KEY`)
	if n := m.srv.Count("PATCH", "/api/v4/secrets"); n != 1 {
		t.Errorf("%d PATCH requests for a comment, want 1", n)
	}
	sec, err = apiClient(t, m.srv).GetSecret(context.Background(), infisical.Ref{ProjectID: m.project, Environment: "dev", Path: "/", Key: "API_KEY"})
	if err != nil || sec.Comment != "new owner: team-b" {
		t.Fatalf("server comment = %q (%v)", sec.Comment, err)
	}
	if v, _ := m.serverValue("dev", "/", "API_KEY"); v != canaryKey {
		t.Errorf("the comment changed the value to %q", v)
	}
	got = getfattrDump(t, m.path("webshop/dev/API_KEY"))
	if got["user.infisical.comment"] != "new owner: team-b" || got["user.infisical.version"] != "3" || got["user.infisical.tags"] != "backend,pci" || got["user.infisical.metadata.owner"] != "team-a" {
		t.Errorf("after setfattr: %v", got)
	}
	if m.readFile("webshop/dev/API_KEY") != canaryKey {
		t.Error("the value changed after setfattr")
	}

	// Other names are read-only; unknown ones are ENODATA; directories and
	// views have none.
	p := m.path("webshop/dev/API_KEY")
	if err := unix.Setxattr(p, "user.infisical.version", []byte("9"), 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("set user.infisical.version: %v, want EPERM", err)
	}
	if out, err := m.sh(`setfattr -n user.infisical.id -v x webshop/dev/API_KEY`); err == nil || !strings.Contains(out, "not permitted") {
		t.Errorf("setfattr user.infisical.id: %v %s, want EPERM", err, out)
	}
	buf := make([]byte, 64)
	if _, err := unix.Getxattr(p, "user.infisical.nope", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("get an unknown name: %v, want ENODATA", err)
	}
	for _, q := range []string{"webshop/dev", "webshop/dev/.env", "webshop/dev/app"} {
		if _, err := unix.Getxattr(m.path(q), "user.infisical.id", buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("get user.infisical.id of %s: %v, want ENODATA", q, err)
		}
		if n, err := unix.Listxattr(m.path(q), buf); err != nil || n != 0 {
			t.Errorf("listxattr %s = %d, %v; want none", q, n, err)
		}
	}
	if strings.Contains(m.logs.String(), canaryKey) {
		t.Error("a value reached the log")
	}
}

func TestHistory(t *testing.T) {
	m := mountForTest(t, withSeed(func(srv *infisicaltest.Server, pid string) {
		srv.SetSecret(pid, "dev", "/", "API_KEY", "v1-"+canaryKey)
		srv.SetSecret(pid, "dev", "/", "API_KEY", "v2")
		srv.SetSecret(pid, "dev", "/", "API_KEY", "v3")
		srv.SetSecret(pid, "dev", "/app", "PORT", "8080")
	}))
	m.srv.ResetRequests()
	if got := m.mustSh("ls webshop/dev/.history && ls webshop/dev/.history/API_KEY && ls webshop/dev/.history/app/PORT && find webshop/dev/.history -name 1 | wc -l"); got != "API_KEY\napp\n1\n2\n3\n1\n2\n" {
		t.Errorf("ls .history = %q", got)
	}
	if n := m.srv.Count("GET", "/api/v4/secrets/"); n != 0 {
		t.Errorf("%d requests before anyone read a version, want 0", n)
	}
	if got := m.readFile("webshop/dev/.history/API_KEY/1"); got != "v1-"+canaryKey {
		t.Errorf("version 1 = %q", got)
	}
	if got := m.readFile("webshop/dev/.history/API_KEY/1"); got != "v1-"+canaryKey {
		t.Errorf("version 1 again = %q", got)
	}
	if n := m.srv.Count("GET", "/api/v4/secrets/"); n != 1 {
		t.Errorf("%d requests for two reads of version 1, want 1", n)
	}
	if got := m.readFile("webshop/dev/.history/app/PORT/1"); got != "8080" {
		t.Errorf("app/PORT version 1 = %q", got)
	}
	if _, err := os.OpenFile(m.path("webshop/dev/.history/API_KEY/1"), os.O_WRONLY, 0); err == nil {
		t.Error("a version opened for writing")
	}
	if _, err := os.Stat(m.path("webshop/dev/.history/API_KEY/4")); !os.IsNotExist(err) {
		t.Errorf("version 4: %v, want ENOENT", err)
	}
	// A new version shows although the kernel remembered it as missing.
	m.srv.SetSecret(m.project, "dev", "/", "API_KEY", "v4")
	m.refresh()
	if got := m.readFile("webshop/dev/.history/API_KEY/4"); got != "v4" {
		t.Errorf("version 4 after the change = %q", got)
	}
	// Pruned on the server: ENOENT.
	m.srv.PruneSecretVersions(m.project, "dev", "/", "API_KEY", 1)
	if _, err := os.ReadFile(m.path("webshop/dev/.history/API_KEY/2")); !os.IsNotExist(err) {
		t.Errorf("pruned version 2: %v, want ENOENT", err)
	}
	// cp restores an earlier version as a new one.
	m.mustSh("cp webshop/dev/.history/API_KEY/1 webshop/dev/API_KEY")
	v, ver, _ := m.srv.Secret(m.project, "dev", "/", "API_KEY")
	if v != "v1-"+canaryKey || ver != 5 {
		t.Errorf("after cp: server %q version %d, want version 1's value as version 5", v, ver)
	}
	if got := m.readFile("webshop/dev/API_KEY"); got != "v1-"+canaryKey {
		t.Errorf("API_KEY after restore = %q", got)
	}
	if got := m.mustSh("ls webshop/dev/.history/API_KEY | tr '\\n' ' '"); got != "1 2 3 4 5 " {
		t.Errorf("versions after restore = %q", got)
	}
	if strings.Contains(m.logs.String(), canaryKey) {
		t.Error("a value reached the log")
	}
}

// The read-only mount serves expanded values from the page cache: a repeat
// read costs no request, xattrs included; getfattr works there too.
func TestReadOnlyExpandedAndXattrs(t *testing.T) {
	m := mountForTest(t, withSeed(seedMeta), func(c *mountConfig) { c.readOnly = true })
	p := m.path("webshop/dev/GREETING")
	if got := m.readFile("webshop/dev/GREETING"); got != "hello "+canaryKey {
		t.Fatalf("GREETING = %q", got)
	}
	if got := m.readFile("webshop/dev/.raw/GREETING"); got != "hello ${API_KEY}" {
		t.Fatalf(".raw/GREETING = %q", got)
	}
	if got := getfattrDump(t, m.path("webshop/dev/API_KEY"))["user.infisical.comment"]; got != "rotate monthly" {
		t.Errorf("comment on the read-only mount = %q", got)
	}
	before := m.fsys.Requests()
	for range 5 {
		if b, err := os.ReadFile(p); err != nil || string(b) != "hello "+canaryKey {
			t.Fatalf("repeat read = %q, %v", b, err)
		}
	}
	if n := m.fsys.Requests() - before; n != 0 {
		t.Errorf("%d daemon requests for repeat reads with xattrs enabled, want 0", n)
	}
	if err := unix.Setxattr(m.path("webshop/dev/API_KEY"), "user.infisical.comment", []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("setxattr on the read-only mount: %v, want EROFS", err)
	}
	// History on the read-only mount: fetched at first read, whole.
	if out := m.mustSh("ls webshop/dev/.history/API_KEY | tr '\\n' ' '; cat webshop/dev/.history/API_KEY/1"); out != "1 2 "+canaryKey {
		t.Errorf("history on the read-only mount: %q", out)
	}
	// A change to the referenced secret reaches the cached dependent.
	m.srv.SetSecret(m.project, "dev", "/", "API_KEY", "rotated")
	m.refresh()
	if got := m.readFile("webshop/dev/GREETING"); got != "hello rotated" {
		t.Errorf("GREETING after the change = %q", got)
	}
	if got := m.readFile("webshop/dev/app/URL"); got != "https://rotated@db.prod/x" {
		t.Errorf("app/URL after the change = %q", got)
	}
}
