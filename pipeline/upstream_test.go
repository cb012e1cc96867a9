package pipeline_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Pipeline health against real Kafka and the ClickHouse engine, over three days of hourly
// runs of three stages feeding one model:
//   - day 3, 10:00–13:00: stage join fails (and outputs nothing) while the model's amount
//     drifts — pipeline_failure and pipeline_volume for join, and the model's drift alert
//     names the failing stage;
//   - day 3, 14:00: stage load outputs a tenth of its usual volume — pipeline_volume;
//   - every night the volume dips to 15%: no alert (same-hour baseline);
//   - join's missing successes make it overdue from 11:05 (two hours after its 09:05 run,
//     twice its interval) until it succeeds at 13:05 — pipeline_freshness fires and
//     resolves, dated at those moments in event time although read from a backlog;
//   - after day 3, 17:00 nothing arrives at all: on the clock (the wall clock moves it on
//     once the backlog is read), pipeline_freshness fires for every stage, dated 19:05.
//
// Every record is in Kafka before driftd starts (a backlog): no window may close before
// every partition has delivered.
func TestPipelineHealth(t *testing.T) {
	h := newHarness(t)
	const hours = 2*24 + 18 // days 1 and 2, and day 3 up to 17:59
	h.tweak = hourlyPipelines
	preds, runs := pipelineStream(t, hours, []string{"fraud-scorer"}, func(stage string, _ int) string { return stage })
	h.produceTo(t, h.pipeline, runs...)
	h.produce(t, preds...)
	waitFor, stop := h.start(t)
	total := uint64(len(runs) + len(preds))
	// Everything read; every hourly window but the last closed by the watermark.
	waitFor("the stream", func(s pipeline.Stats) bool { return s.Records == total && s.WindowsClosed >= hours-2 })
	// Nothing more arrives. Three hours pass on the clock.
	h.skew.Store(int64(3 * time.Hour))
	waitFor("freshness", func(s pipeline.Stats) bool { return s.AlertsEmitted >= 13 })
	stop()

	msgs := readAll(t, h.brokers, h.alerts, 13)
	var got []string
	var drift schemas.AlertEvent
	for _, m := range msgs {
		var a schemas.AlertEvent
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		who := a.Model + "/" + a.Feature
		if a.Pipeline != "" {
			who = a.Pipeline + "/" + a.Stage
		}
		at := a.WindowStart.Format("01-02 15:04")
		if a.Kind == detectors.KindPipelineFreshness {
			at = a.WindowEnd.Format("01-02 15:04") // when it became overdue, or succeeded again
		}
		got = append(got, fmt.Sprintf("%s %s %s @%s", a.Kind, who, a.State, at))
		if a.Kind == schemas.KindDataDrift && a.State == schemas.StateFiring {
			drift = a
		}
	}
	sort.Strings(got)
	want := []string{
		"data_drift fraud-scorer/amount firing @03-04 10:00",
		"data_drift fraud-scorer/amount resolved @03-04 14:00",
		"pipeline_failure orders/join firing @03-04 10:00",
		"pipeline_failure orders/join resolved @03-04 14:00",
		"pipeline_freshness orders/extract firing @03-04 19:05",
		"pipeline_freshness orders/join firing @03-04 11:05",
		"pipeline_freshness orders/join firing @03-04 19:05",
		"pipeline_freshness orders/join resolved @03-04 13:05",
		"pipeline_freshness orders/load firing @03-04 19:05",
		"pipeline_volume orders/join firing @03-04 10:00",
		"pipeline_volume orders/join resolved @03-04 14:00",
		"pipeline_volume orders/load firing @03-04 14:00",
		"pipeline_volume orders/load resolved @03-04 16:00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(drift.Summary, "; upstream: stage join of pipeline orders failed 1 times in this period") || drift.Details["upstream"] == "" {
		t.Errorf("the drift alert does not point upstream: %q %v", drift.Summary, drift.Details)
	}

	// The stage windows are in ClickHouse, summed over partitions.
	ctx := testenv.Context(t, time.Minute)
	var windows, runsN, failures uint64
	var lost float64
	if err := h.store.Conn().QueryRow(ctx, "SELECT uniqExact(window_start, stage), sum(runs), sum(failures), sum(records_lost) FROM "+h.store.Database()+
		".pipeline_stage_stats FINAL WHERE pipeline = 'orders'").Scan(&windows, &runsN, &failures, &lost); err != nil {
		t.Fatal(err)
	}
	if runsN != uint64(len(runs)) || failures != 3 || windows != uint64(len(runs)) || lost <= 0 {
		t.Errorf("stage stats: %d windows, %d runs, %d failures, %.0f lost; want %d runs, 3 failures", windows, runsN, failures, lost, len(runs))
	}
}

// driftd's own downtime does not page anyone: a stage ran every hour while driftd was
// down; when driftd comes back hours later, it reads the backlog before judging freshness.
func TestFreshnessQuietAfterDowntime(t *testing.T) {
	h := newHarness(t)
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	h.tweak = func(s *pipeline.Settings) {
		s.PipelineWindow = processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
		s.PipelineThresholds = detectors.PipelineThresholds{FailureRate: 0.5, ConsecutiveFailures: 3, VolumeDrop: 0.5, VolumeJump: 3}
		s.FreshnessFactor = 2
	}
	runs := func(from, to int) []kafka.Message {
		var out []kafka.Message
		for hr := from; hr < to; hr++ {
			b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprint(hr), "pipeline": "orders", "stage": "extract", "status": "succeeded",
				"timestamp": day0.Add(time.Duration(hr)*time.Hour + 5*time.Minute).UnixMilli(), "records_in": 10, "records_out": 10})
			out = append(out, kafka.Message{Key: []byte("extract"), Value: b})
		}
		return out
	}
	h.produceTo(t, h.pipeline, runs(0, 6)...)
	waitFor, stop := h.start(t)
	waitFor("the first runs", func(s pipeline.Stats) bool { return s.PipelineRuns == 6 && s.StageWindowsClosed >= 5 })
	stop()

	// Down for ten hours, during which the stage kept running.
	h.produceTo(t, h.pipeline, runs(6, 16)...)
	h.skew.Store(int64(10 * time.Hour))
	waitFor, stop = h.start(t)
	// The last record of the first run is read again (its window was open): 11 runs.
	waitFor("the backlog", func(s pipeline.Stats) bool { return s.PipelineRuns == 11 })
	// Freshness is checked on every tick once the start-up grace has passed.
	waitFor("freshness checks", func(s pipeline.Stats) bool { return s.FreshnessChecks >= 10 })
	stats := stop()
	if stats.AlertsEmitted != 0 {
		t.Fatalf("%d alerts after driftd's own downtime; stats %+v", stats.AlertsEmitted, stats)
	}
}

// A rolling reference: each hour is judged against the same hour of the day before,
// loaded back from ClickHouse (driftd restarts between the days, so nothing of day 1 is
// in memory). A shift in one hour of day 2 fires and resolves; day 1, which has no day
// before, is not judged.
func TestRollingReferenceSameWindowYesterday(t *testing.T) {
	h := newHarness(t)
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	h.tweak = func(s *pipeline.Settings) {
		s.WindowSpec = func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
		}
		s.ReferenceSource = func(string) detectors.ReferenceSource { return detectors.SourceDayAgo }
		s.IdleClose = time.Hour
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var msgs []kafka.Message
	const hours = 24 + 8
	for hr := 0; hr < hours; hr++ {
		at := day0.Add(time.Duration(hr) * time.Hour)
		shift := 0.0
		if hr == 24+3 {
			shift = 2
		}
		for i := 0; i < 300; i++ {
			e := &schemas.PredictionEvent{EventID: fmt.Sprintf("e-%d-%d", hr, i), Model: "b2b", ModelVersion: "1", Deployment: "primary",
				Timestamp: at.Add(time.Duration(i) * time.Hour / 300), Status: "ok", LatencyMs: 5,
				Features: []schemas.Feature{
					{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 1000 + 50*(rng.NormFloat64()+shift)}},
					{Name: "plan", Value: schemas.Value{Kind: schemas.String, Str: []string{"free", "pro", "team"}[rng.IntN(3)]}},
				}, Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
			b, _ := schemas.MarshalPredictionJSON(e)
			msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: b})
		}
	}
	day1 := 24 * 300
	h.produce(t, msgs[:day1]...)
	waitFor, stop := h.start(t)
	waitFor("day 1", func(s pipeline.Stats) bool { return s.Records == uint64(day1) && s.WindowsClosed >= 23 })
	stop()
	h.produce(t, msgs[day1:]...)
	waitFor, stop = h.start(t)
	// Day 1's last hour was still open at the stop: it is read again (300 records).
	waitFor("day 2", func(s pipeline.Stats) bool { return s.Records == uint64(len(msgs)-day1+300) && s.WindowsClosed >= 6 })
	stop()
	var got []string
	for _, m := range readAll(t, h.brokers, h.alerts, 2) {
		var a schemas.AlertEvent
		json.Unmarshal(m.Value, &a)
		got = append(got, fmt.Sprintf("%s %s %s @%s", a.Kind, a.Feature, a.State, a.WindowStart.Format("01-02 15:04")))
	}
	want := []string{"data_drift amount firing @03-03 03:00", "data_drift amount resolved @03-03 05:00"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alerts %v, want %v", got, want)
	}
	var judged uint64
	h.store.Conn().QueryRow(testenv.Context(t, time.Minute), "SELECT uniqExact(window_start) FROM "+h.store.Database()+".drift_scores FINAL").Scan(&judged)
	if judged < 6 || judged > 8 {
		t.Errorf("%d windows judged, want the hours of day 2 (6–8)", judged)
	}
}

// pipelineStream is TestPipelineHealth's stream over hours hours from day0: hourly runs
// of stages extract, join and load of pipeline orders feeding fraud-scorer (keyed by
// runKey), and 200 predictions an hour of each of models, which the runs say they feed
// (keyed by a random request id). On day 3 join
// fails from 10:00 to 13:00 while the model's amount drifts, and load outputs a tenth of
// its volume at 14:00; every night the volume dips to 15%.
func pipelineStream(t *testing.T, hours int, models []string, runKey func(stage string, hr int) string) (preds, runs []kafka.Message) {
	t.Helper()
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(5, 5))
	for hr := 0; hr < hours; hr++ {
		at := day0.Add(time.Duration(hr) * time.Hour)
		night := at.Hour() < 6
		day3 := hr >= 48
		for _, stage := range []string{"extract", "join", "load"} {
			out := 1000.0
			if night {
				out = 150
			}
			out *= 1 + 0.04*(rng.Float64()-0.5)
			status, errText := "succeeded", ""
			if day3 && stage == "join" && at.Hour() >= 10 && at.Hour() < 13 {
				status, errText, out = "failed", "join key customer_id missing", 0
			}
			if day3 && stage == "load" && at.Hour() == 14 {
				out /= 10
			}
			ts := at.Add(5 * time.Minute)
			b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("%s-%d", stage, hr), "pipeline": "orders", "stage": stage,
				"run_id": fmt.Sprint(hr), "status": status, "timestamp": ts.UnixMilli(), "duration_ms": 2000, "records_in": 1000,
				"records_out": int64(out), "error": errText, "models": models})
			runs = append(runs, kafka.Message{Key: []byte(runKey(stage, hr)), Value: b})
		}
		for _, model := range models {
			for i := 0; i < 200; i++ {
				shift := 0.0
				if day3 && at.Hour() >= 10 && at.Hour() < 13 {
					shift = 3
				}
				e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d-%d", model, hr, i), RequestID: fmt.Sprint(rng.IntN(1 << 30)),
					Model: model, ModelVersion: "1", Deployment: "primary", Timestamp: at.Add(time.Duration(i) * time.Hour / 200),
					Status: "ok", LatencyMs: 10, Features: []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 10*(rng.NormFloat64()+shift)}}},
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
				b, _ := schemas.MarshalPredictionJSON(e)
				preds = append(preds, kafka.Message{Key: []byte(e.RequestID), Value: b})
			}
		}
	}
	return preds, runs
}

// hourlyPipelines are pipelineStream's settings: hourly windows, and a stage overdue after
// twice its interval.
func hourlyPipelines(s *pipeline.Settings) {
	s.WindowSpec = func(string) processors.WindowSpec {
		return processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
	}
	s.PipelineWindow = processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
	s.PipelineThresholds = detectors.PipelineThresholds{FailureRate: 0.5, ConsecutiveFailures: 3, VolumeDrop: 0.5, VolumeJump: 3}
	s.FreshnessFactor = 2
	s.IdleClose = time.Hour // windows close by the watermark, and at the end by Shutdown's flush
}
