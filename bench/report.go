package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// groupInfo says what a benchmark group measures and what its baseline is.
var groupInfo = map[string]string{
	"CachedRead":           "open+read+close of a cached 64-byte secret, per operation with N readers in parallel (wall time / operations, so the inverse of throughput). Baseline: the same file on tmpfs.",
	"AccessRead":           "open+read+close of a cached secret by uid 1001 on a read-only mount with [[access]] rules: a uid rule (owner and mode, checked by the kernel: no request) and an executable rule (every open reaches the daemon, which reads /proc/PID/exe and decides). Baseline: the same file on tmpfs, owned by that uid.",
	"ReferencingRead":      "open+read+close of a cached secret whose raw value references two others (one in another environment), served expanded. Baseline: the expanded bytes on tmpfs.",
	"Getxattr":             "getxattr(2) of user.infisical.version on a secret (FUSE caches no xattrs: one daemon round trip each). Baseline: the same user xattr on a tmpfs file.",
	"FirstReadAfterChange": "another user changes a secret, one refresh runs (sync + kernel invalidation), a program reads the new value. Baseline: the program fetches the changed secret from the API itself.",
	"Readdir":              "open+getdents+close of a folder of N secrets (names only). Baseline: a tmpfs directory of N files.",
	"Refresh":              "one refresh cycle of N secrets in folders of 1000, unchanged (If-None-Match → 304) and with one secret changed. Baseline: a poller listing the same secrets without an ETag. CPU is the whole process, in-process test server included.",
	"MountReady":           "login, first sync and mount until the first stat answers, and the memory then held per secret. Baseline: log in and fetch the same secrets into memory, as an SDK user would.",
	"Daemon":               "the real binary (`bin/infisicalfs mount --read-only`, one environment, secrets in folders of 1000, refresh every 1 s) against `infisicalfs dev-server` running as a separate process, read from the daemon's `/proc/PID/{status,stat,io}` only: time until mounted and the CPU the process spent until then (the server's share of the wall time is not in it; the load average says how busy the machine was), VmRSS/VmHWM after ready, after a `find -type f -exec cat {} +` walk and after 2 and 10 idle cycles (unchanged, 304), and CPU (utime+stime, 10 ms ticks) and `write_bytes` per idle cycle between cycles 2 and 10. Baseline: the floor, a child process holding the same secrets in a plain Go map and polling with If-None-Match at the same interval, measured the same way. Targets (issue 12): idle-cycle CPU at 10k ≤ 5 ms, 0 bytes written per idle cycle, VmHWM at 100k ≤ 200 MiB, ready at 100k ≤ 3 s.",
	"TemplatesIdle":        "one idle refresh cycle of a mount with 10 [[template]]s, each listing its own folder of 100 secrets (1k in all), token_policy renew: requests and response bytes. Baseline: the official agent's documented behaviour for the same templates, done against the same server: one full listing per template per polling interval, on a kept token.",
	"Write":                "`sh -c 'printf %s v > KEY'` for a known key and a new key (blind overwrites: no version check), and `sed -i` editing the known key (a guarded write: one conditional listing checks the version it read before the PATCH); process start-up included on both sides. Baseline: the same command on tmpfs.",
}

var groupOrder = []string{"CachedRead", "AccessRead", "ReferencingRead", "Getxattr", "FirstReadAfterChange", "Readdir", "Refresh", "MountReady", "TemplatesIdle", "Daemon", "Write"}

// formatValue renders a metric value with a unit a reader takes in at once.
func formatValue(metric string, v float64) string {
	switch {
	case metric == "ns/op" || strings.HasPrefix(metric, "cpu-ns/"):
		return formatDuration(v)
	case strings.HasPrefix(metric, "resp-B") || strings.Contains(metric, "B/secret") ||
		strings.HasSuffix(metric, "-B") || strings.Contains(metric, "-B/"):
		return formatBytes(v)
	default:
		return trimFloat(v)
	}
}

func formatDuration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

func formatBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	if r >= 10 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// metricLabel names a metric in words.
var metricLabel = map[string]string{
	"ns/op":         "time per op",
	"fuse-reqs/op":  "FUSE requests per op",
	"api-reqs/op":   "API requests per op",
	"check-reqs/op": "version-check listings per op",
	"resp-B/op":     "response bytes per op",
	"cpu-ns/op":     "CPU per op",
	"heap-B/secret": "heap per secret",
	"rss-B/secret":  "RSS per secret",

	"cpu-ns/idle-cycle":  "CPU per idle cycle",
	"cpu-ns/ready":       "CPU until mounted",
	"load-1m":            "load average (1 min) at ready",
	"write-B/idle-cycle": "bytes written per idle cycle",
	"rss-ready-B":        "VmRSS when ready",
	"hwm-ready-B":        "VmHWM when ready",
	"rss-walk-B":         "VmRSS after the walk",
	"hwm-walk-B":         "VmHWM after the walk",
	"rss-idle2-B":        "VmRSS after 2 idle cycles",
	"rss-idle10-B":       "VmRSS after 10 idle cycles",
	"hwm-idle10-B":       "VmHWM after 10 idle cycles",
}

// groupMetricLabel overrides metricLabel within one group.
var groupMetricLabel = map[string]map[string]string{
	"Daemon": {"ns/op": "time to mounted"},
}

// Header is what the report says about the run.
type Header struct {
	Command string
	Date    string
	CPU     string
	Go      string
}

// WriteMarkdown writes the table of rows, one section per group.
func WriteMarkdown(w io.Writer, h Header, rows []Row, unpaired []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# infisicalfs benchmarks\n\n")
	fmt.Fprintf(&b, "Generated by `%s` on %s (%s, %s). Each infisicalfs figure is measured in the same run as its baseline; ratio = infisicalfs / baseline (— where the baseline is zero). Chart: `bench.png` (time ratios, log scale).\n\n", h.Command, h.Date, h.CPU, h.Go)
	fmt.Fprintf(&b, "FUSE requests are the kernel requests the daemon saw (`fs.FS.Requests`: lookup, getattr, open, read, flush, opendir, readdir; not release, write, create or setattr). API requests are the requests that reached the test server (login and token revoke included: one token per cycle by default).\n\n")
	byGroup := map[string][]Row{}
	for _, r := range rows {
		byGroup[r.Group] = append(byGroup[r.Group], r)
	}
	groups := append([]string(nil), groupOrder...)
	for g := range byGroup {
		if _, ok := groupInfo[g]; !ok {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		rs := byGroup[g]
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", g, groupInfo[g])
		fmt.Fprintf(&b, "| figure | metric | infisicalfs | baseline | ratio |\n| --- | --- | ---: | ---: | ---: |\n")
		for _, r := range rs {
			label := groupMetricLabel[g][r.Metric]
			if label == "" {
				label = metricLabel[r.Metric]
			}
			if label == "" {
				label = r.Metric
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Figure, label,
				formatValue(r.Metric, r.FS), formatValue(r.Metric, r.Base), formatRatio(r.Ratio()))
		}
		b.WriteString("\n")
	}
	if len(unpaired) > 0 {
		fmt.Fprintf(&b, "Results without a partner (not in the table): %s\n", strings.Join(unpaired, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
