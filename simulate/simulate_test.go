package simulate

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/driftd/driftd/schemas"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func windows(t *testing.T, seed uint64, n int) [][]Record {
	t.Helper()
	g, err := New(Options{Seed: seed, Start: t0, Window: time.Minute, PerWindow: 400, ChangeAt: 3, ChangeFor: 2})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]Record
	for i := 0; i < n; i++ {
		out = append(out, g.NextWindow())
	}
	return out
}

func TestSameSeedSameEvents(t *testing.T) {
	a, b, c := windows(t, 1, 6), windows(t, 1, 6), windows(t, 2, 6)
	same := func(x, y [][]Record) bool {
		for i := range x {
			if len(x[i]) != len(y[i]) {
				return false
			}
			for j := range x[i] {
				if fmt.Sprintf("%+v %+v %+v", x[i][j].Prediction, x[i][j].Label, x[i][j].Pipeline) != fmt.Sprintf("%+v %+v %+v", y[i][j].Prediction, y[i][j].Label, y[i][j].Pipeline) {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("the same seed gave different events")
	}
	if same(a, c) {
		t.Error("different seeds gave the same events")
	}
	for w, recs := range a {
		for i := 1; i < len(recs); i++ {
			if recs[i].Time.Before(recs[i-1].Time) {
				t.Fatalf("window %d is not in time order", w)
			}
		}
		for _, r := range recs {
			if r.Time.Before(t0.Add(time.Duration(w)*time.Minute)) || !r.Time.Before(t0.Add(time.Duration(w+1)*time.Minute)) {
				t.Fatalf("window %d has a record at %v", w, r.Time)
			}
		}
	}
}

// Each scenario changes what it says, when it says, and nothing else does.
func TestScenarioEffects(t *testing.T) {
	ws := windows(t, 3, 7)
	type agg struct {
		amount, n, xx, missing, canary, canaryLatency, labels, failed, pipeline float64
	}
	stats := func(recs []Record, model string) agg {
		var a agg
		for _, r := range recs {
			switch {
			case r.Prediction != nil && r.Prediction.Model == model && r.Prediction.Deployment == "primary":
				a.n++
				a.amount += r.Prediction.Features[0].Value.Num
				if r.Prediction.Features[1].Value.Str == "XX" {
					a.xx++
				}
				if r.Prediction.Features[2].Value.Kind == 0 {
					a.missing++
				}
			case r.Prediction != nil && r.Prediction.Model == model && r.Prediction.Deployment == "canary":
				a.canary++
				a.canaryLatency += r.Prediction.LatencyMs
			case r.Label != nil && r.Label.Model == model:
				a.labels++
			case r.Pipeline != nil:
				a.pipeline++
				if r.Pipeline.Status == "failed" {
					a.failed++
				}
			}
		}
		a.amount /= math.Max(a.n, 1)
		return a
	}
	before, during, after := 1, 3, 6
	if s := stats(ws[during], ModelOf(AbruptShift)); s.amount < 140 || stats(ws[before], ModelOf(AbruptShift)).amount > 105 || stats(ws[after], ModelOf(AbruptShift)).amount > 105 {
		t.Errorf("abrupt shift: amount means %v", []float64{stats(ws[before], ModelOf(AbruptShift)).amount, s.amount, stats(ws[after], ModelOf(AbruptShift)).amount})
	}
	if s := stats(ws[during], ModelOf(NewCategory)); s.xx < 0.4*s.n || stats(ws[before], ModelOf(NewCategory)).xx != 0 {
		t.Errorf("new category: %v of %v", s.xx, s.n)
	}
	if s := stats(ws[during], ModelOf(MissingSpike)); s.missing < 0.5*s.n {
		t.Errorf("missing spike: %v of %v", s.missing, s.n)
	}
	if s := stats(ws[before], ModelOf(CanaryLatency)); s.canary != s.n/5 || s.canaryLatency/s.canary < 100 {
		t.Errorf("canary: %v of %v, mean latency %v", s.canary, s.n, s.canaryLatency/s.canary)
	}
	if s := stats(ws[before], ModelOf(ConceptDrift)); s.labels != s.n {
		t.Errorf("concept drift: %v labels for %v predictions", s.labels, s.n)
	}
	p := func(w int) agg { return stats(ws[w], ModelOf(PipelineFailure)) }
	if p(before).failed != 0 || p(before).pipeline != 3 || p(during).failed != 1 || p(after).pipeline != 0 {
		t.Errorf("pipeline: before %+v during %+v after %+v", p(before), p(during), p(after))
	}
	if s := stats(ws[during], ModelOf(Stationary)); math.Abs(s.amount-100) > 3 || s.xx != 0 {
		t.Errorf("stationary changed: %+v", s)
	}
	if _, err := New(Options{Scenarios: []string{"nope"}}); err == nil {
		t.Error("an unknown scenario was accepted")
	}
}

// A stream's predictions have the features asked for, in the documented mix; 5 is the
// catalogue's own five; other counts are refused.
func TestStreamFeatures(t *testing.T) {
	for _, c := range []struct {
		features, numbers, strings, bools int
		err                               bool
	}{
		{features: 0, numbers: 3, strings: 1, bools: 1},
		{features: 6, numbers: 3, strings: 2, bools: 1},
		{features: 20, numbers: 14, strings: 4, bools: 2},
		{features: 4, err: true},
		{features: 21, err: true},
	} {
		s, err := NewStream(StreamOptions{Seed: 1, Start: t0, Duration: time.Minute, Features: c.features,
			Models: []StreamModel{{Name: "m", Rate: 50}}})
		if (err != nil) != c.err {
			t.Fatalf("%d features: err = %v", c.features, err)
		}
		if err != nil {
			continue
		}
		n := 0
		for r, ok := s.Next(); ok; r, ok = s.Next() {
			n++
			kinds := map[schemas.Kind]int{}
			for _, f := range r.Prediction.Features {
				kinds[f.Value.Kind]++
			}
			// age may be missing (no kind); it is a number when present.
			if kinds[schemas.Number]+kinds[0] != c.numbers || kinds[schemas.String] != c.strings || kinds[schemas.Bool] != c.bools {
				t.Fatalf("%d features: kinds %v in %+v", c.features, kinds, r.Prediction.Features)
			}
		}
		if n < 2000 {
			t.Fatalf("%d features: %d predictions in a minute at 50/s", c.features, n)
		}
	}
}

// The traffic shapes keep the mean rate; bursty minutes vary far more than Poisson ones
// (variance over mean of a minute's events: about 1 for Poisson, 1 + 0.25 × the mean for
// a gamma rate of CV 0.5), and the diurnal peak hour brings about nine times the trough's.
func TestStreamTraffic(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		traffic          string
		minDisp, maxDisp float64
	}{
		{TrafficPoisson, 0.8, 1.2},
		{TrafficBursty, 8, 25}, // 1 + 0.25 × 60
		{TrafficDiurnal, 1, 1e9},
	} {
		s, err := NewStream(StreamOptions{Seed: 3, Start: start, Duration: 24 * time.Hour,
			Models: []StreamModel{{Name: "m", Rate: 1, Traffic: c.traffic}}})
		if err != nil {
			t.Fatal(err)
		}
		perMinute := make([]float64, 24*60)
		perHour := make([]float64, 24)
		n := 0
		for {
			r, ok := s.Next()
			if !ok {
				break
			}
			at := r.Prediction.Timestamp.Sub(start)
			perMinute[int(at/time.Minute)]++
			perHour[int(at/time.Hour)]++
			n++
		}
		if mean := float64(n) / 86400; math.Abs(mean-1) > 0.05 {
			t.Errorf("%q: %.3f events/s, want 1", c.traffic, mean)
		}
		var sum, sq float64
		for _, x := range perMinute {
			sum += x
			sq += x * x
		}
		m := sum / float64(len(perMinute))
		disp := (sq/float64(len(perMinute)) - m*m) / m
		if c.traffic != TrafficDiurnal && (disp < c.minDisp || disp > c.maxDisp) {
			t.Errorf("%q: minutes' variance/mean %.2f, want %g–%g", c.traffic, disp, c.minDisp, c.maxDisp)
		}
		if c.traffic == TrafficDiurnal {
			if ratio := perHour[14] / perHour[2]; ratio < 6 || ratio > 13 {
				t.Errorf("diurnal: 14:00 brings %.1f × 02:00, want about 9", ratio)
			}
		}
	}
	if _, err := NewStream(StreamOptions{Start: start, Duration: time.Hour, Models: []StreamModel{{Name: "m", Rate: 1, Traffic: "weekly"}}}); err == nil {
		t.Error("an unknown traffic shape was accepted")
	}
}
