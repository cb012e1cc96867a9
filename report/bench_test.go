package report

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// benchSize is the stored history the page benchmarks fill: a year of 5-minute windows
// for 50 models with 20 features each by default (DRIFTD_UI_BENCH_MODELS, _DAYS,
// _FEATURES change it).
func benchSize(b *testing.B) (models, days, features int) {
	get := func(name string, def int) int {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				b.Fatalf("%s=%q: want a positive integer", name, v)
			}
			return n
		}
		return def
	}
	return get("DRIFTD_UI_BENCH_MODELS", 50), get("DRIFTD_UI_BENCH_DAYS", 365), get("DRIFTD_UI_BENCH_FEATURES", 20)
}

// fillHistory writes a stored history into s's tables with INSERT … SELECT in the engine
// (rows the pipeline would write: one partition per window, a latency sketch, bins
// against a reference's 49 edges, a drift score per feature and window, two alerts per
// model and day), ending at end.
func fillHistory(ctx context.Context, b *testing.B, s *storage.Store, models, days, features int, end time.Time) {
	b.Helper()
	sk := processors.NewSketch()
	for i := range 3000 {
		sk.Add(10 + float64(i%97))
	}
	windows := days * 288
	start := end.Add(-time.Duration(windows) * 5 * time.Minute)
	db := s.Database()
	args := []any{clickhouse.Named("start", start.UTC().Format("2006-01-02 15:04:05")), clickhouse.Named("sketch", string(sk.Encode())),
		clickhouse.Named("models", strconv.Itoa(models)), clickhouse.Named("features", strconv.Itoa(features))}
	window := `toDateTime64({start:String}, 3, 'UTC') + toIntervalSecond(300 * w)`
	for _, q := range []struct {
		table string
		rows  int
		sql   string
	}{
		{"window_model_stats", models * windows, `INSERT INTO ` + db + `.window_model_stats (model, model_version, deployment, window_start, window_end, topic, partition,
  events, ok, errors, null_predictions, latency_p50, latency_p99, latency_sketch, written_at)
SELECT concat('model-', toString(m)), '1', 'primary', ` + window + `, ` + window + ` + toIntervalSecond(300), 'p', 0,
  3000, 2970, 30, 3, 50, 105, {sketch:String}, now64(3)
FROM (SELECT number % {models:UInt32} AS m, intDiv(number, {models:UInt32}) AS w FROM numbers({offset}, {rows}))`},
		{"window_feature_stats", models * windows * features, `INSERT INTO ` + db + `.window_feature_stats (model, model_version, deployment, window_start, window_end, topic, partition,
  feature, kind, count, missing, reference_id, bin_edges, bin_counts, written_at)
SELECT concat('model-', toString(m)), '1', 'primary', ` + window + `, ` + window + ` + toIntervalSecond(300), 'p', 0,
  concat('feature_', toString(f)), 'numeric', 2990, 10, 'ref', arrayMap(i -> toFloat64(i), range(49)), arrayMap(i -> toUInt64(60), range(50)), now64(3)
FROM (SELECT number % {models:UInt32} AS m, intDiv(number, {models:UInt32}) % {features:UInt32} AS f,
  intDiv(number, {models:UInt32} * {features:UInt32}) AS w FROM numbers({offset}, {rows}))`},
		{"drift_scores", models * windows * features, `INSERT INTO ` + db + `.drift_scores (model, model_version, deployment, window_start, window_end, feature, kind, reference_id,
  n, psi, test, drifted, written_at)
SELECT concat('model-', toString(m)), '1', 'primary', ` + window + `, ` + window + ` + toIntervalSecond(300),
  concat('feature_', toString(f)), 'numeric', 'ref', 2990, 0.01 + (w * 7 + f) % 9 / 1000, 'ks', 0, now64(3)
FROM (SELECT number % {models:UInt32} AS m, intDiv(number, {models:UInt32}) % {features:UInt32} AS f,
  intDiv(number, {models:UInt32} * {features:UInt32}) AS w FROM numbers({offset}, {rows}))`},
		{"alerts", models * days * 2, `INSERT INTO ` + db + `.alerts (alert_id, fingerprint, state, severity, kind, model, feature, window_start, window_end, emitted_at, summary)
SELECT toString(number), concat(toString(m), '/feature_1'), if(number % 2 = 0, 'firing', 'resolved'), 'warning', 'data_drift',
  concat('model-', toString(m)), 'feature_1', ` + window + `, ` + window + ` + toIntervalSecond(300), ` + window + ` + toIntervalSecond(360), 'feature_1 drifted'
FROM (SELECT number, number % {models:UInt32} AS m, intDiv(number, {models:UInt32}) * 144 AS w FROM numbers({offset}, {rows}))`},
	} {
		began := time.Now()
		// In chunks of 5M rows: one statement of 100M rows outlasts the client's wait.
		const chunk = 5_000_000
		for offset := 0; offset < q.rows; offset += chunk {
			sql := strings.NewReplacer("{offset}", strconv.Itoa(offset), "{rows}", strconv.Itoa(min(chunk, q.rows-offset))).Replace(q.sql)
			if err := s.Conn().Exec(ctx, sql, args...); err != nil {
				b.Fatalf("fill %s: %v", q.table, err)
			}
		}
		b.Logf("%s: %d rows in %s", q.table, q.rows, time.Since(began).Round(time.Millisecond))
	}
}

// The pages on a year of 5-minute windows for 50 models (20 features each): the overview
// and a model's page, as served, each under 200 ms (docs/performance.md has the numbers).
func BenchmarkPages(b *testing.B) {
	ctx := testenv.Context(b, 30*time.Minute)
	s := migratedStore(ctx, b)
	models, days, features := benchSize(b)
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	fillHistory(ctx, b, s, models, days, features, end)
	h := Handler(func() (Querier, string, bool) { return s.Conn(), s.Database(), true }, nil, func() time.Time { return end },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, page := range []struct{ name, path string }{
		{"overview", "/"},
		{"model", "/model?name=model-7"},
		{"model_week", "/model?name=model-7&from=" + end.Add(-7*24*time.Hour).Format(time.RFC3339) + "&to=" + end.Format(time.RFC3339)},
	} {
		b.Run(page.name, func(b *testing.B) {
			b.ReportAllocs()
			var bytes int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, page.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", page.path, rec.Code, rec.Body.String())
				}
				bytes = rec.Body.Len()
			}
			b.ReportMetric(float64(bytes), "bytes/page")
			if os.Getenv("DRIFTD_UI_BENCH_SHOW") != "" {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, page.path, nil))
				b.Log(rec.Body.String())
			}
		})
	}
}
