package detectors

import (
	"strings"
	"testing"
	"time"
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
	hist := map[int64]float64{}
	for d := 0; d < 3; d++ {
		for h := 0; h < 24; h++ {
			v := 1000.0
			if h < 6 {
				v = 150 // the nightly dip
			}
			hist[day(d, h).UnixMilli()] = v
		}
	}
	if b, ok := VolumeBaseline(hist, day(3, 2), time.Hour); !ok || b != 150 {
		t.Errorf("night baseline %v %v", b, ok)
	}
	if b, ok := VolumeBaseline(hist, day(3, 12), time.Hour); !ok || b != 1000 {
		t.Errorf("day baseline %v %v", b, ok)
	}
	if _, ok := VolumeBaseline(map[int64]float64{}, day(0, 5), time.Hour); ok {
		t.Error("a baseline without history")
	}
	night := StageWindow{Pipeline: "p", Stage: "s", RecordsOut: 140, Start: day(3, 2), End: day(3, 3)}
	if c := VolumeCondition(night, 150, pth); c.Breached {
		t.Errorf("a normal night fired: %+v", c)
	}
	drop := StageWindow{Pipeline: "p", Stage: "s", RecordsOut: 90, Start: day(3, 12), End: day(3, 13)}
	if c := VolumeCondition(drop, 1000, pth); !c.Breached || c.Severity != "critical" || !strings.Contains(c.FiringSummary, "fell to 90 records (9% of its usual 1000)") {
		t.Errorf("drop: %+v", c)
	}
	if c := VolumeCondition(StageWindow{RecordsOut: 3500}, 1000, pth); !c.Breached || c.Threshold != 3 {
		t.Errorf("jump: %+v", c)
	}
	daily := map[int64]float64{}
	for k := 1; k <= 3; k++ {
		daily[day(10-k, 0).UnixMilli()] = float64(100 * k)
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
