package storage_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	dsql "github.com/driftd/driftd/sql"
	"github.com/driftd/driftd/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *storage.Store {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	ctx := testenv.Context(t, time.Minute)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	return s
}

func TestMigrateIsIdempotent(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	migs, err := dsql.Migrations(dsql.Layout{Database: s.Database(), TTLDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range migs {
		want = append(want, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	done, err := s.Migrate(ctx, 30)
	if err != nil || strings.Join(done, " ") != strings.Join(want, " ") {
		t.Fatalf("first migrate: %v %v; want %v", done, err, want)
	}
	done, err = s.Migrate(ctx, 30)
	if err != nil || len(done) != 0 {
		t.Fatalf("second migrate applied %v: %v", done, err)
	}
	if ok, err := s.Migrated(ctx); !ok || err != nil {
		t.Fatalf("Migrated = %v, %v", ok, err)
	}
}

func event(rng *rand.Rand, at time.Duration, shift float64) *schemas.PredictionEvent {
	return &schemas.PredictionEvent{EventID: "e", Model: "fraud's \"scorer\"", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at),
		Status: "ok", LatencyMs: 5 + rng.Float64()*10, Features: []schemas.Feature{
			{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64() + shift}},
			{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: []string{"DE", "FR"}[rng.IntN(2)]}},
		}, Prediction: schemas.Value{Kind: schemas.String, Str: "yes"}}
}

// resultsBatch is a batch of every kind of result row: two windows over two partitions
// (amount drifted), their verdicts, the alert that raised, a stage row and a late event;
// ref is the reference they were judged against.
func resultsBatch(t *testing.T) (*detectors.Profile, []processors.Closed, []*schemas.AlertEvent, *storage.Batch) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	sample := detectors.NewSample()
	for i := 0; i < 3000; i++ {
		sample.AddEvent(event(rng, 0, 0))
	}
	ref := sample.Build("fraud's \"scorer\"", "1", detectors.SourceFirstWindows, 3, t0)
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	p.SetLayout(ref.Model, ref.Version, ref.Layout())
	for i := 0; i < 1000; i++ {
		p.Add(event(rng, time.Duration(i)*50*time.Millisecond, 2), processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i / 2)}, t0)
	}
	closed := p.CloseAll()
	var verdicts []detectors.Verdict
	var alerts []*schemas.AlertEvent
	al := detectors.NewAlerter(1, 2)
	for _, c := range closed {
		v := detectors.Evaluate(c.Merged, ref, func(string) detectors.Thresholds { return detectors.DefaultThresholds })
		verdicts = append(verdicts, v)
		for _, cond := range v.Conditions {
			if a := al.Observe(cond, t0); a != nil {
				alerts = append(alerts, a)
			}
		}
	}
	if len(alerts) != 1 || alerts[0].Feature != "amount" {
		t.Fatalf("alerts %+v", alerts)
	}
	stage := storage.StageRow{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), TP: processors.TopicPartition{Topic: "p", Partition: 1},
		FirstOffset: 3, LastOffset: 9, Runs: 3, Failures: 1, RecordsIn: 100, RecordsOut: 90, LastSuccess: t0.Add(10 * time.Minute),
		Errors: map[string]uint64{"key missing": 1}}
	b := &storage.Batch{Closed: closed, Stages: []storage.StageRow{stage}, Verdicts: verdicts, Alerts: alerts, WrittenAt: t0,
		Late: []storage.LateEvent{{Source: processors.Source{Topic: "in", Offset: 7}, Series: closed[0].Merged.Series, Start: closed[0].Merged.Start, End: closed[0].Merged.End, EventTime: t0}}}
	w := closed[0].Merged
	b.Canary = []detectors.CanaryComparison{{Canary: processors.SeriesKey{Model: ref.Model, Version: "2", Deployment: "canary"}, Primary: w.Series,
		Start: w.Start, End: w.End, CanaryEvents: 120, PrimaryEvents: 880, Outcome: detectors.CanaryHealthy, Reason: "no regression"}}
	b.Shadow = []storage.ShadowRow{{Window: detectors.ShadowWindow{Shadow: processors.SeriesKey{Model: ref.Model, Version: "3", Deployment: "shadow"},
		PrimaryVersion: "1", Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End), Counts: detectors.ShadowCounts{Shadows: 100, Matched: 90, Agreed: 81}}}}
	return ref, closed, alerts, b
}

func TestWriteIsIdempotentAndQueriesRun(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil { // the fixtures are dated March 2026: keep them past the TTL
		t.Fatal(err)
	}
	ref, closed, alerts, b := resultsBatch(t)
	if err := s.SaveReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second write is a replay after a restart
		b.WrittenAt = t0.Add(time.Duration(i) * time.Second)
		if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	db := s.Database()
	for _, c := range []struct {
		q    string
		want uint64
	}{
		{"SELECT sum(events) FROM " + db + ".window_model_stats FINAL", 1000},
		{"SELECT count() FROM " + db + ".window_model_stats FINAL", 2},
		{"SELECT sum(count) FROM " + db + ".window_feature_stats FINAL WHERE feature = 'amount'", 1000},
		{"SELECT sum(arraySum(bin_counts)) FROM " + db + ".window_feature_stats FINAL WHERE feature = 'amount'", 1000},
		{"SELECT sum(categories['DE'] + categories['FR']) FROM " + db + ".window_feature_stats FINAL WHERE feature = 'country'", 1000},
		{"SELECT count() FROM " + db + ".drift_scores FINAL WHERE drifted = 1", 1},
		{"SELECT count() FROM " + db + ".drift_scores FINAL WHERE drifted = 1 AND js > 0.3 AND hellinger > 0.3 AND wasserstein_norm > 1 AND p_adjusted < 0.05 AND ad_p <= 0.001 AND cvm_p < 0.001", 1},
		{"SELECT count() FROM " + db + ".drift_scores FINAL WHERE kind = 'categorical' AND tvd < 0.1 AND g_test_p > 0", 2}, // country and the (string) prediction
		{"SELECT count() FROM " + db + ".alerts FINAL", 1},
		{"SELECT count() FROM " + db + ".late_events FINAL", 1},
		{"SELECT toUInt64(sum(records_lost)) FROM " + db + ".pipeline_stage_stats FINAL", 10},
	} {
		var got uint64
		if err := s.Conn().QueryRow(ctx, c.q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}

	refs, err := s.LoadReferences(ctx)
	if err != nil || len(refs) != 1 || refs[0].ID != ref.ID || refs[0].Model != ref.Model {
		t.Fatalf("references %v %v", refs, err)
	}
	firing, err := s.LoadFiringAlerts(ctx)
	if err != nil || len(firing) != 1 || firing[0].Fingerprint != alerts[0].Fingerprint {
		t.Fatalf("firing %v %v", firing, err)
	}
	cw, err := s.LoadClosedWindows(ctx, time.Hour)
	if err != nil || len(cw) != 2 || cw[0].LastOffset != 499 {
		t.Fatalf("closed windows %+v %v", cw, err)
	}

	// A stored window comes back, partitions merged, as a rolling reference would load it.
	want := closed[0].Merged
	got, err := s.LoadWindow(ctx, want.Series, time.UnixMilli(want.Start))
	if err != nil || got == nil {
		t.Fatalf("load window: %v %v", got, err)
	}
	ga, wa := got.Features["amount"], want.Features["amount"]
	if ga.Count != wa.Count || ga.Sketch.Quantile(0.5) != wa.Sketch.Quantile(0.5) || math.Abs(ga.Moments.Mean-wa.Moments.Mean) > 1e-9 ||
		got.Features["country"].Categories["DE"] != want.Features["country"].Categories["DE"] || got.Prediction.Count != want.Prediction.Count {
		t.Errorf("reloaded window differs: %+v vs %+v", ga, wa)
	}
	if none, err := s.LoadWindow(ctx, want.Series, time.UnixMilli(want.Start).Add(-time.Hour)); none != nil || err != nil {
		t.Errorf("a window never written: %v %v", none, err)
	}

	hist, err := s.LoadStageHistory(ctx, 24*time.Hour)
	if err != nil || len(hist) != 1 || hist[0].Point != (detectors.StagePoint{RecordsOut: 90}) || !hist[0].LastSuccess.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("stage history %+v %v", hist, err)
	}
	// What its judge stored with the window's state comes back with it, as stored.
	point := detectors.StagePoint{LogDuration: processors.Moments{N: 3, Mean: math.Log1p(2000) + 1e-13, M2: 0.0123456789}, LostIn: 300, Lost: -2, NullOut: 302, Nulls: 17}
	if err := s.Write(ctx, &storage.Batch{WrittenAt: t0, StageStates: []storage.StageState{{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), Point: point}}}); err != nil {
		t.Fatal(err)
	}
	point.RecordsOut = 90
	if hist, err = s.LoadStageHistory(ctx, 24*time.Hour); err != nil || len(hist) != 1 || hist[0].Point != point {
		t.Fatalf("stage history with its judged point %+v %v, want %+v", hist, err, point)
	}
	cs, err := s.LoadClosedStageWindows(ctx, time.Hour)
	if err != nil || len(cs) != 1 || cs[0].Model != "orders" || cs[0].LastOffset != 9 || cs[0].TP.Partition != 1 {
		t.Fatalf("closed stage windows %+v %v", cs, err)
	}

	keys, labels := labelData()
	perf, _ := performanceBatch(t)
	if err := s.WriteLabelData(ctx, keys, labels, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteWithRetry(ctx, perf, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// Every query a user is given runs against the real engine and returns rows.
	params := map[string][]any{
		"performance":         {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"labels_now":          {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"labels_unmatched":    {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"drift_over_time":     {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"worst_features":      {clickhouse.Named("since", "2026-03-04 00:00:00"), clickhouse.Named("limit", "10")},
		"latency_by_version":  {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"window_stats":        {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"late_events":         {clickhouse.Named("model", ref.Model), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"open_alerts":         nil,
		"pipeline_health":     {clickhouse.Named("pipeline", "orders"), clickhouse.Named("since", "2026-03-04 00:00:00")},
		"report_traffic":      {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_drift":        {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_alerts":       {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_overview":     {clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_latest":       {clickhouse.Named("model", "")},
		"report_latency":      {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_features":     {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_distribution": {clickhouse.Named("model", ref.Model), clickhouse.Named("version", "1"), clickhouse.Named("deployment", "primary"), clickhouse.Named("feature", "amount"), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_reference":    {clickhouse.Named("model", ref.Model), clickhouse.Named("version", "1")},
		"report_canary":       {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_shadow":       {clickhouse.Named("model", ref.Model), clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_coverage":     {clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
		"report_pipelines":    {clickhouse.Named("from", "2026-03-04 00:00:00"), clickhouse.Named("to", "2026-03-05 00:00:00")},
	}
	for _, name := range dsql.QueryNames() {
		args, ok := params[name]
		if !ok {
			t.Errorf("query %s has no test parameters", name)
			continue
		}
		q, err := dsql.Query(name, db)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.Conn().Query(ctx, q, args...)
		if err != nil {
			t.Errorf("query %s: %v", name, err)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 {
			t.Errorf("query %s: %d rows, %v", name, n, err)
		}
		rows.Close()
	}
}

// Names come from untrusted events: quotes, backslashes, SQL and newlines in model,
// version, feature and category names are stored verbatim and harm nothing.
func TestHostileNamesAreStoredVerbatim(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	hostile := `x'); DROP TABLE window_model_stats; -- \ "q" ` + "\n\t{model:String}"
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	for i := 0; i < 10; i++ {
		p.Add(&schemas.PredictionEvent{Model: hostile, ModelVersion: hostile, Deployment: "primary", Timestamp: t0, Status: "ok",
			Features: []schemas.Feature{
				{Name: hostile, Value: schemas.Value{Kind: schemas.Number, Num: float64(i)}},
				{Name: "c", Value: schemas.Value{Kind: schemas.String, Str: hostile}},
			}}, processors.Source{Topic: "in", Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	if err := s.Write(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}); err != nil {
		t.Fatal(err)
	}
	var model, feature string
	var n uint64
	if err := s.Conn().QueryRow(ctx, "SELECT model, feature, count FROM "+s.Database()+".window_feature_stats FINAL WHERE kind = 'numeric' AND feature != '__prediction__'").Scan(&model, &feature, &n); err != nil {
		t.Fatal(err)
	}
	if model != hostile || feature != hostile || n != 10 {
		t.Fatalf("stored %q %q %d", model, feature, n)
	}
	w, err := s.LoadWindow(ctx, closed[0].Merged.Series, time.UnixMilli(closed[0].Merged.Start))
	if err != nil || w == nil || w.Features[hostile] == nil || w.Features["c"].Categories[hostile] != 10 {
		t.Fatalf("read back through query parameters: %v %+v", err, w)
	}
	var tables uint64
	s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = '"+s.Database()+"'").Scan(&tables)
	if tables < 7 {
		t.Fatalf("%d tables left", tables)
	}
}

// Upgrading to the alert outbox: alerts stored before it existed count as published, so
// the first start after the upgrade does not publish them all again.
func TestOutboxMigrationMarksEarlierAlertsPublished(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	a := &schemas.AlertEvent{AlertID: "a1", Fingerprint: "f", State: "firing", Severity: "warning", Kind: "data_drift", Model: "m",
		WindowStart: t0, WindowEnd: t0.Add(time.Minute), EmittedAt: t0.Add(time.Minute), Summary: "s"}
	if err := s.Write(ctx, &storage.Batch{Alerts: []*schemas.AlertEvent{a}, WrittenAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadUnpublishedAlerts(ctx, 48*time.Hour); err != nil || len(got) != 1 || got[0].AlertID != "a1" || got[0].Summary != "s" {
		t.Fatalf("unpublished %v %v", got, err)
	}
	// As if the database predated migration 5: run it again over the stored alert.
	for _, q := range []string{"DROP TABLE " + s.Database() + ".alerts_published",
		"ALTER TABLE " + s.Database() + ".schema_migrations DELETE WHERE version = 5 SETTINGS mutations_sync = 1"} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if done, err := s.Migrate(ctx, 3650); err != nil || len(done) != 1 || done[0] != "0005_alert_outbox" {
		t.Fatalf("re-migrate: %v %v", done, err)
	}
	if got, err := s.LoadUnpublishedAlerts(ctx, 48*time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("after the upgrade, unpublished %v %v", got, err)
	}
	// A new alert is unpublished until marked.
	b := *a
	b.AlertID, b.EmittedAt = "a2", t0.Add(2*time.Minute)
	if err := s.Write(ctx, &storage.Batch{Alerts: []*schemas.AlertEvent{&b}, WrittenAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadUnpublishedAlerts(ctx, 48*time.Hour); len(got) != 1 || got[0].AlertID != "a2" {
		t.Fatalf("unpublished %v", got)
	}
	if err := s.MarkPublished(ctx, []string{"a2"}, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadUnpublishedAlerts(ctx, 48*time.Hour); len(got) != 0 {
		t.Fatalf("after marking, unpublished %v", got)
	}
}

// A written window reads back whole (features and service counts), so a low-volume merge
// after a restart judges what an uninterrupted run did; hourly events feed the volume
// expectations; a window's judgement is stored on its rows.
func TestWindowsReadBackForJudging(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	first := closed[0].Merged
	verdicts := []detectors.Verdict{{Window: closed[1].Merged, Judgement: "judged over 2 windows merged", JudgedFrom: time.UnixMilli(first.Start)},
		{Window: closed[4].Merged, ExpectedEvents: 1000, VolumeLow: true}, {Window: closed[5].Merged, ExpectedEvents: 101.5}}
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, Verdicts: verdicts, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadWindow(ctx, first.Series, time.UnixMilli(first.Start))
	if err != nil || got == nil {
		t.Fatalf("load window: %v %v", got, err)
	}
	if got.Events != first.Events || got.Errors != first.Errors || got.OK != first.OK || got.Latency.Count() != first.Latency.Count() ||
		got.InputSize.N != first.InputSize.N || got.Features["amount"].Count != first.Features["amount"].Count {
		t.Errorf("read back events %d errors %d ok %d latency %v input %v, wrote %d %d %d %v %v", got.Events, got.Errors, got.OK,
			got.Latency.Count(), got.InputSize.N, first.Events, first.Errors, first.OK, first.Latency.Count(), first.InputSize.N)
	}
	hourly, err := s.LoadHourlyEvents(ctx, 8*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, h := range hourly {
		sum += h.Events
		if h.Events != 200 || h.Series != first.Series || h.Squares != 2*100*100 {
			t.Errorf("hour %v: %d events of %v (squares %v), want 200 in two windows of 100", h.Hour, h.Events, h.Series, h.Squares)
		}
	}
	if len(hourly) != 3 || sum != 600 {
		t.Errorf("%d hours, %d events; want 3 hours of 600 events", len(hourly), sum)
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT DISTINCT judgement, toUnixTimestamp64Milli(judged_from) FROM "+s.Database()+".window_model_stats FINAL WHERE window_start = fromUnixTimestamp64Milli(toInt64("+fmt.Sprint(closed[1].Merged.Start)+"), 'UTC')")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("judged over 2 windows merged\t%d", first.Start); strings.TrimSpace(out) != want {
		t.Errorf("judgement %q, want %q", out, want)
	}
	// The newest windows per series from the third newest not judged low, returned oldest
	// first, with their volume judgements; every partial row of a window carries them.
	recent, err := s.LoadVolumeWindows(ctx, 48*time.Hour, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got3 []string
	for _, w := range recent {
		got3 = append(got3, fmt.Sprintf("%d:%d/%g/%t", w.Start.UnixMilli()-first.Start, w.Events, w.Expected, w.Low))
		if w.Series != first.Series || w.End.Sub(w.Start) != 30*time.Minute {
			t.Errorf("window %v–%v of %v", w.Start, w.End, w.Series)
		}
	}
	half := int64(30 * time.Minute / time.Millisecond)
	if want := []string{fmt.Sprintf("%d:100/0/false", 2*half), fmt.Sprintf("%d:100/0/false", 3*half), fmt.Sprintf("%d:100/1000/true", 4*half), fmt.Sprintf("%d:100/101.5/false", 5*half)}; fmt.Sprint(got3) != fmt.Sprint(want) {
		t.Errorf("volume windows %v, want %v", got3, want)
	}
	out, err = testenv.TSV(ctx, s.Conn(), "SELECT count(), sum(volume_low), sum(expected_events) FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("12\t2\t%g", 2*(1000+101.5)); strings.TrimSpace(out) != want {
		t.Errorf("volume columns %q, want %q", out, want)
	}
}

// sixWindows is 3 hours of one series: six 30-minute windows of 100 events over two
// partitions, one in ten an error.
func sixWindows(t *testing.T) []processors.Closed {
	t.Helper()
	rng := rand.New(rand.NewPCG(2, 2))
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 30 * time.Minute} }, processors.Limits{})
	for i := 0; i < 600; i++ {
		e := event(rng, time.Duration(i)*18*time.Second, 0)
		if i%10 == 0 {
			e.Status = schemas.StatusError
		}
		p.Add(e, processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i / 2)}, t0)
	}
	closed := p.CloseAll()
	if len(closed) != 6 {
		t.Fatalf("%d windows", len(closed))
	}
	return closed
}

// A restart in a drop longer than the windows a series' recent volume is read back from
// still finds the windows before the drop: they are counted in windows not judged low.
func TestVolumeWindowsReachBackPastALongDrop(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	for i := range 20 * 10 { // 20 one-minute windows of 10 events
		p.Add(event(rng, time.Duration(i)*6*time.Second, 0), processors.Source{Topic: "in", Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	b := &storage.Batch{Closed: closed, WrittenAt: t0.Add(time.Hour)}
	for i, c := range closed {
		// Eight windows as expected, then twelve judged low.
		b.Verdicts = append(b.Verdicts, detectors.Verdict{Window: c.Merged, ExpectedEvents: 10, VolumeLow: i >= 8})
	}
	if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ per, first int }{{3, 5}, {8, 0}, {20, 0}, {1, 7}} {
		ws, err := s.LoadVolumeWindows(ctx, 48*time.Hour, c.per)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 20-c.first || !ws[0].Start.Equal(t0.Add(time.Duration(c.first)*time.Minute)) || !ws[len(ws)-1].Low {
			t.Errorf("%d not judged low: %d windows, want %d from minute %d: %v", c.per, len(ws), 20-c.first, c.first, ws)
		}
	}
}
