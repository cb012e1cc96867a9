package detectors

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func TestAlerterStateMachine(t *testing.T) {
	c := Condition{Kind: schemas.KindDataDrift, Model: "m", Version: "1", Feature: "amount", Metric: "psi",
		Severity: schemas.SeverityCritical, FiringSummary: "fires", ResolvedSummary: "resolves"}
	for _, tc := range []struct {
		name          string
		fire, resolve int
		breaches      string // one letter per window: B breached, c clean
		want          string // per window: F firing, R resolved, . nothing
	}{
		{"defaults", 1, 2, "BBBccBcc", "F...RF.R"},
		{"fire after two", 2, 2, "BcBBBcc", "...F..R"},
		{"flapping never resolves early", 1, 2, "BcBcBcc", "F.....R"},
		{"resolve after one", 1, 1, "BcBc", "FRFR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAlerter(tc.fire, tc.resolve)
			var got strings.Builder
			for i, b := range tc.breaches {
				c.Breached = b == 'B'
				c.WindowEnd = t0.Add(time.Duration(i) * time.Minute)
				ev := a.Observe(c, t0)
				switch {
				case ev == nil:
					got.WriteByte('.')
				case ev.State == schemas.StateFiring:
					got.WriteByte('F')
					if ev.Summary != "fires" || ev.Severity != schemas.SeverityCritical || ev.Fingerprint != c.Fingerprint() {
						t.Errorf("firing event %+v", ev)
					}
				default:
					got.WriteByte('R')
					if ev.Summary != "resolves" || ev.Severity != schemas.SeverityCritical {
						t.Errorf("resolved event %+v", ev)
					}
				}
			}
			if got.String() != tc.want {
				t.Errorf("got %s, want %s", got.String(), tc.want)
			}
		})
	}
}

func TestFingerprintsAreStableAndDistinct(t *testing.T) {
	a := Condition{Kind: "data_drift", Model: "m", Version: "1", Deployment: "primary", Feature: "x", Metric: "psi"}
	b := a
	b.Value, b.Breached, b.WindowEnd = 3, true, t0
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("fingerprint depends on the window's values")
	}
	b.Feature = "y"
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("different features share a fingerprint")
	}
}

func window(rng *rand.Rand, layout *processors.Layout, n int, shift float64, countries []string) *processors.WindowAgg {
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	p.SetLayout("m", "1", layout)
	for i := 0; i < n; i++ {
		p.Add(event(rng, shift, countries, time.Duration(i)*time.Millisecond), processors.Source{Offset: int64(i)}, t0)
	}
	return p.CloseAll()[0].Merged
}

func event(rng *rand.Rand, shift float64, countries []string, at time.Duration) *schemas.PredictionEvent {
	x := rng.NormFloat64()*10 + 100 + shift
	return &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at), Status: "ok", LatencyMs: 10 + rng.ExpFloat64()*5,
		Features: []schemas.Feature{
			{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: x}},
			{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: countries[rng.IntN(len(countries))]}},
			{Name: "noise", Value: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}},
		},
		Prediction: schemas.Value{Kind: schemas.Number, Num: x / 200}}
}

func TestEvaluateFlagsShiftsAndOnlyShifts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sample := NewSample()
	base := []string{"DE", "FR", "NL"}
	for i := 0; i < 20000; i++ {
		sample.AddEvent(event(rng, 0, base, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	if ref.Features["amount"].Kind != "numeric" || ref.Features["country"].Kind != "categorical" || len(ref.Features["amount"].Edges) < 40 {
		t.Fatalf("profile %+v", ref.Features["amount"])
	}
	th := func(string) Thresholds { return DefaultThresholds }
	drifted := func(v Verdict) map[string]bool {
		m := map[string]bool{}
		for _, s := range v.Scores {
			if s.Drifted {
				m[s.Feature] = true
			}
		}
		return m
	}
	// Stationary windows: nothing drifts, over many windows.
	for i := 0; i < 50; i++ {
		v := Evaluate(window(rng, ref.Layout(), 2000, 0, base), ref, th)
		if len(v.Scores) != 4 {
			t.Fatalf("scored %d features, want amount, country, noise and the prediction", len(v.Scores))
		}
		if d := drifted(v); len(d) != 0 {
			t.Fatalf("stationary window %d flagged %v: %+v", i, d, v.Scores)
		}
	}
	// A shifted amount drifts (and with it the prediction that depends on it).
	v := Evaluate(window(rng, ref.Layout(), 2000, 8, base), ref, th)
	if d := drifted(v); !d["amount"] || !d[processors.PredictionFeature] || d["noise"] || d["country"] {
		t.Fatalf("shifted amount flagged %v", d)
	}
	var found bool
	for _, c := range v.Conditions {
		if c.Feature == "amount" && c.Kind != schemas.KindInputQuality {
			found = true
			if !c.Breached || c.Kind != schemas.KindDataDrift || !strings.Contains(c.FiringSummary, "feature amount of m 1 drifted: PSI") {
				t.Errorf("condition %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no condition for amount")
	}
	// A new category flooding country drifts it.
	v = Evaluate(window(rng, ref.Layout(), 2000, 0, []string{"DE", "FR", "NL", "XX", "XX", "XX"}), ref, th)
	if d := drifted(v); !d["country"] || d["amount"] {
		t.Fatalf("new category flagged %v", d)
	}
}

func TestServiceConditions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := window(rng, nil, 1000, 0, []string{"a"})
	w.Errors = 100
	th := DefaultThresholds
	th.LatencyP99Ms = 5
	conds := Evaluate(w, nil, func(string) Thresholds { return th }).Conditions
	if len(conds) != 2 || !conds[0].Breached || conds[0].Kind != schemas.KindLatency || !conds[1].Breached || conds[1].Kind != schemas.KindErrors {
		t.Fatalf("conditions %+v", conds)
	}
}

func TestPSIGroups(t *testing.T) {
	for _, c := range []struct {
		ref  []float64
		want string
	}{
		{[]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, "[2 4 6 8 10]"},
		{[]float64{5, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, "[1 2 6 10 13]"},
		{[]float64{100}, "[1]"},
	} {
		if got := psiGroups(c.ref, 5); fmt.Sprint(got) != c.want {
			t.Errorf("psiGroups(%v) = %v, want %s", c.ref, got, c.want)
		}
	}
}

// Benjamini–Hochberg and the dataset-level verdict: when most features shift, the window
// drifts as a whole.
func TestCorrectionAndDatasetVerdict(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	sample := NewSample()
	base := []string{"DE", "FR", "NL"}
	for i := 0; i < 20000; i++ {
		sample.AddEvent(event(rng, 0, base, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	for _, correction := range []Correction{CorrectionBonferroni, CorrectionBH} {
		th := DefaultThresholds
		th.Correction = correction
		v := Evaluate(window(rng, ref.Layout(), 2000, 8, []string{"XX"}), ref, func(string) Thresholds { return th })
		drifted := map[string]bool{}
		for _, s := range v.Scores {
			if s.PAdjusted < s.PValue || s.PAdjusted > 1 {
				t.Errorf("%s: adjusted p %v for p %v", correction, s.PAdjusted, s.PValue)
			}
			if s.Drifted {
				drifted[s.Feature] = true
			}
			if s.JS <= 0 && s.Drifted {
				t.Errorf("%s: drifted feature %s has JS %v", correction, s.Feature, s.JS)
			}
		}
		if !drifted["amount"] || !drifted["country"] || drifted["noise"] {
			t.Errorf("%s: drifted %v", correction, drifted)
		}
		var dataset *Condition
		for i, c := range v.Conditions {
			if c.Metric == "drifted_share" {
				dataset = &v.Conditions[i]
			}
		}
		if dataset == nil || !dataset.Breached || dataset.Value != 0.75 || !strings.Contains(dataset.FiringSummary, "3 of 4 features of m 1 drifted (75% ≥ 50%)") {
			t.Errorf("%s: dataset condition %+v", correction, dataset)
		}
	}
}

// The methods: with a huge window, a tiny irrelevant shift is significant, so "test"
// flags it and "auto" (distance and test) does not; "distance" with JS judges categories
// by JS; Fisher's exact test replaces χ² for a sparse two-category feature.
func TestMethods(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	sample := NewSample()
	base := []string{"DE", "FR", "NL"}
	for i := 0; i < 40000; i++ {
		sample.AddEvent(event(rng, 0, base, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	w := window(rng, ref.Layout(), 40000, 0.5, base) // 0.05σ
	for _, c := range []struct {
		method   Method
		distance Distance
		amount   bool
	}{{MethodTest, "", true}, {MethodAuto, "", false}, {MethodDistance, "wasserstein", false}} {
		th := DefaultThresholds
		th.Method, th.Distance = c.method, c.distance
		v := Evaluate(w, ref, func(string) Thresholds { return th })
		for _, s := range v.Scores {
			if s.Feature == "amount" && s.Drifted != c.amount {
				t.Errorf("%s/%s: amount drifted %v (PSI %.4f, W %.4f, p %.3g)", c.method, c.distance, s.Drifted, s.PSI, s.WassersteinNorm, s.PAdjusted)
			}
		}
	}
	th := DefaultThresholds
	th.Method, th.Distance = MethodDistance, "js"
	v := Evaluate(window(rng, ref.Layout(), 2000, 0, []string{"DE", "XX"}), ref, func(string) Thresholds { return th })
	for _, c := range v.Conditions {
		if c.Feature == "country" && c.Kind != schemas.KindInputQuality && (!c.Breached || c.Metric != "js" || !strings.Contains(c.FiringSummary, "drifted: JS distance")) {
			t.Errorf("country by JS: %+v", c)
		}
	}
	if a, b, c, d, ok := smallTwoByTwo([]float64{30, 1}, []float64{20, 3}); !ok || FisherExact(a, b, c, d) <= 0 {
		t.Errorf("sparse 2×2 not sent to Fisher: %v", ok)
	}
	if _, _, _, _, ok := smallTwoByTwo([]float64{300, 200}, []float64{250, 220}); ok {
		t.Error("a well-filled 2×2 sent to Fisher")
	}
}

// Thresholds learned from the reference's own variability: stationary windows stay under
// them, shifted ones go over, and the threshold tightens as windows grow.
func TestLearnedThresholds(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	sample := NewSample()
	base := []string{"DE", "FR", "NL"}
	for i := 0; i < 20000; i++ {
		sample.AddEvent(event(rng, 0, base, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	l, ok := ref.Features["amount"].Learned["psi"]
	if !ok || l.N != 1000 || l.Mean <= 0 || l.Std <= 0 {
		t.Fatalf("learned psi %+v", ref.Features["amount"].Learned)
	}
	if _, ok := ref.Features["country"].Learned["js"]; !ok {
		t.Fatalf("learned categorical %+v", ref.Features["country"].Learned)
	}
	if l.Threshold("psi", 4000) >= l.Threshold("psi", 1000) || l.Threshold("js", 4000) >= l.Threshold("js", 1000) {
		t.Error("learned thresholds do not tighten with window size")
	}
	th := DefaultThresholds
	th.Method, th.ThresholdFrom = MethodDistance, "reference"
	judgeAll := func(shift float64, cats []string) map[string]bool {
		v := Evaluate(window(rng, ref.Layout(), 2000, shift, cats), ref, func(string) Thresholds { return th })
		d := map[string]bool{}
		for _, s := range v.Scores {
			if s.Drifted {
				d[s.Feature] = true
			}
		}
		return d
	}
	falseAlarms := 0
	for i := 0; i < 30; i++ {
		falseAlarms += len(judgeAll(0, base))
	}
	// 30 windows × 4 features at mean + 3σ: a handful at most.
	if falseAlarms > 4 {
		t.Errorf("%d false alarms in 120 stationary judgements", falseAlarms)
	}
	if d := judgeAll(5, base); !d["amount"] {
		t.Errorf("a half-σ shift of amount not seen: %v", d)
	}
	if d := judgeAll(0, []string{"DE", "XX"}); !d["country"] {
		t.Errorf("a new category not seen: %v", d)
	}
}

// A rolling reference (the previous window): the same distribution stays silent window
// after window, a shift is seen, also for values far from zero (100 ± 10) where the
// sketch's buckets are coarse.
func TestRollingReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	base := []string{"DE", "FR", "NL"}
	th := func(string) Thresholds { return DefaultThresholds }
	prev := window(rng, nil, 2000, 0, base)
	for i := 0; i < 30; i++ {
		w := window(rng, nil, 2000, 0, base)
		ref := ProfileFromWindow(prev, SourcePreviousWindow, t0)
		if ref.Features["amount"].Kind != "numeric" || !ref.Features["amount"].FromSketch || len(ref.Features["amount"].Edges) < 10 {
			t.Fatalf("rolling profile %+v", ref.Features["amount"])
		}
		for _, s := range Evaluate(w, ref, th).Scores {
			if s.Drifted {
				t.Fatalf("window %d: %s drifted against the previous window (PSI %.3f, p %.3g)", i, s.Feature, s.PSI, s.PAdjusted)
			}
		}
		prev = w
	}
	ref := ProfileFromWindow(prev, SourcePreviousWindow, t0)
	drifted := map[string]bool{}
	for _, s := range Evaluate(window(rng, nil, 2000, 4, base), ref, th).Scores {
		drifted[s.Feature] = s.Drifted
	}
	if !drifted["amount"] || drifted["noise"] || drifted["country"] {
		t.Errorf("shift against the previous window: %v", drifted)
	}
	if lag, ok := RollingLag(SourceWeekAgo, time.Hour); !ok || lag != 7*24*time.Hour {
		t.Errorf("week lag %v %v", lag, ok)
	}
}

// The numeric test can be Anderson–Darling or Cramér–von Mises instead of KS.
func TestNumericTestChoice(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	sample := NewSample()
	base := []string{"DE", "FR", "NL"}
	for i := 0; i < 20000; i++ {
		sample.AddEvent(event(rng, 0, base, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	shifted := window(rng, ref.Layout(), 2000, 6, base)
	for _, test := range []NumericTest{TestKS, TestAD, TestCvM} {
		th := DefaultThresholds
		th.Test = test
		th.CategoricalTest = map[NumericTest]CategoricalTest{TestKS: TestChi2, TestAD: TestG, TestCvM: TestZ}[test]
		for _, s := range Evaluate(shifted, ref, func(string) Thresholds { return th }).Scores {
			if s.Feature == "is_new" || s.Feature == "country" {
				want := th.CategoricalTest.String()
				if want == "z" && s.Feature == "country" {
					want = "chi2" // three categories: the z-test does not apply
				}
				if s.Test != want || s.Drifted {
					t.Errorf("%s: %s judged by %s (want %s), drifted %v", test, s.Feature, s.Test, want, s.Drifted)
				}
			}
			if s.Feature == "amount" && (s.Test != test.String() || !s.Drifted) {
				t.Errorf("%s: amount judged by %s, drifted %v (p %.3g)", test, s.Test, s.Drifted, s.PValue)
			}
			if s.Feature == "noise" && s.Drifted {
				t.Errorf("%s: noise drifted", test)
			}
		}
	}
}

// A boolean feature judged by the two-proportion z-test.
func TestZTestForABooleanFeature(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	ev := func(p float64, i int) *schemas.PredictionEvent {
		v := 0.0
		if rng.Float64() < p {
			v = 1
		}
		return &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Status: "ok",
			Features: []schemas.Feature{{Name: "flag", Value: schemas.Value{Kind: schemas.Bool, Num: v}}}}
	}
	sample := NewSample()
	for i := 0; i < 10000; i++ {
		sample.AddEvent(ev(0.3, i))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 1, t0)
	th := DefaultThresholds
	th.CategoricalTest = "z"
	for _, c := range []struct {
		p     float64
		drift bool
	}{{0.3, false}, {0.6, true}} {
		p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
		p.SetLayout("m", "1", ref.Layout())
		for i := 0; i < 2000; i++ {
			p.Add(ev(c.p, i), processors.Source{Offset: int64(i)}, t0)
		}
		v := Evaluate(p.CloseAll()[0].Merged, ref, func(string) Thresholds { return th })
		if len(v.Scores) != 1 || v.Scores[0].Test != "z" || v.Scores[0].Drifted != c.drift {
			t.Errorf("share %.1f: %+v", c.p, v.Scores)
		}
	}
}

// classEvent is a classifier's prediction with its two class scores: the class is a coin
// flip, its score confident or not.
func classEvent(rng *rand.Rand, confident bool, at time.Duration) *schemas.PredictionEvent {
	top := 0.8 + 0.19*rng.Float64()
	if !confident {
		top = 0.5 + 0.2*rng.Float64()
	}
	class, other := "a", "b"
	if rng.IntN(2) == 1 {
		class, other = other, class
	}
	return &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at), Status: "ok", LatencyMs: 10,
		Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}},
		Prediction: schemas.Value{Kind: schemas.String, Str: class}, Scores: map[string]float64{class: top, other: 1 - top}}
}

// A classifier that grows unsure, with the same classes predicted as often as before:
// its confidence and entropy drift (output_quality), its predictions do not, and the
// stationary windows before raise nothing.
func TestEvaluateJudgesScoreConfidence(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sample := NewSample()
	for i := 0; i < 20000; i++ {
		sample.AddEvent(classEvent(rng, true, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	if ref.Features[processors.ConfidenceFeature] == nil || ref.Features[processors.EntropyFeature] == nil {
		t.Fatalf("reference without the score signals: %v", ref.Features)
	}
	th := func(string) Thresholds { return DefaultThresholds }
	win := func(confident bool) *processors.WindowAgg {
		p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
		p.SetLayout("m", "1", ref.Layout())
		for i := 0; i < 2000; i++ {
			p.Add(classEvent(rng, confident, time.Duration(i)*time.Millisecond), processors.Source{Offset: int64(i)}, t0)
		}
		return p.CloseAll()[0].Merged
	}
	breached := func(v Verdict) []string {
		var out []string
		for _, c := range v.Conditions {
			if c.Feature == processors.ConfidenceFeature || c.Feature == processors.EntropyFeature {
				t.Errorf("condition names a pseudo-feature: %+v", c)
			}
			if c.Breached {
				out = append(out, c.Kind+" "+c.Feature)
			}
		}
		return out
	}
	for i := 0; i < 50; i++ {
		if b := breached(Evaluate(win(true), ref, th)); len(b) > 0 {
			t.Fatalf("stationary window %d breached %v", i, b)
		}
	}
	v := Evaluate(win(false), ref, th)
	got := strings.Join(breached(v), ", ")
	if got != "output_quality confidence, output_quality entropy" {
		t.Errorf("unsure classifier breached %q, want confidence and entropy only", got)
	}
	for _, c := range v.Conditions {
		if c.Feature == "confidence" && !strings.Contains(c.FiringSummary, "confidence (highest class score) of m 1 drifted") {
			t.Errorf("summary %q", c.FiringSummary)
		}
	}
}

// A classifier whose scores are mostly exactly 1 and 0 (an atom at confidence 1 and
// entropy 0), judged over long stationary streams at several volumes: no breach.
func TestScoreSignalsQuietWithAtoms(t *testing.T) {
	for _, n := range []int{150, 500, 5000} {
		t.Run(fmt.Sprintf("%d a window", n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			ev := func(at time.Duration) *schemas.PredictionEvent {
				e := classEvent(rng, true, at)
				if rng.Float64() < 0.7 {
					for k := range e.Scores {
						e.Scores[k] = 0
					}
					e.Scores[e.Prediction.Str] = 1
				}
				return e
			}
			sample := NewSample()
			for i := 0; i < 3*n; i++ { // three reference windows
				sample.AddEvent(ev(0))
			}
			ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
			th := func(string) Thresholds { return DefaultThresholds }
			windows := 400
			if n == 5000 {
				windows = 100
			}
			judged := 0
			for w := 0; w < windows; w++ {
				p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
				p.SetLayout("m", "1", ref.Layout())
				for i := 0; i < n; i++ {
					p.Add(ev(time.Duration(i)*time.Millisecond), processors.Source{Offset: int64(i)}, t0)
				}
				for _, c := range Evaluate(p.CloseAll()[0].Merged, ref, th).Conditions {
					if c.Breached {
						t.Fatalf("stationary window %d breached %s %s: %s", w, c.Kind, c.Feature, c.FiringSummary)
					}
					if c.Feature == "confidence" {
						judged++
					}
				}
			}
			if n >= int(DefaultThresholds.MinEvents) && judged != windows {
				t.Errorf("confidence judged in %d of %d windows", judged, windows)
			}
			t.Logf("%d stationary windows, confidence judged in %d (min_events %d), no breach", windows, judged, DefaultThresholds.MinEvents)
		})
	}
}
