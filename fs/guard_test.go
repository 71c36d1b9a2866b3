package fs_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// Issue 18: a write derived from a read never reverts a change the mount
// has not seen. Each case: the mount holds version 1 (its refresh interval
// is an hour, so it stays stale), someone rotates the secret in Infisical,
// then a real program edits the mounted file. The edit must fail visibly,
// leave Infisical's newer value untouched, bring the newer value into the
// mount at once, and work when re-run.

const (
	oldValue     = "postgres://app:OLD-PASSWORD@db1/shop"
	rotatedValue = "postgres://app:NEW-PASSWORD@db1/shop"
)

func seedGuard(srv *infisicaltest.Server, pid string) {
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", oldValue)
}

// rotate changes the secret out of band and checks the mount did not see it.
func (m *testMount) rotate(t *testing.T) {
	t.Helper()
	if got := m.readFile("webshop/dev/DATABASE_URL"); got != oldValue {
		t.Fatalf("before the rotation the mount shows %q", got)
	}
	m.srv.SetSecret(m.project, "dev", "/", "DATABASE_URL", rotatedValue)
	if got := m.readFile("webshop/dev/DATABASE_URL"); got != oldValue {
		t.Fatalf("the mount saw the rotation without a refresh: %q", got)
	}
}

// refused checks the aftermath of a refused edit.
func (m *testMount) refused(t *testing.T, what string, out string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s after an out-of-band change succeeded:\n%s", what, out)
	}
	if v, _ := m.serverValue("dev", "/", "DATABASE_URL"); v != rotatedValue {
		t.Fatalf("%s reverted the rotation: server holds %q", what, v)
	}
	if !strings.Contains(m.logs.String(), "DATABASE_URL changed in Infisical (version 1 → 2) since it was read; re-read and retry") &&
		!strings.Contains(m.logs.String(), "changed in Infisical since it was opened") {
		t.Errorf("%s: the log does not say why:\n%s", what, m.logs.String())
	}
	m.fsys.Flush()
	if got := m.readFile("webshop/dev/DATABASE_URL"); got != rotatedValue {
		t.Errorf("%s: after the refusal the mount shows %q, want the newer value", what, got)
	}
}

func TestStaleEditsAreRefused(t *testing.T) {
	vim := "vim -u NONE -i NONE -N -es -c 'set backupcopy=auto backupskip= nobackup writebackup' -c '%s/db1/db2/' -c 'wq' DATABASE_URL"
	cases := []struct {
		name, script string
		want         string // after the re-run
	}{
		{"sed -i", "sed -i 's/db1/db2/' DATABASE_URL", strings.Replace(rotatedValue, "db1", "db2", 1)},
		{"vim -es", vim, strings.Replace(rotatedValue, "db1", "db2", 1)},
		{"append", "echo '?sslmode=on' >> DATABASE_URL", rotatedValue + "?sslmode=on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mountForTest(t, withSeed(seedGuard))
			dir := m.path("webshop", "dev")
			m.rotate(t)
			cmd := shIn(dir, tc.script)
			out, err := cmd.CombinedOutput()
			m.refused(t, tc.name, string(out), err)
			if out, err := shIn(dir, tc.script).CombinedOutput(); err != nil {
				t.Fatalf("%s re-run on the fresh value: %v\n%s", tc.name, err, out)
			}
			m.both("dev", "/", "DATABASE_URL", tc.want)
		})
	}
}

// A Go program's O_RDWR edit: close reports ESTALE.
func TestStaleReadWriteEditIsRefused(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	m.rotate(t)
	edit := func() error {
		f, err := os.OpenFile(m.path("webshop/dev/DATABASE_URL"), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		b := make([]byte, 64)
		n, _ := f.Read(b)
		if _, err := f.WriteAt([]byte(strings.Replace(string(b[:n]), "db1", "db9", 1)), 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	err := edit()
	if err == nil || !strings.Contains(err.Error(), "stale file handle") {
		t.Fatalf("O_RDWR edit of a stale value: close = %v, want ESTALE", err)
	}
	m.refused(t, "O_RDWR edit", "", err)
	if err := edit(); err != nil {
		t.Fatalf("O_RDWR edit re-run: %v", err)
	}
	m.both("dev", "/", "DATABASE_URL", strings.Replace(rotatedValue, "db1", "db9", 1))
}

// rm and mv of a key that changed since the mount saw it are refused too.
func TestStaleRemoveAndMoveAreRefused(t *testing.T) {
	for _, script := range []string{"rm DATABASE_URL", "mv DATABASE_URL DB_URL"} {
		t.Run(script, func(t *testing.T) {
			m := mountForTest(t, withSeed(seedGuard))
			m.rotate(t)
			out, err := shIn(m.path("webshop", "dev"), script).CombinedOutput()
			m.refused(t, script, string(out), err)
			if !strings.Contains(string(out), "Stale file handle") {
				t.Errorf("%s said %q, want the errno ESTALE", script, out)
			}
			if out, err := shIn(m.path("webshop", "dev"), script).CombinedOutput(); err != nil {
				t.Fatalf("%s re-run: %v\n%s", script, err, out)
			}
			m.goneBoth("dev", "/", "DATABASE_URL")
		})
	}
}

// Blind overwrites stay last-writer-wins, and cost no check.
func TestBlindOverwriteLandsWithoutACheck(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	m.rotate(t)
	m.srv.ResetRequests()
	m.mustSh("cd webshop/dev && echo 'postgres://replaced' > DATABASE_URL")
	m.both("dev", "/", "DATABASE_URL", "postgres://replaced")
	if n := m.srv.Count("GET", "/api/v4/secrets"); n != 0 {
		t.Errorf("a blind overwrite made %d listings, want none", n)
	}
}

// A guarded write costs one small request beyond the push: a GET of that
// secret, however large the environment, also right after this mount's own
// previous write.
func TestGuardedWriteCostsOneSmallRequest(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	m.readFile("webshop/dev/DATABASE_URL")
	for i, sub := range []string{"db3", "db4"} {
		m.srv.ResetRequests()
		m.mustSh("cd webshop/dev && sed -i 's/db[0-9]/" + sub + "/' DATABASE_URL")
		m.both("dev", "/", "DATABASE_URL", strings.Replace(oldValue, "db1", sub, 1))
		var gets, lists, other int
		for _, r := range m.srv.Requests() {
			switch {
			case r.Method == "GET" && r.Path == "/api/v4/secrets/DATABASE_URL":
				gets++
			case r.Method == "GET" && r.Path == "/api/v4/secrets":
				lists++
			case r.Method == "PATCH":
			default:
				other++
			}
		}
		if gets != 1 || lists != 0 || other != 0 {
			t.Errorf("edit %d: %d GETs of the secret, %d listings, %d other requests; want 1, 0, 0", i+1, gets, lists, other)
		}
	}
}

// Issue 12: after a failed contact, an open for writing asks Infisical
// once instead of trusting the failure until the next cycle (an hour
// here): refused while Infisical is down, accepted the moment it answers.
func TestWritesLandRightAfterRecovery(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	m.srv.SetOutage(true)
	if err := m.sync.Sync(context.Background(), false); err == nil {
		t.Fatal("a sync during the outage succeeded")
	}
	dir := m.path("webshop", "dev")
	for i := 0; i < 2; i++ {
		if out, err := shIn(dir, "echo during-outage > DATABASE_URL").CombinedOutput(); err == nil {
			t.Fatalf("a write during the outage was accepted: %s", out)
		}
	}
	if n := strings.Count(m.logs.String(), "refusing writes: Infisical did not answer a probe"); n != 1 {
		t.Errorf("two refused opens in one outage logged %d times, want once", n)
	}
	m.srv.SetOutage(false)
	if out, err := shIn(dir, "echo after-outage > DATABASE_URL").CombinedOutput(); err != nil {
		t.Fatalf("the first write after the outage failed: %v\n%s", err, out)
	}
	m.both("dev", "/", "DATABASE_URL", "after-outage")
	if st := m.sync.Status(); !st.Stale {
		t.Error("one write's probe made the whole mount look fresh; only a sync cycle does")
	}
}

// Another writer (another mount, the CLI) lands between the version check
// and the PATCH: their change is put back and this edit fails, as if the
// check had seen it. The server ends with their value, and its history
// shows what happened.
func TestWriterBetweenCheckAndPatchIsNotLost(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	m.readFile("webshop/dev/DATABASE_URL")
	var once sync.Once
	m.srv.BeforeRequest(func(r *http.Request) {
		if r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/DATABASE_URL") {
			once.Do(func() { m.srv.SetSecret(m.project, "dev", "/", "DATABASE_URL", rotatedValue) })
		}
	})
	out, err := shIn(m.path("webshop", "dev"), "sed -i 's/db1/db7/' DATABASE_URL").CombinedOutput()
	m.srv.BeforeRequest(nil)
	if err == nil {
		t.Fatalf("an edit that overwrote a concurrent change succeeded:\n%s", out)
	}
	if v, _ := m.serverValue("dev", "/", "DATABASE_URL"); v != rotatedValue {
		t.Fatalf("the concurrent change was lost: server holds %q", v)
	}
	m.fsys.Flush()
	if got := m.readFile("webshop/dev/DATABASE_URL"); got != rotatedValue {
		t.Errorf("the mount shows %q, want the restored value", got)
	}
	if out, err := shIn(m.path("webshop", "dev"), "sed -i 's/db1/db7/' DATABASE_URL").CombinedOutput(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	m.both("dev", "/", "DATABASE_URL", strings.Replace(rotatedValue, "db1", "db7", 1))
}

// A write open on a key that an editor then moves aside to save it (vim:
// rename KEY KEY~) would write into the editor's backup, which the editor
// deletes: close() fails with ESTALE instead of reporting a write that
// reached nothing, and Infisical keeps its value. In the two-mount soak,
// `dd` beside vim lost its token this way with exit 0. (An append was
// refused already, by its version check; a blind overwrite was not.)
func TestWriteToAKeyMovedAsideFails(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	if err := writeAcross(t, dir, "mv DATABASE_URL DATABASE_URL~", " appended"); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("close of a write to a key moved aside = %v, want ESTALE", err)
	}
	if !strings.Contains(m.logs.String(), "moved aside while open for writing") {
		t.Error("the refusal is not logged")
	}
	m.untouched(t)
	if got, err := os.ReadFile(filepath.Join(dir, "DATABASE_URL~")); err != nil || strings.Contains(string(got), "appended") {
		t.Errorf("the moved-aside copy = %q, %v: the refused bytes must not be in it", got, err)
	}
}

// sed -i renaming its result onto a key that another program is saving
// right now (vim: the key moved aside, a new file created in its place and
// still open) is refused: the rename would unlink the editor's file while
// it writes, and the editor's recovery from the failed save would then
// delete the secret. In the two-mount soak that was the last DELETE.
func TestRenameOntoAKeyBeingSavedIsRefused(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	saver := startProc(t, dir, "sh", "-c", "mv DATABASE_URL DATABASE_URL~ && exec 3>DATABASE_URL && echo ready && exec sleep 30")
	saver.expect(t, "ready\n")
	sedOut, err := shIn(dir, "sed -i s/OLD/SED/ DATABASE_URL").CombinedOutput()
	if err == nil {
		t.Errorf("sed -i onto a key being saved succeeded: %s", sedOut)
	}
	if !strings.Contains(m.logs.String(), "another program is saving this key right now") {
		t.Error("the refusal is not logged")
	}
	m.untouched(t)
}

// A write open on a key that another program replaces meanwhile (sed -i's
// rename onto it) reaches nothing, as on a local disk; close() says so
// with ESTALE instead of reporting success, and the replacement stays.
func TestWriteToAReplacedKeyFails(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	if err := writeAcross(t, dir, "sed -i s/OLD/SED/ DATABASE_URL", "mine"); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("close of a write to a replaced key = %v, want ESTALE", err)
	}
	m.both("dev", "/", "DATABASE_URL", strings.Replace(oldValue, "OLD", "SED", 1))
}

// A secret an editor has just moved aside to save it (vim: rename KEY
// KEY~) is still that secret to every other program: the kernel may have
// resolved `>> KEY` before the move and open the node after it. A write
// there by another process fails instead of landing in the backup.
func TestWriteToABackupBeingSavedFails(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	// This process is the editor: it moves the key aside and stays alive.
	if err := os.Rename(filepath.Join(dir, "DATABASE_URL"), filepath.Join(dir, "DATABASE_URL~")); err != nil {
		t.Fatal(err)
	}
	appendToBackup := func(when string) {
		t.Helper()
		out, err := shIn(dir, `printf ' late' | dd of=DATABASE_URL~ oflag=append conv=notrunc status=none`).CombinedOutput()
		if err == nil {
			t.Errorf("%s: another program's append to the moved-aside secret succeeded: %s", when, out)
		}
	}
	appendToBackup("after the move")
	// vim's next step, its new file in the key's place, still open: the
	// backup is still the secret to everyone else.
	f, err := os.OpenFile(filepath.Join(dir, "DATABASE_URL"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	appendToBackup("with the editor's new file open")
	if got, err := os.ReadFile(filepath.Join(dir, "DATABASE_URL~")); err != nil || string(got) != oldValue {
		t.Errorf("the moved-aside copy = %q, %v; want %q", got, err, oldValue)
	}
	m.untouched(t)
}

// A process that read a key and renames its edit onto it later is checked
// against what it read, even if another program replaced the key's file in
// between (sed -i): the replacement must not lend it a newer base. In the
// two-mount soak, such edits dropped tokens with a clean-looking push.
func TestEditCheckedAgainstItsOwnRead(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	editor := startProc(t, dir, "perl", "-e", readThenRename)
	editor.expect(t, "read "+oldValue+"\n")
	if out, err := shIn(dir, "sed -i s/OLD/SED/ DATABASE_URL").CombinedOutput(); err != nil {
		t.Fatalf("sed -i: %v\n%s", err, out)
	}
	editor.renameRefused(t, "the rename of an edit of an older read")
	m.both("dev", "/", "DATABASE_URL", strings.Replace(oldValue, "OLD", "SED", 1))
}

// A read while another program saves the key (its new file not pushed yet)
// serves what Infisical holds, and that version is what the reader's own
// edit is checked against later: once the save lands, the reader's rename
// of an edit of the older value is refused instead of replacing the save.
func TestReadDuringAnotherSaveIsTheReadersBase(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	saver := startProc(t, dir, "sh", "-c", `mv DATABASE_URL DATABASE_URL~ && exec 3>DATABASE_URL && echo ready && read x && printf saved >&3 && exec 3>&- && rm DATABASE_URL~ && echo done`)
	saver.expect(t, "ready\n")
	editor := startProc(t, dir, "perl", "-e", readThenRename)
	editor.expect(t, "read "+oldValue+"\n") // Infisical's value, not the unpushed file
	saver.in.Write([]byte("\n"))
	saver.expect(t, "done\n")
	if v, _, _ := m.srv.Secret(m.project, "dev", "/", "DATABASE_URL"); v != "saved" {
		t.Fatalf("the save did not land: server has %q", v)
	}
	editor.renameRefused(t, "the reader's rename of an edit of the value before the save")
	if v, _, _ := m.srv.Secret(m.project, "dev", "/", "DATABASE_URL"); v != "saved" {
		t.Errorf("server has %q, want the save kept", v)
	}
}

// A rename onto a key that an editor has moved aside and is about to write
// again (vim between rename KEY KEY~ and creating KEY) is refused: it would
// make the editor's write an edit of a value it never read.
func TestRenameOntoAKeyMovedAsideIsRefused(t *testing.T) {
	m := mountForTest(t, withSeed(seedGuard))
	dir := m.path("webshop", "dev")
	sed := startProc(t, dir, "perl", "-e", readThenRename)
	sed.expect(t, "read "+oldValue+"\n")
	// The editor: moves the key aside, as vim does before writing it again.
	vim := startProc(t, dir, "perl", "-e", `rename("DATABASE_URL", "DATABASE_URL~") or die "rename: $!\n"; $| = 1; print "aside\n"; sleep 30;`)
	vim.expect(t, "aside\n")
	sed.renameRefused(t, "rename onto a key an editor moved aside")
	m.untouched(t)
}

// proc is a helper process driven line by line through its stdin and
// stdout (a saving editor, a reader that renames later).
type proc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.Reader
	stderr *strings.Builder
}

// untouched checks that Infisical still holds seedGuard's DATABASE_URL.
func (m *testMount) untouched(t *testing.T) {
	t.Helper()
	if v, _ := m.serverValue("dev", "/", "DATABASE_URL"); v != oldValue {
		t.Errorf("server has %q, want %q untouched", v, oldValue)
	}
}

// writeAcross opens dir/DATABASE_URL to overwrite it, runs script in dir
// meanwhile, writes data through the open file and returns close()'s error.
func writeAcross(t *testing.T, dir, script, data string) error {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "DATABASE_URL"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := shIn(dir, script).CombinedOutput(); err != nil {
		f.Close()
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		f.Close()
		t.Fatalf("write: %v", err)
	}
	return f.Close()
}

// startProc starts argv in dir; it is killed at the end of the test.
func startProc(t *testing.T, dir string, argv ...string) *proc {
	t.Helper()
	// Through shIn, not cmd.Dir (see shIn); exec keeps the process.
	p := &proc{cmd: shIn(dir, `exec "$@"`, argv...), stderr: &strings.Builder{}}
	p.cmd.Stderr = p.stderr
	p.in, _ = p.cmd.StdinPipe()
	p.out, _ = p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

// expect reads exactly want from the process's stdout.
func (p *proc) expect(t *testing.T, want string) {
	t.Helper()
	b := make([]byte, len(want))
	if _, err := io.ReadFull(p.out, b); err != nil || string(b) != want {
		t.Fatalf("read %q, %v; want %q (stderr %q)", b, err, want, p.stderr.String())
	}
}

// readThenRename is a perl program that reads DATABASE_URL, prints
// "read VALUE", waits for a line, then writes its edit to a scratch file
// and renames it onto the key, as sed -i does; perl-base is in every
// Debian.
const readThenRename = `
	open(my $in, "<", "DATABASE_URL") or die "open: $!\n"; my $v = <$in>; close($in);
	$| = 1; print "read $v\n"; <STDIN>;
	open(my $out, ">", ".DATABASE_URL.tmp") or die "create: $!\n"; print $out "$v EDITED"; close($out) or die "close: $!\n";
	rename(".DATABASE_URL.tmp", "DATABASE_URL") or die "rename: $!\n";`

// renameRefused tells the reader to go on and checks its rename failed
// with ESTALE.
func (p *proc) renameRefused(t *testing.T, what string) {
	t.Helper()
	p.in.Write([]byte("go\n"))
	p.in.Close()
	if err := p.cmd.Wait(); err == nil || !strings.Contains(p.stderr.String(), "Stale file handle") {
		t.Errorf("%s: %v %q, want ESTALE", what, err, p.stderr.String())
	}
}

// Under .raw/, a read while another program saves the key serves the raw
// value Infisical holds, references unexpanded, as any .raw/ read does.
func TestRawReadDuringAnotherSaveIsRaw(t *testing.T) {
	m := mountForTest(t, withSeed(seedRefs))
	dir := m.path("webshop", "dev", ".raw")
	saver := startProc(t, dir, "sh", "-c", "mv GREETING GREETING~ && exec 3>GREETING && echo ready && exec sleep 30")
	saver.expect(t, "ready\n")
	got, err := os.ReadFile(filepath.Join(dir, "GREETING"))
	if err != nil || string(got) != "hello ${API_KEY}" {
		t.Errorf(".raw/GREETING while another program saves it = %q, %v; want the raw value", got, err)
	}
}
