package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	Name    string             // without the Benchmark prefix and -GOMAXPROCS suffix
	N       int                // iterations
	Metrics map[string]float64 // unit → value, ns/op included
}

// ParseResults reads `go test -bench` output and returns its benchmark
// lines in order; other lines (PASS, logs, goos:) are skipped.
func ParseResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		res, ok := parseLine(sc.Text())
		if ok {
			out = append(out, res)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// parseLine parses "BenchmarkX/y-2  100  123 ns/op  1.5 unit/op ...".
func parseLine(line string) (Result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return Result{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return Result{}, false
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	res := Result{Name: name, N: n, Metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Result{}, false
		}
		res.Metrics[f[i+1]] = v
	}
	return res, true
}

// Row is one figure: a metric of an infisicalfs measurement next to the
// same metric of its baseline from the same run.
type Row struct {
	Group  string // top-level benchmark, e.g. "CachedRead"
	Figure string // the rest of the name, e.g. "ro/readers=1"
	Metric string
	FS     float64
	Base   float64
}

// Ratio is FS/Base, or NaN when the baseline is zero.
func (r Row) Ratio() float64 {
	if r.Base == 0 {
		return math.NaN()
	}
	return r.FS / r.Base
}

// Pair matches every "<name>/fs" result with its "<name>/base" and returns
// one row per metric the two share, ns/op first. Unpaired results are
// returned by name so that the caller can say so.
func Pair(results []Result) (rows []Row, unpaired []string) {
	base := map[string]Result{}
	for _, r := range results {
		if k, ok := strings.CutSuffix(r.Name, "/base"); ok {
			base[k] = r
		}
	}
	used := map[string]bool{}
	for _, r := range results {
		k, ok := strings.CutSuffix(r.Name, "/fs")
		if !ok {
			continue
		}
		b, ok := base[k]
		if !ok {
			unpaired = append(unpaired, r.Name)
			continue
		}
		used[k] = true
		group, figure, _ := strings.Cut(k, "/")
		for _, m := range metricOrder(r.Metrics) {
			bv, ok := b.Metrics[m]
			if !ok {
				continue
			}
			rows = append(rows, Row{Group: group, Figure: figure, Metric: m, FS: r.Metrics[m], Base: bv})
		}
	}
	for _, r := range results {
		if k, ok := strings.CutSuffix(r.Name, "/base"); ok && !used[k] {
			unpaired = append(unpaired, r.Name)
		}
	}
	return rows, unpaired
}

// metricRank orders the metrics that read best in a sequence (the daemon's
// figures follow its run: ready, walk, idle); the rest follow
// alphabetically.
var metricRank = map[string]int{
	"cpu-ns/ready": 1, "rss-ready-B": 2, "hwm-ready-B": 3, "rss-walk-B": 4, "hwm-walk-B": 5,
	"rss-idle2-B": 6, "rss-idle10-B": 7, "hwm-idle10-B": 8, "cpu-ns/idle-cycle": 9,
	"write-B/idle-cycle": 10, "load-1m": 11,
}

// metricOrder puts ns/op first, then the ranked metrics, then the rest
// alphabetically; B/op and allocs/op (from -benchmem) are left out as they
// measure the test's goroutine, not the daemon.
func metricOrder(m map[string]float64) []string {
	var out []string
	for k := range m {
		if k != "ns/op" && k != "B/op" && k != "allocs/op" {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := metricRank[out[i]], metricRank[out[j]]
		switch {
		case ri != rj && ri != 0 && rj != 0:
			return ri < rj
		case ri != 0 && rj == 0:
			return true
		case ri == 0 && rj != 0:
			return false
		}
		return out[i] < out[j]
	})
	if _, ok := m["ns/op"]; ok {
		out = append([]string{"ns/op"}, out...)
	}
	return out
}
