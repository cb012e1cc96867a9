package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// The numeric pairs' correlation and mean absolute difference, against a textbook
// example: x = 1..5, y = 2, 4, 5, 4, 5 has Pearson's r = 0.6/√0.6 = 0.7745966692414834
// (scipy.stats.pearsonr gives the same) and a mean absolute difference of (1+2+2+0+0)/5 = 1.
func TestShadowCountsStatistics(t *testing.T) {
	var c ShadowCounts
	for i, y := range []float64{2, 4, 5, 4, 5} {
		x := float64(i + 1)
		c.Add(ShadowCounts{Numeric: 1, AbsDiff: math.Abs(x - y), SumS: x, SumP: y, SSS: x * x, SPP: y * y, SSP: x * y})
	}
	if r := c.Correlation(); math.Abs(r-0.7745966692414834) > 1e-12 {
		t.Errorf("correlation %v", r)
	}
	if d := c.MeanAbsDiff(); math.Abs(d-1) > 1e-12 {
		t.Errorf("mean absolute difference %v", d)
	}
	if r := (ShadowCounts{Numeric: 3, SumS: 3, SumP: 6, SSS: 3, SPP: 14, SSP: 6}).Correlation(); !math.IsNaN(r) {
		t.Errorf("a constant side's correlation %v, want NaN", r)
	}
}

// shadowDraw is a window of matched predictions, each agreeing with probability agree.
func shadowDraw(rng *rand.Rand, matched int, agree float64) ShadowCounts {
	c := ShadowCounts{Shadows: uint64(matched), Matched: uint64(matched)}
	for i := 0; i < matched; i++ {
		if rng.Float64() < agree {
			c.Agreed++
		}
	}
	return c
}

// A shadow's disagreement is judged against its own reference, with an effect floor: a
// shadow agreeing 90% of the time that starts flipping a third of its answers breaches
// from 100 joined predictions a window; one that keeps agreeing as it did never does
// (stationary windows at several volumes); a window with fewer than MinMatched joined
// predictions is not judged; the agreement floor, when set, holds a shadow that always
// disagreed.
func TestJudgeShadow(t *testing.T) {
	set := DefaultShadowSettings
	w := ShadowWindow{Shadow: processors.SeriesKey{Model: "m", Version: "2", Deployment: schemas.DeploymentShadow}, PrimaryVersion: "1",
		Start: t0, End: t0.Add(5 * time.Minute)}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		windows, matched int
	}{{2000, 100}, {2000, 1000}, {300, 10000}} {
		var ref ShadowCounts
		for i := 0; i < set.ReferenceWindows; i++ {
			ref.Add(shadowDraw(rng, c.matched, 0.9))
		}
		breaches := 0
		for i := 0; i < c.windows; i++ {
			w.Counts = shadowDraw(rng, c.matched, 0.9)
			for _, cond := range JudgeShadow(w, ref, set) {
				if cond.Breached {
					breaches++
				}
			}
		}
		detected := 0
		for i := 0; i < 100; i++ {
			w.Counts = shadowDraw(rng, c.matched, 0.9*2/3)
			conds := JudgeShadow(w, ref, set)
			if len(conds) == 1 && conds[0].Breached && conds[0].Kind == schemas.KindShadow {
				detected++
			}
		}
		t.Logf("%d joined a window: %d breaches in %d stationary windows; %d of 100 windows found after a third of the answers flipped", c.matched, breaches, c.windows, detected)
		if breaches > 0 || detected < 95 {
			t.Errorf("%d joined a window: %d false breaches, %d of 100 found", c.matched, breaches, detected)
		}
	}
	w.Counts = shadowDraw(rng, int(set.MinMatched)-1, 0.1)
	if conds := JudgeShadow(w, ShadowCounts{Matched: 1000, Agreed: 900}, set); conds != nil {
		t.Errorf("a window under min_matched judged: %+v", conds)
	}
	floor := set
	floor.MinAgreement = 0.8
	w.Counts = shadowDraw(rng, 500, 0.5)
	conds := JudgeShadow(w, w.Counts, floor) // its reference is as bad: only the floor catches it
	if len(conds) != 2 || conds[0].Breached || !conds[1].Breached || conds[1].Metric != "agreement" {
		t.Errorf("floor: %+v", conds)
	}
}
