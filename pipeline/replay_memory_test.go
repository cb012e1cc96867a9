package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
)

// replayRun reads a simulated stream through a pipeline with the default settings (the
// window size changed), in memory, at a pace, and returns the alerts and the store.
func replayRun(t *testing.T, o simulate.StreamOptions, window time.Duration, pace replay.Pace) ([]*schemas.AlertEvent, *replay.Store) {
	t.Helper()
	cfg := config.Default()
	cfg.Windows.Size = config.Duration(window)
	return replayRunWith(t, cfg, o, pace)
}

// replayRunWith is replayRun with cfg's settings.
func replayRunWith(t *testing.T, cfg config.Config, o simulate.StreamOptions, pace replay.Pace) ([]*schemas.AlertEvent, *replay.Store) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	clock := &replay.Clock{}
	src, err := replay.NewSource(o, pace, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
	if err != nil {
		t.Fatal(err)
	}
	_, store, sink := runInMemory(t, cfg, src, clock.Now, func(stop func()) { src.Stop = stop }, nil, 5*time.Minute)
	if len(sink.DeadLetters) > 0 {
		t.Fatalf("dead letters: %v", sink.DeadLetters[:min(3, len(sink.DeadLetters))])
	}
	return store.Alerts, store
}

// runInMemory runs a pipeline with cfg's settings over src, in memory, until src stops
// it (through the func setStop hands it), then shuts it down; within limit. setup, if
// not nil, sees the runner before it runs.
func runInMemory(t testing.TB, cfg config.Config, src pipeline.Source, now func() time.Time, setStop func(func()), setup func(*pipeline.Runner), limit time.Duration) (*pipeline.Runner, *replay.Store, *replay.Sink) {
	t.Helper()
	store := replay.NewStore()
	r, sink, _ := runOnStore(t, cfg, src, now, setStop, setup, limit, store)
	return r, store, sink
}

// newInMemory is a pipeline with cfg's settings over src and store, its dead letters and
// alerts going to the sink returned.
func newInMemory(cfg config.Config, src pipeline.Source, now func() time.Time, store pipeline.Store) (*pipeline.Runner, *replay.Sink) {
	sink := &replay.Sink{}
	set := pipeline.SettingsFromConfig(cfg, schemas.Decoder{Format: schemas.FormatJSON}, schemas.Decoder{Format: schemas.FormatJSON})
	set.DecodeAhead = 0 // the replay source's Fetch moves the simulated clock
	return pipeline.New(set, src, sink, sink, store, slog.New(slog.NewTextHandler(io.Discard, nil)), now), sink
}

// runOnStore is runInMemory with a store of the caller's (one wrapping replay's); it
// also returns the error Run ended with (nil or context.Canceled when src stopped it).
func runOnStore(t testing.TB, cfg config.Config, src pipeline.Source, now func() time.Time, setStop func(func()), setup func(*pipeline.Runner), limit time.Duration, store pipeline.Store) (*pipeline.Runner, *replay.Sink, error) {
	t.Helper()
	r, sink := newInMemory(cfg, src, now, store)
	if setup != nil {
		setup(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	setStop(stop)
	if err := r.Restore(runCtx); err != nil {
		t.Fatal(err)
	}
	runErr := r.Run(runCtx)
	if runErr != nil && ctx.Err() != nil {
		t.Fatal(runErr)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return r, sink, runErr
}

// A model sending one event a second has 60 events per 1-minute window, fewer than
// min_events (100): its windows are judged merged with the previous one, the alert says
// so, a shift is found, and nothing fires before it.
func TestLowVolumeIsJudgedOverMergedWindows(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 3, Start: start, Duration: 5 * time.Hour,
		Models: []simulate.StreamModel{{Name: "slow", Rate: 1, Change: simulate.ChangeShift, ChangeAt: 4 * time.Hour}}}
	// A shift of half a standard deviation is found over merged windows.
	o.Models[0].Change = simulate.ChangeShift
	alerts, store := replayRun(t, o, time.Minute, replay.Live)
	if store.Verdicts < 250 {
		t.Fatalf("%d windows judged, want about 300", store.Verdicts)
	}
	var found *schemas.AlertEvent
	for _, a := range alerts {
		if a.State != schemas.StateFiring {
			continue
		}
		if a.WindowEnd.Before(start.Add(4 * time.Hour)) {
			t.Errorf("alert before the change: %s", a.Summary)
			continue
		}
		if found == nil && a.Kind == schemas.KindDataDrift && a.Feature == "amount" {
			found = a
		}
	}
	if found == nil {
		t.Fatalf("the shift of amount was not found over merged windows; alerts: %d", len(alerts))
	}
	if found.Details["merged_windows"] != "2" || !strings.Contains(found.Summary, "2 windows merged") || found.WindowEnd.Sub(found.WindowStart) != 2*time.Minute {
		t.Errorf("alert does not say it judged 2 merged windows: %q %v %v–%v", found.Summary, found.Details["merged_windows"], found.WindowStart, found.WindowEnd)
	}
	if d := found.WindowEnd.Sub(start.Add(4 * time.Hour)); d > 4*time.Minute {
		t.Errorf("found %s after the change, want within two merged spans", d)
	}
}

// The same stream read live (each record a second after its event time) and as a
// backlog at full speed an hour after it ended gives the same alerts: kind, subject,
// window, firing/resolved sequence.
func TestSameAlertsLiveAndBacklog(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 5, Start: start, Duration: 10 * time.Hour,
		Models: []simulate.StreamModel{
			{Name: "steady", Rate: 5},
			{Name: "shifted", Rate: 5, Change: simulate.ChangeShift, ChangeAt: 6 * time.Hour},
			{Name: "slow", Rate: 2, Change: simulate.ChangeLatency, ChangeAt: 6 * time.Hour},
			{Name: "quiet", Rate: 0.5, Change: simulate.ChangeMissing, ChangeAt: 6 * time.Hour},
			{Name: "stopping", Rate: 2, Change: simulate.ChangeStopped, ChangeAt: 7 * time.Hour},
		},
		Pipelines: []simulate.StreamPipeline{
			{Name: "orders", Stages: []string{"extract", "join", "build"}, Every: 5 * time.Minute, Models: []string{"shifted"}, Change: simulate.ChangeFailingStage, ChangeAt: 6 * time.Hour},
			{Name: "users", Stages: []string{"extract", "load"}, Every: 5 * time.Minute, Change: simulate.ChangeSilentStage, ChangeAt: 8 * time.Hour},
		}}
	live, _ := replayRun(t, o, 5*time.Minute, replay.Live)
	backlog, _ := replayRun(t, o, 5*time.Minute, replay.Backlog)
	// The last windows are judged when the stream falls idle, which depends on how long
	// a reader waits after it stops: compare what ends well within the stream.
	cut := simulate.StreamOptions{Start: o.Start, Duration: o.Duration - 15*time.Minute}
	a, b := judgedWithin(replay.Transitions(live), cut), judgedWithin(replay.Transitions(backlog), cut)
	if len(a) == 0 {
		t.Fatal("no alerts at all: the stream has changes")
	}
	compareTransitions(t, "live", a, "backlog", b)
	stopped := false
	for _, x := range a {
		if x.Model == "stopping" && x.Kind == schemas.KindVolume && x.State == schemas.StateFiring {
			if want := start.Add(7*time.Hour + 5*time.Minute); !x.WindowEnd.Equal(want) {
				t.Errorf("stopped model flagged for the window ending %v, want %v", x.WindowEnd, want)
			}
			stopped = true
		}
	}
	if !stopped {
		t.Error("the model that stopped sending raised no volume alert")
	}
}

// changingStream is three hours of four models, three of them changing after two hours,
// recorded on three partitions.
func changingStream(t *testing.T, seed uint64) (simulate.StreamOptions, []consumers.Record) {
	t.Helper()
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: seed, Start: start, Duration: 3 * time.Hour,
		Models: []simulate.StreamModel{
			{Name: "steady", Rate: 8},
			{Name: "shifted", Rate: 8, Change: simulate.ChangeShift, ChangeAt: 2 * time.Hour},
			{Name: "category", Rate: 4, Change: simulate.ChangeNewCategory, ChangeAt: 2 * time.Hour},
			{Name: "slow", Rate: 3, Change: simulate.ChangeLatency, ChangeAt: 2 * time.Hour},
		}}
	recs, err := replay.Record(o, 3)
	if err != nil {
		t.Fatal(err)
	}
	return o, recs
}

// readBacklog reads recs (of o, Record) as a backlog with cfg's settings, in memory, and
// returns the windows written, the alert transitions and the store. setup, if not nil,
// sees the source and the runner before the run.
func readBacklog(t *testing.T, cfg config.Config, o simulate.StreamOptions, recs []consumers.Record, setup func(*replay.Source, *pipeline.Runner)) ([]*processors.WindowAgg, []replay.Transition, *replay.Store) {
	t.Helper()
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	clock := &replay.Clock{}
	src, err := replay.NewRecordedSource(o, recs, replay.Backlog, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
	if err != nil {
		t.Fatal(err)
	}
	var see func(*pipeline.Runner)
	if setup != nil {
		see = func(r *pipeline.Runner) { setup(src, r) }
	}
	r, store, sink := runInMemory(t, cfg, src, clock.Now, func(stop func()) { src.Stop = stop }, see, 5*time.Minute)
	if len(sink.DeadLetters) > 0 || r.Stats().Records != uint64(len(recs)) {
		t.Fatalf("%d records of %d read, dead letters: %v", r.Stats().Records, len(recs), sink.DeadLetters[:min(3, len(sink.DeadLetters))])
	}
	if ws := store.Windows(); len(ws) < 100 || len(store.Alerts) == 0 {
		t.Fatalf("%d windows, %d alerts; want a stream with many windows and its changes flagged", len(ws), len(store.Alerts))
	}
	return store.Windows(), replay.Transitions(store.Alerts), store
}

// sameWindows fails the test unless a and b hold the same windows, bit for bit.
func sameWindows(t *testing.T, aName string, a []*processors.WindowAgg, bName string, b []*processors.WindowAgg) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d windows %s, %d %s", len(a), aName, len(b), bName)
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Fatalf("window %v at %d differs %s and %s", a[i].Series, a[i].Start, aName, bName)
		}
	}
}

// A stream read with the window updates on workers gives the windows, rows and alerts
// of the same stream read with them inline: every window's aggregates bit for bit.
func TestAggregateWorkersGiveTheInlineResults(t *testing.T) {
	o, recs := changingStream(t, 9)
	run := func(workers int) ([]*processors.WindowAgg, []replay.Transition) {
		cfg := config.Default()
		cfg.Windows.Size = config.Duration(5 * time.Minute)
		cfg.Windows.Workers = workers
		windows, alerts, _ := readBacklog(t, cfg, o, recs, nil)
		return windows, alerts
	}
	inlineWindows, inlineAlerts := run(0)
	workerWindows, workerAlerts := run(3)
	sameWindows(t, "inline", inlineWindows, "with workers", workerWindows)
	compareTransitions(t, "inline", inlineAlerts, "workers", workerAlerts)
}

// A backlog read with the flush waiting while a partition is far behind (the default
// kafka.catch_up_flush_interval) writes what a flush every second writes, in fewer
// writes: every window's aggregates bit for bit, and the same alerts.
func TestCatchUpFlushesGiveTheSameResults(t *testing.T) {
	o, recs := changingStream(t, 11)
	run := func(catchUp time.Duration) ([]*processors.WindowAgg, []replay.Transition, int, time.Duration) {
		cfg := config.Default()
		cfg.Windows.Size = config.Duration(time.Minute) // windows closing more often than the flushes
		cfg.Kafka.CatchUpFlushInterval = config.Duration(catchUp)
		// The longest time between two flushes while the records are read.
		var last time.Time
		var gap time.Duration
		flushes := func(src *replay.Source, r *pipeline.Runner) {
			src.TopicEnds = true
			r.OnFlush(func(pipeline.Stats) {
				if now := src.Clock.Now(); src.Read() < len(recs) {
					if !last.IsZero() {
						gap = max(gap, now.Sub(last))
					}
					last = now
				}
			})
		}
		windows, alerts, store := readBacklog(t, cfg, o, recs, flushes)
		return windows, alerts, store.Writes, gap
	}
	everyWindows, everyAlerts, everyWrites, everyGap := run(0)
	catchUp := time.Duration(config.Default().Kafka.CatchUpFlushInterval)
	waitWindows, waitAlerts, waitWrites, waitGap := run(catchUp)
	// Flushes come every second, or every catch-up interval while behind: never further
	// apart (the clock moves a millisecond per record, and the flush is checked after each).
	if everyGap < time.Second || everyGap > time.Second+10*time.Millisecond || waitGap < catchUp || waitGap > catchUp+10*time.Millisecond {
		t.Errorf("flushes at most %v apart every second, %v with the flush waiting; want 1s and %v", everyGap, waitGap, catchUp)
	}
	// The backlog's clock moves a millisecond per record: a flush every 1,000 records, or
	// every 5,000 while a partition is 10,000 or more behind its end. The idle windows
	// after the stream are written a second apart either way.
	if waitWrites*5 > everyWrites*3 {
		t.Errorf("%d writes with the flush waiting while behind, %d with a flush every second; want at most 60%%", waitWrites, everyWrites)
	}
	sameWindows(t, "with a flush every second", everyWindows, "with the flush waiting", waitWindows)
	compareTransitions(t, "every second", everyAlerts, "waiting", waitAlerts)
}

// The prediction keys kept for the label join are written 50,000 at most at a time (the
// default clickhouse.max_batch_rows),
// ahead of the flush interval when a backlog is read faster: one per prediction, their
// buffer grew with the read rate (46 MiB at 200,000 records/s, and kept that size).
// Every key is written all the same.
func TestPredictionKeysAreWrittenInBoundedBatches(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 5, Start: start, Duration: time.Hour}
	for i := range 4 {
		o.Models = append(o.Models, simulate.StreamModel{Name: fmt.Sprintf("m%d", i), Rate: 40})
	}
	cfg := config.Default()
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	cfg.Kafka.Topics.Labels = "labels" // no record: the keys are kept for labels to come
	cfg.Kafka.FlushInterval = config.Duration(time.Hour)
	clock := &replay.Clock{}
	src, err := replay.NewSource(o, replay.Backlog, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
	if err != nil {
		t.Fatal(err)
	}
	r, store, sink := runInMemory(t, cfg, src, clock.Now, func(stop func()) { src.Stop = stop }, nil, 5*time.Minute)
	if len(sink.DeadLetters) > 0 {
		t.Fatalf("dead letters: %v", sink.DeadLetters[:min(3, len(sink.DeadLetters))])
	}
	if n := r.Stats().Added; n < 500_000 || uint64(store.Keys) != n || store.MostKeys > 25_000 {
		t.Fatalf("%d predictions added, %d keys written, at most %d at once; want every key, 25,000 (half of clickhouse.max_batch_rows) at most at once", n, store.Keys, store.MostKeys)
	}
}

// The windows after a first-windows reference's own open before it is built: live the
// next one, read as a backlog every one read before the flush that builds it. They keep
// their events and are counted with the reference once it is built, so the same recorded
// stream read live and as a backlog writes every window the same, bit for bit: binned by
// the reference from the end of its windows on, with a joint model.
func TestSameWindowsLiveAndBacklogAroundTheFirstReference(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 11, Start: start, Duration: 90 * time.Minute,
		Models: []simulate.StreamModel{{Name: "steady", Rate: 6}, {Name: "shifted", Rate: 4, Change: simulate.ChangeShift, ChangeAt: time.Hour}}}
	const partitions = 3
	recs, err := replay.Record(o, partitions)
	if err != nil {
		t.Fatal(err)
	}
	run := func(pace replay.Pace) []*processors.WindowAgg {
		cfg := config.Default()
		cfg.Windows.Size = config.Duration(5 * time.Minute)
		cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
		clock := &replay.Clock{}
		src, err := replay.NewRecordedSource(o, recs, pace, partitions, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
		if err != nil {
			t.Fatal(err)
		}
		r, store, sink := runInMemory(t, cfg, src, clock.Now, func(stop func()) { src.Stop = stop }, nil, 5*time.Minute)
		if len(sink.DeadLetters) > 0 || r.Stats().Records != uint64(len(recs)) {
			t.Fatalf("%d records of %d read, dead letters: %d", r.Stats().Records, len(recs), len(sink.DeadLetters))
		}
		// The last windows close when the stream falls idle, which depends on the read.
		var out []*processors.WindowAgg
		for _, w := range store.Windows() {
			if time.UnixMilli(w.End).Before(start.Add(o.Duration - 15*time.Minute)) {
				out = append(out, w)
			}
		}
		return out
	}
	live, backlog := run(replay.Live), run(replay.Backlog)
	if len(live) != len(backlog) || len(live) < 20 {
		t.Fatalf("%d windows live, %d from the backlog; want the same, at least 20", len(live), len(backlog))
	}
	for i, w := range live {
		if first := start.Add(3 * 5 * time.Minute).UnixMilli(); w.Start >= first && (w.ReferenceID == "" || w.Joint == nil || w.Joint.N == 0) {
			t.Errorf("%s window %s live: binned %t, joint model %t; want every window after the reference's binned, with one",
				w.Series.Model, time.UnixMilli(w.Start).UTC().Format("15:04"), w.ReferenceID != "", w.Joint != nil)
		}
		if !reflect.DeepEqual(w, backlog[i]) {
			t.Errorf("%s window %s differs live (binned %t, joint %t) and from the backlog (binned %t, joint %t)", w.Series.Model,
				time.UnixMilli(w.Start).UTC().Format("15:04"), w.ReferenceID != "", w.Joint != nil, backlog[i].ReferenceID != "", backlog[i].Joint != nil)
		}
	}
}

// Every signal a stage's runs carry is judged against the stage's own history, whatever
// its cadence, with the defaults: over four days, a middle stage that takes four times
// as long (runs every minute, every hour), loses 30% of its records (every 5 minutes),
// or outputs 20% nulls (every hour) fires its alert in the first windows after the
// change, and nothing fires before it, for those stages nor for steady ones. A producer
// that does not send a field is not judged on it: a stage without durations that slows
// down, one without records_in that loses records, raise nothing (there is nothing to
// see), one without records_out loses nothing, and one that starts sending durations
// is not compared with 0 ms runs before. Read live and as a backlog, the same.
func TestStageSignalsAreJudgedAgainstTheirHistory(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	changeAt := 94 * time.Hour
	stages := []string{"extract", "transform", "load"}
	pipe := func(name string, every time.Duration, change string, omit ...string) simulate.StreamPipeline {
		p := simulate.StreamPipeline{Name: name, Stages: stages, Every: every, Change: change, Omit: omit}
		if change != simulate.ChangeNone {
			p.ChangeAt = changeAt
		}
		return p
	}
	o := simulate.StreamOptions{Seed: 9, Start: start, Duration: 96 * time.Hour,
		Models: []simulate.StreamModel{{Name: "fed", Rate: 0.2}},
		Pipelines: []simulate.StreamPipeline{
			pipe("slow-every-minute", time.Minute, simulate.ChangeSlowStage),
			pipe("slow-hourly", time.Hour, simulate.ChangeSlowStage),
			pipe("lossy", 5*time.Minute, simulate.ChangeLossyStage),
			pipe("nulls-hourly", time.Hour, simulate.ChangeNullStage),
			pipe("steady", 5*time.Minute, simulate.ChangeNone),
			pipe("steady-hourly", time.Hour, simulate.ChangeNone),
			pipe("slow-without-durations", 5*time.Minute, simulate.ChangeSlowStage, "duration_ms"),
			pipe("lossy-without-records-in", 5*time.Minute, simulate.ChangeLossyStage, "records_in", "null_count"),
			pipe("without-records-out", 5*time.Minute, simulate.ChangeNone, "records_out"),
			pipe("durations-from-hour-60", 5*time.Minute, simulate.ChangeNone, "duration_ms"),
		}}
	o.Pipelines[len(o.Pipelines)-1].OmitBefore = 60 * time.Hour
	want := map[string]string{ // pipeline: kind and metric of its middle stage's alert
		"slow-every-minute": "pipeline_duration duration_ratio", "slow-hourly": "pipeline_duration duration_ratio",
		"lossy": "pipeline_volume records_lost_share", "nulls-hourly": "pipeline_quality null_rate",
	}
	cfg := config.Default()
	cfg.Windows.Size = config.Duration(5 * time.Minute)
	live, _ := replayRunWith(t, cfg, o, replay.Live)
	found := map[string]time.Time{}
	end := start.Add(o.Duration)
	for _, a := range live {
		if a.Pipeline == "" || a.State != schemas.StateFiring || a.WindowEnd.After(end) {
			continue // after the end, every stage goes overdue: the stream stops
		}
		what := a.Kind + " " + a.Metric
		if a.WindowStart.Before(start.Add(changeAt)) || want[a.Pipeline] != what || a.Stage != "transform" {
			t.Errorf("%s/%s: %s over %s–%s: %s", a.Pipeline, a.Stage, what, a.WindowStart.Format("01-02 15:04"), a.WindowEnd.Format("15:04"), a.Summary)
			continue
		}
		if _, ok := found[a.Pipeline]; !ok {
			found[a.Pipeline] = a.WindowStart
		}
	}
	for p, what := range want {
		at, ok := found[p]
		switch {
		case !ok:
			t.Errorf("%s: no %s alert after its change", p, what)
		case at.Sub(start.Add(changeAt)) > time.Hour:
			t.Errorf("%s: found in the window from %s, want one of the first two after the change", p, at.Format("15:04"))
		}
	}
	backlog, _ := replayRunWith(t, cfg, o, replay.Backlog)
	cut := simulate.StreamOptions{Start: o.Start, Duration: o.Duration - 55*time.Minute}
	a, b := judgedWithin(replay.Transitions(live), cut), judgedWithin(replay.Transitions(backlog), cut)
	if len(a) < len(want) {
		t.Fatalf("%d transitions within the stream, want at least the %d changes'", len(a), len(want))
	}
	compareTransitions(t, "live", a, "backlog", b)
}

// Pipeline windows of other sizes keep a week of history, however many windows that is:
// with 5- and 30-minute windows, a stage that slows down and one that loses records are
// found in the first window after the change, and nothing fires before it.
func TestStageSignalsAtOtherPipelineWindows(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	changeAt := 94 * time.Hour
	o := simulate.StreamOptions{Seed: 4, Start: start, Duration: 95 * time.Hour,
		Models: []simulate.StreamModel{{Name: "fed", Rate: 0.05}},
		Pipelines: []simulate.StreamPipeline{
			{Name: "slow", Stages: []string{"a", "b", "c"}, Every: time.Minute, Change: simulate.ChangeSlowStage, ChangeAt: changeAt},
			{Name: "lossy", Stages: []string{"a", "b", "c"}, Every: time.Minute, Change: simulate.ChangeLossyStage, ChangeAt: changeAt},
		}}
	for _, size := range []time.Duration{5 * time.Minute, 30 * time.Minute} {
		t.Run(size.String(), func(t *testing.T) {
			cfg := config.Default()
			cfg.Windows.Size, cfg.Pipelines.Window = config.Duration(5*time.Minute), config.Duration(size)
			alerts, _ := replayRunWith(t, cfg, o, replay.Backlog)
			found := map[string]bool{}
			for _, a := range alerts {
				if a.Pipeline == "" || a.State != schemas.StateFiring || a.WindowEnd.After(start.Add(o.Duration)) {
					continue
				}
				if a.WindowStart.Before(start.Add(changeAt)) || a.Stage != "b" {
					t.Errorf("%s/%s %s %s over %s–%s: %s", a.Pipeline, a.Stage, a.Kind, a.Metric, a.WindowStart.Format("01-02 15:04"), a.WindowEnd.Format("15:04"), a.Summary)
					continue
				}
				if a.WindowStart.Equal(start.Add(changeAt)) {
					found[a.Pipeline+" "+a.Kind+" "+a.Metric] = true
				}
			}
			for _, w := range []string{"slow pipeline_duration duration_ratio", "lossy pipeline_volume records_lost_share"} {
				if !found[w] {
					t.Errorf("%s not found in the first window after the change; found %v", w, found)
				}
			}
		})
	}
}

// Values out of the reference's range are judged end to end: a model whose producer
// starts sending 10% of ages as -1 is paged for age in the first window after the change
// — input_quality out_of_range_share, or the feature's drift alert telling it when age's
// distribution drifts too (detectors.foldOutOfRange) — and nothing before, read live or
// as a backlog.
func TestOutOfRangeValuesArePaged(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	changeAt := 3 * time.Hour
	o := simulate.StreamOptions{Seed: 8, Start: start, Duration: 4 * time.Hour,
		Models: []simulate.StreamModel{{Name: "scorer", Rate: 5, Change: simulate.ChangeSentinel, ChangeAt: changeAt}}}
	for _, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		alerts, _ := replayRun(t, o, 5*time.Minute, pace)
		var first *schemas.AlertEvent
		for _, a := range alerts {
			if a.State != schemas.StateFiring {
				continue
			}
			if a.WindowStart.Before(start.Add(changeAt)) {
				t.Errorf("%v: %s before the change: %s", pace, a.Kind, a.Summary)
				continue
			}
			told := a.Kind == schemas.KindDataDrift && a.Details["out_of_range_share"] != ""
			if first == nil && a.Feature == "age" && (a.Kind == schemas.KindInputQuality && a.Metric == "out_of_range_share" || told) {
				first = a
			}
		}
		switch {
		case first == nil:
			t.Errorf("%v: no out_of_range_share alert for age", pace)
		case !first.WindowStart.Equal(start.Add(changeAt)) || !strings.Contains(first.Summary, "outside its reference's range [18, 77] (lowest -1"):
			t.Errorf("%v: %s over %s–%s", pace, first.Summary, first.WindowStart.Format("15:04"), first.WindowEnd.Format("15:04"))
		default:
			t.Logf("%v: %s %s: %s", pace, first.Kind, first.Metric, first.Summary)
		}
	}
}
