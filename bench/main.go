// Command bench runs the infisicalfs benchmarks (fs/bench_test.go), pairs
// each infisicalfs figure with the baseline measured in the same run, and
// writes the table to docs/bench.md and a chart to docs/bench.png.
//
//	go run ./bench [-benchtime 500ms] [-out docs] [-short]
//
// Mount benchmarks need /dev/fuse and root (or fusermount3).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// phase is one `go test -bench` invocation: quick benchmarks run for a
// time, slow ones (a 100k-secret mount takes seconds) a fixed count.
type phase struct {
	pattern   string
	benchtime string
	pkg       string // "" = the -pkg flag's package
}

func run(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("bench", flag.ContinueOnError)
	benchtime := fset.String("benchtime", "500ms", "benchtime of the quick benchmarks")
	out := fset.String("out", "docs", "directory for bench.md and bench.png")
	pkg := fset.String("pkg", "./fs/", "package holding the paired benchmarks")
	short := fset.Bool("short", false, "CI's quick pass: -short (no 100k-secret refresh or mount), one refresh repeat")
	goBin := fset.String("go", "go", "go command")
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		return err
	}
	phases := []phase{
		{"^Benchmark(CachedRead|AccessRead|ReferencingRead|Getxattr|Readdir|Write|FirstReadAfterChange)$", *benchtime, ""},
		{"^BenchmarkRefresh$", map[bool]string{false: "3x", true: "1x"}[*short], ""},
		{"^BenchmarkMountReady$", "1x", ""},
		// The real binary measured from outside (bench/daemon_test.go).
		{"^BenchmarkDaemon$", "1x", "./bench/"},
		{"^BenchmarkTemplatesIdle$", map[bool]string{false: "20x", true: "1x"}[*short], ""},
	}
	var all bytes.Buffer
	var cmds []string
	for _, p := range phases {
		argv := []string{"test", "-run", "^$", "-bench", p.pattern, "-benchtime", p.benchtime, "-timeout", "20m"}
		if *short {
			argv = append(argv, "-short")
		}
		if p.pkg != "" {
			argv = append(argv, p.pkg)
		} else {
			argv = append(argv, *pkg)
		}
		cmds = append(cmds, *goBin+" "+strings.Join(argv, " "))
		fmt.Fprintf(stderr, "== %s %s\n", *goBin, strings.Join(argv, " "))
		cmd := exec.Command(*goBin, argv...)
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(&buf, &benchLines{w: stdout})
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(buf.String(), 4000))
		}
		all.Write(buf.Bytes())
	}
	results, err := ParseResults(&all)
	if err != nil {
		return err
	}
	rows, unpaired := Pair(results)
	if len(rows) == 0 {
		return fmt.Errorf("no paired results in the benchmark output")
	}
	h := Header{
		Command: "make bench",
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		CPU:     cpuLine(all.String()),
		Go:      runtime.Version() + ", GOMAXPROCS " + fmt.Sprint(runtime.GOMAXPROCS(0)),
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, h, rows, unpaired); err != nil {
		return err
	}
	fmt.Fprintf(&md, "Commands:\n\n```\n%s\n```\n", strings.Join(cmds, "\n"))
	if err := os.WriteFile(filepath.Join(*out, "bench.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	var img bytes.Buffer
	if err := DrawChart(&img, rows); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "bench.png"), img.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s", md.String())
	return nil
}

// benchLines passes only benchmark result lines through: the daemon's
// debug log of a failing benchmark stays in the error message instead.
// Output arrives in pieces, so a partial line waits for its end.
type benchLines struct {
	w       io.Writer
	pending []byte
}

func (b *benchLines) Write(p []byte) (int, error) {
	b.pending = append(b.pending, p...)
	for {
		i := bytes.IndexByte(b.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(b.pending[:i+1])
		b.pending = b.pending[i+1:]
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "ok") || strings.HasPrefix(line, "---") {
			if _, err := io.WriteString(b.w, line); err != nil {
				return 0, err
			}
		}
	}
}

func cpuLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(l, "cpu: "); ok {
			return strings.TrimSpace(c)
		}
	}
	return runtime.GOARCH
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
