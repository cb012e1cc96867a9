package detectors

import (
	"fmt"
	"sort"
	"time"

	"github.com/driftd/driftd/schemas"
)

// Alert kinds of pipeline health.
const (
	KindPipelineFailure   = "pipeline_failure"
	KindPipelineVolume    = "pipeline_volume"
	KindPipelineFreshness = "pipeline_freshness"
)

// StageWindow summarizes one pipeline stage over one window.
type StageWindow struct {
	Pipeline, Stage string
	Start, End      time.Time
	Runs, Failures  uint64 // finished runs, failed runs
	// ConsecutiveFailures is the run of failures the stage ended the window with.
	ConsecutiveFailures int
	RecordsIn           float64
	RecordsOut          float64
	TopError            string
}

// PipelineThresholds are the pipeline health rules.
type PipelineThresholds struct {
	FailureRate         float64
	ConsecutiveFailures int
	VolumeDrop          float64
	VolumeJump          float64
}

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

// VolumeBaseline is what a window's records_out is compared with: the median of the same
// hour of day over the previous seven days when that history exists (so that a nightly dip
// is expected), else — for windows of a day or more — the median of the previous seven
// windows. history maps window start (unix ms) to records_out. ok is false when there is
// not enough history to judge.
func VolumeBaseline(history map[int64]float64, start time.Time, window time.Duration) (float64, bool) {
	var vals []float64
	if window < 24*time.Hour {
		for d := 1; d <= 7; d++ {
			if v, ok := history[start.Add(-time.Duration(d)*24*time.Hour).UnixMilli()]; ok {
				vals = append(vals, v)
			}
		}
	} else {
		for k := 1; k <= 7; k++ {
			if v, ok := history[start.Add(-time.Duration(k)*window).UnixMilli()]; ok {
				vals = append(vals, v)
			}
		}
		if len(vals) < 3 {
			return 0, false
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	return median(vals), true
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
