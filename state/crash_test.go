package state

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const crashChildEnv = "STATE_TEST_CRASH_CHILD"

// crashChild runs in the re-executed test binary: it loads the state, grows
// it large, and stops half-way through writing the temp file, to be killed.
func crashChild(path string) {
	s, err := Open(path, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	s.Update(func(f *File) {
		for i := range 20_000 {
			f.Secrets[fmt.Sprintf("p/e/KEY_%06d", i)] = Secret{Hash: Hash("K", []byte{byte(i)}), Version: i}
		}
	})
	afterHalfWrite = func() {
		fmt.Println("paused")
		select {} // wait for SIGKILL
	}
	err = s.Save()
	fmt.Println("save returned:", err)
	os.Exit(3)
}

// TestKilledMidSaveLeavesOldFileWhole kills a writer after it wrote half of
// its temp file: the old state file must still load whole, and the next Open
// must clear the leftover temp file.
func TestKilledMidSaveLeavesOldFileWhole(t *testing.T) {
	if p := os.Getenv(crashChildEnv); p != "" {
		crashChild(p)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, _ := mustOpen(t, path)
	s.Update(sampleUpdate)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKilledMidSaveLeavesOldFileWhole$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	paused := false
	for sc.Scan() {
		if sc.Text() == "paused" {
			paused = true
			break
		}
		t.Logf("child: %s", sc.Text())
	}
	if !paused {
		_ = cmd.Wait()
		t.Fatalf("child never reached the pause: %s", stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	temps, _ := filepath.Glob(filepath.Join(dir, "."+FileName+".tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("expected the killed writer's temp file, found %v", temps)
	}
	if fi, err := os.Stat(temps[0]); err != nil || fi.Size() == 0 || fi.Size() >= 1<<30 {
		t.Fatalf("temp file: %v %v", fi, err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Fatal("the state file changed although the save never finished")
	}

	s2, log := mustOpen(t, path)
	if got, want := s2.Snapshot(), s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("old state did not load whole:\n got %+v\nwant %+v", got, want)
	}
	if strings.Contains(log.String(), "WARN") || len(corruptFiles(t, path)) != 0 {
		t.Fatalf("a clean old file was treated as corrupt: %s", log)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, "."+FileName+".tmp-*")); len(temps) != 0 {
		t.Fatalf("stale temp files survived Open: %v", temps)
	}
	// And saving from there works.
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
}
