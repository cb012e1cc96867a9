// Package telemetry is driftd's own health: Prometheus metrics, and the /metrics,
// /healthz and /readyz endpoints.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are driftd's Prometheus metrics, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	consumed      *prometheus.CounterVec
	decodeErrors  *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	late          *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	windowClose   prometheus.Histogram
	insertLatency prometheus.Histogram
	insertErrors  *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	openWindows   prometheus.Gauge
	series        prometheus.Gauge
	partitions    prometheus.Gauge
	rebalances    prometheus.Counter
	groupLag      *funcGauge
	unreadable    *funcGauge
	paused        *funcGauge
	supplements   *funcGauge
	// consumedBy and lagBy hold the per-record series once looked up (topic; lagKey): a
	// vector's lookup hashes the label values and takes a lock, on every record.
	consumedBy, lagBy sync.Map
}

type lagKey struct {
	topic     string
	partition int
}

// funcGauge is a gauge (or, with counter, a counter) asked of the consumer or the
// pipeline when scraped, reported only when it is known (nothing before the consumer
// joins, or while it cannot tell).
type funcGauge struct {
	desc    *prometheus.Desc
	counter bool
	get     atomic.Pointer[func() (int64, bool)]
}

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	if get := g.get.Load(); get != nil {
		if v, ok := (*get)(); ok {
			kind := prometheus.GaugeValue
			if g.counter {
				kind = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(g.desc, kind, float64(v))
		}
	}
}

// NewMetrics creates and registers the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_records_consumed_total",
			Help: "Records read from Kafka, per topic."}, []string{"topic"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_decode_errors_total",
			Help: "Records that could not be decoded or broke the event contract, per topic and class."}, []string{"topic", "class"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_dead_lettered_total",
			Help: "Records and batches written to the dead-letter topic, per class."}, []string{"class"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_late_events_total",
			Help: "Events that arrived after their window closed, per topic."}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "driftd_consumer_lag",
			Help: "Records not yet read, per partition (high watermark minus the next offset, as of the last record read)."}, []string{"topic", "partition"}),
		windowClose: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "driftd_window_close_seconds",
			Help: "Wall time from a window closing to its results being written.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		insertLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "driftd_clickhouse_insert_seconds",
			Help: "Duration of a ClickHouse write (one flush, all tables).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_clickhouse_insert_errors_total",
			Help: "Failed ClickHouse writes, per class (retryable or fatal)."}, []string{"class"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftd_alerts_total",
			Help: "Alerts published, per kind and state."}, []string{"kind", "state"}),
		openWindows: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftd_open_windows",
			Help: "Partial windows held in memory."}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftd_series_tracked",
			Help: "Series (model, version, deployment) with state in memory; at limits.max_series new series go to the dead-letter topic (class limit)."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftd_partitions_assigned",
			Help: "Partitions this member reads: all of the group's on the active member, 0 on a standby."}),
		unreadable: &funcGauge{desc: prometheus.NewDesc("driftd_partitions_unreadable",
			"Partitions this member reads whose fetches failed within the last minute (a leader gone, an ACL taken away): the windows they feed wait for them, and driftd exits once one has failed for limits.max_outage.", nil, nil)},
		paused: &funcGauge{desc: prometheus.NewDesc("driftd_partitions_paused",
			"Partitions this member reads that are paused because they were read ahead of the others in event time (a backlog): they go on as the partitions behind them catch up. 0 when reading live.", nil, nil)},
		supplements: &funcGauge{counter: true, desc: prometheus.NewDesc("driftd_supplement_windows_total",
			"Windows closed that only added partitions to a window already judged without them (their records were read, or delivered, after the rest of the window was judged): written, not judged. Since the start, as of the last flush.", nil, nil)},
		groupLag: &funcGauge{desc: prometheus.NewDesc("driftd_consumer_group_lag",
			"Records of the subscribed topics the consumer group has not committed (end offsets less committed offsets, as Kafka's tools count them), checked every 3 s: unlike driftd_consumer_lag it grows while driftd stalls.", nil, nil)},
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftd_rebalances_total",
			Help: "Consumer-group generations that gave this member other partitions (its state was dropped and restored from ClickHouse)."}),
	}
	m.Registry.MustRegister(m.consumed, m.decodeErrors, m.deadLettered, m.late, m.lag, m.windowClose,
		m.insertLatency, m.insertErrors, m.alerts, m.openWindows, m.series, m.partitions, m.rebalances, m.groupLag, m.unreadable, m.paused, m.supplements,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// The methods below are what the pipeline reports; all are safe on a nil *Metrics.

// Consumed counts a record read from topic.
func (m *Metrics) Consumed(topic string) {
	if m != nil {
		c, ok := m.consumedBy.Load(topic)
		if !ok {
			c, _ = m.consumedBy.LoadOrStore(topic, m.consumed.WithLabelValues(topic))
		}
		c.(prometheus.Counter).Inc()
	}
}

// DecodeError counts a record that could not be used.
func (m *Metrics) DecodeError(topic, class string) {
	if m != nil {
		m.decodeErrors.WithLabelValues(topic, class).Inc()
	}
}

// DeadLettered counts a dead-lettered record or batch.
func (m *Metrics) DeadLettered(class string) {
	if m != nil {
		m.deadLettered.WithLabelValues(class).Inc()
	}
}

// Late counts a late event.
func (m *Metrics) Late(topic string) {
	if m != nil {
		m.late.WithLabelValues(topic).Inc()
	}
}

// Lag records a partition's lag.
func (m *Metrics) Lag(topic string, partition int, lag int64) {
	if m != nil {
		k := lagKey{topic, partition}
		g, ok := m.lagBy.Load(k)
		if !ok {
			g, _ = m.lagBy.LoadOrStore(k, m.lag.WithLabelValues(topic, strconv.Itoa(partition)))
		}
		g.(prometheus.Gauge).Set(float64(lag))
	}
}

// GroupLagFrom sets where driftd_consumer_group_lag comes from (the consumer's status;
// ok false while it is not known).
func (m *Metrics) GroupLagFrom(get func() (lag int64, ok bool)) {
	if m != nil {
		m.groupLag.get.Store(&get)
	}
}

// UnreadableFrom sets where driftd_partitions_unreadable comes from (the consumer; ok
// false while it is not known).
func (m *Metrics) UnreadableFrom(get func() (n int64, ok bool)) {
	if m != nil {
		m.unreadable.get.Store(&get)
	}
}

// PausedFrom sets where driftd_partitions_paused comes from (the consumer; ok false
// while it is not known).
func (m *Metrics) PausedFrom(get func() (n int64, ok bool)) {
	if m != nil {
		m.paused.get.Store(&get)
	}
}

// SupplementsFrom sets where driftd_supplement_windows_total comes from (the pipeline's
// counts at its last flush; ok false before the first).
func (m *Metrics) SupplementsFrom(get func() (n int64, ok bool)) {
	if m != nil {
		m.supplements.get.Store(&get)
	}
}

// ConsumerLag is the records behind the newest on every partition this member read, as
// last reported (the driftd_consumer_lag gauges summed).
func (m *Metrics) ConsumerLag() int64 {
	if m == nil {
		return 0
	}
	families, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "driftd_consumer_lag" {
			continue
		}
		for _, x := range f.GetMetric() {
			sum += x.GetGauge().GetValue()
		}
	}
	return int64(sum)
}

// WindowsWritten observes how long closed windows waited to be written.
func (m *Metrics) WindowsWritten(waited []time.Duration) {
	if m != nil {
		for _, d := range waited {
			m.windowClose.Observe(d.Seconds())
		}
	}
}

// Insert observes a ClickHouse write; class is "" on success.
func (m *Metrics) Insert(d time.Duration, class string) {
	if m == nil {
		return
	}
	m.insertLatency.Observe(d.Seconds())
	if class != "" {
		m.insertErrors.WithLabelValues(class).Inc()
	}
}

// Alert counts a published alert.
func (m *Metrics) Alert(kind, state string) {
	if m != nil {
		m.alerts.WithLabelValues(kind, state).Inc()
	}
}

// State sets the number of open partial windows, tracked series and assigned partitions.
func (m *Metrics) State(openWindows, series, partitions int) {
	if m != nil {
		m.openWindows.Set(float64(openWindows))
		m.series.Set(float64(series))
		m.partitions.Set(float64(partitions))
	}
}

// Rebalanced counts a generation that changed this member's partitions.
func (m *Metrics) Rebalanced() {
	if m != nil {
		m.rebalances.Inc()
		// The partitions this member read before may belong to another member now: their
		// last lag would be reported (and summed on the overview) for good. The partitions
		// it reads from here on report theirs with their next record.
		m.lag.Reset()
		m.lagBy.Clear() // the cached gauges are no longer the vector's
	}
}

// ReadinessCheck reports whether driftd does its job: a line for a person when it does
// (reading partitions, or standing by for the member that does), an error saying why not
// otherwise.
type ReadinessCheck func(ctx context.Context) (string, error)

// Serve serves /metrics, /healthz (the process answers) and /readyz on addr until ctx
// ends, and ui (when not nil: driftd's pages) at every other path. It returns the bound
// address once listening. /readyz answers 200 with the check's line when it passes and
// 503 with "not ready: " and the reason when it does not: a load balancer needs the
// code, a person the line.
func Serve(ctx context.Context, addr string, m *Metrics, ready ReadinessCheck, ui http.Handler, log *slog.Logger) (string, error) {
	mux := http.NewServeMux()
	if ui != nil {
		mux.Handle("/", ui)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		cctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		line, err := ready(cctx)
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(line + "\n"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health endpoint stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}
