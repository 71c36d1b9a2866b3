package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// --daemon: for people without systemd or mount(8). The command re-runs
// itself in a new session with the same arguments and returns once the
// child reports the mount ready (or prints the child's log and fails when
// it exits first). The child writes the pid file, then lets go of the
// start-up pipe: its log goes to --log-file, or nowhere.

// envReadyFD names the descriptor on which the background child reports
// "ready"; its presence also marks the process as that child.
const envReadyFD = "INFISICALFS_READY_FD"

// background is the --daemon settings of one mount command.
type background struct {
	on      bool
	pidFile string
	logFile string
}

// child reports whether this process is the background child.
func (b background) child() bool { return os.Getenv(envReadyFD) != "" }

// start runs the child and waits for its report.
func (b background) start(args []string, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--daemon: find own binary: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("--daemon: %w", err)
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("--daemon: %w", err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), envReadyFD+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, logW // nil: /dev/null
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("--daemon: start: %w", err)
	}
	readyW.Close()
	logW.Close()
	var logs bytes.Buffer
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		_, _ = io.Copy(&logs, io.LimitReader(logR, 1<<20))
		logR.Close()
	}()
	line, _ := bufio.NewReader(readyR).ReadString('\n')
	readyR.Close()
	if strings.TrimSpace(line) == "ready" {
		fmt.Fprintf(stdout, "infisicalfs: mounted in the background, pid %d\n", cmd.Process.Pid)
		_ = cmd.Process.Release()
		return nil
	}
	err = cmd.Wait()
	<-logsDone
	_, _ = stderr.Write(logs.Bytes())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{ee.ExitCode(), errors.New("the background mount exited before it was ready")}
	}
	return errors.New("the background mount exited before it was ready")
}

// ready is the child's report once mounted: the pid file, "ready" on the
// start-up pipe, and stderr moved to the log file (or /dev/null), since
// the parent stops reading it when it exits.
func (b background) ready() error {
	fd, err := strconv.Atoi(os.Getenv(envReadyFD))
	if err != nil {
		return fmt.Errorf("%s: %w", envReadyFD, err)
	}
	os.Unsetenv(envReadyFD) // hooks must not inherit it
	if b.pidFile != "" {
		if err := os.WriteFile(b.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
	}
	target := os.DevNull
	if b.logFile != "" {
		target = b.logFile
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer out.Close()
	if err := syscall.Dup2(int(out.Fd()), 2); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ready")
	_, err = f.WriteString("ready\n")
	f.Close()
	return err
}

// done removes the pid file when the background mount ends.
func (b background) done() {
	if b.pidFile != "" {
		_ = os.Remove(b.pidFile)
	}
}
