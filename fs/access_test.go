package fs_test

// Access rules in a real mount (issue 17), driven by real programs run as
// other users (setpriv) and by copies of cat at other paths and with other
// hashes. Each test checks what the program got and what the daemon saw
// (requests, audit lines, .status) or what Infisical holds.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/daemon"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// Canary values: no audit line or log line may ever hold one.
const (
	canaryProd = "CANARY-prod-db-7f3a9c"
	canaryAPI  = "CANARY-prod-api-51d2e8"
	canaryDev  = "CANARY-dev-key-0b44a1"
)

func accessSeed(srv *infisicaltest.Server, pid string) {
	srv.SetSecret(pid, "prod", "/", "DATABASE_URL", canaryProd)
	srv.SetSecret(pid, "prod", "/", "API_KEY", canaryAPI)
	srv.SetSecret(pid, "dev", "/", "API_KEY", canaryDev)
}

// requireRoot: these tests run programs as other users.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") == "1" {
			t.Fatal("this test runs programs as other users: it needs root")
		}
		t.Skip("needs root to run programs as other users")
	}
}

// accessMount mounts the seeded project with rules, allow_other, and an
// audit log in the test's temp dir (returned), reachable by other users.
func accessMount(t *testing.T, readOnly bool, rules []access.Spec, more func(*config.Config)) (*testMount, string) {
	t.Helper()
	requireRoot(t)
	auditPath := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	m := mountForTest(t, func(mc *mountConfig) {
		mc.readOnly = readOnly
		mc.seed = accessSeed
		mc.configure = func(c *config.Config) {
			c.AllowOther = true
			c.Access = rules
			c.AuditLog = auditPath
			if more != nil {
				more(c)
			}
		}
	})
	openUp(m.dir)
	return m, auditPath
}

// openUp lets other users walk down to dir (temp dirs are 0700).
func openUp(dir string) {
	for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}

// ran is what a program run as another user did.
type ran struct {
	out, errOut string
	err         error
	pid         int
}

func (r ran) denied() bool { return r.err != nil && strings.Contains(r.errOut, "Permission denied") }

// runAs runs prog args as uid:gid without supplementary groups. setpriv
// execs prog, so the pid is the program's.
func runAs(uid, gid int, prog string, args ...string) ran {
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--", prog}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := ran{out: out.String(), errOut: errb.String(), err: err}
	if cmd.Process != nil {
		r.pid = cmd.Process.Pid
	}
	return r
}

func catPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}

// catCopies: app and appCopy are cat at two paths (same hash); other is
// cat with a byte appended (an ELF file runs the same with trailing bytes),
// so its hash differs.
func catCopies(t *testing.T) (app, appCopy, other string) {
	t.Helper()
	b, err := os.ReadFile(catPath(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openUp(filepath.Join(dir, "x"))
	app, appCopy, other = filepath.Join(dir, "app-cat"), filepath.Join(dir, "copy-cat"), filepath.Join(dir, "other-cat")
	for p, content := range map[string][]byte{app: b, appCopy: b, other: append(append([]byte(nil), b...), 'x')} {
		if err := os.WriteFile(p, content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return app, appCopy, other
}

// auditLine is one line of the audit file as written.
type auditLine struct {
	Time     string `json:"time"`
	Path     string `json:"path"`
	Mode     string `json:"mode"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
	PID      uint32 `json:"pid"`
	Exe      string `json:"executable"`
	Cgroup   string `json:"cgroup"`
	Rule     *int   `json:"rule"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// auditLines waits until the audit file holds n lines and parses them,
// rejecting unknown fields.
func (m *testMount) auditLines(path string, n int) []auditLine {
	m.t.Helper()
	var b []byte
	m.eventually(func() bool {
		b, _ = os.ReadFile(path)
		return bytes.Count(b, []byte("\n")) >= n
	})
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l auditLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			m.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	if len(out) != n {
		m.t.Fatalf("audit file has %d lines, want %d:\n%s", len(out), n, b)
	}
	return out
}

// noCanary fails if a secret value shows in the audit file or the log.
func (m *testMount) noCanary(auditPath string) {
	m.t.Helper()
	b, _ := os.ReadFile(auditPath)
	for _, c := range []string{canaryProd, canaryAPI, canaryDev} {
		if bytes.Contains(b, []byte(c)) {
			m.t.Errorf("the audit file holds a secret value (%s)", c)
		}
		if strings.Contains(m.logs.String(), c) {
			m.t.Errorf("the daemon log holds a secret value (%s)", c)
		}
	}
}

func (m *testMount) status() daemon.StatusDoc {
	m.t.Helper()
	var doc daemon.StatusDoc
	if err := json.Unmarshal([]byte(m.readFile(".status")), &doc); err != nil {
		m.t.Fatal(err)
	}
	if doc.Access == nil {
		m.t.Fatal(".status has no access section")
	}
	return doc
}

func statOf(t testing.TB, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// Rules that name only uids, users and groups become owner, group and mode:
// the kernel enforces them for every caller, and a repeat read costs the
// daemon no request at all (read-only mount: opens never reach it).
func TestAccessKernelRules(t *testing.T) {
	m, auditPath := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/DATABASE_URL", UIDs: []int64{1001}, Allow: "read"},  // uid
		{Path: "webshop/prod/API_KEY", Users: []string{"nobody"}, Allow: "read"}, // user by name
		{Path: "webshop/dev/**", Groups: []string{"nogroup"}, Allow: "read"},     // group by name
	}, nil)
	db, api, dev := m.path("webshop/prod/DATABASE_URL"), m.path("webshop/prod/API_KEY"), m.path("webshop/dev/API_KEY")
	if st := statOf(t, db); st.Uid != 1001 || st.Mode&0o777 != 0o400 {
		t.Errorf("DATABASE_URL: owner %d mode %o, want 1001 0400", st.Uid, st.Mode&0o777)
	}
	if st := statOf(t, dev); st.Gid != 65534 || st.Mode&0o070 != 0o040 {
		t.Errorf("dev/API_KEY: group %d mode %o, want 65534 and group read", st.Gid, st.Mode&0o777)
	}
	cat := catPath(t)
	cases := []struct {
		uid, gid int
		file     string
		want     string // "" denied
	}{
		{1001, 1001, db, canaryProd},
		{1002, 1002, db, ""},
		{1001, 1001, api, ""},
		{65534, 65534, api, canaryAPI},
		{65534, 65534, db, ""},
		{1002, 65534, dev, canaryDev},
		{1001, 1001, dev, ""},
	}
	for _, c := range cases {
		r := runAs(c.uid, c.gid, cat, c.file)
		switch {
		case c.want == "" && !r.denied():
			t.Errorf("uid %d gid %d read %s: %q %v, want permission denied", c.uid, c.gid, c.file, r.out, r.err)
		case c.want != "" && (r.err != nil || r.out != c.want):
			t.Errorf("uid %d gid %d read %s: %q %v %s, want %q", c.uid, c.gid, c.file, r.out, r.err, r.errOut, c.want)
		}
	}
	// The server still holds what the programs read: nothing was changed.
	if v, _ := m.serverValue("prod", "/", "DATABASE_URL"); v != canaryProd {
		t.Errorf("server holds %q", v)
	}
	before := m.fsys.Requests()
	for range 5 {
		if r := runAs(1001, 1001, cat, db); r.out != canaryProd {
			t.Fatalf("repeat read: %q %v", r.out, r.err)
		}
	}
	if n := m.fsys.Requests() - before; n != 0 {
		t.Errorf("5 repeat reads under a kernel-enforced rule cost the daemon %d requests, want 0", n)
	}
	// A refusal costs one GETATTR: the kernel refetches the attributes
	// before it answers EACCES (fuse_permission), never an open.
	before = m.fsys.Requests()
	for range 5 {
		if r := runAs(1002, 1002, cat, db); !r.denied() {
			t.Fatalf("repeat read by 1002 not denied: %q %v", r.out, r.err)
		}
	}
	if n := m.fsys.Requests() - before; n != 5 {
		t.Errorf("5 refused opens cost the daemon %d requests, want 5 (one GETATTR each)", n)
	}
	// No open reached the daemon, so there is nothing to audit (the
	// kernel answered; see docs/behaviour.md).
	if b, _ := os.ReadFile(auditPath); len(b) != 0 {
		t.Errorf("audit lines for opens the kernel answered:\n%s", b)
	}
	m.noCanary(auditPath)
}

// Writes under a uid rule on a read-write mount: the allowed user's value
// reaches Infisical, the denied user's does not, and both opens that
// reached the daemon are in the audit log.
func TestAccessWrites(t *testing.T) {
	m, auditPath := accessMount(t, false, []access.Spec{
		{Path: "webshop/dev/**", UIDs: []int64{1001}, Allow: "write"},
		{Path: "webshop/prod/**", UIDs: []int64{1001}, Allow: "read"},
	}, nil)
	sh := "/bin/sh"
	write := func(uid int, file, value string) ran {
		return runAs(uid, uid, sh, "-c", `printf %s "$1" > "$0"`, file, value)
	}
	if r := write(1001, m.path("webshop/dev/API_KEY"), "new-dev-value"); r.err != nil {
		t.Fatalf("allowed write: %v %s", r.err, r.errOut)
	}
	if v, _ := m.serverValue("dev", "/", "API_KEY"); v != "new-dev-value" {
		t.Errorf("after the allowed write the server holds %q", v)
	}
	if r := write(1002, m.path("webshop/dev/API_KEY"), "evil"); !r.denied() {
		t.Errorf("write by 1002: %v %s, want permission denied", r.err, r.errOut)
	}
	if r := write(1001, m.path("webshop/prod/API_KEY"), "evil"); !r.denied() {
		t.Errorf("write to a read rule's path: %v %s, want permission denied", r.err, r.errOut)
	}
	if v, _ := m.serverValue("dev", "/", "API_KEY"); v != "new-dev-value" {
		t.Errorf("after denied writes the server holds %q", v)
	}
	if v, _ := m.serverValue("prod", "/", "API_KEY"); v != canaryAPI {
		t.Errorf("after a denied write prod holds %q", v)
	}
	if r := runAs(1001, 1001, catPath(t), m.path("webshop/prod/API_KEY")); r.out != canaryAPI {
		t.Errorf("read under the read rule: %q %v", r.out, r.err)
	}
	// The kernel refused the denied writes by mode before any open; the
	// two allowed opens reached the daemon and were decided by rules 0, 1.
	lines := m.auditLines(auditPath, 2)
	want := []struct {
		path, mode string
		rule       int
	}{{"webshop/dev/API_KEY", "write", 0}, {"webshop/prod/API_KEY", "read", 1}}
	for i, w := range want {
		l := lines[i]
		if l.Path != w.path || l.Mode != w.mode || l.UID != 1001 || l.GID != 1001 || l.Rule == nil || *l.Rule != w.rule || l.Decision != "allow" {
			t.Errorf("audit line %d: %+v, want %+v by uid 1001", i, l, w)
		}
	}
	m.noCanary(auditPath)
}

// Rules on executables and their hashes are decided by the daemon at each
// open (the read-only mount sends opens to it because of them): copies of
// cat at another path or with another hash are refused with EACCES, each
// decision is one exact audit line, and .status counts denials by rule.
func TestAccessExecutableRules(t *testing.T) {
	app, appCopy, other := catCopies(t)
	m, auditPath := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/DATABASE_URL", Executables: []string{app}, Allow: "read"},               // 0
		{Path: "webshop/prod/API_KEY", SHA256: []string{testutil.FileSHA256(t, app)}, Allow: "read"}, // 1
		{Path: "webshop/prod/**", Allow: "none"},                                                     // 2
	}, func(c *config.Config) { c.FileMode = 0o444 })
	db, api := m.path("webshop/prod/DATABASE_URL"), m.path("webshop/prod/API_KEY")
	cases := []struct {
		prog, file, path string
		rule             int
		want             string
	}{
		{app, db, "webshop/prod/DATABASE_URL", 0, canaryProd},
		{other, db, "webshop/prod/DATABASE_URL", 2, ""},
		{appCopy, db, "webshop/prod/DATABASE_URL", 2, ""}, // same bytes, other path
		{appCopy, api, "webshop/prod/API_KEY", 1, canaryAPI},
		{other, api, "webshop/prod/API_KEY", 2, ""}, // other hash
	}
	pids := make([]int, len(cases))
	for i, c := range cases {
		r := runAs(1001, 1001, c.prog, c.file)
		pids[i] = r.pid
		if c.want == "" && !r.denied() || c.want != "" && r.out != c.want {
			t.Errorf("%s reading %s: %q %v %s, want %q", filepath.Base(c.prog), c.path, r.out, r.err, r.errOut, c.want)
		}
	}
	lines := m.auditLines(auditPath, len(cases))
	for i, c := range cases {
		l := lines[i]
		dec := "allow"
		if c.want == "" {
			dec = "deny"
		}
		if l.Path != c.path || l.Mode != "read" || l.UID != 1001 || l.GID != 1001 || l.PID != uint32(pids[i]) ||
			l.Exe != c.prog || l.Rule == nil || *l.Rule != c.rule || l.Decision != dec || l.Reason == "" || l.Cgroup == "" {
			t.Errorf("audit line %d: %+v\nwant path %s pid %d exe %s rule %d %s", i, l, c.path, pids[i], c.prog, c.rule, dec)
		}
	}
	doc := m.status()
	got := map[int]uint64{}
	for _, d := range doc.Access.Denials {
		got[d.Index] = d.Denied
	}
	if got[0] != 0 || got[1] != 0 || got[2] != 3 || got[-1] != 0 || doc.Access.Rules != 3 {
		t.Errorf(".status denials %+v, want 3 by access[2] and no other", doc.Access.Denials)
	}
	if doc.Access.Audit.Written < uint64(len(cases)) {
		t.Errorf(".status audit %+v", doc.Access.Audit)
	}
	// Denials are logged (rate-limited), naming the rule, never the value.
	if !strings.Contains(m.logs.String(), "access[2]") {
		t.Errorf("no log line names the denying rule:\n%s", m.logs)
	}
	m.noCanary(auditPath)
}

// A cgroup rule: the same program as the same user reads inside the
// cgroup and is refused outside it.
func TestAccessCgroupRule(t *testing.T) {
	cg, shown := testCgroup(t)
	m, auditPath := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/**", Cgroups: []string{shown}, Allow: "read"},
		{Path: "webshop/prod/**", Allow: "none"},
	}, func(c *config.Config) { c.FileMode = 0o444 })
	cat := catPath(t)
	db := m.path("webshop/prod/DATABASE_URL")
	// A root shell moves itself into the cgroup, then execs setpriv and cat:
	// the pid, and with it the cgroup, stays.
	in := exec.Command("/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec setpriv --reuid=1001 --regid=1001 --clear-groups -- "$1" "$2"`, cg, cat, db)
	var out, errb bytes.Buffer
	in.Stdout, in.Stderr = &out, &errb
	if err := in.Run(); err != nil || out.String() != canaryProd {
		t.Errorf("read inside the cgroup: %q %v %s", out.String(), err, errb.String())
	}
	if r := runAs(1001, 1001, cat, db); !r.denied() {
		t.Errorf("read outside the cgroup: %q %v, want permission denied", r.out, r.err)
	}
	lines := m.auditLines(auditPath, 2)
	if l := lines[0]; l.Cgroup != shown || l.Decision != "allow" || l.Rule == nil || *l.Rule != 0 {
		t.Errorf("inside: %+v", l)
	}
	if l := lines[1]; l.Cgroup == shown || l.Decision != "deny" || l.Rule == nil || *l.Rule != 1 {
		t.Errorf("outside: %+v", l)
	}
	m.noCanary(auditPath)
}

// testCgroup makes a cgroup v2 group and returns its directory and the
// path /proc/PID/cgroup shows for a member.
func testCgroup(t *testing.T) (dir, shown string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			root = f[1]
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 filesystem mounted")
	}
	// Where this process sits in that hierarchy ("0::/x"), so the new
	// group's shown path is exact.
	self, _ := os.ReadFile("/proc/self/cgroup")
	base := "/"
	for _, line := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			base = p
		}
	}
	name := fmt.Sprintf("infisicalfs-fs-test-%d", os.Getpid())
	dir = filepath.Join(root, base, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { syscall.Rmdir(dir) })
	return dir, filepath.Join(base, name)
}

// A rule reload reaches the kernel without a remount: the attributes it
// changes are invalidated, so the user allowed before is refused and the
// one refused before reads. A reload needing the daemon on a read-only
// mount that answers opens in the kernel is refused, and the old rules
// stay in force.
func TestAccessReload(t *testing.T) {
	m, _ := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/**", UIDs: []int64{1001}, Allow: "read"},
	}, nil)
	cat := catPath(t)
	db := m.path("webshop/prod/DATABASE_URL")
	// The refused user goes first: a refusal on stale attributes makes the
	// kernel refetch them by itself, an admission on stale ones would not,
	// so only this order needs the reload's invalidation.
	check := func(when string, allowed, refused int) {
		t.Helper()
		if r := runAs(refused, refused, cat, db); !r.denied() {
			t.Errorf("%s: uid %d read %q %v, want permission denied", when, refused, r.out, r.err)
		}
		if r := runAs(allowed, allowed, cat, db); r.out != canaryProd {
			t.Errorf("%s: uid %d read %q %v %s", when, allowed, r.out, r.err, r.errOut)
		}
	}
	check("before", 1001, 1002)
	swap := func(specs []access.Spec) error {
		rules, err := access.Compile(specs, m.fsys.AccessDefaults())
		if err != nil {
			t.Fatal(err)
		}
		err = m.fsys.SetAccess(rules)
		m.fsys.Flush()
		return err
	}
	if err := swap([]access.Spec{{Path: "webshop/prod/**", UIDs: []int64{1002}, Allow: "read"}}); err != nil {
		t.Fatal(err)
	}
	check("after the reload", 1002, 1001)
	err := swap([]access.Spec{{Path: "webshop/prod/**", Executables: []string{cat}, Allow: "read"}})
	if err != fs.ErrRemountNeeded {
		t.Errorf("a daemon rule on a kernel-answered read-only mount: %v, want ErrRemountNeeded", err)
	}
	check("after the refused reload", 1002, 1001)
}

// A folder's .env holds every value of the folder: a key ruled out for a
// user must not be readable through it.
func TestAccessViewAlias(t *testing.T) {
	m, _ := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/DATABASE_URL", UIDs: []int64{1001}, Allow: "none"},
	}, func(c *config.Config) { c.FileMode = 0o444 })
	cat := catPath(t)
	if r := runAs(1001, 1001, cat, m.path("webshop/prod/DATABASE_URL")); !r.denied() {
		t.Errorf("the key itself: %q %v, want permission denied", r.out, r.err)
	}
	if st := statOf(t, m.path("webshop/prod/.env")); st.Mode&0o777 != 0 {
		t.Errorf(".env mode %o: want 0 (no rule on the keys gives one mode to all)", st.Mode&0o777)
	}
	if r := runAs(1001, 1001, cat, m.path("webshop/prod/.env")); !r.denied() {
		t.Errorf("the folder's .env: %q %v, want permission denied", r.out, r.err)
	}
	if r := runAs(1001, 1001, cat, m.path("webshop/prod/API_KEY")); r.out != canaryAPI {
		t.Errorf("an unruled key: %q %v", r.out, r.err)
	}
	if r := runAs(1001, 1001, cat, m.path("webshop/dev/.env")); !strings.Contains(r.out, canaryDev) {
		t.Errorf("another folder's .env: %q %v", r.out, r.err)
	}
	// Root reads everything: the rules do not bind it (README).
	if got := m.readFile("webshop/prod/.env"); !strings.Contains(got, canaryProd) {
		t.Errorf("root reading .env: %q", got)
	}
}

// audit = "all-opens" on a read-only mount: every open reaches the daemon
// (one request per repeat read, no more: the pages stay cached) and is in
// the audit log, also without any rule.
func TestAccessAllOpens(t *testing.T) {
	m, auditPath := accessMount(t, true, nil, func(c *config.Config) { c.Audit = config.AuditAllOpens })
	if got := m.readFile("webshop/prod/DATABASE_URL"); got != canaryProd {
		t.Fatalf("read %q", got)
	}
	before := m.fsys.Requests()
	for range 3 {
		if got := m.readFile("webshop/prod/DATABASE_URL"); got != canaryProd {
			t.Fatalf("read %q", got)
		}
	}
	if n := m.fsys.Requests() - before; n != 3 {
		t.Errorf("3 repeat reads cost %d requests, want 3 (one OPEN each)", n)
	}
	lines := m.auditLines(auditPath, 4)
	for i, l := range lines {
		// FUSE stamps the thread: one of this test's.
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", l.PID))
		if l.Path != "webshop/prod/DATABASE_URL" || l.Decision != "allow" || l.Rule != nil || l.UID != 0 || err != nil || l.Exe == "" {
			t.Errorf("audit line %d: %+v", i, l)
		}
	}
	m.noCanary(auditPath)
}

// truncate(2) on a path changes a value without an open: where the rules
// need the daemon it is decided as a write, by the same rules as an open.
func TestAccessTruncateDecided(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("no perl to call truncate(2) with")
	}
	perl, _ = filepath.EvalSymlinks(perl)
	b, err := os.ReadFile(perl)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openUp(filepath.Join(dir, "x"))
	app := filepath.Join(dir, "app-perl")
	if err := os.WriteFile(app, b, 0o755); err != nil {
		t.Fatal(err)
	}
	m, auditPath := accessMount(t, false, []access.Spec{
		{Path: "webshop/dev/API_KEY", Executables: []string{app}, Allow: "write"},
		{Path: "webshop/dev/**", Allow: "none"},
	}, nil)
	file := m.path("webshop/dev/API_KEY")
	script := `truncate($ARGV[0], 6) or die "truncate: $!\n"`
	if r := runAs(1001, 1001, perl, "-e", script, file); r.err == nil || !strings.Contains(r.errOut, "Permission denied") {
		t.Errorf("perl truncating: %v %q, want permission denied", r.err, r.errOut)
	}
	if v, _ := m.serverValue("dev", "/", "API_KEY"); v != canaryDev {
		t.Errorf("after a denied truncate the server holds %q", v)
	}
	if r := runAs(1001, 1001, app, "-e", script, file); r.err != nil {
		t.Errorf("the allowed program truncating: %v %q", r.err, r.errOut)
	}
	if v, _ := m.serverValue("dev", "/", "API_KEY"); v != canaryDev[:6] {
		t.Errorf("after the allowed truncate the server holds %q", v)
	}
	lines := m.auditLines(auditPath, 2)
	if l := lines[0]; l.Exe != perl || l.Mode != "write" || l.Decision != "deny" || l.Rule == nil || *l.Rule != 1 {
		t.Errorf("denied truncate: %+v", l)
	}
	if l := lines[1]; l.Exe != app || l.Mode != "write" || l.Decision != "allow" || l.Rule == nil || *l.Rule != 0 {
		t.Errorf("allowed truncate: %+v", l)
	}
}

// .raw/KEY and .history/KEY/N hold KEY's value: a rule on KEY covers them
// (deny if the key's rules or the alias path's deny), and where the alias
// path is ruled otherwise than the key, only root reads it.
func TestAccessRawAndHistoryAliases(t *testing.T) {
	m, _ := accessMount(t, true, []access.Spec{
		{Path: "webshop/prod/DATABASE_URL", UIDs: []int64{1001}, Allow: "none"},
	}, func(c *config.Config) { c.FileMode = 0o444 })
	cat := catPath(t)
	for _, p := range []string{"webshop/prod/DATABASE_URL", "webshop/prod/.raw/DATABASE_URL", "webshop/prod/.history/DATABASE_URL/1"} {
		if r := runAs(1001, 1001, cat, m.path(p)); !r.denied() {
			t.Errorf("uid 1001 reading %s: %q %v, want permission denied", p, r.out, r.err)
		}
	}
	for _, p := range []string{"webshop/prod/API_KEY", "webshop/prod/.raw/API_KEY", "webshop/prod/.history/API_KEY/1"} {
		if r := runAs(1001, 1001, cat, m.path(p)); r.out != canaryAPI {
			t.Errorf("uid 1001 reading %s: %q %v %s", p, r.out, r.err, r.errOut)
		}
	}
	if r := runAs(1002, 1002, cat, m.path("webshop/prod/DATABASE_URL")); r.out != canaryProd {
		t.Errorf("uid 1002 reading the key: %q %v", r.out, r.err)
	}
	// The alias path matches no rule but the key does: tighter, never looser.
	if r := runAs(1002, 1002, cat, m.path("webshop/prod/.raw/DATABASE_URL")); !r.denied() {
		t.Errorf("uid 1002 reading .raw/DATABASE_URL: %q %v, want permission denied", r.out, r.err)
	}
	if got := m.readFile("webshop/prod/.raw/DATABASE_URL"); got != canaryProd {
		t.Errorf("root reading .raw: %q", got)
	}
}

// The raw value as an xattr is a value: on a path whose rules need the
// daemon, getxattr(user.infisical.raw) is decided like a read.
func TestAccessRawXattrDecided(t *testing.T) {
	getfattr, err := exec.LookPath("getfattr")
	if err != nil {
		t.Skip("no getfattr")
	}
	getfattr, _ = filepath.EvalSymlinks(getfattr)
	b, err := os.ReadFile(getfattr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openUp(filepath.Join(dir, "x"))
	app := filepath.Join(dir, "app-getfattr")
	if err := os.WriteFile(app, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const raw = "postgres://${API_KEY}@db"
	m, auditPath := accessMount(t, false, []access.Spec{
		{Path: "webshop/prod/**", Executables: []string{app}, Allow: "read"},
		{Path: "webshop/prod/**", Allow: "none"},
	}, nil)
	m.srv.SetSecret(m.project, "prod", "/", "DATABASE_URL", raw)
	m.refresh()
	file := m.path("webshop/prod/DATABASE_URL")
	args := []string{"--only-values", "-n", "user.infisical.raw", file}
	if r := runAs(1001, 1001, getfattr, args...); r.err == nil || !strings.Contains(r.errOut, "Permission denied") {
		t.Errorf("getfattr: %q %v %q, want permission denied", r.out, r.err, r.errOut)
	}
	if r := runAs(1001, 1001, app, args...); r.err != nil || r.out != raw {
		t.Errorf("the allowed getfattr: %q %v %q", r.out, r.err, r.errOut)
	}
	// getfattr asks for the size, then the value: two allowed calls.
	lines := m.auditLines(auditPath, 3)
	if l := lines[0]; l.Exe != getfattr || l.Decision != "deny" || l.Path != "webshop/prod/DATABASE_URL" || l.Rule == nil || *l.Rule != 1 {
		t.Errorf("audit: %+v", l)
	}
	for _, l := range lines[1:] {
		if l.Exe != app || l.Decision != "allow" || l.Rule == nil || *l.Rule != 0 {
			t.Errorf("audit: %+v", l)
		}
	}
	if bytes, _ := os.ReadFile(auditPath); strings.Contains(string(bytes), raw) {
		t.Error("the audit file holds the raw value")
	}
}
