package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// Pipeline runs are windowed with the same machinery as predictions (event-time windows,
// watermarks, per-partition partials, replay detection and commit offsets): a stage is a
// series, a finished run is an event whose status is its "prediction", its duration its
// latency, and its volumes numeric "features". adaptRun is the one place that knows this.
const (
	runRecordsIn   = "records_in"
	runRecordsOut  = "records_out"
	runNullCount   = "null_count"
	runError       = "error"
	runSuccessTime = "success_time" // unix ms of successful runs: its max is the window's last success
	stageSlot      = "pipeline"     // the deployment slot of a stage series (late_events.deployment)
)

func adaptRun(e *schemas.PipelineEvent, out *schemas.PredictionEvent) {
	out.Reset()
	out.EventID, out.RequestID, out.Model, out.ModelVersion = e.EventID, e.RunID, e.Pipeline, e.Stage
	out.Deployment, out.Timestamp, out.LatencyMs = schemas.DeploymentPrimary, e.Timestamp, max(e.DurationMs, 0)
	out.Status = schemas.StatusOK
	out.Prediction = schemas.Value{Kind: schemas.String, Str: e.Status}
	num := func(name string, v float64) schemas.Feature {
		return schemas.Feature{Name: name, Value: schemas.Value{Kind: schemas.Number, Num: v}}
	}
	out.Features = append(out.Features, num(runRecordsIn, float64(e.RecordsIn)), num(runRecordsOut, float64(e.RecordsOut)))
	if e.HasNullCount {
		out.Features = append(out.Features, num(runNullCount, float64(e.NullCount)))
	}
	if e.Status == "failed" {
		out.Status = schemas.StatusError
		msg := e.Error
		if len(msg) > 200 {
			msg = msg[:200]
		}
		out.Features = append(out.Features, schemas.Feature{Name: runError, Value: schemas.Value{Kind: schemas.String, Str: msg}})
	} else {
		out.Features = append(out.Features, num(runSuccessTime, float64(e.Timestamp.UnixMilli())))
	}
}

func featureSum(w *processors.WindowAgg, name string) float64 {
	if f := w.Features[name]; f != nil && f.Kind == processors.Numeric {
		return f.Moments.Mean * f.Moments.N
	}
	return 0
}

func lastSuccess(w *processors.WindowAgg) time.Time {
	if f := w.Features[runSuccessTime]; f != nil && f.Kind == processors.Numeric && f.Count > 0 {
		return time.UnixMilli(int64(f.Moments.Max)).UTC()
	}
	return time.Unix(0, 0).UTC()
}

func topError(w *processors.WindowAgg) string {
	f := w.Features[runError]
	if f == nil || f.Kind != processors.Categorical {
		return ""
	}
	var best string
	var n uint64
	for c, k := range f.Categories {
		if k > n || (k == n && c < best) {
			best, n = c, k
		}
	}
	return best
}

type stageKey struct{ pipeline, stage string }

type stageState struct {
	lastSuccess time.Time
	successes   []time.Time // recent successes, for the expected interval
	consecutive int         // failed runs in a row so far
	failures    []time.Time // recent failures, for the hints on model alerts
	volume      map[int64]float64
}

const (
	keepSuccesses = 21
	keepFailures  = 1000
	keepVolume    = 8 * 24 // windows of history kept per stage for volume baselines
)

// upstream watches the pipeline stages that feed the models.
type upstream struct {
	proc    *processors.Processor
	stages  map[stageKey]*stageState
	links   map[string]map[stageKey]bool // model → stages feeding it
	pending []processors.Closed
	lag     map[consumers.TopicPartition]int64
	event   schemas.PipelineEvent
	adapted schemas.PredictionEvent
}

func newUpstream(set Settings) *upstream {
	return &upstream{
		proc:   processors.NewProcessor(func(string) processors.WindowSpec { return set.PipelineWindow }, processors.Limits{MaxFeatures: 16, MaxCategories: 20, ClockBound: set.Limits.ClockBound}),
		stages: map[stageKey]*stageState{}, links: map[string]map[stageKey]bool{}, lag: map[consumers.TopicPartition]int64{},
	}
}

func (u *upstream) stage(k stageKey) *stageState {
	st, ok := u.stages[k]
	if !ok {
		st = &stageState{volume: map[int64]float64{}}
		u.stages[k] = st
	}
	return st
}

func (u *upstream) link(model string, k stageKey) {
	if u.links[model] == nil {
		u.links[model] = map[stageKey]bool{}
	}
	u.links[model][k] = true
}

// observe updates a stage's running state from one run.
func (u *upstream) observe(e *schemas.PipelineEvent) {
	k := stageKey{e.Pipeline, e.Stage}
	st := u.stage(k)
	for _, m := range e.Models {
		u.link(m, k)
	}
	switch e.Status {
	case "succeeded":
		st.consecutive = 0
		if e.Timestamp.After(st.lastSuccess) {
			st.lastSuccess = e.Timestamp
		}
		st.successes = append(st.successes, e.Timestamp)
		if len(st.successes) > keepSuccesses {
			st.successes = st.successes[len(st.successes)-keepSuccesses:]
		}
	case "failed":
		st.consecutive++
		st.failures = append(st.failures, e.Timestamp)
		if len(st.failures) > keepFailures {
			st.failures = st.failures[len(st.failures)-keepFailures:]
		}
	}
}

// handlePipeline decodes, observes and windows one pipeline record.
func (r *Runner) handlePipeline(ctx context.Context, rec consumers.Record) error {
	u := r.up
	if rec.HighWaterMark > 0 {
		u.lag[consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}] = rec.HighWaterMark - rec.Offset - 1
	}
	if ok, err := r.decode(ctx, rec, func() error { return r.set.PipelineDecoder.Pipeline(ctx, rec.Value, &u.event) }); !ok {
		return err
	}
	e := &u.event
	now := r.now()
	if err := r.checkFuture(e.Timestamp, now); err != nil {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("pipeline event %s: %w", e.EventID, err))
	}
	r.stats.PipelineRuns++
	r.observeEventTime(e.Timestamp, now)
	if e.Status == "started" {
		return nil // a run is judged when it finishes
	}
	adaptRun(e, &u.adapted)
	out, start, end := u.proc.Add(&u.adapted, processors.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Time: rec.Time}, now)
	if out == processors.Rejected {
		return r.deadLetter(ctx, rec, consumers.ClassLimit, fmt.Errorf("stage %q of pipeline %q is not tracked: limits.max_series (%d) stages are", e.Stage, e.Pipeline, u.proc.Limits().MaxSeries))
	}
	u.observe(e)
	if out == processors.Late {
		r.stats.Late++
		r.set.Observer.Late(rec.Topic)
		r.late = append(r.late, storage.LateEvent{
			Source: processors.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}, EventID: e.EventID,
			Series: processors.SeriesKey{Model: e.Pipeline, Version: e.Stage, Deployment: stageSlot},
			Start:  start, End: end, EventTime: e.Timestamp})
	}
	return nil
}

// judgeStages turns closed stage windows into rows and conditions.
func (r *Runner) judgeStages(closed []processors.Closed) ([]storage.StageRow, []detectors.Condition) {
	var rows []storage.StageRow
	var conds []detectors.Condition
	for _, c := range closed {
		w := c.Merged
		k := stageKey{w.Series.Model, w.Series.Version}
		st := r.up.stage(k)
		for _, p := range c.Partials {
			pw := p.WindowAgg
			errs := map[string]uint64{}
			if f := pw.Features[runError]; f != nil && f.Kind == processors.Categorical {
				errs = f.Categories
			}
			rows = append(rows, storage.StageRow{Pipeline: k.pipeline, Stage: k.stage, Start: time.UnixMilli(pw.Start).UTC(),
				End: time.UnixMilli(pw.End).UTC(), TP: p.TopicPartition, FirstOffset: p.FirstOffset, LastOffset: p.LastOffset,
				Runs: pw.Events, Failures: pw.Errors, DurationP50: pw.Latency.Quantile(0.5), DurationP90: pw.Latency.Quantile(0.9),
				DurationP99: pw.Latency.Quantile(0.99), DurationMax: pw.LatencyMax, RecordsIn: featureSum(pw, runRecordsIn),
				RecordsOut: featureSum(pw, runRecordsOut), NullCount: featureSum(pw, runNullCount), LastSuccess: lastSuccess(pw), Errors: errs})
		}
		if c.Supplement {
			continue // written to complete the window; judged by whoever wrote the rest
		}
		sw := detectors.StageWindow{Pipeline: k.pipeline, Stage: k.stage, Start: time.UnixMilli(w.Start).UTC(), End: time.UnixMilli(w.End).UTC(),
			Runs: w.Events, Failures: w.Errors, ConsecutiveFailures: st.consecutive, RecordsIn: featureSum(w, runRecordsIn),
			RecordsOut: featureSum(w, runRecordsOut), TopError: topError(w)}
		conds = append(conds, detectors.FailureCondition(sw, r.set.PipelineThresholds))
		if base, ok := detectors.VolumeBaseline(st.volume, sw.Start, r.set.PipelineWindow.Size); ok {
			conds = append(conds, detectors.VolumeCondition(sw, base, r.set.PipelineThresholds))
		}
		st.volume[w.Start] = sw.RecordsOut
		if len(st.volume) > keepVolume {
			oldest := w.Start - int64(keepVolume)*r.set.PipelineWindow.Size.Milliseconds()
			for s := range st.volume {
				if s < oldest {
					delete(st.volume, s)
				}
			}
		}
	}
	return rows, conds
}

// observeEventTime advances the stream's clock: the newest event time seen, and when.
func (r *Runner) observeEventTime(t, now time.Time) {
	if t.After(r.dataMax) {
		r.dataMax, r.dataMaxWall = t, now
	}
}

// streamNow is the stream's notion of now: the newest event time, moved on by the wall
// clock since it was seen, so that it keeps running when no events arrive at all.
func (r *Runner) streamNow(now time.Time) time.Time {
	if r.dataMax.IsZero() {
		return now
	}
	return r.dataMax.Add(now.Sub(r.dataMaxWall))
}

// checkFreshness judges, on the clock, whether each stage succeeded within its expected
// interval. It stays quiet while driftd itself is catching up (start-up, or unread
// records on the pipeline topic), so that its own downtime does not page anyone.
func (r *Runner) checkFreshness(now time.Time) {
	u := r.up
	if !r.graceOver(now) {
		return
	}
	for _, lag := range u.lag {
		if lag > 0 {
			return
		}
	}
	r.stats.FreshnessChecks++
	sn := r.streamNow(now)
	keys := make([]stageKey, 0, len(u.stages))
	for k := range u.stages {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pipeline+"/"+keys[i].stage < keys[j].pipeline+"/"+keys[j].stage })
	for _, k := range keys {
		st := u.stages[k]
		if st.lastSuccess.IsZero() || st.lastSuccess.Unix() <= 0 {
			continue
		}
		expected := r.set.StageInterval(k.pipeline, k.stage)
		if expected <= 0 {
			var ok bool
			if expected, ok = detectors.ExpectedInterval(st.successes, r.set.FreshnessFactor); !ok {
				continue
			}
		}
		cond := detectors.FreshnessCondition(k.pipeline, k.stage, st.lastSuccess, sn, expected)
		if a := r.alerter.Observe(cond, now); a != nil {
			r.extraAlerts = append(r.extraAlerts, a)
		}
	}
}

// upstreamHint says what went wrong upstream of a model in a period, for its alerts.
func (r *Runner) upstreamHint(model string, start, end time.Time) string {
	if r.up == nil {
		return ""
	}
	stages := map[stageKey]bool{}
	for k := range r.up.links[model] {
		stages[k] = true
	}
	for _, k := range r.set.StagesOf(model) {
		stages[stageKey{k[0], k[1]}] = true
	}
	keys := make([]stageKey, 0, len(stages))
	for k := range stages {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pipeline+"/"+keys[i].stage < keys[j].pipeline+"/"+keys[j].stage })
	from := start.Add(-r.set.PipelineWindow.Size)
	var hints []string
	for _, k := range keys {
		st, ok := r.up.stages[k]
		if !ok {
			continue
		}
		n := 0
		for _, f := range st.failures {
			if !f.Before(from) && f.Before(end) {
				n++
			}
		}
		if n > 0 {
			hints = append(hints, fmt.Sprintf("stage %s of pipeline %s failed %d times in this period", k.stage, k.pipeline, n))
		}
		fresh := detectors.Condition{Kind: detectors.KindPipelineFreshness, Pipeline: k.pipeline, Stage: k.stage, Metric: "seconds_since_success"}
		if r.alerter.State(fresh.Fingerprint()).Firing {
			hints = append(hints, fmt.Sprintf("stage %s of pipeline %s has not succeeded since %s UTC", k.stage, k.pipeline, st.lastSuccess.UTC().Format("2006-01-02 15:04")))
		}
	}
	return strings.Join(hints, "; ")
}

// restoreUpstream loads the stage windows already written and their history.
func (r *Runner) restoreUpstream(ctx context.Context) error {
	closed, err := r.store.LoadClosedStageWindows(ctx, 48*time.Hour)
	if err != nil {
		return err
	}
	for _, c := range closed {
		r.up.proc.Restore(c.Model, c.Start, c.End, processors.TopicPartition{Topic: c.TP.Topic, Partition: c.TP.Partition}, c.LastOffset)
	}
	hist, err := r.store.LoadStageHistory(ctx, 8*24*time.Hour)
	if err != nil {
		return err
	}
	for _, h := range hist {
		st := r.up.stage(stageKey{h.Pipeline, h.Stage})
		st.volume[h.Start.UnixMilli()] = h.RecordsOut
		if h.LastSuccess.Unix() > 0 && h.LastSuccess.After(st.lastSuccess) {
			st.lastSuccess = h.LastSuccess
		}
	}
	return nil
}
