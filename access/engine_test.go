package access

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

var testDefaults = Defaults{UID: 0, GID: 0, FileMode: 0o600, DirMode: 0o700}

func mustEngine(t testing.TB, specs []Spec) *Engine {
	t.Helper()
	rs, err := Compile(specs, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	return NewEngine(rs)
}

type want struct {
	path      string
	write     bool
	allowed   bool
	ruleIndex int
}

func checkDecisions(t *testing.T, e *Engine, who string, c Caller, wants []want) {
	t.Helper()
	for _, w := range wants {
		d := e.Decide(w.path, c, w.write)
		if d.Allowed != w.allowed || d.RuleIndex != w.ruleIndex {
			t.Errorf("%s: Decide(%q, write=%v) = allowed %v by rule %d (%s; unknown %q), want allowed %v by rule %d",
				who, w.path, w.write, d.Allowed, d.RuleIndex, d.Reason, d.Unknown, w.allowed, w.ruleIndex)
		}
	}
}

// TestDecideRuleKinds runs real processes (copies of sleep at different
// paths and with different contents, as different users, in different
// cgroups) and checks the decision of each rule kind for each of them.
func TestDecideRuleKinds(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, map[string]string{"other/sleep": "x"}, "app/sleep", "same/sleep", "other/sleep")
	// same/sleep has app/sleep's content at another path; other/sleep differs.
	appHash := testutil.FileSHA256(t, bins["app/sleep"])
	if appHash == testutil.FileSHA256(t, bins["other/sleep"]) {
		t.Fatal("the copies should differ in hash")
	}
	cg := testCgroup(t)

	e := mustEngine(t, []Spec{
		{Path: "exe/**", Executables: []string{bins["app/sleep"]}, Allow: "read"},     // 0
		{Path: "exe/**", Allow: "none"},                                               // 1
		{Path: "hash/*", SHA256: []string{appHash}, Allow: "write"},                   // 2
		{Path: "hash/*", Allow: "none"},                                               // 3
		{Path: "uid/**", UIDs: []int64{1}, Allow: "write"},                            // 4: daemon
		{Path: "uid/**", Users: []string{"bin"}, Allow: "read"},                       // 5: bin (2)
		{Path: "group/**", Groups: []string{"staff"}, Allow: "read"},                  // 6: staff (50), supplementary
		{Path: "cg/**", Cgroups: []string{"/**/" + filepath.Base(cg)}, Allow: "read"}, // 7
		{Path: "cg/**", Allow: "none"},                                                // 8
	})

	app := startAs(t, 1, 1, nil, bins["app/sleep"])            // daemon, app binary
	same := startAs(t, 2, 2, []uint32{50}, bins["same/sleep"]) // bin in staff, app's content elsewhere
	other := startAs(t, 2, 2, nil, bins["other/sleep"])        // bin, different binary
	nobody := startAs(t, 65534, 65534, nil, bins["app/sleep"])
	cgPath := joinCgroup(t, cg, other.c.PID)
	if !strings.HasSuffix(cgPath, filepath.Base(cg)) {
		t.Fatalf("process in cgroup %q, want one ending in %s", cgPath, filepath.Base(cg))
	}

	checkDecisions(t, e, "app", app.c, []want{
		{"exe/K", false, true, 0}, {"exe/K", true, false, 0},
		{"hash/K", true, true, 2},
		{"uid/a/K", true, true, 4},
		{"group/K", false, false, -1}, // no rule: 0600 root decides
		{"cg/K", false, false, 8},
	})
	checkDecisions(t, e, "same", same.c, []want{
		{"exe/K", false, false, 1}, // the path is what exe rules compare
		{"hash/K", false, true, 2}, // the content is what sha256 compares
		{"uid/K", false, true, 5}, {"uid/K", true, false, 5},
		{"group/K", false, true, 6},
	})
	checkDecisions(t, e, "other", other.c, []want{
		{"exe/K", false, false, 1},
		{"hash/K", false, false, 3},
		{"group/K", false, false, -1},
		{"cg/K", false, true, 7},
	})
	checkDecisions(t, e, "nobody", nobody.c, []want{
		{"exe/K", false, true, 0},
		{"uid/K", false, false, -1},
		{"elsewhere/K", false, false, -1},
	})
	// Root passes today's modes where no rule matches.
	checkDecisions(t, e, "root", Caller{PID: uint32(os.Getpid())}, []want{{"elsewhere/K", true, true, -1}})

	// Only what the rule needs is read, unless the audit log wants more.
	d := e.Decide("exe/K", app.c, false)
	if d.Exe != bins["app/sleep"] || d.Cgroup != "" || d.Unknown != "" {
		t.Errorf("decision %+v: want the caller's exe and no cgroup", d)
	}
	e.IdentifyAlways(true)
	d = e.Decide("uid/K", other.c, false)
	if d.Exe != bins["other/sleep"] || d.Cgroup != cgPath || d.Unknown != "" {
		t.Errorf("decision %+v: want the caller's exe and cgroup %q", d, cgPath)
	}
	e.IdentifyAlways(false)
	// Modes: uid and group rules are the kernel's; the rest the daemon's.
	for p, daemon := range map[string]bool{"exe/K": true, "hash/K": true, "cg/K": true, "group/K": false, "x/K": false} {
		if got := e.NeedsDaemon(p); got != daemon {
			t.Errorf("NeedsDaemon(%q) = %v, want %v (%+v)", p, got, daemon, e.Attr(p, false))
		}
	}
	// uid/**: uids 1 (write) and 2 (read): one owner, and 2 has no group
	// of its own in the rule, so that path needs the daemon.
	if a := e.Attr("uid/K", false); !a.Daemon || !strings.Contains(a.Why, "group") {
		t.Errorf("uid/K attr %+v: two uids cannot be one owner", a)
	}
	if a := e.Attr("group/K", false); a.GID != 50 || a.Mode != 0o640 || a.Daemon {
		t.Errorf("group/K attr %+v, want group staff (50) 0640", a)
	}

	counts := map[int]uint64{}
	for _, r := range e.Denials() {
		counts[r.Index] = r.Denied
	}
	// Denials above: exe write by app (0), same's exe (1), other's exe (1),
	// other's hash (3), same's uid write (5), cg by app (8), and no rule:
	// app group, other group, nobody uid, nobody elsewhere.
	wantCounts := map[int]uint64{0: 1, 1: 2, 3: 1, 5: 1, 8: 1, -1: 4}
	for i, n := range wantCounts {
		if counts[i] != n {
			t.Errorf("denials of rule %d = %d, want %d (all: %v)", i, counts[i], n, counts)
		}
	}
}

// TestDecideSkipsProcWhenUnneeded: a uid rule decides from the request
// alone, so even a caller whose pid is gone is decided by its uid.
func TestDecideSkipsProcWhenUnneeded(t *testing.T) {
	e := mustEngine(t, []Spec{{Path: "**", UIDs: []int64{1001}, Allow: "read"}})
	d := e.Decide("a/K", Caller{PID: 0, UID: 1001, GID: 1001}, false)
	if !d.Allowed || d.Unknown != "" || d.Exe != "" {
		t.Fatalf("decision %+v: a uid rule needs no /proc", d)
	}
	e.IdentifyAlways(true)
	d = e.Decide("a/K", Caller{PID: 0, UID: 1001, GID: 1001}, false)
	if !d.Allowed || d.Unknown == "" {
		t.Fatalf("decision %+v: IdentifyAlways reads /proc and says why it could not", d)
	}
}

// TestDecideExitedCaller: the caller is gone before its open is decided.
func TestDecideExitedCaller(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, nil, "app/sleep")
	e := mustEngine(t, []Spec{
		{Path: "**", Executables: []string{bins["app/sleep"]}, Allow: "none"},
		{Path: "**", Allow: "read"},
	})
	p := startAs(t, 1, 1, nil, bins["app/sleep"])
	p.stop()
	d := e.Decide("a/K", p.c, false)
	if d.Allowed || d.RuleIndex != 0 || !strings.Contains(d.Unknown, "no such process") {
		t.Fatalf("decision %+v: an exited caller is unknown and denied (fail closed), not passed to rule 1", d)
	}
}

// TestDecideCallerExitsDuringRead ends the caller between the /proc reads
// and the pidfd check.
func TestDecideCallerExitsDuringRead(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, nil, "app/sleep")
	e := mustEngine(t, []Spec{{Path: "**", Executables: []string{bins["app/sleep"]}, Allow: "read"}})
	p := startAs(t, 1, 1, nil, bins["app/sleep"])
	testHookAfterRead = func() {
		p.cmd.Process.Kill()
		// Killed but not reaped: a zombie still holds the pid; wait for
		// the kernel to mark it exited, as the pidfd reports.
		for i := 0; i < 500; i++ {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.c.PID))
			if s := string(b); len(s) == 0 || strings.Contains(s, ") Z ") {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	defer func() { testHookAfterRead = nil }()
	d := e.Decide("a/K", p.c, false)
	if d.Allowed || !strings.Contains(d.Unknown, "exited while it was read") {
		t.Fatalf("decision %+v: a caller that exits mid-read is unknown", d)
	}
}

// TestDecidePidReused makes the kernel hand a dead caller's pid to a new
// process of another user (ns_last_pid), then decides for the old caller.
func TestDecidePidReused(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, map[string]string{"evil/sleep": "x"}, "app/sleep", "evil/sleep")
	e := mustEngine(t, []Spec{
		{Path: "**", Executables: []string{bins["evil/sleep"]}, Allow: "read"},
		{Path: "**", Allow: "none"},
	})
	var reused *proc
	var old Caller
	for try := 0; try < 20 && reused == nil; try++ {
		a := startAs(t, 1, 1, nil, bins["app/sleep"])
		old = a.c
		a.stop()
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(old.PID-1)), 0); err != nil {
			t.Skipf("cannot steer pid allocation: %v", err)
		}
		// setpriv gets the pid, then execs the evil copy as uid 2.
		b := startAs(t, 2, 2, nil, bins["evil/sleep"])
		if b.c.PID == old.PID {
			reused = b
		} else {
			b.stop() // another process took the pid first; try again
		}
	}
	if reused == nil {
		t.Fatal("could not get the kernel to reuse a pid in 20 tries")
	}
	// The request says uid 1; the pid now belongs to uid 2 running the
	// binary the rule allows. It must not be taken for the old caller.
	d := e.Decide("a/K", old, false)
	if d.Allowed || !strings.Contains(d.Unknown, "pid reused") {
		t.Fatalf("decision %+v: a reused pid must give an unknown caller, never the new process's identity", d)
	}
	// The new process itself, asking with its own credentials, is allowed.
	if d := e.Decide("a/K", reused.c, false); !d.Allowed || d.RuleIndex != 0 {
		t.Fatalf("decision for the new process %+v", d)
	}
}

// TestDecidePidReusedMidRead replaces the caller, between pinning its pid
// and reading /proc, by a process of the same user running another binary
// at the same pid: the reads see the newcomer, and the liveness check (the
// pidfd, and the /proc directory descriptor alone without pidfds) must
// refuse them. (A start-time check, tried first, failed here: both
// processes started within one clock tick.)
func TestDecidePidReusedMidRead(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"pidfd", "proc-dir-only"} {
		t.Run(mode, func(t *testing.T) {
			testNoPidfd = mode == "proc-dir-only"
			defer func() { testNoPidfd = false }()
			bins := binCopies(t, map[string]string{"evil/sleep": "x"}, "app/sleep", "evil/sleep")
			e := mustEngine(t, []Spec{
				{Path: "**", Executables: []string{bins["evil/sleep"]}, Allow: "read"},
				{Path: "**", Allow: "none"},
			})
			var got bool
			for try := 0; try < 20 && !got; try++ {
				a := startAs(t, 1, 1, nil, bins["app/sleep"])
				testHookAfterPin = func() {
					a.stop()
					os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(a.c.PID-1)), 0)
					b := startAs(t, 1, 1, nil, bins["evil/sleep"])
					got = b.c.PID == a.c.PID
				}
				d := e.Decide("K", a.c, false)
				testHookAfterPin = nil
				if !got {
					continue // the pid went elsewhere; d is about a dead caller
				}
				if d.Allowed || !strings.Contains(d.Unknown, "caller unknown") {
					t.Fatalf("decision %+v: the newcomer at the caller's pid was taken for the caller", d)
				}
			}
			if !got {
				t.Fatal("could not get the kernel to reuse a pid in 20 tries")
			}
		})
	}
}

// TestIdentifyThread: FUSE stamps the calling thread's id, which for a
// multithreaded program is not the process id.
func TestIdentifyThread(t *testing.T) {
	requireRoot(t)
	// This test binary is multithreaded: pick a thread that is not the leader.
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var tid uint32
	for _, ent := range ents {
		var n uint32
		fmt.Sscan(ent.Name(), &n)
		if int(n) != os.Getpid() {
			tid = n
			break
		}
	}
	if tid == 0 {
		t.Skip("no second thread")
	}
	exe, _ := os.Executable()
	p, err := identify(Caller{PID: tid, UID: 0, GID: 0}, needExeFile)
	if err != nil {
		t.Fatalf("identify thread %d: %v", tid, err)
	}
	defer p.close()
	if real, _ := filepath.EvalSymlinks(exe); p.Exe != real || p.exe == nil {
		t.Fatalf("thread's exe %q, want %q", p.Exe, real)
	}
}

// TestHashCacheSeesNewVersion: a binary rewritten in place (even with its
// mtime set back) is hashed again.
func TestHashCacheSeesNewVersion(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, nil, "app/sleep")
	app := bins["app/sleep"]
	e := mustEngine(t, []Spec{{Path: "**", SHA256: []string{testutil.FileSHA256(t, app)}, Allow: "read"}, {Path: "**", Allow: "none"}})
	p := startAs(t, 1, 1, nil, app)
	if d := e.Decide("K", p.c, false); !d.Allowed {
		t.Fatalf("before: %+v", d)
	}
	p.stop()
	st, _ := os.Stat(app)
	b, _ := os.ReadFile(app)
	if err := os.WriteFile(app, append(b, 'x'), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(app, st.ModTime(), st.ModTime())
	p = startAs(t, 1, 1, nil, app)
	if d := e.Decide("K", p.c, false); d.Allowed || d.RuleIndex != 1 {
		t.Fatalf("after rewrite: %+v: the cached hash of the old version was used", d)
	}
}

// TestReload swaps rules under a live engine: the outcome for the same
// caller changes, and Change names the paths whose modes changed.
func TestReload(t *testing.T) {
	requireRoot(t)
	bins := binCopies(t, nil, "app/sleep")
	e := mustEngine(t, []Spec{{Path: "a/**", UIDs: []int64{1}, Allow: "read"}})
	p := startAs(t, 1, 1, nil, bins["app/sleep"])
	if d := e.Decide("a/K", p.c, false); !d.Allowed {
		t.Fatalf("before: %+v", d)
	}
	e.Decide("b/K", p.c, false) // a denial under the old rules
	before := e.Attr("a/K", false)

	next, err := Compile([]Spec{
		{Path: "a/**", Executables: []string{"/usr/bin/true"}, Allow: "read"},
		{Path: "a/**", Allow: "none"},
	}, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	ch := e.Swap(next)
	if d := e.Decide("a/K", p.c, false); d.Allowed || d.RuleIndex != 1 {
		t.Fatalf("after: %+v", d)
	}
	if !ch.AttrChanged("a/K", false) || ch.AttrChanged("b/K", false) || !ch.AnyDaemonChanged() {
		t.Errorf("change: a/K %v (want true), b/K %v (want false), any daemon %v (want true)",
			ch.AttrChanged("a/K", false), ch.AttrChanged("b/K", false), ch.AnyDaemonChanged())
	}
	if after := e.Attr("a/K", false); after == before || !after.Daemon {
		t.Errorf("attr before %+v after %+v", before, after)
	}
	for _, r := range e.Denials() {
		if want := map[int]uint64{1: 1}[r.Index]; r.Denied != want {
			t.Errorf("denials after swap %+v, want only rule 1 once", r)
		}
	}
}

// TestDecideConcurrentWithSwap is for the race detector: decisions and
// swaps at once.
func TestDecideConcurrentWithSwap(t *testing.T) {
	e := mustEngine(t, []Spec{{Path: "**", UIDs: []int64{5}, Allow: "read"}})
	rs2, _ := Compile([]Spec{{Path: "**", UIDs: []int64{5}, Allow: "none"}}, testDefaults)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				d := e.Decide("x/K", Caller{UID: 5, GID: 5}, false)
				if d.RuleIndex != 0 {
					t.Errorf("decision %+v", d)
					return
				}
				e.Attr(fmt.Sprint("x/", i%10), false)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		e.Swap(rs2)
		e.Denials()
	}
	wg.Wait()
}

func TestIdentifyErrors(t *testing.T) {
	_, err := identify(Caller{PID: 0}, 0)
	if !errors.Is(err, ErrUnknownCaller) {
		t.Fatalf("pid 0: %v", err)
	}
	// Kernel threads have no executable.
	_, err = identify(Caller{PID: 2}, needExe)
	if !errors.Is(err, ErrUnknownCaller) {
		t.Fatalf("kthreadd: %v", err)
	}
}
