// Package metrics exposes infisicalfs's Prometheus metrics on /metrics and
// a readiness check on /healthz. It uses its own registry, so that nothing
// another package registers globally leaks onto the endpoint.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. All methods are safe for concurrent use and
// do nothing on a nil *Metrics, so callers need no "metrics enabled" checks.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	syncDuration    prometheus.Histogram
	syncs           *prometheus.CounterVec
	lastSyncOK      prometheus.Gauge
	secrets         prometheus.Gauge
	pushes          *prometheus.CounterVec
	errs            *prometheus.CounterVec
	readyGauge      prometheus.Gauge

	ready atomic.Bool
	// lastOK is the time of the last successful sync (UnixNano; 0: none
	// since the start); maxStale the age past which /healthz says 503 (0:
	// never).
	lastOK   atomic.Int64
	maxStale atomic.Int64
	now      func() time.Time // time.Now; tests move it
}

// New creates the collectors in a fresh registry, with the Go runtime and
// process collectors beside them.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infisicalfs_api_requests_total",
			Help: "HTTP requests to the Infisical API, by method, templated route and status code (0: no response).",
		}, []string{"method", "route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "infisicalfs_api_request_duration_seconds",
			Help:    "Duration of HTTP requests to the Infisical API.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infisicalfs_sync_duration_seconds",
			Help:    "Duration of sync cycles (every project and environment).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infisicalfs_sync_total",
			Help: "Sync cycles, by result (ok or error).",
		}, []string{"result"}),
		lastSyncOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infisicalfs_last_sync_success_timestamp_seconds",
			Help: "Unix time of the last successful sync; alert on its age.",
		}),
		secrets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infisicalfs_secrets",
			Help: "Secrets currently in the mount.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infisicalfs_pushes_total",
			Help: "Changes written back to Infisical, by operation and result (ok or error).",
		}, []string{"op", "result"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infisicalfs_errors_total",
			Help: "Errors, by kind.",
		}, []string{"kind"}),
		readyGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infisicalfs_ready",
			Help: "1 once the filesystem is mounted and serving.",
		}),
	}
	m.reg.MustRegister(m.requests, m.requestDuration, m.syncDuration, m.syncs, m.lastSyncOK,
		m.secrets, m.pushes, m.errs, m.readyGauge,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Both results exist from the start, so rate() and alerts see a 0
	// rather than a missing series.
	m.syncs.WithLabelValues("ok")
	m.syncs.WithLabelValues("error")
	return m
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// ObserveRequest records one HTTP attempt; its signature matches
// infisical.Config.Observe. route must be templated (no ids or names).
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.requestDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// SyncDone records one finished sync cycle.
func (m *Metrics) SyncDone(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.syncDuration.Observe(d.Seconds())
	m.syncs.WithLabelValues(result(err)).Inc()
	if err == nil {
		m.lastSyncOK.SetToCurrentTime()
		m.lastOK.Store(m.clock().UnixNano())
	}
}

// SetMaxStale makes /healthz answer 503 once the last successful sync is
// older than d (0: never), so that a probe can act on a mount that serves
// ever older values.
func (m *Metrics) SetMaxStale(d time.Duration) {
	if m == nil {
		return
	}
	m.maxStale.Store(int64(d))
}

// SyncedAt records a successful sync at t without a cycle's other metrics:
// the first sync, done before the metrics exist.
func (m *Metrics) SyncedAt(t time.Time) {
	if m == nil {
		return
	}
	m.lastOK.Store(t.UnixNano())
}

func (m *Metrics) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// staleFor is how long past the allowed age the values are, or 0.
func (m *Metrics) staleFor() (age time.Duration, stale bool) {
	max := time.Duration(m.maxStale.Load())
	last := m.lastOK.Load()
	if max <= 0 || last == 0 {
		return 0, false
	}
	age = m.clock().Sub(time.Unix(0, last))
	return age, age > max
}

// SetSecrets sets the number of secrets in the mount.
func (m *Metrics) SetSecrets(n int) {
	if m == nil {
		return
	}
	m.secrets.Set(float64(n))
}

// Push records one write-back; kind is the operation (set, delete, rename,
// mkdir…).
func (m *Metrics) Push(kind string, err error) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(kind, result(err)).Inc()
}

// Error counts one error of a kind (a short fixed word, never a message).
func (m *Metrics) Error(kind string) {
	if m == nil {
		return
	}
	m.errs.WithLabelValues(kind).Inc()
}

// SetReady flips /healthz between 503 and 200.
func (m *Metrics) SetReady(ready bool) {
	if m == nil {
		return
	}
	m.ready.Store(ready)
	if ready {
		m.readyGauge.Set(1)
	} else {
		m.readyGauge.Set(0)
	}
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !m.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		if age, stale := m.staleFor(); stale {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "stale: last successful sync %s ago (healthz_max_stale %s)\n", age.Round(time.Second), time.Duration(m.maxStale.Load()))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve listens on addr (":0" picks a port) and serves Handler until ctx
// ends. It returns once listening, with the address actually bound.
func Serve(ctx context.Context, addr string, m *Metrics, logger *slog.Logger) (net.Addr, error) {
	if m == nil {
		return nil, errors.New("metrics: Serve needs a *Metrics from New")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), nil
}
