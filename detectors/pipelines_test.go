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
	last := succ[4]
	if c := FreshnessCondition("orders", "join", last, last.Add(90*time.Minute), exp); c.Breached {
		t.Errorf("fresh stage fired: %+v", c)
	}
	c := FreshnessCondition("orders", "join", last, last.Add(150*time.Minute), exp)
	if !c.Breached || c.FiringSummary != "stage join of pipeline orders has not succeeded since 2026-03-04 14:00 UTC (2h30m0s ago; expected every 2h0m0s)" {
		t.Errorf("stale stage: %+v", c)
	}
}
