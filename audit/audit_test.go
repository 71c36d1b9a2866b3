package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

const canary = "CANARY-v4lue-9f3e1d" // stands for a secret value and for caller-set text

func readLines(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestRecordLines decides real opens for a real process whose argv and
// environment carry a canary (things a caller controls), writes them, and
// reads the lines back field by field.
func TestRecordLines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's /proc/PID/exe")
	}
	sleep, _ := exec.LookPath("sleep")
	sleep, _ = filepath.EvalSymlinks(sleep)
	cmd := exec.Command("bash", "-c", "exec -a "+canary+" "+sleep+" 300")
	cmd.Env = append(os.Environ(), "PASSWORD="+canary)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; ; i++ {
		// exe changes at exec before cmdline does: wait for both.
		p, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if p == sleep && strings.Contains(string(argv), canary) {
			break
		}
		if i == 2500 {
			t.Fatalf("process %d never ran %s", cmd.Process.Pid, sleep)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); !strings.Contains(string(b), canary) {
		t.Fatalf("the caller's argv %q should carry the canary", b)
	}
	rs, err := access.Compile([]access.Spec{
		{Path: "webshop/prod/**", Executables: []string{sleep}, Allow: "read"},
		{Path: "webshop/**", Allow: "none"},
	}, access.Defaults{FileMode: 0o600, DirMode: 0o700})
	if err != nil {
		t.Fatal(err)
	}
	eng := access.NewEngine(rs)
	eng.IdentifyAlways(true)
	caller := access.Caller{PID: uint32(cmd.Process.Pid)}

	// The secret's value exists in the test, as it does in the daemon;
	// the audit path must never get to it.
	secretFile := filepath.Join(t.TempDir(), "DATABASE_URL")
	os.WriteFile(secretFile, []byte(canary), 0o600)

	var logBuf testutil.Buffer
	p := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	l, err := Open(Options{Path: p, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	opens := []struct {
		path  string
		flags uint32
	}{{"webshop/prod/DATABASE_URL", 0}, {"webshop/prod/DATABASE_URL", 2}, {"webshop/dev/K", 0}, {"other/K", 1}}
	for _, o := range opens {
		m := ModeOf(o.flags)
		l.Record(Of(o.path, m, caller, eng.Decide(o.path, caller, m.Wants())))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, p)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	cg := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		for _, ln := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(ln, "0::"); ok {
				return v
			}
		}
		return ""
	}()
	want := []map[string]any{
		{"path": "webshop/prod/DATABASE_URL", "mode": "read", "rule": 0.0, "decision": "allow"},
		{"path": "webshop/prod/DATABASE_URL", "mode": "read-write", "rule": 0.0, "decision": "deny"},
		{"path": "webshop/dev/K", "mode": "read", "rule": 1.0, "decision": "deny"},
		{"path": "other/K", "mode": "write", "rule": nil, "decision": "allow"}, // root, no rule: modes
	}
	keys := []string{"time", "path", "mode", "uid", "gid", "pid", "executable", "cgroup", "rule", "decision", "reason"}
	for i, ln := range lines {
		if len(ln) != len(keys) {
			t.Errorf("line %d has keys %v, want exactly %v", i, ln, keys)
		}
		for k, v := range want[i] {
			if ln[k] != v {
				t.Errorf("line %d %s = %v, want %v", i, k, ln[k], v)
			}
		}
		if ln["uid"] != 0.0 || ln["gid"] != 0.0 || ln["pid"] != float64(cmd.Process.Pid) ||
			ln["executable"] != sleep || ln["cgroup"] != cg || ln["reason"] == "" {
			t.Errorf("line %d: caller fields %v, want uid 0 gid 0 pid %d exe %s cgroup %q", i, ln, cmd.Process.Pid, sleep, cg)
		}
		ts, err := time.Parse(time.RFC3339Nano, ln["time"].(string))
		if err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now()) || !strings.HasSuffix(ln["time"].(string), "Z") {
			t.Errorf("line %d time %v: %v", i, ln["time"], err)
		}
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode().Perm())
	}
	// Two denials: one log line each (different rules).
	if n := strings.Count(logBuf.String(), "access denied"); n != 2 {
		t.Errorf("%d denial lines, want 2:\n%s", n, logBuf.String())
	}
	raw, _ := os.ReadFile(p)
	for name, b := range map[string]string{"audit file": string(raw), "log": logBuf.String()} {
		if strings.Contains(b, canary) {
			t.Errorf("%s holds the canary: %s", name, b)
		}
	}
}

// TestRecordHasNoValueField: the type is the guarantee, so check it.
func TestRecordHasNoValueField(t *testing.T) {
	allowed := map[reflect.Kind]bool{reflect.String: true, reflect.Uint32: true, reflect.Int: true, reflect.Bool: true, reflect.Uint8: true}
	rt := reflect.TypeOf(Record{})
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Type == reflect.TypeOf(time.Time{}) {
			continue
		}
		if !allowed[f.Type.Kind()] {
			t.Errorf("Record.%s is a %s: a record must not be able to carry bytes or arbitrary data", f.Name, f.Type)
		}
	}
	want := []string{"Time", "Path", "Mode", "UID", "GID", "PID", "Exe", "Cgroup", "Rule", "Allowed", "Reason"}
	if rt.NumField() != len(want) {
		t.Errorf("Record has %d fields, the audited set is %v: review a new field for values", rt.NumField(), want)
	}
}

// rec makes records of one length for i < 100, so that sizes add up.
func rec(i int, allowed bool) Record {
	return Record{Time: time.Unix(1700000000, 123456789), Path: fmt.Sprintf("p/K%02d", i), UID: uint32(i % 7), PID: uint32(100 + i), Rule: 0, Allowed: allowed}
}

func TestRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	one, _ := rec(0, true).marshal()
	// Each file holds 10 lines; 55 lines fill the current file and 5 rotations.
	l, err := Open(Options{Path: p, MaxSize: int64(10 * len(one)), Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 55; i++ {
		l.Record(rec(i, true))
		l.Sync() // one at a time: this test is about rotation, not the buffer
	}
	l.Close()
	// Newest in p, then p.1 (the ten before), p.2, p.3; older ones gone.
	next := 54
	for _, f := range []string{p, p + ".1", p + ".2", p + ".3"} {
		lines := readLines(t, f)
		st, _ := os.Stat(f)
		if st.Mode().Perm() != 0o600 || st.Size() > int64(10*len(one)) {
			t.Errorf("%s: mode %v size %d", f, st.Mode().Perm(), st.Size())
		}
		for j := len(lines) - 1; j >= 0; j-- {
			if got := lines[j]["path"]; got != fmt.Sprintf("p/K%02d", next) {
				t.Fatalf("%s line %d is %v, want p/K%02d", f, j, got, next)
			}
			next--
		}
	}
	if next != 54-35 {
		t.Errorf("kept files hold %d records, want 5+10+10+10", 54-next)
	}
	if _, err := os.Stat(p + ".4"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.4 exists: keep is 3", p)
	}
}

func TestConcurrentRecords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{Path: p, MaxSize: 4096, Keep: 1000, Buffer: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Record(rec(i, i%3 != 0))
			}
		}()
	}
	wg.Wait()
	l.Close()
	s := l.Stats()
	files, _ := filepath.Glob(p + "*")
	var n uint64
	for _, f := range files {
		n += uint64(len(readLines(t, f))) // every line whole JSON
	}
	if s.Written+s.Dropped != 4000 || n != s.Written || s.Failed != 0 {
		t.Fatalf("stats %+v, %d lines in %d files: want written+dropped = 4000 and every written line there", s, n, len(files))
	}
}

// blockingWriter holds every write until released.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

// TestRecordNeverBlocks: a writer stuck on its output (a full pipe, a hung
// disk) must not hold up the FUSE requests that record.
func TestRecordNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	l, err := Open(Options{Path: "-", Stderr: w, Buffer: 8})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			l.Record(rec(i, true))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked behind a stuck writer")
	}
	close(w.release)
	l.Close()
	s := l.Stats()
	if s.Dropped == 0 || s.Written+s.Dropped != 1000 {
		t.Fatalf("stats %+v: want drops counted and none lost uncounted", s)
	}
	if n := strings.Count(w.buf.String(), "\n"); uint64(n) != s.Written {
		t.Fatalf("%d lines on stderr, %d written", n, s.Written)
	}
}

// flakyWriter fails its first n writes.
type flakyWriter struct {
	n   int
	buf bytes.Buffer
}

func (w *flakyWriter) Write(b []byte) (int, error) {
	if w.n > 0 {
		w.n--
		return 0, errors.New("disk on fire")
	}
	return w.buf.Write(b)
}

func TestWriteErrorReportedOnce(t *testing.T) {
	var logBuf testutil.Buffer
	w := &flakyWriter{n: 5}
	l, _ := Open(Options{Path: "-", Stderr: w, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	for i := 0; i < 8; i++ {
		l.Record(rec(i, true))
		l.Sync()
	}
	l.Close()
	out := logBuf.String()
	if strings.Count(out, "write failed") != 1 || strings.Count(out, "writing again") != 1 || !strings.Contains(out, "lost=5") {
		t.Fatalf("log:\n%s\nwant one failure line, one recovery line with lost=5", out)
	}
	if s := l.Stats(); s.Failed != 5 || s.Written != 3 || strings.Count(w.buf.String(), "\n") != 3 {
		t.Fatalf("stats %+v, output %q", s, w.buf.String())
	}
}

func TestDenialRateLimited(t *testing.T) {
	var logBuf testutil.Buffer
	l, _ := Open(Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil)), DenialInterval: time.Minute})
	t0 := time.Unix(1700000000, 0)
	deny := func(dt time.Duration, uid uint32, rule int) {
		l.Record(Record{Time: t0.Add(dt), Path: "a/K", UID: uid, Exe: "/usr/bin/x", Rule: rule})
	}
	for i := 0; i < 5; i++ {
		deny(time.Duration(i)*time.Second, 1001, 2) // one line, four suppressed
	}
	deny(2*time.Second, 1002, 2)                                                                  // another caller: its own line
	deny(3*time.Second, 1001, 3)                                                                  // another rule: its own line
	deny(61*time.Second, 1001, 2)                                                                 // the interval passed: a line saying 4 were held back
	l.Record(Record{Time: t0, Path: "a/K", UID: 1001, Exe: "/usr/bin/x", Rule: 2, Allowed: true}) // allows never log
	l.Close()
	out := logBuf.String()
	if n := strings.Count(out, "access denied"); n != 4 {
		t.Fatalf("%d denial lines, want 4:\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=4") {
		t.Fatalf("no line counts the 4 suppressed denials:\n%s", out)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "elsewhere"), link)
	if _, err := Open(Options{Path: link}); err == nil {
		t.Error("a symlink at the audit path was followed")
	}
	if _, err := Open(Options{Path: dir}); err == nil {
		t.Error("a directory was accepted as the audit file")
	}
	// An existing file that others could read is made owner-only.
	p := filepath.Join(dir, "old.jsonl")
	os.WriteFile(p, []byte("{}\n"), 0o644)
	l, err := Open(Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}
