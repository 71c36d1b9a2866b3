package main

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"
)

const sample = `goos: linux
cpu: Test CPU
BenchmarkCachedRead/ro/readers=1/fs-2         	   36252	      6177 ns/op	         0 fuse-reqs/op
BenchmarkCachedRead/ro/readers=1/base-2       	   78841	      3158 ns/op	         0 fuse-reqs/op
    helpers_test.go:183: daemon log:
BenchmarkWrite/known-key/fs-2                 	      32	  12479534 ns/op	         1.000 api-reqs/op	         4.031 fuse-reqs/op
BenchmarkWrite/known-key/base-2               	     100	   2606417 ns/op	         0 api-reqs/op	         0 fuse-reqs/op
BenchmarkLonely/fs-2  10  5 ns/op
BenchmarkVault-8  10  5 ns/op  3 B/op  1 allocs/op
PASS
`

func TestParseAndPair(t *testing.T) {
	res, err := ParseResults(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 6 {
		t.Fatalf("parsed %d results, want 6: %+v", len(res), res)
	}
	if res[0].Name != "CachedRead/ro/readers=1/fs" || res[0].N != 36252 || res[0].Metrics["ns/op"] != 6177 {
		t.Errorf("first result = %+v", res[0])
	}
	if res[5].Name != "Vault" || res[5].Metrics["allocs/op"] != 1 {
		t.Errorf("GOMAXPROCS suffix or -benchmem metrics: %+v", res[5])
	}
	rows, unpaired := Pair(res)
	if len(unpaired) != 1 || unpaired[0] != "Lonely/fs" {
		t.Errorf("unpaired = %v", unpaired)
	}
	want := []struct {
		group, figure, metric string
		fs, base              float64
	}{
		{"CachedRead", "ro/readers=1", "ns/op", 6177, 3158},
		{"CachedRead", "ro/readers=1", "fuse-reqs/op", 0, 0},
		{"Write", "known-key", "ns/op", 12479534, 2606417},
		{"Write", "known-key", "api-reqs/op", 1, 0},
		{"Write", "known-key", "fuse-reqs/op", 4.031, 0},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Group != w.group || r.Figure != w.figure || r.Metric != w.metric || r.FS != w.fs || r.Base != w.base {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	if got := rows[0].Ratio(); math.Abs(got-6177.0/3158) > 1e-9 {
		t.Errorf("ratio = %v", got)
	}
	if !math.IsNaN(rows[1].Ratio()) {
		t.Errorf("ratio over a zero baseline = %v, want NaN", rows[1].Ratio())
	}
}

func TestParseLineRejectsNoise(t *testing.T) {
	for _, l := range []string{"BenchmarkX", "BenchmarkX-2 abc 5 ns/op", "BenchmarkX-2 10 five ns/op", "ok pkg 1s", "BenchmarkX-2 10 5"} {
		if r, ok := parseLine(l); ok {
			t.Errorf("parseLine(%q) = %+v, want rejected", l, r)
		}
	}
}

func TestMarkdownAndChart(t *testing.T) {
	res, _ := ParseResults(strings.NewReader(sample))
	rows, unpaired := Pair(res)
	var md bytes.Buffer
	if err := WriteMarkdown(&md, Header{Command: "make bench", Date: "d", CPU: "c", Go: "g"}, rows, unpaired); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| ro/readers=1 | time per op | 6.2 µs | 3.2 µs | 1.96x |",
		"| known-key | API requests per op | 1 | 0 | — |",
		"| known-key | time per op | 12.48 ms | 2.61 ms | 4.79x |",
		"Lonely/fs",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var img bytes.Buffer
	if err := DrawChart(&img, rows); err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(&img)
	if err != nil {
		t.Fatal(err)
	}
	// Two time rows: the picture grows with the number of bars.
	if h := m.Bounds().Dy(); h != marginY*2+lineH*5 {
		t.Errorf("chart height %d, want %d", h, marginY*2+lineH*5)
	}
}

func TestFormat(t *testing.T) {
	cases := map[[2]string]string{
		{"ns/op", "950"}:                  "950 ns",
		{"ns/op", "2500000000"}:           "2.50 s",
		{"heap-B/secret", "2048"}:         "2.0 KiB",
		{"resp-B/op", "6980422"}:          "6.7 MiB",
		{"api-reqs/op", "3"}:              "3",
		{"fuse-reqs/op", "4.03125"}:       "4.03",
		{"cpu-ns/idle-cycle", "3500000"}:  "3.50 ms",
		{"hwm-idle10-B", "209715200"}:     "200.0 MiB",
		{"write-B/idle-cycle", "0"}:       "0 B",
		{"write-B/idle-cycle", "3774873"}: "3.6 MiB",
	}
	for in, want := range cases {
		var v float64
		if _, err := fmt.Sscan(in[1], &v); err != nil {
			t.Fatal(err)
		}
		if got := formatValue(in[0], v); got != want {
			t.Errorf("formatValue(%s, %s) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

// The daemon's rows: ns/op is labelled as the time to mounted, the /proc
// figures get their words and units.
func TestDaemonRows(t *testing.T) {
	const out = `BenchmarkDaemon/secrets=1000/fs-2  1  71709059 ns/op  7500000 cpu-ns/idle-cycle  24952832 hwm-idle10-B  0 write-B/idle-cycle
BenchmarkDaemon/secrets=1000/base-2  1  28306911 ns/op  1250000 cpu-ns/idle-cycle  12230656 hwm-idle10-B  0 write-B/idle-cycle
`
	res, err := ParseResults(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	rows, unpaired := Pair(res)
	if len(rows) != 4 || len(unpaired) != 0 {
		t.Fatalf("rows %+v, unpaired %v", rows, unpaired)
	}
	// In the order of the run: ready, memory, idle CPU, idle writes.
	var order []string
	for _, r := range rows {
		order = append(order, r.Metric)
	}
	if want := []string{"ns/op", "hwm-idle10-B", "cpu-ns/idle-cycle", "write-B/idle-cycle"}; !slices.Equal(order, want) {
		t.Errorf("metric order %v, want %v", order, want)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, Header{}, rows, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Daemon",
		"| secrets=1000 | time to mounted | 71.71 ms | 28.31 ms | 2.53x |",
		"| secrets=1000 | CPU per idle cycle | 7.50 ms | 1.25 ms | 6.00x |",
		"| secrets=1000 | VmHWM after 10 idle cycles | 23.8 MiB | 11.7 MiB | 2.04x |",
		"| secrets=1000 | bytes written per idle cycle | 0 B | 0 B | — |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}
