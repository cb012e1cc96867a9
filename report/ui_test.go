package report

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
)

// The UI on the engine: the overview lists each model version and slot with traffic in
// the last 24 hours, the model with a firing critical alert first and marked critical,
// with its slot's label coverage; a model or a stage silent for the whole period but
// with a firing alert, with that alert; the pipeline stages with their alerts' status;
// driftd's own health;
// a model's page is its report; before ClickHouse is connected the pages say so.
func TestUI(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s := migratedStore(ctx, t)
	db := s.Database()
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO ` + db + `.window_model_stats (model, model_version, deployment, window_start, window_end, topic, partition, events, errors, latency_p99, written_at) VALUES
('calm', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 0, 600, 0, 50, now64(3)),
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 0, 3000, 30, 80, now64(3)),
('fraud', '2', 'canary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 0, 300, 3, 400, now64(3)),
('gone', '1', 'primary', '2026-03-02 10:00:00', '2026-03-02 10:05:00', 'p', 0, 300, 0, 50, now64(3))`,
		`INSERT INTO ` + db + `.alerts (alert_id, fingerprint, state, severity, kind, model, window_start, window_end, emitted_at, summary) VALUES
('a', 'f', 'firing', 'critical', 'canary', 'fraud', '2026-03-04 10:00:00', '2026-03-04 10:05:00', '2026-03-04 10:06:00', 'canary fraud 2 regressed'),
('b', 'g', 'firing', 'info', 'canary', 'calm', '2026-03-04 10:00:00', '2026-03-04 10:05:00', '2026-03-04 10:06:00', 'calm can be promoted'),
('d', 'q', 'firing', 'warning', 'volume', 'quiet', '2026-03-02 10:00:00', '2026-03-02 10:05:00', '2026-03-02 10:06:00', 'quiet sent nothing')`,
		`INSERT INTO ` + db + `.alerts (alert_id, fingerprint, state, severity, kind, pipeline, stage, window_start, window_end, emitted_at, summary) VALUES
('c', 'h', 'firing', 'critical', 'pipeline_failure', 'orders', 'join', '2026-03-04 10:00:00', '2026-03-04 11:00:00', '2026-03-04 11:06:00', 'stage join of orders failed'),
('e', 'i', 'firing', 'warning', 'pipeline_freshness', 'orders', 'load', '2026-03-02 10:00:00', '2026-03-02 11:00:00', '2026-03-02 11:06:00', 'stage load of orders is overdue')`,
		`INSERT INTO ` + db + `.pipeline_stage_stats (pipeline, stage, window_start, window_end, topic, partition, runs, failures, last_success, written_at) VALUES
('orders', 'join', '2026-03-04 10:00:00', '2026-03-04 11:00:00', 'p', 0, 12, 3, '2026-03-04 10:40:00', now64(3)),
('orders', 'extract', '2026-03-04 10:00:00', '2026-03-04 11:00:00', 'p', 0, 12, 0, '2026-03-04 10:55:00', now64(3))`,
		`INSERT INTO ` + db + `.window_performance (model, model_version, deployment, window_start, window_end, predictions, labelled, written_at) VALUES
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 3000, 1500, now64(3))`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	connected := false
	health := func() Health {
		return Health{Group: "driftd-group", Joined: true, Assigned: 3, GroupAssigned: 3, Partitions: 3, Members: 2, Lag: 1234, GroupLag: 5678, LastFlush: now, Records: 99}
	}
	h := Handler(func() (Querier, string, bool) { return s.Conn(), db, connected }, health, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/"); code != http.StatusServiceUnavailable {
		t.Errorf("before ClickHouse: %d", code)
	}
	connected = true
	code, body := get("/")
	if code != http.StatusOK {
		t.Fatalf("overview: %d %s", code, body)
	}
	fraud, calm := strings.Index(body, `href="model?name=fraud"`), strings.Index(body, `href="model?name=calm"`)
	if fraud < 0 || calm < 0 || fraud > calm || strings.Contains(body, "name=gone") {
		t.Errorf("overview does not list fraud (critical) before calm, without gone:\n%s", body)
	}
	if !strings.Contains(body, `class="critical">critical`) || strings.Count(body, `class="ok">ok</td><td><a`) != 1 {
		t.Errorf("statuses: fraud's two slots critical, calm ok (its info alert is no trouble):\n%s", body)
	}
	if n := strings.Count(body, "<td class=\"n\">50%</td>"); n != 1 {
		t.Errorf("label coverage 50%% on %d rows, want fraud 1 primary's only (its canary has no labels)", n)
	}
	for _, want := range []string{"<td class=\"n\">50%</td>", `<td class="critical">critical</td><td>orders</td><td>join</td>`, `<td class="ok">ok</td><td>orders</td><td>extract</td>`,
		`<td class="warning">warning</td><td><a href="model?name=quiet">quiet</a>`, "no traffic in the period",
		`<td class="warning">warning</td><td>orders</td><td>load</td><td class="n">0</td><td class="n">0</td><td>no run in the period</td>`,
		"driftd-group", "this member reads 3, the group 3 of 3 · 2 member(s)", "1234 records", "5678 records not yet committed by the group", "99 records read"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q:\n%s", want, body)
		}
	}
	code, body = get("/model?name=fraud")
	if code != http.StatusOK || !strings.Contains(body, "driftd report: fraud") || !strings.Contains(body, "canary fraud 2 regressed") {
		t.Errorf("model page: %d %.400s", code, body)
	}
	for _, path := range []string{"/model", "/model?name=fraud&from=yesterday", "/nowhere"} {
		if code, _ := get(path); code < 400 {
			t.Errorf("%s: %d", path, code)
		}
	}
}
