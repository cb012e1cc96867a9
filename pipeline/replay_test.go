package pipeline_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// timed is a record of a recorded stream with its event time.
type timed struct {
	at       time.Time
	pipeline bool // for the pipeline topic
	msg      kafka.Message
}

// upstreamStream is seven hours of one pipeline (three stages, a run every 5 minutes at
// minute 2, succeeded/failed only, keyed by pipeline) feeding fraud-scorer (a prediction
// every 2 s, keyed by request):
//   - 00:00–03:00 healthy;
//   - 03:00–04:00 stage join fails every run, and fraud-scorer's amount shifts;
//   - from 05:00 stage load runs no more (its last run 04:57);
//   - from 06:00 stage extract fails every run until the stream ends at 07:00 (read
//     ahead from a backlog, those failures once made the healthy first hours of a stage
//     report "failed 0 of 12 runs (12 in a row)").
func upstreamStream(start time.Time) []timed {
	rng := rand.New(rand.NewPCG(10, 10))
	var out []timed
	const hours = 7
	for m := 0; m < hours*60; m += 5 {
		at := start.Add(time.Duration(m+2) * time.Minute)
		for _, stage := range []string{"extract", "join", "load"} {
			status := "succeeded"
			if (stage == "join" && m >= 180 && m < 240) || (stage == "extract" && m >= 360) {
				status = "failed"
			}
			if stage == "load" && m >= 300 {
				continue
			}
			b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("%s-%d", stage, m), "pipeline": "orders", "stage": stage,
				"run_id": fmt.Sprint(m), "status": status, "timestamp": at.UnixMilli(), "duration_ms": 1000 + rng.IntN(500),
				"records_in": 1000, "records_out": 990, "models": []string{"fraud-scorer"}})
			out = append(out, timed{at: at, pipeline: true, msg: kafka.Message{Key: []byte("orders"), Value: b}})
		}
	}
	for s := 0; s < hours*3600; s += 2 {
		at := start.Add(time.Duration(s) * time.Second)
		shift := 0.0
		if s >= 3*3600 && s < 4*3600 {
			shift = 3
		}
		e := &schemas.PredictionEvent{EventID: fmt.Sprintf("p-%d", s), RequestID: fmt.Sprint(rng.IntN(1 << 30)), Model: "fraud-scorer",
			ModelVersion: "1", Deployment: "primary", Timestamp: at, Status: "ok", LatencyMs: 10 + rng.Float64(),
			Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 10*(rng.NormFloat64()+shift)}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
		b, _ := schemas.MarshalPredictionJSON(e)
		out = append(out, timed{at: at, msg: kafka.Message{Key: []byte(e.RequestID), Value: b}})
		// A canary beside it, healthy (promoted after ten windows) until it turns four
		// times slower at 05:00 (a rollback two windows later); its traffic does not
		// shift at 03:00 (the comparison names the inputs as differing).
		c := *e
		c.EventID, c.RequestID, c.ModelVersion, c.Deployment = fmt.Sprintf("c-%d", s), fmt.Sprint(rng.IntN(1<<30)), "2", "canary"
		c.LatencyMs = 10 + rng.Float64()
		c.Features = []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 10*rng.NormFloat64()}}}
		c.Prediction = schemas.Value{Kind: schemas.Number, Num: rng.Float64()}
		if s >= 5*3600 {
			c.LatencyMs *= 4
		}
		b, _ = schemas.MarshalPredictionJSON(&c)
		out = append(out, timed{at: at, msg: kafka.Message{Key: []byte(c.RequestID), Value: b}})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

func replaySettings(s *pipeline.Settings) {
	s.WindowSpec = func(string) processors.WindowSpec {
		return processors.WindowSpec{Size: 5 * time.Minute, Lateness: 30 * time.Second}
	}
	s.PipelineWindow = processors.WindowSpec{Size: time.Hour, Lateness: 5 * time.Minute}
	s.PipelineThresholds = detectors.DefaultPipelineThresholds
	s.FreshnessFactor = 2
	// Windows close by the watermark only: a simulated clock that jumps would otherwise
	// close them as idle.
	s.IdleClose = 0
}

// writers produces to the harness's prediction and pipeline topics.
type writers struct{ pred, pipe *consumers.Writer }

func (h *harness) writers(t *testing.T) writers {
	t.Helper()
	o := consumers.Options{Brokers: []string{h.brokers}}
	w := writers{consumers.NewWriter(o, h.predictions), consumers.NewWriter(o, h.pipeline)}
	t.Cleanup(func() { w.pred.Close(); w.pipe.Close() })
	return w
}

func (w writers) write(t *testing.T, recs []timed) {
	t.Helper()
	var pred, pipe []kafka.Message
	for _, r := range recs {
		if r.pipeline {
			pipe = append(pipe, r.msg)
		} else {
			pred = append(pred, r.msg)
		}
	}
	ctx := testenv.Context(t, time.Minute)
	if len(pipe) > 0 {
		if err := w.pipe.Write(ctx, pipe...); err != nil {
			t.Fatal(err)
		}
	}
	if len(pred) > 0 {
		if err := w.pred.Write(ctx, pred...); err != nil {
			t.Fatal(err)
		}
	}
}

// alertLines are the alerts on the harness's alert topic as comparable lines: everything
// but when they were emitted, sorted.
func alertLines(t *testing.T, h *harness, n int) []string {
	t.Helper()
	var out []string
	for _, m := range readAll(t, h.brokers, h.alerts, n) {
		var a schemas.AlertEvent
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		who := a.Model + "/" + a.Feature
		if a.Pipeline != "" {
			who = a.Pipeline + "/" + a.Stage
		}
		details, _ := json.Marshal(a.Details)
		out = append(out, fmt.Sprintf("%s %s %s %s–%s %s | %s | %s", a.Kind, who, a.State, a.WindowStart.Format("15:04"), a.WindowEnd.Format("15:04"),
			a.AlertID, a.Summary, details))
	}
	sort.Strings(out)
	return out
}

// results are a run's stored rows that must not depend on how the stream was read. A
// window's feature partials are compared without how they hold their values before the
// reference (bins, kept values and the layout's id): those depend on whether the
// reference existed when the window was flushed, and either reads back the same
// (TestStoredWindowIsJudgedAsWritten). Categories are compared sorted: a map's order is
// the order its keys were inserted.
func results(t *testing.T, h *harness) string {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	db := h.store.Database()
	var b strings.Builder
	for _, q := range []string{
		"SELECT * EXCEPT (written_at, topic) FROM %s.window_model_stats FINAL",
		"SELECT * EXCEPT (written_at, topic, reference_id, bin_edges, bin_counts, raw, categories), arraySort(arrayZip(mapKeys(categories), mapValues(categories))) FROM %s.window_feature_stats FINAL ORDER BY model, model_version, deployment, feature, window_start, partition",
		"SELECT * EXCEPT written_at FROM %s.drift_scores FINAL",
		"SELECT * EXCEPT (written_at, topic) FROM %s.pipeline_stage_stats FINAL",
		"SELECT * EXCEPT written_at FROM %s.pipeline_stage_state FINAL",
		"SELECT * EXCEPT (emitted_at, details), arraySort(arrayZip(mapKeys(details), mapValues(details))) FROM %s.alerts FINAL",
		"SELECT * EXCEPT written_at FROM %s.alert_state FINAL",
		"SELECT reference_id FROM %s.reference_profiles FINAL",
		"SELECT count() FROM %s.late_events FINAL",
		"SELECT * EXCEPT written_at FROM %s.canary_analysis FINAL ORDER BY model, canary_version, window_start",
	} {
		rows, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(q, db))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "%s\n%s\n", q, rows)
	}
	return b.String()
}

// Replay determinism: the same recorded stream read live at its own (simulated,
// fast-forwarded) pace and read as a backlog at full speed gives the same alerts — kind,
// subject, window, firing/resolved sequence, summaries with their upstream hints, ids —
// and the same rows. The stage that fails is flagged for its failing hour only (no
// failure of a healthy hour judged with the failures read ahead of it), freshness fires
// when each stage became overdue in event time, and the drift alert of 03:00 names the
// failure of 03:02 and nothing later. Read as a backlog with a restart in the middle of
// the failing hour, the rows (alerts, their states and the stages' states included) are
// the same again.
func TestReplayGivesTheLiveAlerts(t *testing.T) {
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	end := start.Add(7 * time.Hour)
	recs := upstreamStream(start)

	// Live: the clock is the stream's; every two minutes of event time, what happened in
	// them is produced and read.
	live := newHarness(t)
	live.tweak = replaySettings
	lw := live.writers(t)
	live.skew.Store(int64(time.Until(start)))
	waitFor, stop := live.start(t)
	i := 0
	for at := start.Add(2 * time.Minute); !at.After(end); at = at.Add(2 * time.Minute) {
		live.skew.Store(int64(time.Until(at)))
		j := i
		for j < len(recs) && recs[j].at.Before(at) {
			j++
		}
		lw.write(t, recs[i:j])
		i = j
		waitFor(at.Format("15:04"), func(s pipeline.Stats) bool { return s.Records == uint64(i) })
	}
	liveStats := stop()
	if liveStats.Records != uint64(len(recs)) || liveStats.Late != 0 {
		t.Fatalf("live stats %+v", liveStats)
	}

	// Backlog: everything is in Kafka before driftd starts; the wall clock is at the end.
	backlog := newHarness(t)
	backlog.tweak = replaySettings
	backlog.writers(t).write(t, recs)
	backlog.skew.Store(int64(time.Until(end)))
	waitFor, stop = backlog.start(t)
	waitFor("the backlog", func(s pipeline.Stats) bool {
		return s.Records == uint64(len(recs)) && s.WindowsClosed == liveStats.WindowsClosed && s.StageWindowsClosed == liveStats.StageWindowsClosed
	})
	var flushes uint64
	waitFor("a flush", func(s pipeline.Stats) bool { flushes = s.Flushes; return true })
	waitFor("more flushes", func(s pipeline.Stats) bool { return s.Flushes >= flushes+3 })
	backlogStats := stop()

	if liveStats.AlertsEmitted != backlogStats.AlertsEmitted {
		t.Errorf("%d alerts live, %d from the backlog", liveStats.AlertsEmitted, backlogStats.AlertsEmitted)
	}
	got, want := alertLines(t, backlog, int(backlogStats.AlertsEmitted)), alertLines(t, live, int(liveStats.AlertsEmitted))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts from the backlog:\n%s\nlive:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g, w := results(t, backlog), results(t, live); g != w {
		t.Errorf("rows differ; from the backlog:\n%s\nlive:\n%s", g, w)
	}

	// Backlog again, up to 03:30, then stopped and restarted on the rest: mid-failure,
	// with join's freshness alert firing and its failing hour open.
	restarted := newHarness(t)
	restarted.tweak = replaySettings
	rw := restarted.writers(t)
	split := sort.Search(len(recs), func(i int) bool { return !recs[i].at.Before(start.Add(210 * time.Minute)) })
	rw.write(t, recs[:split])
	restarted.skew.Store(int64(time.Until(start.Add(210 * time.Minute))))
	waitFor, stop = restarted.start(t)
	waitFor("hours 0–2", func(s pipeline.Stats) bool { return s.Records == uint64(split) && s.StageWindowsClosed == 9 })
	waitFor("a flush", func(s pipeline.Stats) bool { flushes = s.Flushes; return true })
	waitFor("more flushes", func(s pipeline.Stats) bool { return s.Flushes >= flushes+3 })
	first := stop()
	t.Logf("stopped after %d records: %d model and %d stage windows written, %d alerts", first.Records, first.WindowsClosed, first.StageWindowsClosed, first.AlertsEmitted)
	rw.write(t, recs[split:])
	restarted.skew.Store(int64(time.Until(end)))
	waitFor, stop = restarted.start(t)
	written := func(h *harness) string {
		n, err := testenv.TSV(testenv.Context(t, time.Minute), h.store.Conn(), fmt.Sprintf("SELECT (SELECT uniqExact(model, window_start) FROM %[1]s.window_model_stats), "+
			"(SELECT uniqExact(pipeline, stage, window_start) FROM %[1]s.pipeline_stage_stats)", h.store.Database()))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := written(live)
	waitFor("the rest", func(s pipeline.Stats) bool { return written(restarted) == all })
	waitFor("a flush", func(s pipeline.Stats) bool { flushes = s.Flushes; return true })
	waitFor("more flushes", func(s pipeline.Stats) bool { return s.Flushes >= flushes+3 })
	stop()
	if g, w := results(t, restarted), results(t, live); g != w {
		t.Errorf("rows differ; restarted:\n%s\nlive:\n%s", g, w)
	}

	// What the alerts must say, whichever way the stream was read.
	var failures, drift []string
	freshness := map[string]bool{}
	for _, l := range want {
		switch {
		case strings.HasPrefix(l, "pipeline_failure "):
			failures = append(failures, l[:strings.Index(l, " | ")])
		case strings.HasPrefix(l, "pipeline_freshness "):
			f := strings.Fields(l)
			freshness[strings.Join(f[:4], " ")] = true
		case strings.HasPrefix(l, "data_drift ") && strings.Contains(l, " firing 03:00–03:05 "):
			drift = append(drift, l)
		}
	}
	for i := range failures {
		failures[i] = strings.Join(strings.Fields(failures[i])[:4], " ")
	}
	if strings.Join(failures, "\n") != "pipeline_failure orders/join firing 03:00–04:00\npipeline_failure orders/join resolved 05:00–06:00" {
		t.Errorf("pipeline_failure alerts:\n%s", strings.Join(failures, "\n"))
	}
	for _, w := range []string{
		"pipeline_freshness orders/join firing 02:57–03:07", // two 5-minute intervals after its last success
		"pipeline_freshness orders/join resolved 02:57–04:02",
		"pipeline_freshness orders/load firing 04:57–05:07",
		"pipeline_freshness orders/extract firing 05:57–06:07",
	} {
		if !freshness[w] {
			t.Errorf("no %q in %v", w, freshness)
		}
	}
	if len(freshness) != 4 {
		t.Errorf("freshness alerts %v", freshness)
	}
	var canary []string
	for _, l := range want {
		if strings.HasPrefix(l, "canary ") {
			canary = append(canary, strings.Join(strings.Fields(l)[:4], " "))
		}
	}
	if strings.Join(canary, "\n") != "canary fraud-scorer/ firing 00:45–00:50\ncanary fraud-scorer/ firing 05:05–05:10\ncanary fraud-scorer/ resolved 05:00–05:05" {
		t.Errorf("canary alerts (promote, rollback, promote withdrawn):\n%s", strings.Join(canary, "\n"))
	}
	if len(drift) != 1 || !strings.Contains(drift[0], "upstream: stage join of pipeline orders failed 1 times in this period") ||
		strings.Contains(drift[0], "has not succeeded") {
		t.Errorf("drift alert of 03:00: %v", drift)
	}
}

// stageRuns is a run of stage join of pipeline orders every 5 minutes (at minute 2) over
// [from, to) hours after start; in the failing hours every other run fails (a failure
// rate of 0.5, a breach, while the stage keeps succeeding: no freshness alert).
func stageRuns(start time.Time, from, to int, failing map[int]bool) []timed {
	var out []timed
	for m := from * 60; m < to*60; m += 5 {
		at := start.Add(time.Duration(m+2) * time.Minute)
		status := "succeeded"
		if failing[m/60] && (m/5)%2 == 0 {
			status = "failed"
		}
		b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprint(m), "pipeline": "orders", "stage": "join", "run_id": fmt.Sprint(m),
			"status": status, "timestamp": at.UnixMilli(), "records_in": 10, "records_out": 10})
		out = append(out, timed{at: at, pipeline: true, msg: kafka.Message{Key: []byte("orders"), Value: b}})
	}
	return out
}

// Hysteresis survives a restart: with fire_after 2, a stage whose failure rate is breached
// in hours 3 and 4 fires at hour 4 also when driftd restarts between judging hour 3 and
// hour 4, exactly as an uninterrupted run — and resolves after two clean hours.
func TestRestartBetweenWindowsKeepsHysteresis(t *testing.T) {
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	failing := map[int]bool{3: true, 4: true}
	tweak := func(s *pipeline.Settings) {
		replaySettings(s)
		s.FireAfter, s.ResolveAfter = 2, 2
	}
	want := []string{"pipeline_failure orders/join firing 04:00–05:00", "pipeline_failure orders/join resolved 06:00–07:00"}
	lines := func(h *harness, n int) []string {
		var out []string
		for _, l := range alertLines(t, h, n) {
			out = append(out, strings.Join(strings.Fields(l)[:4], " "))
		}
		return out
	}

	clean := newHarness(t)
	clean.tweak = tweak
	clean.writers(t).write(t, stageRuns(start, 0, 8, failing))
	clean.skew.Store(int64(time.Until(start.Add(8 * time.Hour))))
	waitFor, stop := clean.start(t)
	waitFor("hours 0–6", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 7 })
	stop()
	if got := lines(clean, 2); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("uninterrupted run: %v, want %v", got, want)
	}

	restarted := newHarness(t)
	restarted.tweak = tweak
	w := restarted.writers(t)
	// Up to 04:17: hour 3 is judged (breached once), hour 4 is open when driftd stops.
	w.write(t, stageRuns(start, 0, 4, failing))
	w.write(t, stageRuns(start, 4, 8, failing)[:4])
	restarted.skew.Store(int64(time.Until(start.Add(4*time.Hour + 20*time.Minute))))
	waitFor, stop = restarted.start(t)
	waitFor("hours 0–3", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 4 })
	if s := stop(); s.AlertsEmitted != 0 {
		t.Fatalf("an alert before the restart: %+v", s)
	}
	w.write(t, stageRuns(start, 4, 8, failing)[4:])
	restarted.skew.Store(int64(time.Until(start.Add(8 * time.Hour))))
	waitFor, stop = restarted.start(t)
	waitFor("hours 4–6", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 3 })
	stop()
	if got := lines(restarted, 2); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("restarted between the breached hours: %v, want %v", got, want)
	}
}

// signalRuns are runs of three stages of pipeline orders every 5 minutes over [from, to)
// hours after start, each sending its duration (about 2 s, varying by ±25%), records in
// and out (0.1% lost) and nulls (0.05%): in the changed hours, stage join takes four
// times as long, stage load loses 30% of its records and stage clean outputs 20% nulls.
func signalRuns(start time.Time, from, to int, changed map[int]bool) []timed {
	rng := rand.New(rand.NewPCG(3, uint64(from)))
	var out []timed
	for m := from * 60; m < to*60; m += 5 {
		for i, stage := range []string{"join", "load", "clean"} {
			at := start.Add(time.Duration(m+1+i) * time.Minute)
			in := int64(10000 + rng.IntN(100))
			dur, records, nulls := math.Round(2000*math.Exp(0.25*rng.NormFloat64())), in-in/1000, in/2000
			if changed[m/60] {
				switch stage {
				case "join":
					dur *= 4
				case "load":
					records = in * 7 / 10
				case "clean":
					nulls = in / 5
				}
			}
			b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprint(stage, m), "pipeline": "orders", "stage": stage, "run_id": fmt.Sprint(m),
				"status": "succeeded", "timestamp": at.UnixMilli(), "duration_ms": dur, "records_in": in, "records_out": records, "null_count": nulls})
			out = append(out, timed{at: at, pipeline: true, msg: kafka.Message{Key: []byte("orders"), Value: b}})
		}
	}
	return out
}

// A stage's duration, records lost and nulls are judged against its own history (the
// same hour of the previous days, the spread of a week of runs), and a restart judges
// them against the same history, read back from ClickHouse with the windows' states: in
// hour 48 each of three stages changes one of them, which fires one alert each at 48:00
// and resolves at 49:00, uninterrupted and with a restart at 30:17 (hour 48's baseline,
// hours 0 and 24, judged before it).
func TestRestartKeepsTheStagesHistory(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	changed := map[int]bool{48: true}
	runs := signalRuns(start, 0, 51, changed)
	// Hour 48 is 00:00 of the third day.
	want := []string{"pipeline_duration orders/join firing 00:00–01:00", "pipeline_duration orders/join resolved 01:00–02:00",
		"pipeline_quality orders/clean firing 00:00–01:00", "pipeline_quality orders/clean resolved 01:00–02:00",
		"pipeline_volume orders/load firing 00:00–01:00", "pipeline_volume orders/load resolved 01:00–02:00"}
	tweak := func(s *pipeline.Settings) {
		replaySettings(s)
		s.FireAfter, s.ResolveAfter = 1, 1
	}
	lines := func(h *harness) []string {
		var out []string
		for _, l := range alertLines(t, h, len(want)) {
			f := strings.Fields(l)
			out = append(out, strings.Join(f[:4], " "))
		}
		slices.Sort(out)
		return out
	}

	clean := newHarness(t)
	clean.tweak = tweak
	clean.writers(t).write(t, runs)
	clean.skew.Store(int64(time.Until(start.Add(51 * time.Hour))))
	waitFor, stop := clean.start(t)
	waitFor("hours 0–49", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 3*50 })
	if s := stop(); s.AlertsEmitted != uint64(len(want)) {
		t.Errorf("uninterrupted run emitted %d alerts, want %d", s.AlertsEmitted, len(want))
	}
	if got := lines(clean); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("uninterrupted run:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	restarted := newHarness(t)
	restarted.tweak = tweak
	w := restarted.writers(t)
	cut := sort.Search(len(runs), func(i int) bool { return !runs[i].at.Before(start.Add(30*time.Hour + 17*time.Minute)) })
	w.write(t, runs[:cut])
	restarted.skew.Store(int64(time.Until(start.Add(30*time.Hour + 20*time.Minute))))
	waitFor, stop = restarted.start(t)
	waitFor("hours 0–29", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 3*30 })
	if s := stop(); s.AlertsEmitted != 0 {
		t.Fatalf("an alert before the restart: %+v", s)
	}
	w.write(t, runs[cut:])
	restarted.skew.Store(int64(time.Until(start.Add(51 * time.Hour))))
	waitFor, stop = restarted.start(t)
	waitFor("hours 30–49", func(s pipeline.Stats) bool { return s.StageWindowsClosed == 3*20 })
	if s := stop(); s.AlertsEmitted != uint64(len(want)) {
		t.Errorf("restarted run emitted %d alerts, want %d", s.AlertsEmitted, len(want))
	}
	if got := lines(restarted); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("restarted at 30:17:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A restart inside a version's first windows builds the same reference (the same id) as
// a clean run, and so the same drift scores and alerts: the windows written before the
// restart feed it from ClickHouse (reference_samples), not the windows after.
func TestRestartInsideReferenceWindowsBuildsTheSameReference(t *testing.T) {
	msgs := stream(rand.New(rand.NewPCG(21, 21)), 10, map[int]bool{6: true, 7: true})
	tweak := func(s *pipeline.Settings) { s.IdleClose = 0 } // windows 0–8 close by the watermark
	const closed = 2 * 9

	clean := newHarness(t)
	clean.tweak = tweak
	clean.produce(t, msgs...)
	waitFor, stop := clean.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.WindowsClosed == closed })
	cleanStats := stop()

	restarted := newHarness(t)
	restarted.tweak = tweak
	// Windows 0 and 1, and half of window 2: the reference needs three.
	split := 2*perWindow*2 + perWindow
	restarted.produce(t, msgs[:split]...)
	waitFor, stop = restarted.start(t)
	waitFor("windows 0 and 1", func(s pipeline.Stats) bool { return s.WindowsClosed == 4 })
	if s := stop(); s.ReferencesBuilt != 0 {
		t.Fatalf("a reference before the restart: %+v", s)
	}
	restarted.produce(t, msgs[split:]...)
	waitFor, stop = restarted.start(t)
	waitFor("the other windows", func(s pipeline.Stats) bool { return s.WindowsClosed == closed-4 })
	if s := stop(); s.ReferencesBuilt != 2 {
		t.Fatalf("references built after the restart: %+v", s)
	}

	if g, w := results(t, restarted), results(t, clean); g != w {
		t.Errorf("rows differ; restarted:\n%s\nclean:\n%s", g, w)
	}
	n := int(cleanStats.AlertsEmitted)
	if got, want := alertLines(t, restarted, n), alertLines(t, clean, n); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts after a restart:\n%s\nclean:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// keyFor returns a record key that the producers' hash balancer puts on partition p of n.
func keyFor(p, n int) []byte {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	for i := 0; ; i++ {
		k := []byte(fmt.Sprint("key-", i))
		if (&kafka.Hash{}).Balance(kafka.Message{Key: k}, parts...) == p {
			return k
		}
	}
}

// A record late before a restart, from a partition with no row in its stored window, stays
// late after the restart: re-read, it is recognised from late_events and not written into
// the window as well.
func TestLateRecordStaysLateAfterRestart(t *testing.T) {
	h := newHarnessN(t, 2)
	h.tweak = func(s *pipeline.Settings) { s.IdleClose = 0 }
	at := func(d time.Duration, key []byte) kafka.Message {
		e := &schemas.PredictionEvent{EventID: fmt.Sprint(d), Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(d),
			Status: "ok", LatencyMs: 5, Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: 1}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: 1}}
		return kafka.Message{Key: key, Value: jsonOf(t, e)}
	}
	p0, p1 := keyFor(0, 2), keyFor(1, 2)
	var first []kafka.Message
	for s := 0; s <= 150; s++ {
		first = append(first, at(time.Duration(s)*time.Second, p0)) // windows 0, 1, 2 on partition 0
	}
	h.produce(t, first...)
	waitFor, stop := h.start(t)
	waitFor("windows 0 and 1", func(s pipeline.Stats) bool { return s.WindowsClosed == 2 })
	// Partition 1: one record of window 2 (open: partition 1 is not committed past it),
	// then one of window 0, closed without partition 1: late.
	h.produce(t, at(130*time.Second, p1), at(30*time.Second, p1))
	waitFor("the late record", func(s pipeline.Stats) bool { return s.Late == 1 })
	stop()

	waitFor, stop = h.start(t)
	// Re-read: window 2's 31 records of partition 0 and both of partition 1.
	waitFor("the re-read records", func(s pipeline.Stats) bool { return s.Records == 33 })
	var flushes uint64
	waitFor("a flush", func(s pipeline.Stats) bool { flushes = s.Flushes; return true })
	waitFor("more flushes", func(s pipeline.Stats) bool { return s.Flushes >= flushes+5 })
	stats := stop()
	if stats.Late != 0 || stats.Replayed != 1 || stats.Added != 32 {
		t.Errorf("after the restart: %+v; want the late record replayed, not added", stats)
	}
	ctx := testenv.Context(t, time.Minute)
	db := h.store.Database()
	got, err := testenv.TSV(ctx, h.store.Conn(), "SELECT partition, events FROM "+db+".window_model_stats FINAL WHERE window_start = '"+t0.Format("2006-01-02 15:04:05")+"'")
	if err != nil {
		t.Fatal(err)
	}
	if got != "0\t60\n" {
		t.Errorf("window 0 written as %q, want partition 0 with 60 events only", got)
	}
	var late uint64
	if err := h.store.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".late_events FINAL").Scan(&late); err != nil || late != 1 {
		t.Errorf("%d late events (%v), want 1", late, err)
	}
}

// A restart in the middle of a volume drop keeps judging the drop against the traffic
// before it: the windows a series' recent volume is learned from are read back from
// ClickHouse without those judged low (volume_low), so the alert stays firing until the
// traffic is back, as in an uninterrupted run, and the rows are the same.
func TestRestartDuringAVolumeDropKeepsItFiring(t *testing.T) {
	var msgs []kafka.Message
	var split int
	for s := 0; s < 100*60; s++ { // 2 events/s, 0.1/s over minutes 70–89
		if s >= 70*60 && s < 90*60 && s%10 != 0 {
			continue
		}
		if s == 85*60 {
			split = len(msgs)
		}
		for _, half := range []time.Duration{0, 500 * time.Millisecond} {
			at := t0.Add(time.Duration(s)*time.Second + half)
			if half > 0 && s >= 70*60 && s < 90*60 {
				continue
			}
			e := &schemas.PredictionEvent{EventID: fmt.Sprint("e-", at.UnixMilli()), Model: "orders", ModelVersion: "1", Deployment: "primary",
				Timestamp: at, Status: "ok", LatencyMs: 10, Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(s % 7)}}},
				Prediction: schemas.Value{Kind: schemas.Number, Num: 1}}
			msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: jsonOf(t, e)})
		}
	}
	tweak := func(s *pipeline.Settings) { s.IdleClose = 0 } // windows close by the watermark
	const closed = 99                                       // 10:00–11:38; 11:39 stays open
	volume := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, "volume ") {
				out = append(out, strings.Join(strings.Fields(l)[:4], " "))
			}
		}
		return out
	}
	want := []string{"volume orders/ firing 11:10–11:11", "volume orders/ resolved 11:31–11:32"}

	clean := newHarness(t)
	clean.tweak = tweak
	clean.produce(t, msgs...)
	waitFor, stop := clean.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.WindowsClosed == closed })
	n := int(stop().AlertsEmitted)
	cleanLines := alertLines(t, clean, n)
	if got := volume(cleanLines); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("uninterrupted run: %v, want %v", got, want)
	}

	restarted := newHarness(t)
	restarted.tweak = tweak
	restarted.produce(t, msgs[:split]...)
	waitFor, stop = restarted.start(t)
	waitFor("windows to 11:19", func(s pipeline.Stats) bool { return s.WindowsClosed >= 80 })
	before := stop().WindowsClosed
	restarted.produce(t, msgs[split:]...)
	waitFor, stop = restarted.start(t)
	waitFor("the other windows", func(s pipeline.Stats) bool { return s.WindowsClosed == closed-before })
	stop()
	if got := alertLines(t, restarted, n); strings.Join(got, "\n") != strings.Join(cleanLines, "\n") {
		t.Errorf("alerts after a restart in the drop:\n%s\nclean:\n%s", strings.Join(got, "\n"), strings.Join(cleanLines, "\n"))
	}
	if g, w := results(t, restarted), results(t, clean); g != w {
		t.Errorf("rows differ; restarted:\n%s\nclean:\n%s", g, w)
	}
}
