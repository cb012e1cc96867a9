package report

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var day = time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)

// dayOfWindows is a day of five-minute windows of two slots and twenty features, the
// feature "amount" drifting from 16:40, with an alert firing and resolving, and a
// feature whose name is markup.
func dayOfWindows() Data {
	d := Data{Model: "fraud", From: day, To: day.Add(24 * time.Hour), Generated: day.Add(25 * time.Hour)}
	for w := 0; w < 288; w++ {
		start := day.Add(time.Duration(w) * 5 * time.Minute)
		for _, slot := range []string{"1 primary", "2 canary"} {
			d.Traffic = append(d.Traffic, Traffic{Start: start, End: start.Add(5 * time.Minute), Slot: slot, Events: 3000, Failed: uint64(w % 7), P50: 20, P99: 40 + float64(w%13)})
		}
		for f := 0; f < 20; f++ {
			name := fmt.Sprintf("feature_%02d", f)
			psi := 0.01 + 0.001*float64((w*7+f)%9)
			switch {
			case f == 0:
				name = "amount"
				if w >= 200 {
					psi = 0.6
				}
			case f == 1:
				name = "<script>alert(1)</script>"
			}
			d.Drift = append(d.Drift, Drift{Start: start, Feature: name, PSI: psi, Drifted: psi > 0.25})
		}
	}
	for f := 0; f < 20; f++ {
		d.Features = append(d.Features, FeatureHealth{Name: fmt.Sprintf("feature_%02d", f), Kind: "numeric", Present: 864000 - uint64(f), Missing: uint64(f)})
	}
	edges, bins := make([]float64, 49), make([]float64, 50)
	for i := range edges {
		edges[i] = float64(i)
	}
	for i := range bins {
		bins[i] = 100
	}
	d.Distributions = []Distribution{{Feature: "amount", Slot: "1 primary", Kind: "numeric", Edges: edges, Ref: bins, Cur: bins, Start: day.Add(1435 * time.Minute), End: day.Add(24 * time.Hour)},
		{Feature: "__prediction__", Slot: "1 primary", Kind: "categorical", Categories: []string{"yes", "no"}, Ref: []float64{10, 90}, Cur: []float64{30, 70}}}
	for w := 0; w < 288; w++ {
		d.Performance = append(d.Performance, Performance{Start: day.Add(time.Duration(w) * 5 * time.Minute), Slot: "1 primary", Task: "classification", Labelled: 1500, Accuracy: 0.9, Coverage: 0.5})
	}
	d.Alerts = []Alert{
		{Emitted: day.Add(16*time.Hour + 46*time.Minute), Start: day.Add(16*time.Hour + 40*time.Minute), End: day.Add(16*time.Hour + 45*time.Minute),
			State: "firing", Severity: "critical", Kind: "data_drift", Version: "1", Slot: "primary", Feature: "amount", Summary: "feature amount of fraud 1 drifted: PSI 0.60"},
	}
	return d
}

// A day of five-minute windows and twenty features is one HTML page of kilobytes: the
// drifted feature is the heat map's first row and has the hottest cells, the alert is
// in the timeline, and names are escaped.
func TestReportOfADay(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, dayOfWindows(), false); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	t.Logf("a day of 5-minute windows, 20 features, 2 slots, two distributions, performance: %d bytes", b.Len())
	if b.Len() > 120_000 {
		t.Errorf("report is %d bytes, want at most 120 KB", b.Len())
	}
	first := regexp.MustCompile(`<svg class="heat"[^>]*><text[^>]*>([^<]*)</text>`).FindStringSubmatch(html)
	if first == nil || first[1] != "amount" {
		t.Errorf("the heat map's first row is %v, want amount", first)
	}
	if !strings.Contains(html, `class="h5"`) {
		t.Error("no cell in the hottest class")
	}
	if strings.Contains(html, "<script>alert(1)</script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Error("a feature name is not escaped")
	}
	for _, want := range []string{"feature amount of fraud 1 drifted: PSI 0.60", "288 windows", "1728000 requests", "1 primary", "2 canary", "1 primary accuracy"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// Load reads a model's windows, drift scores, alerts, features, performance, canary and
// shadow windows in the period from the engine (the queries in sql/queries), and nothing
// of other models or outside the period: latency percentiles are the partitions'
// sketches merged, and the most drifted feature's newest window is drawn against its
// reference's bins.
func TestLoad(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s := migratedStore(ctx, t)
	db := s.Database()
	rng := rand.New(rand.NewPCG(3, 3))
	event := func(model string, at time.Duration, shift float64) *schemas.PredictionEvent {
		return &schemas.PredictionEvent{Model: model, ModelVersion: "1", Deployment: "primary", Timestamp: day.Add(10*time.Hour + at),
			Status: []string{"ok", "ok", "ok", "error"}[rng.IntN(4)], LatencyMs: 5 + 100*rng.Float64(), Features: []schemas.Feature{
				{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64() + shift}},
				{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: []string{"DE", "FR", "IT"}[rng.IntN(3)]}},
				{Name: "note", Value: schemas.Value{Kind: []schemas.Kind{schemas.String, schemas.Missing}[rng.IntN(2)], Str: "x"}},
			}, Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
	}
	sample := detectors.NewSample()
	for range 2000 {
		sample.AddEvent(event("fraud", 0, 0))
	}
	ref := sample.Build("fraud", "1", detectors.SourceFirstWindows, 3, day)
	if err := s.SaveReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 5 * time.Minute} }, processors.Limits{})
	p.SetLayout("fraud", "1", ref.Layout())
	all := processors.NewSketch()
	for i := range 600 { // one window over two partitions, the amount shifted; another model
		e := event("fraud", time.Duration(i)*400*time.Millisecond, 2)
		all.Add(e.LatencyMs)
		p.Add(e, processors.Source{Topic: "p", Partition: i % 2, Offset: int64(i)}, day)
		p.Add(event("other", time.Duration(i)*400*time.Millisecond, 0), processors.Source{Topic: "p", Partition: 2, Offset: int64(i)}, day)
	}
	p.Add(event("fraud", 24*time.Hour, 0), processors.Source{Topic: "p", Offset: 1000}, day) // the next day: outside the period
	closed := p.CloseAll()
	b := &storage.Batch{Closed: closed, WrittenAt: day}
	for _, c := range closed {
		if c.Merged.Series.Model == "fraud" {
			b.Verdicts = append(b.Verdicts, detectors.Evaluate(c.Merged, ref, func(string) detectors.Thresholds { return detectors.DefaultThresholds }))
		}
	}
	w := closed[0].Merged
	b.Canary = []detectors.CanaryComparison{{Canary: processors.SeriesKey{Model: "fraud", Version: "2", Deployment: "canary"}, Primary: w.Series,
		Start: w.Start, End: w.End, CanaryEvents: 60, PrimaryEvents: 600, Outcome: detectors.CanaryRegression, Reason: "p99 latency 4x the primary's"}}
	b.Shadow = []storage.ShadowRow{{Window: detectors.ShadowWindow{Shadow: processors.SeriesKey{Model: "fraud", Version: "3", Deployment: "shadow"},
		PrimaryVersion: "1", Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End), Counts: detectors.ShadowCounts{Shadows: 100, Matched: 80, Agreed: 60}}}}
	if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().Exec(ctx, `INSERT INTO `+db+`.alerts (alert_id, fingerprint, state, severity, kind, model, window_start, window_end, emitted_at, summary) VALUES
('a', 'f', 'firing', 'critical', 'data_drift', 'fraud', '2026-03-04 10:00:00', '2026-03-04 10:05:00', '2026-03-04 10:06:00', 'amount drifted')`); err != nil {
		t.Fatal(err)
	}

	d, err := Load(ctx, s.Conn(), db, Selection{Model: "fraud", From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Traffic) != 1 || d.Traffic[0].Events != 600 || d.Traffic[0].Slot != "1 primary" || d.Traffic[0].P99 != all.Quantile(0.99) || d.Traffic[0].P50 != all.Quantile(0.5) {
		t.Errorf("traffic %+v, want 600 events with p50 %v and p99 %v", d.Traffic, all.Quantile(0.5), all.Quantile(0.99))
	}
	if mostDrifted(d.Drift) != "amount" || len(d.Alerts) != 1 || d.Alerts[0].Summary != "amount drifted" {
		t.Errorf("drift %+v alerts %+v", d.Drift, d.Alerts)
	}
	var note *FeatureHealth
	for i, f := range d.Features {
		if f.Name == "note" {
			note = &d.Features[i]
		}
	}
	if len(d.Features) != 4 || note == nil || note.Missing == 0 || note.Missing+note.Present != 600 {
		t.Errorf("features %+v", d.Features)
	}
	if len(d.Distributions) != 2 || d.Distributions[0].Feature != "amount" || d.Distributions[1].Feature != processors.PredictionFeature {
		t.Fatalf("distributions %+v", d.Distributions)
	}
	amount := d.Distributions[0]
	var cur float64
	for _, x := range amount.Cur {
		cur += x
	}
	if amount.Note != "" || len(amount.Ref) != len(ref.Features["amount"].Bins) || cur != 600 {
		t.Errorf("amount's distribution: %+v", amount)
	}
	if len(d.Canary) != 1 || d.Canary[0].Verdict != "regression" || len(d.Shadow) != 1 || d.Shadow[0].Agreement != 0.75 {
		t.Errorf("canary %+v shadow %+v", d.Canary, d.Shadow)
	}
	var html bytes.Buffer
	if err := Render(&html, d, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Distribution of amount (1 primary)", `<polyline class="ref"`, `<rect class="cur"`, "p99 latency 4x the primary", `v-regression`,
		"Shadow agreement", `<option selected>amount</option>`} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// What a stored row cannot show costs its part of the page, not the page: a latency
// sketch that does not decode leaves its window's latency out, a reference that does not
// decode leaves the distribution without it, each with a note. A window written before
// its reference existed is drawn from the values it kept.
func TestLoadDegradesToNotes(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s := migratedStore(ctx, t)
	db := s.Database()
	rng := rand.New(rand.NewPCG(5, 5))
	event := func(at time.Duration) *schemas.PredictionEvent {
		return &schemas.PredictionEvent{Model: "fraud", ModelVersion: "1", Deployment: "primary", Timestamp: day.Add(10*time.Hour + at),
			Status: "ok", LatencyMs: 5 + 100*rng.Float64(), Features: []schemas.Feature{
				{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 1000 + 15*rng.NormFloat64()}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
	}
	sample := detectors.NewSample()
	for range 2000 {
		sample.AddEvent(event(0))
	}
	ref := sample.Build("fraud", "1", detectors.SourceFirstWindows, 3, day)
	if err := s.SaveReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	// The window opened and was written before the reference existed.
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 5 * time.Minute} }, processors.Limits{})
	for i := range 600 {
		p.Add(event(time.Duration(i)*400*time.Millisecond), processors.Source{Topic: "p", Partition: i % 2, Offset: int64(i)}, day)
	}
	closed := p.CloseAll()
	for _, c := range closed {
		for _, part := range c.Partials {
			part.KeepRaw = true
		}
	}
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: day}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	load := func() Data {
		t.Helper()
		d, err := Load(ctx, s.Conn(), db, Selection{Model: "fraud", Feature: "amount", From: day, To: day.Add(24 * time.Hour)})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return d
	}
	d := load()
	if len(d.Notes) != 0 || len(d.Distributions) == 0 {
		t.Fatalf("notes %q, distributions %+v", d.Notes, d.Distributions)
	}
	amount := d.Distributions[0]
	var cur float64
	for _, x := range amount.Cur {
		cur += x
	}
	if amount.Feature != "amount" || amount.Note != "" || len(amount.Ref) == 0 || len(amount.Cur) != len(amount.Ref) || cur != 600 {
		t.Errorf("a window written before its reference: %+v, want its 600 kept values between the reference's bins", amount)
	}

	for _, q := range []string{
		`INSERT INTO ` + db + `.window_model_stats (model, model_version, deployment, window_start, window_end, topic, partition, events, latency_sketch, written_at) VALUES
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 7, 10, 'not a sketch', now64(3))`,
		`INSERT INTO ` + db + `.reference_profiles (model, model_version, reference_id, created_at, profile) VALUES ('fraud', '1', 'broken', '2027-01-01 00:00:00', '{"features": 7')`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d = load()
	if len(d.Notes) != 2 || !strings.Contains(d.Notes[0], "latency of 1 primary not shown for 1 window(s) from 03-04 10:00") || !strings.Contains(d.Notes[1], "reference of version 1 does not decode") {
		t.Errorf("notes %q", d.Notes)
	}
	if len(d.Traffic) != 1 || !d.Traffic[0].NoLatency || len(d.Distributions) == 0 || d.Distributions[0].Ref != nil ||
		!strings.Contains(d.Distributions[0].Note, "the reference does not decode") {
		t.Errorf("traffic %+v distributions %+v", d.Traffic, d.Distributions)
	}
	var html bytes.Buffer
	if err := Render(&html, d, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "does not decode") {
		t.Error("the page does not carry the notes")
	}
	if !strings.Contains(html.String(), `(partitions' sketches merged)</h2><p class="none">no data</p>`) {
		t.Error("the window whose latency is not known is drawn")
	}
}

// A chart shows what was measured: settled windows without labels are not an accuracy of
// 0, shadow windows with nothing matched are not 0% agreement, a regression model has no
// accuracy line, and a distribution whose counts are all 0 draws no NaN.
func TestRenderLeavesOutWhatWasNotMeasured(t *testing.T) {
	at := day.Add(time.Hour)
	d := Data{Model: "m", From: day, To: day.Add(24 * time.Hour),
		Traffic: []Traffic{{Start: at, End: at.Add(5 * time.Minute), Slot: "1 primary", Events: 10}},
		Performance: []Performance{
			{Start: at, Slot: "1 primary", Task: "", Labelled: 0, Coverage: 0},
			{Start: at, Slot: "2 canary", Task: detectors.TaskRegression, Labelled: 5, MAE: 1.5, Coverage: 0.5},
		},
		Shadow:        []Shadow{{Start: at, Shadow: "3", Primary: "1", Matched: 0}},
		Distributions: []Distribution{{Feature: "country", Slot: "1 primary", Kind: "categorical", Categories: []string{"DE"}, Ref: []float64{0}, Cur: []float64{0}}},
	}
	var b bytes.Buffer
	if err := Render(&b, d, false); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, bad := range []string{"1 primary accuracy", "2 canary accuracy", "NaN", "3 vs 1"} {
		if strings.Contains(html, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	if !strings.Contains(html, "2 canary MAE") {
		t.Error("page lacks the regression's MAE")
	}
}

// migratedStore is a store on a migrated database of the test's own, dropped after it.
func migratedStore(ctx context.Context, t testing.TB) *storage.Store {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	return s
}
