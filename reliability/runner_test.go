package reliability_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// The soak's real programs (cat, sh, tee) are started by runner processes,
// not by the test process, because the test process is the FUSE daemon of
// the mount they use. A Go fork is a vfork: the forking thread keeps its P
// until the child execs, so if the child blocks on a FUSE request before
// exec while the runtime stops the world, no goroutine can answer it and the
// daemon deadlocks with its own child (seen: the soak hung until the test
// timeout, children stuck in FUSE requests; golang/go#11155 is the kind).
// Runners are started before the mount, and they are not FUSE daemons.

const runnerEnv = "INFISICALFS_SOAK_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(runnerEnv) == "1" {
		serveRunner(os.Stdin, os.Stdout)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type runRequest struct {
	Argv []string
}

type runResult struct {
	Stdout []byte
	Stderr string
	Exit   int    // the program's exit code; -1 when it did not run or died of a signal
	Err    string // why it did not run
}

// serveRunner runs one program per request, in order, until its input ends.
func serveRunner(in io.Reader, out io.Writer) {
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	for {
		var req runRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		var res runResult
		if len(req.Argv) == 0 {
			res.Exit, res.Err = -1, "empty argv"
		} else {
			cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			res.Stdout, res.Stderr, res.Exit = stdout.Bytes(), stderr.String(), -1
			var ee *exec.ExitError
			switch {
			case err == nil:
				res.Exit = 0
			case errors.As(err, &ee):
				res.Exit = ee.ExitCode()
			default:
				res.Err = err.Error()
			}
		}
		if err := enc.Encode(&res); err != nil {
			return
		}
	}
}

// runner is one runner process; run is for one goroutine at a time.
type runner struct {
	mu    sync.Mutex
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	dec   *json.Decoder
}

// startRunner starts a runner; call it before mounting.
func startRunner(t *testing.T) *runner {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), runnerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runner{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), dec: json.NewDecoder(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	return r
}

// exitError is a program's non-zero exit and what it said on stderr.
type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return fmt.Sprintf("exit status %d: %s", e.code, e.stderr)
}

// run runs argv in the runner and returns its stdout; a non-zero exit is
// an *exitError.
func (r *runner) run(argv ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enc.Encode(runRequest{Argv: argv}); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	var res runResult
	if err := r.dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	switch {
	case res.Err != "":
		return res.Stdout, errors.New(res.Err)
	case res.Exit != 0:
		return res.Stdout, &exitError{code: res.Exit, stderr: strings.TrimSpace(res.Stderr)}
	}
	return res.Stdout, nil
}
