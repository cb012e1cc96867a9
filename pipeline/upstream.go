package pipeline

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
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
	// Of successful runs only (a failed run's time and output say how it failed, which
	// pipeline_failure judges), and only of those that sent what each needs:
	runLogDuration = "log_duration" // log(1 + ms)
	runLostIn      = "lost_in"      // records in, of the runs that sent both counts
	runLost        = "lost"         // records in − records out, of the same runs
	runNullOut     = "null_out"     // records out, of the runs that sent it and null_count
	runNulls       = "nulls"        // null_count, of the same runs
)

func adaptRun(e *schemas.PipelineEvent, out *schemas.PredictionEvent) {
	out.Reset()
	out.EventID, out.RequestID, out.Model, out.ModelVersion = e.EventID, e.RunID, e.Pipeline, e.Stage
	out.Deployment, out.Timestamp = schemas.DeploymentPrimary, e.Timestamp
	out.LatencyMs, out.NoLatency = max(e.DurationMs, 0), e.NoDuration
	out.Status = schemas.StatusOK
	out.Prediction = schemas.Value{Kind: schemas.String, Str: e.Status.String()}
	num := func(name string, v float64) schemas.Feature {
		return schemas.Feature{Name: name, Value: schemas.Value{Kind: schemas.Number, Num: v}}
	}
	if !e.NoRecordsIn {
		out.Features = append(out.Features, num(runRecordsIn, float64(e.RecordsIn)))
	}
	if !e.NoRecordsOut {
		out.Features = append(out.Features, num(runRecordsOut, float64(e.RecordsOut)))
	}
	if e.HasNullCount {
		out.Features = append(out.Features, num(runNullCount, float64(e.NullCount)))
	}
	if e.Status == schemas.StageSucceeded {
		if !e.NoDuration {
			out.Features = append(out.Features, num(runLogDuration, math.Log1p(max(e.DurationMs, 0))))
		}
		if !e.NoRecordsIn && !e.NoRecordsOut {
			out.Features = append(out.Features, num(runLostIn, float64(e.RecordsIn)), num(runLost, float64(e.RecordsIn-e.RecordsOut)))
		}
		if e.HasNullCount && !e.NoRecordsOut {
			out.Features = append(out.Features, num(runNullOut, float64(e.RecordsOut)), num(runNulls, float64(e.NullCount)))
		}
	}
	if e.Status == schemas.StageFailed {
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

// stagePoint is what a stage's window holds of the signals judged against its history.
func stagePoint(w *processors.WindowAgg) detectors.StagePoint {
	p := detectors.StagePoint{RecordsOut: featureSum(w, runRecordsOut), LostIn: featureSum(w, runLostIn), Lost: featureSum(w, runLost),
		NullOut: featureSum(w, runNullOut), Nulls: featureSum(w, runNulls)}
	if f := w.Features[runLogDuration]; f != nil && f.Kind == processors.Numeric {
		p.LogDuration = f.Moments
	}
	return p
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

func (k stageKey) less(o stageKey) bool {
	if k.pipeline != o.pipeline {
		return k.pipeline < o.pipeline
	}
	return k.stage < o.stage
}

// stageState is what driftd knows of a stage, indexed by event time so that everything
// judged is judged as of its own moment, not as of how far the topic has been read: a
// backlog read at full speed, a live stream and a restart give the same results.
type stageState struct {
	// successes and failures are the stage's runs by event time (sorted; recent ones):
	// the last success and learned interval as of any moment, and the hints on model
	// alerts. Runs are recorded as read, whatever window they fall in (late ones too);
	// replayed ones are not (their windows' states are restored from ClickHouse).
	successes, failures []time.Time
	// judged holds, per judged window (by start), the failed runs in a row the stage
	// ended it with: the next window carries on from the previous one in window order.
	judged map[int64]int
	// history holds the judged windows' points (by start): the baselines of the signals
	// judged against the stage's own history (volume, duration, records lost, nulls).
	history map[int64]detectors.StagePoint
	pruned  int64 // the window start history and judged were last pruned at
	// intervals memoizes the interval expected after each success (learned from the
	// successes, so reset when they change): freshness asks for the same ones at every
	// check.
	intervals []interval
	// fresh is when the stage's freshness is to be judged next (freshSchedule).
	fresh freshDue
	fp    string // the fingerprint of its freshness conditions
}

type interval struct {
	d        time.Duration
	ok, done bool
}

// freshDue says when a stage's freshness may next change: known false until it is judged
// with its current successes, then at (zero: not before a new success).
type freshDue struct {
	known bool
	at    time.Time
}

// runTail is what a stage's open window needs for its consecutive failures, mergeable
// across partitions and independent of arrival order: its latest success and the failed
// runs after it (a failure at the same millisecond as a success counts before it).
type runTail struct {
	success  int64
	any      bool
	failures []int64
}

func (t *runTail) add(ms int64, failed bool) {
	switch {
	case !failed && (!t.any || ms > t.success):
		t.success, t.any = ms, true
		kept := t.failures[:0]
		for _, f := range t.failures {
			if f > ms {
				kept = append(kept, f)
			}
		}
		t.failures = kept
	case failed && (!t.any || ms > t.success):
		t.failures = append(t.failures, ms)
	}
}

// consecutive is the run of failures at the window's end, carrying on from the previous
// window's when the window had no success.
func (t *runTail) consecutive(carry int) int {
	if t.any {
		return len(t.failures)
	}
	return carry + len(t.failures)
}

type tailKey struct {
	stage stageKey
	start int64
}

const (
	keepSuccesses = detectors.LearnedSuccesses // successes stored per judged window: the last one and the learned interval
	keepRuns      = 10000                      // runs of each status kept per stage
	keepRunsFor   = 48 * time.Hour             // and how far back (event time) from the newest
)

// historySpan is how far back (event time) a stage's judged windows are kept for its
// baselines, in memory and read back at a restart alike: the same time of the previous
// seven days and a week of runs (or the seven windows before, for windows of a day or
// more), and a window more. One point (~100 bytes) per stage and window.
func historySpan(window time.Duration) time.Duration {
	return max(8*24*time.Hour, 8*window)
}

// freshnessEvery is how often (wall clock) freshness is judged: its spells are dated in
// event time whenever they are found, so this only bounds the cost per record.
const freshnessEvery = 100 * time.Millisecond

// upstream watches the pipeline stages that feed the models.
type upstream struct {
	proc   *processors.Processor
	stages map[stageKey]*stageState
	// links maps a model to the stages feeding it, each with the earliest event time of
	// a run that said so (a hint names a stage only for windows after that).
	links   map[string]map[stageKey]time.Time
	tails   map[tailKey]*runTail
	pending []processors.Closed
	// runs are the finished runs read since the last flush, written with it (the hints
	// of a spread group's judges on other members are read from them: storedHint).
	runs []storage.StageRun
	// held are closed model windows waiting for the pipeline topic to be read past their
	// end: their hints must see every run up to it, however the partitions interleave.
	held []processors.Closed
	// freshTo is the event time up to which freshness is judged, freshWall when.
	freshTo, freshWall time.Time
	// freshQueue holds the stages whose freshness may change, by when (freshSchedule).
	freshQueue freshSchedule
	event      schemas.PipelineEvent
	adapted    schemas.PredictionEvent
}

func newUpstream(set Settings) *upstream {
	return &upstream{
		proc:   processors.NewProcessor(func(string) processors.WindowSpec { return set.PipelineWindow }, processors.Limits{MaxFeatures: 16, MaxCategories: 20, ClockBound: set.Limits.ClockBound}),
		stages: map[stageKey]*stageState{}, links: map[string]map[stageKey]time.Time{}, tails: map[tailKey]*runTail{},
	}
}

func (u *upstream) stage(k stageKey) *stageState {
	st, ok := u.stages[k]
	if !ok {
		st = &stageState{judged: map[int64]int{}, history: map[int64]detectors.StagePoint{}, fp: detectors.FreshnessFingerprint(k.pipeline, k.stage)}
		u.stages[k] = st
		u.freshQueue.dirty = append(u.freshQueue.dirty, k)
	}
	return st
}

// succeeded records a successful run of the stage.
func (u *upstream) succeeded(k stageKey, st *stageState, t time.Time) {
	st.successes = insertTime(st.successes, t, true)
	st.intervals = st.intervals[:0]
	if st.fresh.known {
		st.fresh.known = false
		u.freshQueue.dirty = append(u.freshQueue.dirty, k)
	}
}

func (u *upstream) link(model string, k stageKey, at time.Time) {
	if u.links[model] == nil {
		if len(u.links) >= u.proc.Limits().MaxSeries {
			return // bounded as series are: a model beyond the limit gets no upstream hints
		}
		u.links[model] = map[stageKey]time.Time{}
	}
	if cur, ok := u.links[model][k]; !ok || at.Before(cur) {
		u.links[model][k] = at
	}
}

// insertTime inserts t into sorted ts (runs arrive mostly in order: from the end) and
// keeps keepRuns within keepRunsFor of the newest. Equal times are kept once when dedupe.
func insertTime(ts []time.Time, t time.Time, dedupe bool) []time.Time {
	i := len(ts)
	for i > 0 && ts[i-1].After(t) {
		i--
	}
	if dedupe && i > 0 && ts[i-1].Equal(t) {
		return ts
	}
	ts = append(ts, time.Time{})
	copy(ts[i+1:], ts[i:])
	ts[i] = t
	cut := 0
	if len(ts) > keepRuns {
		cut = len(ts) - keepRuns
	}
	oldest := ts[len(ts)-1].Add(-keepRunsFor)
	for cut < len(ts)-keepSuccesses && ts[cut].Before(oldest) {
		cut++
	}
	if cut > 0 {
		ts = append(ts[:0], ts[cut:]...)
	}
	return ts
}

// lastBefore returns the index of the last time in sorted ts not after t (-1 if none).
func lastBefore(ts []time.Time, t time.Time) int {
	return sort.Search(len(ts), func(i int) bool { return ts[i].After(t) }) - 1
}

// observe records a finished run read from the topic (out is what the window processor
// did with it).
func (u *upstream) observe(e *schemas.PipelineEvent, out processors.Outcome, windowStart int64) {
	k := stageKey{e.Pipeline, e.Stage}
	for _, m := range e.Models {
		u.link(m, k, e.Timestamp)
	}
	failed := e.Status == schemas.StageFailed
	if out == processors.Added {
		tk := tailKey{k, windowStart}
		t, ok := u.tails[tk]
		if !ok {
			t = &runTail{}
			u.tails[tk] = t
		}
		t.add(e.Timestamp.UnixMilli(), failed)
	}
	if out == processors.Replayed {
		return
	}
	st := u.stage(k)
	if failed {
		st.failures = insertTime(st.failures, e.Timestamp, false)
	} else {
		u.succeeded(k, st, e.Timestamp)
	}
}

// handlePipeline decodes, observes and windows one pipeline record.
func (r *Runner) handlePipeline(ctx context.Context, rec consumers.Record) error {
	u := r.up
	decodeFn := func() error { return r.set.PipelineDecoder.Pipeline(ctx, rec.Value, &u.event) }
	if ok, err := r.decode(ctx, rec, decodeFn(), decodeFn); !ok {
		return err
	}
	e := &u.event
	// Milliseconds, as stage_runs stores the runs (DateTime64(3)): a spread judge's hint
	// read from them must order a run and a window's end as this member does in memory.
	e.Timestamp = e.Timestamp.Truncate(time.Millisecond)
	now := r.now()
	if err := r.checkFuture(e.Timestamp, now); err != nil {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("pipeline event %s: %w", e.EventID, err))
	}
	r.stats.PipelineRuns++
	tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	r.aheadOf(r.clock.event(tp, e.Timestamp, now))
	if e.Status == schemas.StageStarted {
		return nil // a run is judged when it finishes
	}
	adaptRun(e, &u.adapted)
	out, start, end := u.proc.Add(&u.adapted, sourceOf(rec), now)
	if out == processors.Rejected {
		return r.deadLetter(ctx, rec, consumers.ClassLimit, fmt.Errorf("stage %q of pipeline %q is not tracked: limits.max_series (%d) stages are", e.Stage, e.Pipeline, u.proc.Limits().MaxSeries))
	}
	for _, k := range u.proc.Forgotten() {
		// An idle stage forgotten to make room: its state and links go with it.
		sk := stageKey{k.Model, k.Version}
		delete(u.stages, sk)
		for tk := range u.tails {
			if tk.stage == sk {
				delete(u.tails, tk)
			}
		}
		for m, stages := range u.links {
			delete(stages, sk)
			if len(stages) == 0 {
				delete(u.links, m)
			}
		}
		r.j.alerter.ForgetStage(sk.pipeline, sk.stage)
	}
	u.observe(e, out, start)
	if out != processors.Replayed {
		u.runs = append(u.runs, storage.StageRun{Pipeline: e.Pipeline, Stage: e.Stage, Time: e.Timestamp, Failed: e.Status == schemas.StageFailed,
			Models: slices.Clone(e.Models), Source: processors.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}})
	}
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

// judgeStages turns closed stage windows into rows, states and conditions, each stage's
// windows in window order.
func (r *Runner) judgeStages(batch *storage.Batch, closed []processors.Closed) []detectors.Condition {
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
			batch.Stages = append(batch.Stages, storage.StageRow{Pipeline: k.pipeline, Stage: k.stage, Start: time.UnixMilli(pw.Start).UTC(),
				End: time.UnixMilli(pw.End).UTC(), TP: p.TopicPartition, FirstOffset: p.FirstOffset, LastOffset: p.LastOffset,
				Runs: pw.Events, Failures: pw.Errors, DurationP50: pw.Latency.Quantile(0.5), DurationP90: pw.Latency.Quantile(0.9),
				DurationP99: pw.Latency.Quantile(0.99), DurationMax: pw.LatencyMax, RecordsIn: featureSum(pw, runRecordsIn),
				RecordsOut: featureSum(pw, runRecordsOut), NullCount: featureSum(pw, runNullCount), LastSuccess: lastSuccess(pw), Errors: errs})
		}
		tail := r.up.tails[tailKey{k, w.Start}]
		delete(r.up.tails, tailKey{k, w.Start})
		if c.Supplement {
			continue // written to complete the window; judged by whoever wrote the rest
		}
		if tail == nil {
			tail = &runTail{}
		}
		consecutive := tail.consecutive(st.carry(w.Start))
		st.judged[w.Start] = consecutive
		start, end := time.UnixMilli(w.Start).UTC(), time.UnixMilli(w.End).UTC()
		sw := detectors.StageWindow{Pipeline: k.pipeline, Stage: k.stage, Start: start, End: end,
			Runs: w.Events, Failures: w.Errors, ConsecutiveFailures: consecutive, RecordsIn: featureSum(w, runRecordsIn),
			StagePoint: stagePoint(w), TopError: topError(w)}
		th := r.set.PipelineThresholds
		conds = append(conds, detectors.FailureCondition(sw, th))
		if base, ok := detectors.VolumeBaseline(st.history, sw.Start, r.set.PipelineWindow.Size); ok {
			conds = append(conds, detectors.VolumeCondition(sw, base, th))
		}
		if base, ok := detectors.NewDurationBaseline(st.history, sw.Start, r.set.PipelineWindow.Size); ok {
			if c, ok := detectors.DurationCondition(sw, base, th); ok {
				conds = append(conds, c)
			}
		}
		if base, ok := detectors.PooledBaseline(st.history, sw.Start, r.set.PipelineWindow.Size); ok {
			for _, judge := range []func(detectors.StageWindow, detectors.StagePoint, detectors.PipelineThresholds) (detectors.Condition, bool){
				detectors.LostCondition, detectors.NullCondition} {
				if c, ok := judge(sw, base, th); ok {
					conds = append(conds, c)
				}
			}
		}
		st.history[w.Start] = sw.StagePoint
		if oldest := w.Start - historySpan(r.set.PipelineWindow.Size).Milliseconds(); w.Start >= st.pruned+time.Hour.Milliseconds() {
			st.pruned = w.Start // at most once an hour of windows: each prune walks the maps
			for s := range st.history {
				if s < oldest {
					delete(st.history, s)
				}
			}
			for s := range st.judged {
				if s < oldest {
					delete(st.judged, s)
				}
			}
		}
		succ := st.successes[:lastBefore(st.successes, end.Add(-time.Millisecond))+1]
		from := lastBefore(st.failures, start.Add(-time.Millisecond)) + 1
		to := lastBefore(st.failures, end.Add(-time.Millisecond)) + 1
		batch.StageStates = append(batch.StageStates, storage.StageState{Pipeline: k.pipeline, Stage: k.stage, Start: start, End: end,
			ConsecutiveFailures: consecutive, Successes: append([]time.Time(nil), succ[max(0, len(succ)-keepSuccesses):]...),
			Failures: append([]time.Time(nil), st.failures[from:to]...), Point: sw.StagePoint})
	}
	return conds
}

// carry is the run of failures the stage ended its last judged window before start with.
func (st *stageState) carry(start int64) int {
	best, n := int64(math.MinInt64), 0
	for s, c := range st.judged {
		if s < start && s > best {
			best, n = s, c
		}
	}
	return n
}

// expected returns the interval expected after the stage's i-th success.
func (r *Runner) expected(k stageKey, st *stageState) func(int) (time.Duration, bool) {
	if d := r.set.StageInterval(k.pipeline, k.stage); d > 0 {
		return func(int) (time.Duration, bool) { return d, true }
	}
	return func(i int) (time.Duration, bool) {
		if len(st.intervals) != len(st.successes) {
			st.intervals = slices.Grow(st.intervals[:0], len(st.successes))[:len(st.successes)]
			clear(st.intervals)
		}
		iv := &st.intervals[i]
		if !iv.done {
			iv.d, iv.ok = detectors.LearnedInterval(st.successes, i, r.set.FreshnessFactor)
			iv.done = true
		}
		return iv.d, iv.ok
	}
}

// checkFreshness judges, on the stream's event-time clock (streamClock) less the
// pipelines' allowed lateness, whether each stage succeeded within its expected interval.
// The overdue spells are derived from the successes alone and dated in event time, so a
// stage is flagged at the same moment live, from a backlog or after a restart; only
// emitted_at differs. Nothing is judged during the start-up grace, before every
// partition has delivered. Only the stages whose spells may have changed are judged
// (freshSchedule): the others would find the spells they found before, which change
// nothing.
func (r *Runner) checkFreshness(now time.Time) {
	u := r.up
	if !r.graceOver(now) || now.Sub(u.freshWall) < freshnessEvery {
		return
	}
	u.freshWall = now
	at := r.clock.now(now)
	if at.IsZero() {
		return
	}
	at = at.Add(-r.set.PipelineWindow.Lateness)
	if at.Sub(u.freshTo) < time.Second {
		return // the same: at most once per second of event time
	}
	r.stats.FreshnessChecks++
	for _, k := range u.freshQueue.due(u.stages, at) {
		st := u.stages[k]
		expected := r.expected(k, st)
		for _, o := range detectors.OverdueSpells(st.successes, u.freshTo, at, expected) {
			if a := r.j.alerter.TransitionStage(k.pipeline, k.stage, st.fp, true, func() detectors.Condition {
				return detectors.FreshnessBreach(k.pipeline, k.stage, o)
			}, now); a != nil {
				r.extraAlerts = append(r.extraAlerts, a)
			}
			if !o.Until.IsZero() {
				if a := r.j.alerter.TransitionStage(k.pipeline, k.stage, st.fp, false, func() detectors.Condition {
					return detectors.FreshnessRecovered(k.pipeline, k.stage, o)
				}, now); a != nil {
					r.extraAlerts = append(r.extraAlerts, a)
				}
			}
		}
		st.fresh = freshDue{known: true}
		if next, ok := nextFreshnessChange(st.successes, at, expected); ok {
			st.fresh.at = next
			u.freshQueue.push(k, next)
		}
	}
	u.freshTo = at
}

// nextFreshnessChange returns the earliest clock after to at which the overdue spells of a
// stage judged up to to may show something new (false: not before a new success): the
// deadline of a success not yet overdue (unless the next success came in time), or the
// end of the spell under way. Until then, a check finds only the spell under way at to,
// unchanged, whose breach the alerter already knows: judging it again changes nothing.
func nextFreshnessChange(successes []time.Time, to time.Time, expected func(int) (time.Duration, bool)) (time.Time, bool) {
	for i := max(lastBefore(successes, to), 0); i < len(successes); i++ {
		exp, ok := expected(i)
		if !ok || exp <= 0 {
			continue // no spell after this success (OverdueSpells skips it too)
		}
		deadline := successes[i].Add(exp)
		next := i+1 < len(successes)
		if next && !successes[i+1].After(deadline) {
			continue // succeeded again in time: never overdue
		}
		if deadline.Before(to) {
			// The spell under way at to (successes after i are all after to).
			if next {
				return successes[i+1], true // its end
			}
			return time.Time{}, false
		}
		// Later deadlines are later still: the next success is after this deadline.
		return deadline, true
	}
	return time.Time{}, false
}

// freshSchedule orders the stages by when their freshness is to be judged next: a min-heap
// of (time, stage) and the stages to judge at the next check whatever the time (new, or
// with new successes). An entry may be stale (the stage was forgotten, or judged again
// since): judging a stage more often than needed changes nothing, so stale entries are
// only dropped when they come up.
type freshSchedule struct {
	heap  []freshEntry
	dirty []stageKey
	keys  []stageKey // due's result, reused
}

type freshEntry struct {
	at time.Time
	k  stageKey
}

func (q *freshSchedule) push(k stageKey, at time.Time) {
	q.heap = append(q.heap, freshEntry{at, k})
	for i := len(q.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.heap[i].at.Before(q.heap[p].at) {
			break
		}
		q.heap[i], q.heap[p] = q.heap[p], q.heap[i]
		i = p
	}
}

func (q *freshSchedule) pop() freshEntry {
	top := q.heap[0]
	n := len(q.heap) - 1
	q.heap[0] = q.heap[n]
	q.heap = q.heap[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && q.heap[l].at.Before(q.heap[m].at) {
			m = l
		}
		if l+1 < n && q.heap[l+1].at.Before(q.heap[m].at) {
			m = l + 1
		}
		if m == i {
			break
		}
		q.heap[i], q.heap[m] = q.heap[m], q.heap[i]
		i = m
	}
	return top
}

// due takes the stages to judge at a check up to at, sorted (the order alerts are raised
// in), each once, and marks them judged.
func (q *freshSchedule) due(stages map[stageKey]*stageState, at time.Time) []stageKey {
	keys := q.keys[:0]
	for _, k := range q.dirty {
		if st, ok := stages[k]; ok && !st.fresh.known {
			keys = append(keys, k)
		}
	}
	q.dirty = q.dirty[:0]
	for len(q.heap) > 0 && !at.Before(q.heap[0].at) {
		e := q.pop()
		if st, ok := stages[e.k]; ok && st.fresh.known && st.fresh.at.Equal(e.at) {
			keys = append(keys, e.k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	keys = slices.Compact(keys)
	q.keys = keys
	return keys
}

// holdForUpstream takes closed model windows and returns those whose hints can be
// judged: the pipeline topic has been read past their end plus its lateness (or has
// nothing unread). The others wait, their records uncommitted (commit).
func (r *Runner) holdForUpstream(closed []processors.Closed) []processors.Closed {
	u := r.up
	if u == nil || len(closed)+len(u.held) == 0 {
		return closed
	}
	if len(closed) > 0 {
		u.held = append(u.held, closed...)
		sort.SliceStable(u.held, func(i, j int) bool { return u.held[i].Merged.End < u.held[j].Merged.End })
	}
	n := 0
	for n < len(u.held) {
		c := u.held[n]
		if !c.Supplement && !r.clock.readPast(r.set.PipelineTopic, time.UnixMilli(c.Merged.End).Add(r.set.PipelineWindow.Lateness)) {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	out := u.held[:n:n]
	u.held = append([]processors.Closed(nil), u.held[n:]...)
	return out
}

// runStore is where a spread group's judges read the stages' runs (a *storage.Store).
type runStore interface {
	LoadStageLinks(ctx context.Context, before time.Time, models ...string) ([]storage.StageLink, error)
	LoadStageRuns(ctx context.Context, pipeline, stage string, from, to time.Time, successes int) (failures, succeeded []time.Time, err error)
}

// hinter is where a judge's upstream hints come from: this member's stages, or in a
// spread group, whose member reading the pipeline topic may not be a model's judge, the
// runs that member wrote (storedHint).
func (r *Runner) hinter() func(context.Context, string, time.Time, time.Time) (string, error) {
	if r.set.Spread {
		return r.storedHint
	}
	return r.upstreamHint
}

// storedHint is upstreamHint from the runs written to ClickHouse (stage_runs): the
// stages linked to model by a run before end, their failed runs from one pipeline window
// before start until end, and their last successes up to end (as many as an interval is
// learned from). The judge calls it only once the pipeline topic is read and written
// past end plus its lateness (upstreamRead), so it finds every run one member's
// holdForUpstream would have waited for.
func (r *Runner) storedHint(ctx context.Context, model string, start, end time.Time) (string, error) {
	if r.set.PipelineTopic == "" {
		return "", nil
	}
	key := hintKey{model, start.UnixMilli(), end.UnixMilli()}
	if h, ok := r.spread.hints[key]; ok {
		return h, nil
	}
	// A model's links are read once a judging round, whatever its windows: each link
	// holds from its first run (Since), so the links before a window's end are those.
	links, ok := r.spread.links[model]
	if !ok {
		if err := retry.Do(ctx, r.set.policy(), "loading the stages feeding a model", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			var err error
			links, err = r.store.LoadStageLinks(ctx, time.Time{}, model)
			return err
		}); err != nil {
			return "", err
		}
		r.spread.links[model] = links
	}
	linked := map[stageKey]bool{}
	for _, l := range links {
		if l.Since.Before(end) {
			linked[stageKey{l.Pipeline, l.Stage}] = true
		}
	}
	ask := maps.Clone(linked)
	for _, k := range r.set.StagesOf(model) {
		ask[stageKey{k[0], k[1]}] = true
	}
	from := start.Add(-r.set.PipelineWindow.Size)
	states := map[stageKey]*stageState{}
	for k := range ask {
		var failures, successes []time.Time
		if err := retry.Do(ctx, r.set.policy(), "loading a stage's runs", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			var err error
			failures, successes, err = r.store.LoadStageRuns(ctx, k.pipeline, k.stage, from, end, keepSuccesses)
			return err
		}); err != nil {
			return "", err
		}
		if len(failures)+len(successes) > 0 {
			states[k] = &stageState{failures: failures, successes: successes}
		}
	}
	h := r.hintOf(model, linked, states, start, end)
	r.spread.hints[key] = h
	return h, nil
}

// upstreamHint says what went wrong upstream of a model in a window [start, end), as of
// its end in event time: the linked stages' failed runs from one pipeline window before
// start until end, and the stages overdue at end.
func (r *Runner) upstreamHint(_ context.Context, model string, start, end time.Time) (string, error) {
	if r.up == nil {
		return "", nil
	}
	linked := map[stageKey]bool{}
	for k, at := range r.up.links[model] {
		if at.Before(end) {
			linked[k] = true
		}
	}
	return r.hintOf(model, linked, r.up.stages, start, end), nil
}

// hintOf words the hint of a window [start, end) of model from the stages linked to it
// by their runs (and those configured as feeding it), as the stages were at end.
func (r *Runner) hintOf(model string, linked map[stageKey]bool, states map[stageKey]*stageState, start, end time.Time) string {
	stages := maps.Clone(linked)
	if stages == nil {
		stages = map[stageKey]bool{}
	}
	for _, k := range r.set.StagesOf(model) {
		stages[stageKey{k[0], k[1]}] = true
	}
	keys := make([]stageKey, 0, len(stages))
	for k := range stages {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	from := start.Add(-r.set.PipelineWindow.Size)
	var hints []string
	for _, k := range keys {
		st, ok := states[k]
		if !ok {
			continue
		}
		if n := lastBefore(st.failures, end.Add(-time.Millisecond)) - lastBefore(st.failures, from.Add(-time.Millisecond)); n > 0 {
			hints = append(hints, fmt.Sprintf("stage %s of pipeline %s failed %d times in this period", k.stage, k.pipeline, n))
		}
		if i := lastBefore(st.successes, end); i >= 0 {
			if exp, ok := r.expected(k, st)(i); ok && end.Sub(st.successes[i]) > exp {
				hints = append(hints, fmt.Sprintf("stage %s of pipeline %s has not succeeded since %s UTC", k.stage, k.pipeline, st.successes[i].UTC().Format("2006-01-02 15:04")))
			}
		}
	}
	return strings.Join(hints, "; ")
}

// restoreUpstream loads the stage windows already written, their history and the
// stages' states as of the windows judged.
func (r *Runner) restoreUpstream(ctx context.Context) error {
	closed, err := r.store.LoadClosedStageWindows(ctx, 48*time.Hour)
	if err != nil {
		return err
	}
	for _, c := range closed {
		r.up.proc.Restore(c.Model, c.Start, c.End, processors.TopicPartition{Topic: c.TP.Topic, Partition: c.TP.Partition}, c.LastOffset)
	}
	hist, err := r.store.LoadStageHistory(ctx, historySpan(r.set.PipelineWindow.Size))
	if err != nil {
		return err
	}
	for _, h := range hist {
		r.up.stage(stageKey{h.Pipeline, h.Stage}).history[h.Start.UnixMilli()] = h.Point
	}
	states, err := r.store.LoadStageStates(ctx, keepRunsFor)
	if err != nil {
		return err
	}
	// The links too, from every run written: a restart (or a standby taking over) reads
	// on from the committed offsets, and would otherwise not know the stages that said
	// they feed a model before it, and give its drift alerts no hint.
	if !r.set.Spread { // a spread judge reads them with the runs (storedHint)
		links, err := r.store.LoadStageLinks(ctx, time.Time{})
		if err != nil {
			return err
		}
		for _, l := range links {
			r.up.link(l.Model, stageKey{l.Pipeline, l.Stage}, l.Since)
		}
	}
	for _, s := range states {
		st := r.up.stage(stageKey{s.Pipeline, s.Stage})
		st.judged[s.Start.UnixMilli()] = s.ConsecutiveFailures
		for _, t := range s.Successes {
			r.up.succeeded(stageKey{s.Pipeline, s.Stage}, st, t.UTC())
		}
		for _, t := range s.Failures {
			st.failures = insertTime(st.failures, t.UTC(), false)
		}
	}
	return nil
}
