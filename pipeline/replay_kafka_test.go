package pipeline_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
)

// A recorded multi-model stream (10 hours of event time: stationary models, changes of
// several kinds, upstream pipelines that fail and go silent) gives the same alerts read
// from a backlog on real Kafka, at full speed, with the default settings, as read live
// at its own pace (in memory): kind, subject, window and firing/resolved sequence.
func TestBacklogOnKafkaGivesTheLiveAlerts(t *testing.T) {
	h := newHarness(t)
	start := time.Now().UTC().Add(-11 * time.Hour).Truncate(time.Hour)
	o := simulate.StreamOptions{Seed: 11, Start: start, Duration: 10 * time.Hour,
		Models: []simulate.StreamModel{
			{Name: "steady", Rate: 1},
			{Name: "shifted", Rate: 0.5, Change: simulate.ChangeShift, ChangeAt: 6 * time.Hour},
			{Name: "missing", Rate: 0.5, Change: simulate.ChangeMissing, ChangeAt: 6 * time.Hour},
		},
		Pipelines: []simulate.StreamPipeline{
			{Name: "orders", Stages: []string{"extract", "join", "build"}, Every: 5 * time.Minute, Models: []string{"shifted"}, Change: simulate.ChangeFailingStage, ChangeAt: 6 * time.Hour},
			{Name: "users", Stages: []string{"extract", "load"}, Every: 5 * time.Minute, Change: simulate.ChangeSilentStage, ChangeAt: 8 * time.Hour},
		}}
	live, _ := replayRun(t, o, 5*time.Minute, replay.Live)
	want := judgedWithin(replay.Transitions(live), o)
	if len(want) == 0 {
		t.Fatal("the live read raised no alert: the stream has changes")
	}

	st, err := simulate.NewStream(o)
	if err != nil {
		t.Fatal(err)
	}
	var preds, pipes []kafka.Message
	for r, ok := st.Next(); ok; r, ok = st.Next() {
		msg, err := simulate.Encoder{}.Encode(r, simulate.Topics{Predictions: h.predictions, Pipeline: h.pipeline})
		if err != nil {
			t.Fatal(err)
		}
		msg.Topic = "" // the writer names it
		if r.Kind == simulate.Pipeline {
			pipes = append(pipes, msg)
		} else {
			preds = append(preds, msg)
		}
	}
	h.produceTo(t, h.pipeline, pipes...)
	h.produceTo(t, h.predictions, preds...)
	h.tweak = func(s *pipeline.Settings) {
		cfg := config.Default()
		cfg.Windows.Size = config.Duration(5 * time.Minute)
		cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = h.predictions, h.pipeline
		d := pipeline.SettingsFromConfig(cfg, schemas.Decoder{Format: schemas.FormatAuto}, schemas.Decoder{Format: schemas.FormatAuto})
		// The stream ends: its last windows close when the models fall idle.
		d.IdleClose, d.StartupGrace, d.FlushInterval = 3*time.Second, 2*time.Second, 200*time.Millisecond
		*s = d
	}
	total := uint64(len(preds) + len(pipes))
	waitFor, stop := h.start(t)
	// Every window written, the last ones closed when the stream fell idle: 120 windows of
	// each model; 9 hourly windows of orders' three stages (the last hour closes only when
	// the stream's clock, which runs on from its newest event, passes its end plus the
	// lateness), 8 of users' two.
	waitFor("the whole backlog read and every window written", func(s pipeline.Stats) bool {
		return s.Records == total && s.WindowsClosed >= 3*120 && s.StageWindowsClosed >= 3*9+2*8
	})
	stats := stop()
	if stats.Late != 0 || stats.DeadLettered != 0 {
		t.Fatalf("backlog: %d late, %d dead-lettered", stats.Late, stats.DeadLettered)
	}
	ctx := testenv.Context(t, time.Minute)
	out, err := testenv.TSV(ctx, h.store.Conn(), `SELECT state, kind, model, model_version, deployment, feature, pipeline, stage, metric,
  toUnixTimestamp64Milli(window_start), toUnixTimestamp64Milli(window_end) FROM `+h.predictions[:strings.Index(h.predictions, ".")]+`.alerts FINAL`)
	if err != nil {
		t.Fatal(err)
	}
	var stored []*schemas.AlertEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 11 {
			continue
		}
		stored = append(stored, &schemas.AlertEvent{State: f[0], Kind: f[1], Model: f[2], ModelVersion: f[3], Deployment: f[4], Feature: f[5],
			Pipeline: f[6], Stage: f[7], Metric: f[8], WindowStart: unixMilli(t, f[9]), WindowEnd: unixMilli(t, f[10])})
	}
	// Compare what both reads judged: windows ending an hour (a stage window) before the
	// stream's end.
	cut := simulate.StreamOptions{Start: o.Start, Duration: o.Duration - time.Hour}
	compareTransitions(t, "live in memory", judgedWithin(want, cut), "backlog on Kafka", judgedWithin(replay.Transitions(stored), cut))
}

// judgedWithin keeps the transitions of windows that end within the stream: what comes
// after depends on how long a reader waits after the stream stops.
func judgedWithin(ts []replay.Transition, o simulate.StreamOptions) []replay.Transition {
	end := o.Start.Add(o.Duration)
	var out []replay.Transition
	for _, t := range ts {
		if !t.WindowEnd.After(end) {
			out = append(out, t)
		}
	}
	return out
}

func compareTransitions(t *testing.T, aName string, a []replay.Transition, bName string, b []replay.Transition) {
	t.Helper()
	n, diff := max(len(a), len(b)), 0
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(a) {
			x = a[i].String()
		}
		if i < len(b) {
			y = b[i].String()
		}
		if x != y {
			diff++
			if diff <= 10 {
				t.Errorf("transition %d: %s %q, %s %q", i, aName, x, bName, y)
			}
		}
	}
	if diff > 0 {
		t.Fatalf("%d of %d transitions differ between %s and %s", diff, n, aName, bName)
	}
	t.Logf("%d transitions, identical in %s and %s", len(a), aName, bName)
}

func unixMilli(t *testing.T, s string) time.Time {
	t.Helper()
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not a unix time: %q", s)
	}
	return time.UnixMilli(ms).UTC()
}
