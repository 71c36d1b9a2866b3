package reliability_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// TestTwoMountsNoLostUpdate (issue 18): two daemons mount one project of
// one server, and real editors on both (sed -i, vim, dd appending) plus an
// out-of-band editor each append a unique token to the same key, all at
// once. Every edit must either land on the latest version or fail visibly:
// at the end the server's value holds every token whose edit reported
// success, once, and none whose edit failed. A lost update is an
// acknowledged token missing from the final value.
//
// Known limit, measured here rather than asserted: Infisical's writes have
// no precondition, so a check-then-write leaves a window (one GET, then
// the PATCH), and under this test's contention (every editor on one key,
// continuously, the out-of-band one every 20 ms) a writer can land inside
// it. The mount sees it in the version its PATCH returns and puts the
// other change back; a third writer inside that second window loses its
// change (logged as a lost update; its value stays in the history). The
// test reports how many were lost, and how: never pushed (an editor told
// success while nothing reached Infisical, a mount bug) or pushed and
// later overwritten; it fails only on what must never happen: the key
// deleted, a token written twice, no edit landing at all. It runs with
// `make reliability` (SOAK_DURATION set), not in `make test`.
func TestTwoMountsNoLostUpdate(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Getenv("SOAK_DURATION") == "" {
		t.Skip("a measurement: run with make reliability (SOAK_DURATION)")
	}
	dur := 8 * time.Second
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d < dur {
			dur = d
		}
	}
	srv, pid := newServer(t)
	srv.SetSecret(pid, "dev", "/", "LEDGER", "start")
	// Runners first: the test process is about to be the FUSE daemon of
	// both mounts (see runner_test.go).
	kinds := strings.Fields(os.Getenv("TWO_MOUNT_EDITORS"))
	if len(kinds) == 0 {
		kinds = []string{"sed", "vim", "dd"}
	}
	runners := map[string]*runner{}
	for m := 0; m < 2; m++ {
		for _, k := range kinds {
			runners[fmt.Sprintf("%d-%s", m, k)] = startRunner(t)
		}
	}
	var mnts []string
	logs := &testutil.Buffer{}
	for m := 0; m < 2; m++ {
		mnt, _, _, _, unmount := mountInProcess(t, srv, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("mount", m))
		t.Cleanup(func() { _ = unmount() })
		mnts = append(mnts, mnt)
	}

	var mu sync.Mutex
	acked := map[string]bool{}  // token → its edit reported success
	failed := map[string]bool{} // token → its edit reported failure
	var seq atomic.Int64
	token := func(who string) string { return fmt.Sprintf("T%s-%d", who, seq.Add(1)) }
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for name, r := range runners {
		m, kind := name[:1], name[2:]
		file := filepath.Join(mnts[m[0]-'0'], "webshop", "dev", "LEDGER")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				tok := token(m + kind)
				var argv []string
				switch kind {
				case "sed":
					argv = []string{"sed", "-i", "s/$/ " + tok + "/", file}
				case "vim":
					// vim asks before writing a file whose mtime changed
					// since it read it ("WARNING: The file has been changed
					// since reading it!!!"); without an answer it declines
					// and still exits 0. The answer here is yes, as from a
					// user who insists: the mount's check must catch it.
					argv = []string{"sh", "-c", `echo y | vim -u NONE -i NONE -N -es -c "set backupcopy=auto backupskip= nobackup writebackup" -c "s/\$/ $1/" -c wq "$2"`, "sh", tok, file}
				case "dd":
					argv = []string{"sh", "-c", `printf ' %s' "$1" | dd of="$2" oflag=append conv=notrunc status=none`, "sh", tok, file}
				}
				_, err := r.run(argv...)
				mu.Lock()
				if err == nil {
					acked[tok] = true
				} else {
					failed[tok] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // another user, in Infisical itself
		defer wg.Done()
		for time.Now().Before(stop) {
			tok := token("oob")
			srv.EditSecret(pid, "dev", "/", "LEDGER", func(old string) string { return old + " " + tok })
			mu.Lock()
			acked[tok] = true
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()

	final, _, _ := srv.Secret(pid, "dev", "/", "LEDGER")
	t.Logf("final value: %.120q (%d bytes)", final, len(final))
	have := map[string]int{}
	for _, f := range strings.Fields(final) {
		have[f]++
	}
	lost, phantom, twice := 0, 0, 0
	perKind := map[string][2]int{} // kind → acked, failed
	// A lost token either never reached any version (its editor reported
	// success, but nothing with it was pushed) or landed and was later
	// overwritten by a write that did not derive from it.
	ever := map[string]bool{}
	for _, v := range srv.SecretHistoryValues(pid, "dev", "/", "LEDGER") {
		for _, f := range strings.Fields(v) {
			ever[f] = true
		}
	}
	neverPushed, overwritten := map[string]int{}, map[string]int{}
	for tok := range acked {
		if have[tok] == 0 {
			lost++
			k := strings.SplitN(strings.TrimPrefix(tok, "T"), "-", 2)[0]
			if ever[tok] {
				overwritten[k]++
			} else {
				neverPushed[k]++
			}
		}
	}
	for tok := range failed {
		if have[tok] > 0 {
			phantom++
		}
	}
	for tok, n := range have {
		if n > 1 {
			twice++
			t.Errorf("%s appears %d times", tok, n)
		}
	}
	for tok := range acked {
		k := strings.SplitN(strings.TrimPrefix(tok, "T"), "-", 2)[0]
		c := perKind[k]
		c[0]++
		perKind[k] = c
	}
	for tok := range failed {
		k := strings.SplitN(strings.TrimPrefix(tok, "T"), "-", 2)[0]
		c := perKind[k]
		c[1]++
		perKind[k] = c
	}
	daemonLog := logs.String()
	collisions := strings.Count(daemonLog, "refused: LEDGER changed in Infisical") // checks that caught a change
	thirdWriter := strings.Count(daemonLog, "lost update: a third writer")
	// No editor here deletes the key: a DELETE is an editor's recovery
	// that got through (vim unlinks KEY after a refused save), and it takes
	// every edit and the history with it.
	deletes := 0
	for _, r := range srv.Requests() {
		if r.Method == "DELETE" && strings.HasSuffix(r.Path, "/LEDGER") {
			deletes++
		}
	}
	if n := sumCounts(neverPushed); n > 0 {
		t.Errorf("%d edits reported success but reached no version of the key: %v", n, neverPushed)
	}
	if deletes > 0 {
		t.Errorf("the shared key was deleted in Infisical %d times", deletes)
	}
	t.Logf("two mounts, %s: %d edits acknowledged, %d failed visibly; lost %d (never pushed %v, pushed then overwritten %v; logged by the daemon as lost: %d), phantom %d, duplicated %d, deletes %d; refusals logged %d; per editor (acked/failed): %v",
		dur, len(acked), len(failed), lost, neverPushed, overwritten, thirdWriter, phantom, twice, deletes, collisions, perKind)
	if len(acked) == 0 {
		t.Fatal("no edit succeeded: the test exercised nothing")
	}
	if r := os.Getenv("SOAK_REPORT"); r != "" {
		f, err := os.OpenFile(r, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			fmt.Fprintf(f, "\n## Two mounts editing one key (`TestTwoMountsNoLostUpdate`)\n\n"+
				"%s; editors per mount: %s, plus an out-of-band editor in Infisical every 20 ms, all appending a unique token to one key.\n\n"+
				"| measure | value |\n| --- | --- |\n| edits acknowledged | %d |\n| edits failed visibly | %d |\n| lost updates (acknowledged, missing at the end) | %d |\n"+
				"| of which never pushed (editor reported success; in no version), by editor | %v |\n| of which pushed, then overwritten, by editor | %v |\n"+
				"| of which the daemon logged as lost | %d |\n| phantom (failed, present at the end) | %d |\n| deletes of the key | %d |\n| refusals logged | %d |\n",
				dur, strings.Join(kinds, ", "), len(acked), len(failed), lost, neverPushed, overwritten, thirdWriter, phantom, deletes, collisions)
			f.Close()
		}
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
