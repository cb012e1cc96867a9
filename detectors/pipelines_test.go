package detectors

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

var pth = PipelineThresholds{FailureRate: 0.5, ConsecutiveFailures: 3, VolumeDrop: 0.5, VolumeJump: 3}

func TestFailureCondition(t *testing.T) {
	for _, c := range []struct {
		runs, fails uint64
		consec      int
		breached    bool
		severity    string
	}{
		{10, 0, 0, false, "warning"}, {10, 4, 1, false, "warning"}, {10, 5, 1, true, "warning"},
		{10, 3, 3, true, "warning"}, {3, 3, 3, true, "critical"}, {0, 0, 0, false, "warning"},
	} {
		cond := FailureCondition(StageWindow{Pipeline: "orders", Stage: "join", Runs: c.runs, Failures: c.fails, ConsecutiveFailures: c.consec, Start: t0, End: t0.Add(time.Hour), TopError: "boom"}, pth)
		if cond.Breached != c.breached || cond.Severity != c.severity || cond.Kind != KindPipelineFailure {
			t.Errorf("%+v: %+v", c, cond)
		}
	}
	cond := FailureCondition(StageWindow{Pipeline: "orders", Stage: "join", Runs: 4, Failures: 3, ConsecutiveFailures: 3, Start: t0, End: t0.Add(time.Hour), TopError: "key missing"}, pth)
	if cond.FiringSummary != "stage join of pipeline orders failed 3 of 4 runs (3 in a row) over 10:00–11:00 UTC: key missing" {
		t.Errorf("summary %q", cond.FiringSummary)
	}
}

func TestVolumeBaselineFollowsTheDailyCycle(t *testing.T) {
	day := func(d, h int) time.Time { return t0.Truncate(24 * time.Hour).Add(time.Duration(d*24+h) * time.Hour) }
	hist := map[int64]StagePoint{}
	for d := 0; d < 3; d++ {
		for h := 0; h < 24; h++ {
			v := 1000.0
			if h < 6 {
				v = 150 // the nightly dip
			}
			hist[day(d, h).UnixMilli()] = StagePoint{RecordsOut: v}
		}
	}
	if b, ok := VolumeBaseline(hist, day(3, 2), time.Hour); !ok || b != 150 {
		t.Errorf("night baseline %v %v", b, ok)
	}
	if b, ok := VolumeBaseline(hist, day(3, 12), time.Hour); !ok || b != 1000 {
		t.Errorf("day baseline %v %v", b, ok)
	}
	if _, ok := VolumeBaseline(map[int64]StagePoint{}, day(0, 5), time.Hour); ok {
		t.Error("a baseline without history")
	}
	night := StageWindow{Pipeline: "p", Stage: "s", StagePoint: StagePoint{RecordsOut: 140}, Start: day(3, 2), End: day(3, 3)}
	if c := VolumeCondition(night, 150, pth); c.Breached {
		t.Errorf("a normal night fired: %+v", c)
	}
	drop := StageWindow{Pipeline: "p", Stage: "s", StagePoint: StagePoint{RecordsOut: 90}, Start: day(3, 12), End: day(3, 13)}
	if c := VolumeCondition(drop, 1000, pth); !c.Breached || c.Severity != "critical" || !strings.Contains(c.FiringSummary, "fell to 90 records (9% of its usual 1000)") {
		t.Errorf("drop: %+v", c)
	}
	if c := VolumeCondition(StageWindow{StagePoint: StagePoint{RecordsOut: 3500}}, 1000, pth); !c.Breached || c.Threshold != 3 {
		t.Errorf("jump: %+v", c)
	}
	daily := map[int64]StagePoint{}
	for k := 1; k <= 3; k++ {
		daily[day(10-k, 0).UnixMilli()] = StagePoint{RecordsOut: float64(100 * k)}
	}
	if b, ok := VolumeBaseline(daily, day(10, 0), 24*time.Hour); !ok || b != 200 {
		t.Errorf("daily baseline %v %v", b, ok)
	}
}

func TestFreshness(t *testing.T) {
	var succ []time.Time
	for i := 0; i < 5; i++ {
		succ = append(succ, t0.Add(time.Duration(i)*time.Hour))
	}
	exp, ok := ExpectedInterval(succ, 2)
	if !ok || exp != 2*time.Hour {
		t.Fatalf("expected interval %v %v", exp, ok)
	}
	if _, ok := ExpectedInterval(succ[:3], 2); ok {
		t.Error("learned from two intervals")
	}
	o := Overdue{Since: succ[4], Deadline: succ[4].Add(exp), Expected: exp}
	c := FreshnessBreach("orders", "join", o)
	if !c.Breached || !c.WindowEnd.Equal(o.Deadline) || c.Value != exp.Seconds() ||
		c.FiringSummary != "stage join of pipeline orders has not succeeded since 2026-03-04 14:00 UTC (expected every 2h0m0s; overdue since 2026-03-04 16:00 UTC)" {
		t.Errorf("stale stage: %+v", c)
	}
	o.Until = succ[4].Add(5 * time.Hour)
	r := FreshnessRecovered("orders", "join", o)
	if r.Breached || r.Fingerprint() != c.Fingerprint() || !r.WindowEnd.Equal(o.Until) || r.Value != 5*3600 ||
		r.ResolvedSummary != "stage join of pipeline orders succeeded again at 2026-03-04 19:00 UTC, 5h0m0s after its previous success" {
		t.Errorf("recovered stage: %+v", r)
	}
}

// The overdue spells of a stage are a function of its successes: asked in one go or
// piece by piece (as a live stream advances the clock second by second, or a backlog by
// hours at once), the same spells come out, dated at their deadlines.
func TestOverdueSpellsDoNotDependOnWhenTheyAreAsked(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	// A run every 5 minutes; a 30-minute gap at 60; a gap of exactly the interval
	// (10 minutes) at 120 is not overdue; the last success is at 150.
	var succ []time.Time
	for m := 0; m <= 150; m += 5 {
		if (m > 60 && m < 90) || (m > 120 && m < 130) {
			continue
		}
		succ = append(succ, at(m))
	}
	fixed := func(int) (time.Duration, bool) { return 10 * time.Minute, true }
	key := func(spells []Overdue) string {
		var b strings.Builder
		for _, o := range spells {
			b.WriteString(o.Since.Format("15:04") + ">" + o.Deadline.Format("15:04") + ">")
			if !o.Until.IsZero() {
				b.WriteString(o.Until.Format("15:04"))
			}
			b.WriteString(" ")
		}
		return b.String()
	}
	end := at(200)
	whole := key(OverdueSpells(succ, time.Time{}, end, fixed))
	if whole != "11:00>11:10>11:30 12:30>12:40> " {
		t.Fatalf("spells %q", whole)
	}
	for _, step := range []time.Duration{time.Second, 7 * time.Minute, time.Hour} {
		seen := map[string]bool{}
		var all []Overdue
		var from time.Time
		for from.Before(end) {
			to := from.Add(step)
			if from.IsZero() {
				to = at(1)
			}
			if to.After(end) {
				to = end
			}
			for _, o := range OverdueSpells(succ, from, to, fixed) {
				// Asked again while it lasts, a spell comes back with the same deadline;
				// keep its last form (when it ended).
				k := o.Deadline.String()
				if !seen[k] {
					all = append(all, o)
					seen[k] = true
				} else {
					all[len(all)-1] = o
				}
			}
			from = to
		}
		if got := key(all); got != whole {
			t.Errorf("step %v: spells %q, want %q", step, got, whole)
		}
	}
	// Learned: 2 × the 99th percentile of the gaps between the last successes — here the
	// second largest, 10 minutes (the 30-minute outage is beyond it): overdue 20 minutes
	// after the last success, with the interval learned from successes up to it only.
	spells := OverdueSpells(succ, at(140), at(200), func(i int) (time.Duration, bool) { return LearnedInterval(succ, i, 2) })
	if len(spells) != 1 || !spells[0].Deadline.Equal(at(170)) || !spells[0].Until.IsZero() {
		t.Errorf("learned spells %+v", spells)
	}
	// Too few successes to learn from: nothing.
	if s := OverdueSpells(succ[:3], time.Time{}, at(500), func(i int) (time.Duration, bool) { return LearnedInterval(succ[:3], i, 2) }); len(s) != 0 {
		t.Errorf("spells without a learned interval: %+v", s)
	}
}

func logDurations(ms ...float64) processors.Moments {
	var m processors.Moments
	for _, v := range ms {
		m.Add(math.Log1p(v))
	}
	return m
}

// The duration rule's test and ratio against scipy's (testdata/gen_signals.py), and its
// verdict with the defaults: one slow run of a stage whose runs vary as much is not
// evidence; one run four times as slow as a stage that always takes the same time is.
func TestStageDurationMatchesScipy(t *testing.T) {
	breached := map[string]bool{"one run, steady stage, 4x": true, "twelve runs, 2x": true}
	th := DefaultPipelineThresholds
	for _, c := range loadSignalsReference(t).StageDuration {
		t.Run(c.Name, func(t *testing.T) {
			s := StageWindow{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), StagePoint: StagePoint{LogDuration: logDurations(c.WindowMs...)}}
			b := logDurations(c.BaselineMs...)
			cond, ok := DurationCondition(s, DurationBaseline{Level: b, SS: b.M2, DF: b.N - 1}, th)
			if !ok {
				t.Fatal("not judged")
			}
			stat, _ := strconv.ParseFloat(cond.Details["statistic"], 64)
			p, _ := strconv.ParseFloat(cond.Details["p_value"], 64)
			if !close(stat, c.T, 1e-5) || cond.Details["df"] != strconv.FormatFloat(c.DF, 'g', 6, 64) || !relClose(p, c.P, 1e-4) || !close(cond.Value, c.Ratio, 1e-9) {
				t.Errorf("t %v df %s p %v ratio %v; scipy t %v df %v p %v ratio %v", stat, cond.Details["df"], p, cond.Value, c.T, c.DF, c.P, c.Ratio)
			}
			if cond.Breached != breached[c.Name] || cond.Kind != KindPipelineDuration || cond.Metric != "duration_ratio" || cond.Severity != schemas.SeverityWarning {
				t.Errorf("breached %v (want %v): %+v", cond.Breached, breached[c.Name], cond)
			}
			if cond.Breached && !strings.Contains(cond.FiringSummary, "stage join of pipeline orders ran ") {
				t.Errorf("summary %q", cond.FiringSummary)
			}
		})
	}
	one := StageWindow{StagePoint: StagePoint{LogDuration: logDurations(60000)}}
	b := logDurations(2000, 2010, 1990)
	steady := DurationBaseline{Level: b, SS: b.M2, DF: 2}
	if c, ok := DurationCondition(one, steady, th); !ok || !c.Breached || c.Severity != schemas.SeverityCritical || c.Value < 25 {
		t.Errorf("thirty times as long: %v %+v", ok, c)
	}
	if _, ok := DurationCondition(StageWindow{}, steady, th); ok {
		t.Error("a window without durations judged")
	}
	if _, ok := DurationCondition(one, DurationBaseline{Level: logDurations(2000)}, th); ok {
		t.Error("judged against one run: no spread to judge by")
	}
	// A stage of a few milliseconds that takes a few more: five times as long, certain
	// (its runs always took 0 ms), and no page: under duration_min_increase_ms.
	zero := logDurations(0, 0, 0, 0, 0, 0, 0)
	if c, ok := DurationCondition(StageWindow{StagePoint: StagePoint{LogDuration: logDurations(4, 4)}}, DurationBaseline{Level: zero, SS: 0, DF: 6}, th); !ok || c.Breached ||
		!strings.Contains(c.FiringSummary, "typically 4ms against <1ms") {
		t.Errorf("milliseconds more paged: %v %+v", ok, c)
	}
	off := th
	off.DurationJump = 0
	if _, ok := DurationCondition(one, steady, off); ok {
		t.Error("judged with the rule off")
	}
}

// A stage with a level per hour of day (a heavy nightly run) is judged against the same
// hour of the previous days, with the spread of a week of runs: the contrast of an OLS
// model with a mean per hour (statsmodels, testdata/gen_signals.py).
func TestStageDurationAgainstAWeekMatchesOLS(t *testing.T) {
	breached := map[string]bool{"hourly stage, heavy nightly run, 4x": true, "hourly stage, afternoon 4x": true,
		"hourly stage, two days of history, 4x": true, "five-minute stage, afternoon 2.2x": true}
	midnight := t0.Truncate(24 * time.Hour)
	at := func(h int) time.Time { return midnight.Add(time.Duration(h) * time.Hour) }
	for _, c := range loadSignalsReference(t).StageDurationGrouped {
		t.Run(c.Name, func(t *testing.T) {
			hist := map[int64]StagePoint{at(c.At + 1).UnixMilli(): {LogDuration: logDurations(1e9)}} // after the window: not its history
			for _, w := range c.History {
				hist[at(w.Hour).UnixMilli()] = StagePoint{LogDuration: logDurations(w.Ms...)}
			}
			hist[at(c.At-7*24-1).UnixMilli()] = StagePoint{LogDuration: logDurations(1e9)} // more than a week before
			base, ok := NewDurationBaseline(hist, at(c.At), time.Hour)
			if !ok {
				t.Fatal("no baseline")
			}
			s := StageWindow{Pipeline: "orders", Stage: "load", Start: at(c.At), End: at(c.At + 1), StagePoint: StagePoint{LogDuration: logDurations(c.WindowMs...)}}
			cond, ok := DurationCondition(s, base, DefaultPipelineThresholds)
			if !ok {
				t.Fatal("not judged")
			}
			stat, _ := strconv.ParseFloat(cond.Details["statistic"], 64)
			df, _ := strconv.ParseFloat(cond.Details["df"], 64)
			p, _ := strconv.ParseFloat(cond.Details["p_value"], 64)
			if !close(stat, c.T, 1e-5) || df != c.DF || !relClose(p, c.P, 1e-4) || !close(cond.Value, c.Ratio, 1e-9) {
				t.Errorf("t %v df %v p %v ratio %v; statsmodels t %v df %v p %v ratio %v", stat, df, p, cond.Value, c.T, c.DF, c.P, c.Ratio)
			}
			if cond.Breached != breached[c.Name] {
				t.Errorf("breached %v, want %v: %s", cond.Breached, breached[c.Name], cond.FiringSummary)
			}
		})
	}
}

// The baseline windows are the same hour of the previous seven days (windows under a
// day); a day of history is needed.
func TestPooledBaselineTakesTheSameHourOfPreviousDays(t *testing.T) {
	day := func(d, h int) time.Time { return t0.Truncate(24 * time.Hour).Add(time.Duration(d*24+h) * time.Hour) }
	hist := map[int64]StagePoint{}
	for d := 0; d < 9; d++ {
		ms := 1000 * float64(d+1)
		hist[day(d, 2).UnixMilli()] = StagePoint{RecordsOut: 10, LogDuration: logDurations(ms), LostIn: 100, Lost: float64(d), NullOut: 90, Nulls: 1}
		hist[day(d, 3).UnixMilli()] = StagePoint{RecordsOut: 99, LogDuration: logDurations(1e6), LostIn: 5, Lost: 5, NullOut: 5, Nulls: 5}
	}
	got, ok := PooledBaseline(hist, day(9, 2), time.Hour)
	if !ok || got != (StagePoint{RecordsOut: 70, LostIn: 700, Lost: 2 + 3 + 4 + 5 + 6 + 7 + 8, NullOut: 630, Nulls: 7}) {
		t.Errorf("pooled %+v %v", got, ok)
	}
	if _, ok := PooledBaseline(hist, day(0, 2), time.Hour); ok {
		t.Error("a baseline without a day of history")
	}
}

func TestLostAndNullConditions(t *testing.T) {
	th := DefaultPipelineThresholds
	base := StagePoint{LostIn: 70000, Lost: 140, NullOut: 7000, Nulls: 35} // 0.2% lost, 0.5% nulls
	win := func(in, lost, out, nulls float64) StageWindow {
		return StageWindow{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), StagePoint: StagePoint{LostIn: in, Lost: lost, NullOut: out, Nulls: nulls}}
	}
	for _, c := range []struct {
		name               string
		w                  StageWindow
		lost, nulls        bool // breached
		lostCrit, nullCrit bool
	}{
		{"unchanged", win(10000, 25, 1000, 5), false, false, false, false},
		{"a join drops 30% of its records, 60% of the rest null", win(10000, 3000, 1000, 600), true, true, true, true},
		{"twice as many, but a fraction of a point", win(10000, 45, 1000, 11), false, false, false, false},
		{"one of three records lost: not evidence", win(3, 1, 3, 0), false, false, false, false},
		{"more out than in: nothing lost", win(10000, -500, 1000, 5), false, false, false, false},
		{"nulls counted per cell", win(10000, 20, 1000, 2500), false, true, false, true},
		{"6% lost, 6% nulls", win(10000, 600, 1000, 60), true, true, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, ok := LostCondition(c.w, base, th)
			if !ok || l.Breached != c.lost || (l.Severity == schemas.SeverityCritical) != c.lostCrit || l.Kind != KindPipelineVolume || l.Metric != "records_lost_share" {
				t.Errorf("lost %v: %+v", ok, l)
			}
			n, ok := NullCondition(c.w, base, th)
			if !ok || n.Breached != c.nulls || (n.Severity == schemas.SeverityCritical) != c.nullCrit || n.Kind != KindPipelineQuality || n.Metric != "null_rate" {
				t.Errorf("nulls %v: %+v", ok, n)
			}
			if l.Breached && !strings.Contains(l.FiringSummary, "stage join of pipeline orders lost ") {
				t.Errorf("summary %q", l.FiringSummary)
			}
		})
	}
	if _, ok := LostCondition(win(0, 0, 1000, 5), base, th); ok {
		t.Error("records lost judged without a run that sent both counts")
	}
	if _, ok := NullCondition(win(100, 0, 0, 0), base, th); ok {
		t.Error("nulls judged without a run that sent them")
	}
	if _, ok := LostCondition(win(100, 50, 100, 5), StagePoint{}, th); ok {
		t.Error("records lost judged without a baseline")
	}
}
