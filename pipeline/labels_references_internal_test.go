package pipeline

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// The references of performance and of outcomes, judged window by window as the settle
// loop does (judgePerformance), with no services: what the review found when outcomes
// and labels start at different times or differ in volume.

var refSeries = processors.SeriesKey{Model: "m", Version: "1", Deployment: schemas.DeploymentPrimary}

func referencesRunner() *Runner {
	return &Runner{set: Settings{
		ReferenceWindows: func(string) int { return 3 },
		Labels: LabelSettings{Horizon: time.Hour, Settle: time.Minute, Detector: detectors.ChangeADWIN,
			Change: detectors.DefaultChangeParams(), Thresholds: detectors.DefaultPerformanceThresholds},
	}, lab: newLabelState()}
}

// outcomeWindow scores n predictions (a probability of class 1): each has the outcome
// "redo" with probability redo, and a label with probability cover (drawn from the
// prediction, flipped when flip).
func outcomeWindow(rng *rand.Rand, n int, redo, cover float64, flip bool) *detectors.Scorer {
	sc := &detectors.Scorer{}
	for i := 0; i < n; i++ {
		p := rng.Float64()
		pair := detectors.PerfPair{Prediction: schemas.Value{Kind: schemas.Number, Num: p}}
		if rng.Float64() < redo {
			pair.Outcomes = []string{"redo"}
		}
		if rng.Float64() < cover {
			y := 0.0
			if rng.Float64() < p {
				y = 1
			}
			if flip {
				y = 1 - y
			}
			pair.Label = schemas.Value{Kind: schemas.Number, Num: y}
		}
		sc.Add(pair)
	}
	return sc
}

// judgeWindows judges the windows in order and returns the breaches, as "w<i> kind".
func judgeWindows(r *Runner, ws []*detectors.Scorer) []string {
	ps := &perfSeries{}
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	var out []string
	for i, sc := range ws {
		start := t0.Add(time.Duration(i) * 5 * time.Minute)
		w := storage.SettledWindow{Series: refSeries, Start: start, End: start.Add(5 * time.Minute)}
		_, conds := r.judgePerformance(ps, w, storage.JoinSpec{Until: w.End}, sc)
		for _, c := range conds {
			if c.Breached {
				out = append(out, fmt.Sprintf("w%d %s", i, c.Kind))
			}
		}
		ps.last = start
	}
	return out
}

// Outcomes without labels at 20,000 predictions a window are judged window by window:
// redo 10% → 20% in windows 10-15 breaches on 10 and ends with the change (merged over
// twelve windows for want of labels, it breached from 12 to 23).
func TestOutcomesAreJudgedOnTheirOwnVolume(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var ws []*detectors.Scorer
	for i := 0; i < 30; i++ {
		rate := 0.1
		if i >= 10 && i < 16 {
			rate = 0.2
		}
		ws = append(ws, outcomeWindow(rng, 20000, rate, 0, false))
	}
	got := judgeWindows(referencesRunner(), ws)
	want := "[w10 output_quality w11 output_quality w12 output_quality w13 output_quality w14 output_quality w15 output_quality]"
	if fmt.Sprint(got) != want {
		t.Errorf("breaches %v, want %s", got, want)
	}
}

// Outcomes from the start, labels from window 5, a concept flip at 12: the performance
// reference is the first windows with labels, and the flip breaches (an outcomes-only
// reference left performance unjudged for ever).
func TestOutcomesBeforeLabelsLeavePerformanceJudged(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var ws []*detectors.Scorer
	for i := 0; i < 20; i++ {
		cover := 0.0
		if i >= 5 {
			cover = 1
		}
		ws = append(ws, outcomeWindow(rng, 1000, 0.1, cover, i >= 12))
	}
	got := judgeWindows(referencesRunner(), ws)
	if !strings.Contains(fmt.Sprint(got), "w12 performance") {
		t.Errorf("breaches %v: no performance breach on the flip at window 12", got)
	}
	for _, g := range got {
		if strings.Contains(g, schemas.KindOutputQuality) {
			t.Errorf("outcome breach with a steady outcome rate: %s", g)
		}
	}
}

// Outcomes first reported at window 6, after a labelled reference without them, at a
// steady 10%: their own reference starts with them, and nothing breaches (against the
// labelled reference's rate of 0 they breached every window).
func TestOutcomesStartedAfterTheReferenceAreQuiet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var ws []*detectors.Scorer
	for i := 0; i < 20; i++ {
		redo := 0.0
		if i >= 6 {
			redo = 0.1
		}
		ws = append(ws, outcomeWindow(rng, 1000, redo, 1, false))
	}
	if got := judgeWindows(referencesRunner(), ws); len(got) > 0 {
		t.Errorf("breaches %v on a stationary stream", got)
	}
}

// ratesWindow scores n predictions, all labelled, each with every outcome of rates at its
// rate (names in sorted order).
func ratesWindow(rng *rand.Rand, n int, rates map[string]float64) *detectors.Scorer {
	names := make([]string, 0, len(rates))
	for k := range rates {
		names = append(names, k)
	}
	sort.Strings(names)
	sc := &detectors.Scorer{}
	for i := 0; i < n; i++ {
		p := rng.Float64()
		pair := detectors.PerfPair{Prediction: schemas.Value{Kind: schemas.Number, Num: p}}
		for _, k := range names {
			if rng.Float64() < rates[k] {
				pair.Outcomes = append(pair.Outcomes, k)
			}
		}
		y := 0.0
		if rng.Float64() < p {
			y = 1
		}
		pair.Label = schemas.Value{Kind: schemas.Number, Num: y}
		sc.Add(pair)
	}
	return sc
}

// Outcomes that start after the labels, at low volume, steady: a window merged with the
// ones before it merges only windows after the outcomes' reference (merged with windows
// from before the outcome existed, it read as a fall: 27 breaches in 20 seeds × 60
// windows). A second outcome first reported after the reference is not judged (against
// a rate of 0 it breached every window). Nothing breaches.
func TestLateOutcomesAreQuiet(t *testing.T) {
	for _, c := range []struct {
		n, from int
		rate    float64
	}{{20, 10, 0.4}, {20, 25, 0.4}, {60, 10, 0.1}, {90, 10, 0.3}} {
		for seed := uint64(0); seed < 20; seed++ {
			rng := rand.New(rand.NewPCG(seed, 7))
			var ws []*detectors.Scorer
			for i := 0; i < 60; i++ {
				rates := map[string]float64{}
				if i >= c.from {
					rates["clicked"] = c.rate
				}
				if i >= c.from+20 {
					rates["redo"] = 0.3 // a second outcome, after the reference
				}
				ws = append(ws, ratesWindow(rng, c.n, rates))
			}
			for _, g := range judgeWindows(referencesRunner(), ws) {
				if strings.Contains(g, schemas.KindOutputQuality) {
					t.Errorf("%+v seed %d: %s on a stationary stream", c, seed, g)
				}
			}
		}
	}
}
