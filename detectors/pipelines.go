package detectors

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Alert kinds of pipeline health.
const (
	KindPipelineFailure   = "pipeline_failure"
	KindPipelineVolume    = "pipeline_volume"
	KindPipelineFreshness = "pipeline_freshness"
	KindPipelineDuration  = "pipeline_duration"
	KindPipelineQuality   = "pipeline_quality"
)

// StagePoint is what one window of a stage holds of the signals judged against the
// stage's own history, and what a judged window keeps for the baselines of later ones.
type StagePoint struct {
	RecordsOut float64
	// LogDuration are the moments of log(1 + ms) of the runs that sent a duration:
	// durations are compared as ratios, and a run's log duration is far nearer normal
	// than its duration.
	LogDuration processors.Moments
	// LostIn and Lost are the records in and lost (in − out) of the runs that sent both
	// counts; NullOut and Nulls the records out and nulls of the runs that sent both.
	LostIn, Lost, NullOut, Nulls float64
}

// StageWindow summarizes one pipeline stage over one window.
type StageWindow struct {
	Pipeline, Stage string
	Start, End      time.Time
	Runs, Failures  uint64 // finished runs, failed runs
	// ConsecutiveFailures is the run of failures the stage ended the window with.
	ConsecutiveFailures int
	RecordsIn           float64
	StagePoint
	TopError string
}

// PipelineThresholds are the pipeline health rules. A zero effect threshold turns its
// rule off.
type PipelineThresholds struct {
	FailureRate         float64
	ConsecutiveFailures int
	VolumeDrop          float64
	VolumeJump          float64
	// DurationJump and DurationMinIncreaseMs: a window's typical run (geometric mean) at
	// least this many times the baseline's and this much longer (a stage of a few
	// milliseconds that takes a few more is no page); LostMinIncrease/LostMinRatio and
	// NullMinIncrease/NullMinRatio: a share of records lost, or of nulls per record out,
	// at least the baseline's plus the increase and its ratio times. PValue is the level
	// each is also held to (the evidence).
	DurationJump, DurationMinIncreaseMs float64
	LostMinIncrease, LostMinRatio       float64
	NullMinIncrease, NullMinRatio       float64
	PValue                              float64
}

// DefaultPipelineThresholds are the rules' defaults (config's pipelines section).
var DefaultPipelineThresholds = PipelineThresholds{FailureRate: 0.5, ConsecutiveFailures: 3, VolumeDrop: 0.5, VolumeJump: 3,
	DurationJump: 2, DurationMinIncreaseMs: 1000, LostMinIncrease: 0.05, LostMinRatio: 2, NullMinIncrease: 0.05, NullMinRatio: 2, PValue: 1e-4}

func stageSpan(s StageWindow) string {
	layout := "15:04"
	if s.End.Sub(s.Start) >= 24*time.Hour {
		layout = "2006-01-02"
	}
	return s.Start.UTC().Format(layout) + "–" + s.End.UTC().Format(layout) + " UTC"
}

// FailureCondition judges a stage's failures in a window.
func FailureCondition(s StageWindow, th PipelineThresholds) Condition {
	rate := 0.0
	if s.Runs > 0 {
		rate = float64(s.Failures) / float64(s.Runs)
	}
	breached := s.Runs > 0 && (rate >= th.FailureRate || s.ConsecutiveFailures >= th.ConsecutiveFailures)
	severity := schemas.SeverityWarning
	if s.Runs > 0 && s.Failures == s.Runs {
		severity = schemas.SeverityCritical
	}
	c := Condition{Kind: KindPipelineFailure, Pipeline: s.Pipeline, Stage: s.Stage, Metric: "failure_rate",
		Value: rate, Threshold: th.FailureRate, Breached: breached, Severity: severity, WindowStart: s.Start, WindowEnd: s.End,
		Details: map[string]string{"runs": fmt.Sprint(s.Runs), "failures": fmt.Sprint(s.Failures),
			"consecutive_failures": fmt.Sprint(s.ConsecutiveFailures)}}
	if s.TopError != "" {
		c.Details["error"] = s.TopError
	}
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s failed %d of %d runs (%d in a row) over %s", s.Stage, s.Pipeline, s.Failures, s.Runs, s.ConsecutiveFailures, stageSpan(s))
	if s.TopError != "" {
		c.FiringSummary += ": " + s.TopError
	}
	c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s runs again: %d of %d runs failed over %s", s.Stage, s.Pipeline, s.Failures, s.Runs, stageSpan(s))
	return c
}

// baselineStarts are the windows (by start, unix ms) a stage's window is compared with:
// the same hour of day on each of the previous seven days for windows shorter than a day
// (so that a nightly dip or a nightly heavy run is expected), else the previous seven
// windows. need is how many of them must have been judged.
func baselineStarts(start time.Time, window time.Duration) (starts [7]int64, need int) {
	step, need := 24*time.Hour, 1
	if window >= 24*time.Hour {
		step, need = window, 3
	}
	for k := range starts {
		starts[k] = start.Add(-time.Duration(k+1) * step).UnixMilli()
	}
	return starts, need
}

// VolumeBaseline is what a window's records_out is compared with: the median of its
// baseline windows' (baselineStarts). history maps window start (unix ms) to the judged
// windows. ok is false when there is not enough history to judge.
func VolumeBaseline(history map[int64]StagePoint, start time.Time, window time.Duration) (float64, bool) {
	var vals []float64
	starts, need := baselineStarts(start, window)
	for _, s := range starts {
		if p, ok := history[s]; ok {
			vals = append(vals, p.RecordsOut)
		}
	}
	if len(vals) < need {
		return 0, false
	}
	return median(vals), true
}

// PooledBaseline is the stage's baseline windows' (baselineStarts) counts summed: the
// records lost and nulls of its judged windows (durations: NewDurationBaseline). ok is
// false when there is not enough history to judge.
func PooledBaseline(history map[int64]StagePoint, start time.Time, window time.Duration) (StagePoint, bool) {
	var out StagePoint
	starts, need := baselineStarts(start, window)
	found := 0
	for i := len(starts) - 1; i >= 0; i-- {
		p, ok := history[starts[i]]
		if !ok {
			continue
		}
		found++
		out.RecordsOut += p.RecordsOut
		out.LostIn, out.Lost = out.LostIn+p.LostIn, out.Lost+p.Lost
		out.NullOut, out.Nulls = out.NullOut+p.NullOut, out.Nulls+p.Nulls
	}
	return out, found >= need
}

// DurationBaseline is what a window's run durations are compared with. Level pools the
// runs of its baseline windows (baselineStarts): the same hour of the previous days, as
// a stage's heavy nightly run is heavy every night. The spread of runs about their level
// is pooled from every judged window of the previous seven days, grouped by time of day
// (windows of a day or more: the seven before, one group), so that a stage with one run
// per window is judged against the spread of a week of runs, not of seven.
type DurationBaseline struct {
	Level processors.Moments
	// SS is the sum of squared deviations of the runs' log durations about their group's
	// mean, DF its degrees of freedom (runs less groups).
	SS, DF float64
}

// NewDurationBaseline reads a window's duration baseline from the stage's judged windows
// (history, by start), oldest first. ok is false when there is not enough history.
func NewDurationBaseline(history map[int64]StagePoint, start time.Time, window time.Duration) (DurationBaseline, bool) {
	var b DurationBaseline
	starts, need := baselineStarts(start, window)
	found := 0
	for i := len(starts) - 1; i >= 0; i-- {
		if p, ok := history[starts[i]]; ok {
			found++
			b.Level.Merge(p.LogDuration)
		}
	}
	if found < need || b.Level.N == 0 {
		return b, false
	}
	if window >= 24*time.Hour {
		b.SS, b.DF = b.Level.M2, b.Level.N-1
		return b, true
	}
	from, to := start.Add(-7*24*time.Hour).UnixMilli(), start.UnixMilli()
	var keys []int64
	for k, p := range history {
		if k >= from && k < to && p.LogDuration.N > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	day := (24 * time.Hour).Milliseconds()
	groups := map[int64]*processors.Moments{}
	var order []int64
	for _, k := range keys {
		g := ((k % day) + day) % day
		m, ok := groups[g]
		if !ok {
			m = &processors.Moments{}
			groups[g] = m
			order = append(order, g)
		}
		m.Merge(history[k].LogDuration)
	}
	for _, g := range order {
		b.SS += groups[g].M2
		b.DF += groups[g].N - 1
	}
	return b, true
}

// DurationCondition judges the window's run durations against its baseline: the effect
// is the ratio of the window's geometric mean (on 1 + ms) to its level's, at least
// DurationJump, and at least DurationMinIncreaseMs more; the evidence a one-sided t-test of the window's mean log(1 + ms) against
// the level, with the baseline's spread (and the window's own) pooled — the contrast of
// a linear model with a mean per time of day — so that one slow run of a stage whose
// runs vary as much is not evidence, and one run of a stage that always takes the same
// time is. ok is false when there is nothing to judge: no run of the window sent a
// duration, or the baseline has no spread to judge by.
func DurationCondition(s StageWindow, base DurationBaseline, th PipelineThresholds) (Condition, bool) {
	w, b := s.LogDuration, base.Level
	df := base.DF + math.Max(w.N-1, 0)
	if th.DurationJump <= 0 || w.N < 1 || b.N < 1 || df < 1 {
		return Condition{}, false
	}
	diff := w.Mean - b.Mean
	ratio := math.Exp(diff)
	sp := math.Sqrt(math.Max(0, base.SS+w.M2) / df)
	var t, p float64
	switch se := sp * math.Sqrt(1/w.N+1/b.N); {
	case se > 0:
		t = diff / se
		p = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(t)
	case diff > 0:
		t, p = math.Inf(1), 0
	default:
		t, p = 0, 1
	}
	typical, usual := math.Expm1(w.Mean), math.Expm1(b.Mean)
	c := Condition{Kind: KindPipelineDuration, Pipeline: s.Pipeline, Stage: s.Stage, Metric: "duration_ratio",
		Value: ratio, Threshold: th.DurationJump, WindowStart: s.Start, WindowEnd: s.End, Severity: schemas.SeverityWarning,
		Details: map[string]string{"runs": fmt.Sprintf("%.0f", w.N), "typical_ms": g6(typical), "baseline_runs": fmt.Sprintf("%.0f", b.N),
			"baseline_typical_ms": g6(usual), "spread": g6(sp), "test": "t_log_duration", "statistic": g6(t), "df": g6(df), "p_value": g6(p),
			"alpha": g6(th.PValue)}}
	c.Details["min_increase_ms"] = g6(th.DurationMinIncreaseMs)
	c.Breached = ratio >= th.DurationJump && typical-usual >= th.DurationMinIncreaseMs && p < th.PValue
	if c.Breached && ratio >= 1+criticalFactor*(th.DurationJump-1) {
		c.Severity = schemas.SeverityCritical
	}
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s ran %.1f× its usual time: typically %s against %s (threshold %.1f×; %.0f runs) over %s",
		s.Stage, s.Pipeline, ratio, msText(typical), msText(usual), th.DurationJump, w.N, stageSpan(s))
	c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s runs in its usual time again: typically %s against %s over %s",
		s.Stage, s.Pipeline, msText(typical), msText(usual), stageSpan(s))
	return c, true
}

// msText is a duration in milliseconds as a person reads it.
func msText(ms float64) string {
	if ms < 1 {
		return "<1ms"
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond).String()
}

// count is a sum of counts (summed as floats) as the rate tests take it.
func count(x float64) uint64 {
	if !(x > 0) {
		return 0
	}
	return uint64(math.Round(x))
}

// LostCondition judges the share of records lost between a stage's input and output
// (over the runs that sent both counts) against its baseline's: at least the baseline's
// plus LostMinIncrease and LostMinRatio times it, beyond chance (Fisher's exact test on
// the records). A stage that outputs more than it reads loses none. ok is false when no
// run of the window or the baseline sent both counts.
func LostCondition(s StageWindow, base StagePoint, th PipelineThresholds) (Condition, bool) {
	if th.LostMinIncrease <= 0 || count(s.LostIn) == 0 || count(base.LostIn) == 0 {
		return Condition{}, false
	}
	x, n := min(count(s.Lost), count(s.LostIn)), count(s.LostIn)
	xRef, nRef := min(count(base.Lost), count(base.LostIn)), count(base.LostIn)
	r := newRateTest(x, n, xRef, nRef, th.LostMinIncrease, th.LostMinRatio)
	c := Condition{Kind: KindPipelineVolume, Pipeline: s.Pipeline, Stage: s.Stage, Metric: "records_lost_share",
		Value: r.rate, Threshold: r.threshold, WindowStart: s.Start, WindowEnd: s.End, Details: r.details("records_lost")}
	c.Details["records_in"] = c.Details["events"]
	c.Details["reference_records_in"] = c.Details["reference_events"]
	delete(c.Details, "events")
	delete(c.Details, "reference_events")
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s lost %s of %d records between input and output (usually %s, threshold %s) over %s",
		s.Stage, s.Pipeline, pct(r.rate), n, pct(r.refRate), pct(r.threshold), stageSpan(s))
	c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s loses %s of %d records again, near its usual %s, over %s",
		s.Stage, s.Pipeline, pct(r.rate), n, pct(r.refRate), stageSpan(s))
	return settle([]judged{{c, r.p, r.effect, r.critical}}, th.PValue)[0], true
}

// NullCondition judges the nulls a stage reports per record out (over the runs that
// sent both) against its baseline's: at least the baseline's plus NullMinIncrease and
// NullMinRatio times it, beyond chance. A producer may count null cells rather than
// records, so the rate may pass 1: the test compares two Poisson rates (given both
// counts, the window's nulls are binomial with its share of the records out). ok is
// false when no run of the window or the baseline sent both.
func NullCondition(s StageWindow, base StagePoint, th PipelineThresholds) (Condition, bool) {
	if th.NullMinIncrease <= 0 || count(s.NullOut) == 0 || count(base.NullOut) == 0 {
		return Condition{}, false
	}
	x, n, xRef, nRef := count(s.Nulls), count(s.NullOut), count(base.Nulls), count(base.NullOut)
	rate, refRate := float64(x)/float64(n), float64(xRef)/float64(nRef)
	threshold := math.Max(refRate+th.NullMinIncrease, th.NullMinRatio*refRate)
	p := PoissonRateGreater(x, n, xRef, nRef)
	critical := rate-refRate >= criticalFactor*th.NullMinIncrease && rate >= (1+criticalFactor*(th.NullMinRatio-1))*refRate
	c := Condition{Kind: KindPipelineQuality, Pipeline: s.Pipeline, Stage: s.Stage, Metric: "null_rate",
		Value: rate, Threshold: threshold, WindowStart: s.Start, WindowEnd: s.End,
		Details: map[string]string{"nulls": fmt.Sprint(x), "records_out": fmt.Sprint(n), "reference_nulls": fmt.Sprint(xRef),
			"reference_records_out": fmt.Sprint(nRef), "reference_rate": g6(refRate), "test": "poisson_rate_greater", "p_value": g6(p)}}
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s reported %d nulls in %d records out (%s; usually %s, threshold %s) over %s",
		s.Stage, s.Pipeline, x, n, pct(rate), pct(refRate), pct(threshold), stageSpan(s))
	c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s reports %s nulls per record out again, near its usual %s, over %s",
		s.Stage, s.Pipeline, pct(rate), pct(refRate), stageSpan(s))
	return settle([]judged{{c, p, th.NullMinIncrease > 0 && rate >= threshold, critical}}, th.PValue)[0], true
}

func median(vals []float64) float64 {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// VolumeCondition judges a window's records_out against its baseline.
func VolumeCondition(s StageWindow, baseline float64, th PipelineThresholds) Condition {
	ratio := 0.0
	if baseline > 0 {
		ratio = s.RecordsOut / baseline
	}
	drop, jump := ratio < th.VolumeDrop, ratio > th.VolumeJump
	c := Condition{Kind: KindPipelineVolume, Pipeline: s.Pipeline, Stage: s.Stage, Metric: "records_out_ratio",
		Value: ratio, Threshold: th.VolumeDrop, Breached: baseline > 0 && (drop || jump), Severity: schemas.SeverityWarning,
		WindowStart: s.Start, WindowEnd: s.End,
		Details: map[string]string{"records_out": fmt.Sprintf("%.0f", s.RecordsOut), "baseline": fmt.Sprintf("%.0f", baseline)}}
	if jump {
		c.Threshold = th.VolumeJump
	}
	if ratio < 0.1 {
		c.Severity = schemas.SeverityCritical
	}
	dir := "fell"
	if jump {
		dir = "jumped"
	}
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s output %s to %.0f records (%.0f%% of its usual %.0f) over %s", s.Stage, s.Pipeline, dir, s.RecordsOut, 100*ratio, baseline, stageSpan(s))
	c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s output is back to %.0f records (%.0f%% of its usual %.0f) over %s", s.Stage, s.Pipeline, s.RecordsOut, 100*ratio, baseline, stageSpan(s))
	return c
}

// ExpectedInterval learns how often a stage succeeds: factor × the 99th percentile of the
// intervals between its recent successes (at least three intervals are needed). For a
// stage on a schedule that is factor × its period. For one that runs when data lands, at
// irregular intervals, a median is no measure: exponential gaps exceed twice their median
// one time in four, which paged on healthy pipelines; with LearnedSuccesses successes the
// 99th percentile is crossed about once in 10^5 gaps, and the few outages among them (up
// to one in a hundred gaps) do not blunt it.
func ExpectedInterval(successes []time.Time, factor float64) (time.Duration, bool) {
	if len(successes) < 4 {
		return 0, false
	}
	s := append([]time.Time(nil), successes...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	var gaps []float64
	for i := 1; i < len(s); i++ {
		if g := s[i].Sub(s[i-1]); g > 0 {
			gaps = append(gaps, float64(g))
		}
	}
	if len(gaps) < 3 {
		return 0, false
	}
	sort.Float64s(gaps)
	return time.Duration(factor * gaps[int(0.99*float64(len(gaps)-1))]), true
}

// Overdue is a spell during which a stage had not succeeded within its expected interval:
// from Deadline (its last success, Since, plus the interval) until its next success
// (Until; zero while it lasts).
type Overdue struct {
	Since, Deadline, Until time.Time
	Expected               time.Duration
}

// OverdueSpells returns the overdue spells of a stage that are under way at some moment of
// (from, to]: to is the stream's event-time clock, successes the stage's successful runs
// up to at least to, sorted. expected gives the interval expected after successes[i] (from
// successes[:i+1] only, so that it is the same whenever it is asked); ok false skips it.
// The spells depend only on the successes, not on how often or when they are asked for.
func OverdueSpells(successes []time.Time, from, to time.Time, expected func(i int) (time.Duration, bool)) []Overdue {
	// The spell under way at from began at the last success not after it.
	i := sort.Search(len(successes), func(i int) bool { return successes[i].After(from) }) - 1
	var out []Overdue
	for i = max(i, 0); i < len(successes) && !successes[i].After(to); i++ {
		exp, ok := expected(i)
		if !ok || exp <= 0 {
			continue
		}
		o := Overdue{Since: successes[i], Deadline: successes[i].Add(exp), Expected: exp}
		if !o.Deadline.Before(to) {
			continue // not overdue by to
		}
		if i+1 < len(successes) && !successes[i+1].After(to) {
			if !successes[i+1].After(o.Deadline) {
				continue // succeeded again in time
			}
			o.Until = successes[i+1]
		}
		if !o.Until.IsZero() && !o.Until.After(from) {
			continue // over before from
		}
		out = append(out, o)
	}
	return out
}

// LearnedSuccesses is how many successes, ending with the last, an expected interval is
// learned from.
const LearnedSuccesses = 201

// LearnedInterval is the expected interval after successes[i], learned (ExpectedInterval)
// from the up to LearnedSuccesses successes that end with it.
func LearnedInterval(successes []time.Time, i int, factor float64) (time.Duration, bool) {
	return ExpectedInterval(successes[max(0, i-LearnedSuccesses+1):i+1], factor)
}

// FreshnessBreach is the condition of a stage overdue since o.Deadline. It is dated at
// that moment in event time, whenever it is noticed, so that a stream read live, from a
// backlog or across a restart gives the same alert.
func FreshnessBreach(pipeline, stage string, o Overdue) Condition {
	c := freshness(pipeline, stage, o)
	c.Breached, c.Value = true, o.Expected.Seconds()
	c.WindowStart, c.WindowEnd = o.Since, o.Deadline
	return c
}

// FreshnessRecovered is the condition of a stage that succeeded again (at o.Until) after
// an overdue spell; its value is the time it went without success.
func FreshnessRecovered(pipeline, stage string, o Overdue) Condition {
	c := freshness(pipeline, stage, o)
	c.Value = o.Until.Sub(o.Since).Seconds()
	c.WindowStart, c.WindowEnd = o.Since, o.Until
	c.Details["succeeded_at"] = o.Until.UTC().Format(time.RFC3339)
	return c
}

// FreshnessFingerprint is the fingerprint a stage's freshness breaches and recoveries
// share (Condition.Fingerprint), without building either.
func FreshnessFingerprint(pipeline, stage string) string {
	return Condition{Kind: KindPipelineFreshness, Pipeline: pipeline, Stage: stage, Metric: freshnessMetric}.Fingerprint()
}

const freshnessMetric = "seconds_since_success"

// freshness is what a breach and its recovery share. Only a recovery may depend on
// o.Until: a spell may be seen first with its end (from a backlog) or without it (live).
func freshness(pipeline, stage string, o Overdue) Condition {
	const layout = "2006-01-02 15:04"
	c := Condition{Kind: KindPipelineFreshness, Pipeline: pipeline, Stage: stage, Metric: freshnessMetric,
		Threshold: o.Expected.Seconds(), Severity: schemas.SeverityCritical,
		Details: map[string]string{"last_success": o.Since.UTC().Format(time.RFC3339), "expected_interval": o.Expected.String(),
			"overdue_since": o.Deadline.UTC().Format(time.RFC3339)}}
	c.FiringSummary = fmt.Sprintf("stage %s of pipeline %s has not succeeded since %s UTC (expected every %s; overdue since %s UTC)", stage, pipeline,
		o.Since.UTC().Format(layout), o.Expected.Truncate(time.Second), o.Deadline.UTC().Format(layout))
	if !o.Until.IsZero() {
		c.ResolvedSummary = fmt.Sprintf("stage %s of pipeline %s succeeded again at %s UTC, %s after its previous success", stage, pipeline,
			o.Until.UTC().Format(layout), o.Until.Sub(o.Since).Truncate(time.Second))
	}
	return c
}
