package hooks

import (
	"github.com/infisicalfs/infisicalfs/internal/testutil"

	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
)

const (
	debounce   = 50 * time.Millisecond
	helperEnv  = "INFISICALFS_HOOKS_TEST_HELPER"
	helperWait = 10 * time.Second
)

// TestMain doubles as a helper process that waits for SIGUSR1: it says
// "ready" once its handler is installed and exits 0 on the signal.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "signal" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		fmt.Println("ready")
		select {
		case <-ch:
			os.Exit(0)
		case <-time.After(helperWait):
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

func newRunner(t *testing.T, hooks []config.Hook) (*Runner, *testutil.Buffer) {
	t.Helper()
	logs := new(testutil.Buffer)
	r := New(hooks, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(r.Close)
	return r, logs
}

// recorder is a hook command that appends $INFISICALFS_CHANGED to a file.
func recorder(t *testing.T, path string) (config.Hook, string) {
	out := filepath.Join(t.TempDir(), "fired")
	return config.Hook{
		Path:     path,
		Command:  []string{"sh", "-c", `echo "$` + EnvChanged + `" >> "$1"`, "sh", out},
		Debounce: config.Duration{Duration: debounce},
	}, out
}

func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func waitLines(t *testing.T, file string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := lines(t, file)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d firings, want %d", file, len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet waits several debounce periods: the only way to see that a hook
// did not fire.
func quiet() { time.Sleep(6 * debounce) }

func TestCommandFiresOncePerBurst(t *testing.T) {
	dev, devOut := recorder(t, "webshop/dev")
	all, allOut := recorder(t, "")
	r, logs := newRunner(t, []config.Hook{dev, all})

	for i := 0; i < 5; i++ {
		r.Changed([]string{"webshop/dev/app/DB_URL", "webshop/devel/X", "payments/prod/KEY"})
	}
	if got := waitLines(t, devOut, 1); got[0] != "5" {
		t.Errorf("dev hook saw %s changes, want 5 (one match per call)", got[0])
	}
	if got := waitLines(t, allOut, 1); got[0] != "15" {
		t.Errorf("catch-all hook saw %s changes, want 15", got[0])
	}
	quiet()
	if n := len(lines(t, devOut)); n != 1 {
		t.Errorf("dev hook fired %d times for one burst", n)
	}

	r.Changed([]string{"payments/prod/KEY", "webshop/devel/X"})
	waitLines(t, allOut, 2)
	quiet()
	if n := len(lines(t, devOut)); n != 1 {
		t.Errorf("dev hook fired for paths outside webshop/dev (%d firings)", n)
	}

	r.Changed([]string{"webshop/dev"})
	if got := waitLines(t, devOut, 2); got[1] != "1" {
		t.Errorf("second burst: %v", got)
	}
	if !strings.Contains(logs.String(), "on_change hook ran") {
		t.Errorf("no log line for a hook run: %s", logs.String())
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		prefix, path string
		want         bool
	}{
		{"", "a/b", true},
		{"webshop", "webshop/dev/K", true},
		{"webshop/dev", "webshop/dev", true},
		{"webshop/dev", "/webshop/dev/K", true},
		{"webshop/dev", "webshop/devel/K", false},
		{"webshop/dev/app", "webshop/dev/K", false},
	} {
		if got := matches(tc.prefix, tc.path); got != tc.want {
			t.Errorf("matches(%q, %q) = %v", tc.prefix, tc.path, got)
		}
	}
}

func startHelper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=signal")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	return cmd
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("helper did not get the signal: %v", err)
		}
	case <-time.After(helperWait + 5*time.Second):
		t.Fatal("helper still running")
	}
}

func TestSignalReachesProcess(t *testing.T) {
	t.Run("pid", func(t *testing.T) {
		cmd := startHelper(t)
		r, _ := newRunner(t, []config.Hook{{Path: "webshop", Signal: "SIGUSR1", PID: cmd.Process.Pid, Debounce: config.Duration{Duration: debounce}}})
		r.Changed([]string{"webshop/prod/TLS_KEY"})
		waitExit(t, cmd)
	})
	t.Run("pid_file", func(t *testing.T) {
		cmd := startHelper(t)
		pidFile := filepath.Join(t.TempDir(), "app.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := newRunner(t, []config.Hook{{Signal: "usr1", PIDFile: pidFile, Debounce: config.Duration{Duration: debounce}}})
		r.Changed([]string{"x/y/Z"})
		waitExit(t, cmd)
	})
}

func TestFailuresAreLogged(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "bad.pid")
	if err := os.WriteFile(pidFile, []byte("not a pid"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := config.Duration{Duration: debounce}
	r, logs := newRunner(t, []config.Hook{
		{Path: "slow", Command: []string{"sh", "-c", "sleep 30"}, Debounce: d, Timeout: config.Duration{Duration: 100 * time.Millisecond}},
		{Path: "fail", Command: []string{"sh", "-c", "exit 7"}, Debounce: d},
		{Path: "pid", Signal: "SIGUSR1", PIDFile: pidFile, Debounce: d},
	})
	start := time.Now()
	r.Changed([]string{"slow/a", "fail/b", "pid/c"})
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "on_change hook failed") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("want three failures logged, have:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("timeout did not kill the command promptly (%s)", time.Since(start))
	}
	for _, want := range []string{"timeout", "exit status 7", "does not hold a process id"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestUpdateAndClose(t *testing.T) {
	a, aOut := recorder(t, "a")
	b, bOut := recorder(t, "b")
	r, _ := newRunner(t, []config.Hook{a})
	r.Update([]config.Hook{a}) // unchanged: a no-op
	r.Changed([]string{"a/K"})
	waitLines(t, aOut, 1)

	r.Update([]config.Hook{b})
	r.Changed([]string{"a/K", "b/K"})
	waitLines(t, bOut, 1)
	quiet()
	if n := len(lines(t, aOut)); n != 1 {
		t.Errorf("removed hook fired again (%d)", n)
	}

	r.Close()
	r.Close()
	r.Changed([]string{"b/K"})
	r.Update([]config.Hook{a})
	quiet()
	if n := len(lines(t, bOut)); n != 1 {
		t.Errorf("hook fired after Close (%d)", n)
	}
}

func TestCloseKillsRunningCommand(t *testing.T) {
	started := filepath.Join(t.TempDir(), "started")
	r := New([]config.Hook{{Command: []string{"sh", "-c", `: > "$1"; sleep 30`, "sh", started}, Debounce: config.Duration{Duration: time.Millisecond}}}, nil)
	r.Changed([]string{"x"})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hook command never started")
		}
	}
	start := time.Now()
	r.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
}
