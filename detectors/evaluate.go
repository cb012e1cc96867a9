package detectors

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Thresholds decide when a window counts as drifted or unhealthy.
type Thresholds struct {
	PSIWarning  float64 // PSI at or above this, with a significant test, is drift
	PSICritical float64 // PSI at or above this makes the drift critical
	PValue      float64 // family-wise significance level across a window's features
	MinEvents   uint64  // windows with fewer present values are not judged
	// LatencyP99Ms fires a latency alert when p99 ≥ it (0 disables); ErrorRate fires an
	// errors alert when (errors + timeouts) / events ≥ it (0 disables).
	LatencyP99Ms float64
	ErrorRate    float64
	// Correction controls the family-wise or false-discovery error across a window's
	// features: "bonferroni" (default) or "bh" (Benjamini–Hochberg).
	Correction Correction
	// DriftShare: when at least this share of a window's judged features drift, the window
	// drifts as a whole (one dataset-level condition; 0 disables).
	DriftShare float64
	// Method decides drift per feature: "auto" (a distance at or above its threshold AND
	// a significant test), "test" (the corrected p-value alone) or "distance" (the distance
	// alone). Distance is the distance used (psi, js, hellinger, kl, wasserstein, tvd,
	// linf; default psi), DistanceThreshold its threshold (0: psi_warning for psi, 0.1 for
	// the others); critical at psi_critical for psi, 2.5 × the threshold for the others.
	Method            Method
	Distance          Distance
	DistanceThreshold float64
	// ThresholdFrom is "fixed" (the thresholds above) or "reference": the distance's
	// threshold is learned from the reference's own variability (Learned.Threshold).
	ThresholdFrom ThresholdFrom
	// Test is the hypothesis test of numeric features: ks (default), ad (Anderson–Darling)
	// or cvm (Cramér–von Mises). CategoricalTest that of categorical ones: chi2 (default),
	// g (G-test) or z (two-proportion z-test, for two categories); a sparse two-category
	// table always uses Fisher's exact test.
	Test            NumericTest
	CategoricalTest CategoricalTest
	// Signals judge missing values, unseen categories, input size, null predictions,
	// latency, errors and volume against the reference (quality.go).
	Signals SignalThresholds
}

func (s FeatureScore) distance(name string) (float64, bool) {
	switch name {
	case "", "psi":
		return s.PSI, true
	case "js":
		return s.JS, true
	case "hellinger":
		return s.Hellinger, true
	case "kl":
		return s.KL, true
	case "wasserstein":
		return s.WassersteinNorm, s.Kind == processors.Numeric.String()
	case "tvd":
		return s.TVD, s.Kind == processors.Categorical.String()
	case "linf":
		return s.LInf, s.Kind == processors.Categorical.String()
	}
	return 0, false
}

// judge applies a feature's method: whether it drifted and how badly, by which distance
// and threshold.
func judge(s FeatureScore, th Thresholds) (drifted bool, severity, distance string, value, threshold float64) {
	distance = th.Distance.String()
	if distance == "" {
		distance = "psi"
	}
	value, ok := s.distance(distance)
	if !ok { // a distance that does not apply to this kind of feature
		distance, value = "psi", s.PSI
	}
	threshold, critical := th.PSIWarning, th.PSICritical
	if distance != "psi" {
		threshold = th.DistanceThreshold
		if threshold <= 0 {
			threshold = 0.1
		}
		critical = 2.5 * threshold
	}
	if l, ok := s.learned[distance]; ok && th.ThresholdFrom == ThresholdReference {
		threshold = l.Threshold(distance, s.N)
		critical = 2.5 * threshold
	}
	significant := s.PAdjusted < s.Alpha
	// Whatever the threshold, a distance is an effect only where the cells it compares
	// differ beyond the sampling noise of the window and of the reference.
	effect := value >= threshold && s.beyondNoise()
	switch th.Method {
	case MethodTest:
		drifted = significant
	case MethodDistance:
		drifted = effect
	default:
		drifted = significant && effect
	}
	severity = schemas.SeverityWarning
	if value >= critical {
		severity = schemas.SeverityCritical
	}
	return drifted, severity, distance, value, threshold
}

// NoiseAlpha is the level at which the cells a distance compares must differ before the
// distance counts (docs/detection.md): about how often, per feature and window, an
// unchanged stream's distance counts.
const NoiseAlpha = 1e-6

// beyondNoise says whether the window's cells differ from the reference's beyond sampling
// noise: Pearson's χ² of homogeneity over them (both sides are samples — a reference of
// three windows is a small one) is significant at NoiseAlpha. Under no change PSI is
// close to χ² · (1/n + 1/N), so for ten groups this asks for PSI ≳ 44.8 · (1/n + 1/N);
// the χ² statistic rather than PSI because PSI's tail is heavier where a cell holds few
// values (its log ratio): at 120 values against 180, PSI crossed that line in 7 of 10,000
// unchanged windows, χ² in none of 2,000,000.
func (s FeatureScore) beyondNoise() bool { return s.NoiseP < NoiseAlpha }

// DefaultThresholds are the defaults documented in docs/statistics.md.
// MinEvents is 100 because PSI over 10 groups is biased upwards by about 9/n under no
// change: below 100 values noise alone reaches 0.1, and the beyond-noise check that keeps
// it out (about PSI 0.45 there) leaves only gross changes to find.
var DefaultThresholds = Thresholds{PSIWarning: 0.1, PSICritical: 0.25, PValue: 0.05, MinEvents: 100, ErrorRate: 0.05,
	Correction: CorrectionBonferroni, DriftShare: 0.5, Signals: DefaultSignalThresholds}

// FeatureScore is the comparison of one feature of one window with the reference.
type FeatureScore struct {
	Feature   string
	Kind      string // numeric or categorical
	N         uint64 // present values in the window
	PSI       float64
	Test      string  // "ks" or "chi2"
	Statistic float64 // KS D or chi-square
	PValue    float64
	PAdjusted float64 // the p-value corrected across the window's features
	Alpha     float64 // the level the adjusted p-value was held to
	// Distances (docs/statistics.md): all features have JS, Hellinger and KL; numeric ones
	// Wasserstein-1 divided by the reference's standard deviation; categorical ones total
	// variation, L∞ and the G-test's p-value.
	KL, JS, Hellinger, WassersteinNorm, TVD, LInf, GTestP, ZTestP float64
	// Anderson–Darling and Cramér–von Mises p-values of numeric features (on the bins).
	ADP, CvMP float64
	Drifted   bool
	Severity  string
	// Estimated is set when the window's bins came from its quantile sketch.
	Estimated bool
	// Distance, DistanceValue and DistanceThreshold are what the feature was judged by.
	Distance                         string
	DistanceValue, DistanceThreshold float64
	learned                          map[string]Learned
	// NoiseChi2 and NoiseP are Pearson's χ² of homogeneity over the Cells the distances
	// compared (the PSI groups of a numeric feature, the pooled categories) and its
	// p-value; for a sparse 2×2 table Fisher's exact p-value (NoiseChi2 0).
	NoiseChi2, NoiseP float64
	Cells             int
	RefN              uint64 // reference values compared
}

// Verdict is everything a closed window was judged on.
type Verdict struct {
	Window      *processors.WindowAgg
	ReferenceID string
	Scores      []FeatureScore
	// Multivariate is the joint (PCA) score, nil when the reference has no joint model
	// or the window too few complete rows.
	Multivariate *MultivariateScore
	Conditions   []Condition
	// Judgement says how the window was judged when not on its own: over several windows
	// merged (a low-volume series; JudgedFrom is the span's start) or not at all, and why.
	Judgement  string
	JudgedFrom time.Time
	// ExpectedEvents is what the window's events were judged against on volume (0 when
	// they were not); VolumeLow says the volume condition breached. Both are stored with
	// the window, so a restart knows which windows a series' recent traffic is learned
	// from (a window judged low is not).
	ExpectedEvents float64
	VolumeLow      bool
}

// Evaluate compares a closed window with its reference (nil if none yet) and with the
// service thresholds. thresholds gives the thresholds of a feature ("" for model-level).
//
// A feature drifts when its PSI reaches the warning threshold, the cells PSI compares
// differ beyond the sampling noise of the window and the reference (beyondNoise), AND its
// test (KS for numeric, chi-square for categorical) is significant after a Bonferroni
// correction across the window's features: the threshold keeps huge windows from
// flagging tiny, irrelevant shifts, the noise check keeps small windows from flagging
// noise.
func Evaluate(w *processors.WindowAgg, ref *Profile, thresholds func(feature string) Thresholds) Verdict {
	v := Verdict{Window: w}
	if ref != nil {
		v.ReferenceID = ref.ID
		names := w.FeatureNames()
		if w.Prediction != nil {
			names = append(names, processors.PredictionFeature)
		}
		for _, name := range names {
			agg := w.Features[name]
			if name == processors.PredictionFeature {
				agg = w.Prediction
			}
			fp, ok := ref.Features[name]
			if !ok || agg == nil || agg.Count < thresholds(name).MinEvents || agg.Kind.String() != fp.Kind {
				continue
			}
			if s, ok := score(agg, fp); ok {
				v.Scores = append(v.Scores, s)
			}
		}
		// The prediction counts as one more feature in the family: every window of a
		// series runs len(v.Scores) tests, corrected together.
		model := thresholds("")
		for i := range v.Scores {
			s := &v.Scores[i]
			if s.Kind != processors.Numeric.String() {
				switch thresholds(s.Feature).CategoricalTest {
				case TestG:
					if s.Test != "fisher" {
						s.Test, s.PValue = TestG.String(), s.GTestP
					}
				case TestZ:
					if s.Test != "fisher" && !math.IsNaN(s.ZTestP) {
						s.Test, s.PValue = TestZ.String(), s.ZTestP
					}
				}
				continue
			}
			switch thresholds(s.Feature).Test {
			case TestAD:
				s.Test, s.PValue = TestAD.String(), s.ADP
			case TestCvM:
				s.Test, s.PValue = TestCvM.String(), s.CvMP
			}
		}
		ps := make([]float64, len(v.Scores))
		for i, s := range v.Scores {
			ps[i] = s.PValue
		}
		adjusted := BenjaminiHochberg(ps)
		// drifted and judged count the features and the prediction: the score signals are
		// output quality, neither a feature for the dataset's share nor one that explains
		// a joint drift away.
		drifted, judged := 0, 0
		for i := range v.Scores {
			s := &v.Scores[i]
			th := thresholds(s.Feature)
			s.Alpha = th.PValue
			if model.Correction == CorrectionBH {
				s.PAdjusted = adjusted[i]
			} else {
				s.PAdjusted = math.Min(1, s.PValue*float64(len(v.Scores)))
			}
			var distance string
			var value, threshold float64
			s.Drifted, s.Severity, distance, value, threshold = judge(*s, th)
			if s.Feature != processors.ConfidenceFeature && s.Feature != processors.EntropyFeature {
				judged++
				if s.Drifted {
					drifted++
				}
			}
			s.Distance, s.DistanceValue, s.DistanceThreshold = distance, value, threshold
			v.Conditions = append(v.Conditions, driftCondition(w, *s, th))
		}
		if ref.PCA != nil && w.Joint != nil && w.Joint.N >= float64(model.MinEvents) {
			ms := MultivariateScore{N: w.Joint.N, Error: ref.PCA.ReconstructionError(w.Joint), Threshold: ref.PCA.Threshold(w.Joint.N)}
			if !math.IsNaN(ms.Error) {
				ms.Drifted = ms.Error > ms.Threshold
				v.Multivariate = &ms
				// The joint alert is for what no single feature explains: when a feature
				// drifts, its own alert says more, and the joint one would repeat it.
				cond := multivariateCondition(w, ms)
				cond.Breached = ms.Drifted && drifted == 0
				v.Conditions = append(v.Conditions, cond)
			}
		}
		// With one or two judged features the dataset verdict would only repeat theirs.
		if model.DriftShare > 0 && judged >= 3 {
			v.Conditions = append(v.Conditions, datasetCondition(w, drifted, judged, model.DriftShare))
		}
	}
	v.Conditions = append(v.Conditions, serviceConditions(w, ref, thresholds)...)
	foldOutOfRange(v.Conditions)
	return v
}

// foldOutOfRange tells a feature's out-of-range values in its drift alert when both breach
// in a window: values beyond the reference's range move its distribution too (a shift, a
// sentinel in a tenth of the values), and one page that says both — how far it drifted,
// how many values left the range and where to — reads better at 3 a.m. than two for one
// cause. The out-of-range condition is judged as ever and names the drift condition
// (ToldIn): while the drift alert fires, the out-of-range alert fires silently, resolves
// silently, and is published after all if its values stay out of range once the
// distribution no longer drifts (Alerter.Observe). One already firing pages as ever.
func foldOutOfRange(conds []Condition) {
	oor := map[string]int{}
	for i, c := range conds {
		if c.Kind == schemas.KindInputQuality && c.Metric == "out_of_range_share" && c.Breached && c.Feature != "" {
			oor[c.Feature] = i
		}
	}
	if len(oor) == 0 {
		return
	}
	for i := range conds {
		d := &conds[i]
		if d.Kind != schemas.KindDataDrift || !d.Breached || d.Feature == "" {
			continue
		}
		j, ok := oor[d.Feature]
		if !ok {
			continue
		}
		o := &conds[j]
		o.ToldIn = d.Fingerprint()
		d.FiringSummary += fmt.Sprintf("; %s of its values outside its reference's range [%s, %s] (lowest %s, highest %s)",
			pct(o.Value), o.Details["reference_min"], o.Details["reference_max"], o.Details["min"], o.Details["max"])
		if d.Details == nil {
			d.Details = map[string]string{}
		}
		d.Details["out_of_range_share"], d.Details["out_of_range"] = g6(o.Value), o.Details["out_of_range"]
	}
}

func score(agg *processors.FeatureAgg, fp *FeatureProfile) (FeatureScore, bool) {
	s := FeatureScore{Feature: agg.Name, Kind: fp.Kind, N: agg.Count, learned: fp.Learned}
	// dref and dwin are what the distances compare: the PSI groups of a numeric feature
	// (ten groups are far less noisy than fifty bins in small windows), the categories of a
	// categorical one.
	var dref, dwin []float64
	if fp.Kind == processors.Numeric.String() {
		if len(fp.Bins) == 0 {
			return s, false
		}
		ref, win := toFloats(fp.Bins), toFloats(agg.Bins)
		if fp.FromSketch {
			win = agg.Sketch.Histogram(fp.Edges)
		} else if len(agg.Bins) != len(fp.Bins) {
			// The window opened before this reference existed (a backlog at start-up, or
			// the windows that built the reference): bin the values it kept (all of them
			// up to MaxRawValues), else estimate from its sketch.
			if len(agg.Raw) > 0 {
				win = make([]float64, len(fp.Edges)+1)
				for _, x := range agg.Raw {
					win[processors.BinIndex(fp.Edges, x)]++
				}
			} else {
				win = agg.Sketch.Histogram(fp.Edges)
				s.Estimated = true
			}
		}
		s.Test = "ks"
		s.Statistic = KSBinned(ref, win)
		if fp.Std > 0 {
			s.WassersteinNorm = Wasserstein(fp.Edges, ref, win) / fp.Std
		}
		// n is what the bins hold: values beyond the kept ones were not binned.
		s.PValue = KSPValue(s.Statistic, sum(ref), sum(win))
		_, s.ADP = AndersonDarling(ref, win)
		_, s.CvMP = CramerVonMises(ref, win)
		groups := psiGroups(ref, PSIBins)
		dref, dwin = regroup(ref, groups), regroup(win, groups)
		s.PSI = PSI(dref, dwin)
	} else {
		ref, win := categoryCells(fp.Categories, agg.Categories)
		s.Test = "chi2"
		s.Statistic, _, s.PValue = ChiSquare(ref, win)
		if a, b, c, d, ok := smallTwoByTwo(ref, win); ok {
			// χ² is unreliable when an expected count is below 5: use Fisher's exact test.
			s.Test, s.PValue = "fisher", FisherExact(a, b, c, d)
		}
		s.PSI = PSI(ref, win)
		s.TVD, s.LInf = TotalVariation(ref, win), LInfinity(ref, win)
		_, _, s.GTestP = GTest(ref, win)
		s.ZTestP = math.NaN()
		if idx := nonEmpty(ref, win); len(idx) == 2 {
			_, s.ZTestP = TwoProportionZ(ref[idx[0]], sum(ref), win[idx[0]], sum(win))
		}
		dref, dwin = ref, win
	}
	s.KL, s.JS, s.Hellinger = KL(dref, dwin), JensenShannon(dref, dwin), Hellinger(dref, dwin)
	s.Cells, s.RefN = len(nonEmpty(dref, dwin)), uint64(sum(dref))
	if a, b, c, d, ok := smallTwoByTwo(dref, dwin); ok {
		s.NoiseP = FisherExact(a, b, c, d)
	} else {
		s.NoiseChi2, _, s.NoiseP = ChiSquare(dref, dwin)
	}
	if math.IsNaN(s.PSI) || math.IsNaN(s.PValue) {
		return s, false
	}
	return s, true
}

func nonEmpty(a, b []float64) []int {
	var idx []int
	for i := range a {
		if a[i]+b[i] > 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// minExpected is the smallest expected count a category needs in the comparison
// (Cochran's rule for χ²).
const minExpected = 5

// categoryCells returns the cells a categorical feature's window is compared with its
// reference over, reference counts and window counts (docs/detection.md, "Categories a
// reference did not keep"). A reference keeps its MaxReferenceCategories most frequent
// categories and counts the rest under OtherCategory, so a window category it did not keep
// may be one of that tail: its reference count is unknown, between 0 and the smallest
// kept count (the cut). Such a category is compared as part of OtherCategory on both sides,
// unless its window share is beyond the cut's share at NoiseAlpha (Bonferroni over the
// window's categories the reference did not keep): then the reference would have kept it
// had it been there, and it stands as a cell of its own, new. Without that, a stationary
// feature with many categories compares its tail as the reference's OtherCategory against
// the window's categories one by one, and the shares the two put in OtherCategory differ
// every window. A reference that kept every category it saw has no tail: a category it
// did not see is new. Rare cells are then pooled (poolRare), into OtherCategory when the
// reference has one.
func categoryCells(refCats, winCats map[string]uint64) (ref, win []float64) {
	otherRef, truncated := refCats[processors.OtherCategory]
	cut, refN := uint64(math.MaxUint64), uint64(0)
	for c, n := range refCats {
		refN += n
		if c != processors.OtherCategory {
			cut = min(cut, n)
		}
	}
	if cut == math.MaxUint64 {
		cut = 0
	}
	var winN uint64
	unkept := 0
	for c, n := range winCats {
		winN += n
		if _, ok := refCats[c]; !ok {
			unkept++
		}
	}
	if winCats[processors.OtherCategory] > 0 {
		return overflowCells(refCats, winCats, truncated, cut, refN, winN, unkept)
	}
	cats := make([]string, 0, len(refCats)+len(winCats))
	for c := range refCats {
		cats = append(cats, c)
	}
	var otherWin uint64
	for c, n := range winCats {
		if _, ok := refCats[c]; ok {
			continue
		}
		if truncated && !beyondCut(n, winN, cut, refN, NoiseAlpha/float64(unkept)) {
			otherWin += n
			continue
		}
		cats = append(cats, c)
	}
	sort.Strings(cats)
	ref, win = make([]float64, len(cats)), make([]float64, len(cats))
	other := -1
	for i, c := range cats {
		ref[i], win[i] = float64(refCats[c]), float64(winCats[c])
		if truncated && c == processors.OtherCategory {
			other = i
			ref[i], win[i] = float64(otherRef), float64(winCats[c]+otherWin)
		}
	}
	return poolRare(ref, win, other)
}

// overflowCells are the cells of a window that put categories of its own in
// OtherCategory: it had more than its cap when it was counted, before (or without) this
// reference's layout, so it kept the first categories it saw, not the reference's. Its
// OtherCategory then holds an unknown mixture, reference categories among them, and a
// reference category it did not keep would look vanished (every model version's first
// window after its reference paged on a feature of a few hundred values). So the cells are
// the categories the window kept — those the reference kept too, and new ones (beyond the
// cut, when the reference has a tail) — and one cell for everything else on both sides.
func overflowCells(refCats, winCats map[string]uint64, truncated bool, cut, refN, winN uint64, unkept int) (ref, win []float64) {
	cats := make([]string, 0, len(winCats))
	for c, n := range winCats {
		if c == processors.OtherCategory {
			continue
		}
		if _, ok := refCats[c]; ok && c != processors.OtherCategory || !truncated || beyondCut(n, winN, cut, refN, NoiseAlpha/float64(max(unkept, 1))) {
			cats = append(cats, c)
		}
	}
	sort.Strings(cats)
	ref, win = make([]float64, len(cats)+1), make([]float64, len(cats)+1)
	var inRef, inWin float64
	for i, c := range cats {
		ref[i], win[i] = float64(refCats[c]), float64(winCats[c])
		inRef, inWin = inRef+ref[i], inWin+win[i]
	}
	ref[len(cats)], win[len(cats)] = float64(refN)-inRef, float64(winN)-inWin
	return poolRare(ref, win, len(cats))
}

// beyondCut says whether a category with w of a window's n values has a share beyond
// cut of the reference's refN — the most a category the reference did not keep can have
// held there — by Fisher's exact test at alpha. Only shares above the cut's are tested.
func beyondCut(w, n, cut, refN uint64, alpha float64) bool {
	if w == 0 || refN == 0 || float64(w)*float64(refN) <= float64(cut)*float64(n) {
		return false
	}
	return FisherExact(int(cut), int(refN-cut), int(w), int(n-w)) < alpha
}

// poolRare merges the categories whose expected count on the smaller side is below
// minExpected into one cell (and that cell into the smallest other one while it is still
// below), so that χ² has the distribution its p-value assumes and rare categories do not
// add their noise to the distances. Rare categories moving between runs of a stationary
// stream are noise; a new category that matters is not rare. With fewer than three cells
// nothing is pooled (a sparse 2×2 table goes to Fisher's exact test).
//
// other is the index of the reference's OtherCategory cell, or −1: rare cells join it.
// The reference chose its kept categories by its own counts, so the kept ones near the
// cut hold more there than they will in windows, and its OtherCategory less; rare cells
// and OtherCategory compared as one cell cancel that (the selection is then by the cell
// totals of both sides, which is what χ² of homogeneity conditions on).
func poolRare(ref, win []float64, other int) ([]float64, []float64) {
	nr, nw := sum(ref), sum(win)
	if nr == 0 || nw == 0 {
		return ref, win
	}
	small := math.Min(nr, nw) / (nr + nw)
	var rare []int
	for i := range ref {
		if col := ref[i] + win[i]; col > 0 && col*small < minExpected && i != other {
			rare = append(rare, i)
		}
	}
	if other >= 0 && ref[other]+win[other] > 0 && len(rare) > 0 && len(nonEmpty(ref, win)) >= 3 {
		rare = append(rare, other)
		sort.Ints(rare)
	}
	if len(rare) < 2 || len(nonEmpty(ref, win)) < 3 {
		return ref, win
	}
	var pr, pw []float64
	var rr, rw float64
	j := 0
	for i := range ref {
		if j < len(rare) && rare[j] == i {
			rr, rw = rr+ref[i], rw+win[i]
			j++
			continue
		}
		if ref[i]+win[i] > 0 {
			pr, pw = append(pr, ref[i]), append(pw, win[i])
		}
	}
	if len(pr) == 0 {
		return ref, win
	}
	if (rr+rw)*small < minExpected && len(pr) > 1 {
		// Still rare: join the smallest other cell.
		k := 0
		for i := range pr {
			if pr[i]+pw[i] < pr[k]+pw[k] {
				k = i
			}
		}
		pr[k], pw[k] = pr[k]+rr, pw[k]+rw
	} else {
		pr, pw = append(pr, rr), append(pw, rw)
	}
	return pr, pw
}

// smallTwoByTwo returns the 2×2 table of a two-category comparison when one of its
// expected counts is below 5.
func smallTwoByTwo(ref, win []float64) (a, b, c, d int, ok bool) {
	idx := nonEmpty(ref, win)
	if len(idx) != 2 {
		return 0, 0, 0, 0, false
	}
	a, b, c, d = int(ref[idx[0]]), int(ref[idx[1]]), int(win[idx[0]]), int(win[idx[1]])
	n := float64(a + b + c + d)
	for _, e := range []float64{float64(a+b) * float64(a+c) / n, float64(a+b) * float64(b+d) / n, float64(c+d) * float64(a+c) / n, float64(c+d) * float64(b+d) / n} {
		if e < 5 {
			return a, b, c, d, true
		}
	}
	return 0, 0, 0, 0, false
}

// psiGroups merges consecutive fine bins until each group holds at least 1/groups of the
// reference, returning the end index (exclusive) of each group.
func psiGroups(ref []float64, groups int) []int {
	target := sum(ref) / float64(groups)
	var ends []int
	var acc float64
	for i, x := range ref {
		acc += x
		if acc >= target-1e-9 {
			ends = append(ends, i+1)
			acc = 0
		}
	}
	switch {
	case len(ends) > 0 && ends[len(ends)-1] == len(ref):
	case len(ends) > 0 && acc < target/2:
		// A thin remainder joins the last group rather than forming a noisy one.
		ends[len(ends)-1] = len(ref)
	default:
		ends = append(ends, len(ref))
	}
	return ends
}

func regroup(xs []float64, ends []int) []float64 {
	out := make([]float64, len(ends))
	start := 0
	for g, end := range ends {
		for i := start; i < end; i++ {
			out[g] += xs[i]
		}
		start = end
	}
	return out
}

func toFloats(xs []uint64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func span(w *processors.WindowAgg) (time.Time, time.Time) {
	return time.UnixMilli(w.Start).UTC(), time.UnixMilli(w.End).UTC()
}

func spanText(w *processors.WindowAgg) string {
	s, e := span(w)
	layout := "15:04"
	if e.Sub(s) < time.Minute || s.Second() != 0 {
		layout = "15:04:05"
	}
	if s.YearDay() != e.Add(-time.Millisecond).YearDay() {
		return s.Format("2006-01-02 "+layout) + "–" + e.Format("2006-01-02 "+layout) + " UTC"
	}
	return s.Format(layout) + "–" + e.Format(layout) + " UTC"
}

var distanceNames = map[string]string{"psi": "PSI", "js": "JS distance", "hellinger": "Hellinger distance",
	"kl": "KL divergence", "wasserstein": "normalised Wasserstein distance", "tvd": "total variation", "linf": "L∞ distance"}

func driftCondition(w *processors.WindowAgg, s FeatureScore, th Thresholds) Condition {
	start, end := span(w)
	c := Condition{
		Kind: schemas.KindDataDrift, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
		Feature: s.Feature, Metric: s.Distance, Value: s.DistanceValue, Threshold: s.DistanceThreshold, Breached: s.Drifted,
		Severity: s.Severity, WindowStart: start, WindowEnd: end,
	}
	if th.Method == MethodTest {
		c.Metric, c.Value, c.Threshold = "p_adjusted", s.PAdjusted, s.Alpha
	}
	subject := fmt.Sprintf("feature %s of %s %s", s.Feature, w.Series.Model, w.Series.Version)
	switch s.Feature {
	case processors.PredictionFeature:
		c.Kind, c.Feature = schemas.KindPredictionDrift, ""
		subject = fmt.Sprintf("predictions of %s %s", w.Series.Model, w.Series.Version)
	case processors.ConfidenceFeature:
		c.Kind, c.Feature = schemas.KindOutputQuality, "confidence"
		subject = fmt.Sprintf("confidence (highest class score) of %s %s", w.Series.Model, w.Series.Version)
	case processors.EntropyFeature:
		c.Kind, c.Feature = schemas.KindOutputQuality, "entropy"
		subject = fmt.Sprintf("entropy of the class scores of %s %s", w.Series.Model, w.Series.Version)
	}
	if w.Series.Deployment != schemas.DeploymentPrimary {
		subject += " (" + w.Series.Deployment + ")"
	}
	name := distanceNames[s.Distance]
	shown := s.DistanceThreshold
	if s.Severity == schemas.SeverityCritical {
		shown = 2.5 * s.DistanceThreshold
		if s.Distance == "psi" && th.ThresholdFrom != ThresholdReference {
			shown = th.PSICritical
		}
	}
	test := fmt.Sprintf("%s p = %.3g (%.3g corrected)", s.Test, s.PValue, s.PAdjusted)
	if th.Method == MethodTest {
		c.FiringSummary = fmt.Sprintf("%s drifted: %s < %.3g (%s %.2f) over %s", subject, test, s.Alpha, name, s.DistanceValue, spanText(w))
	} else {
		c.FiringSummary = fmt.Sprintf("%s drifted: %s %.2f ≥ %.2f over %s", subject, name, s.DistanceValue, shown, spanText(w))
	}

	switch {
	case th.Method != MethodTest && s.DistanceValue < s.DistanceThreshold:
		c.ResolvedSummary = fmt.Sprintf("%s no longer drifts: %s %.2f < %.2f over %s", subject, name, s.DistanceValue, s.DistanceThreshold, spanText(w))
	case th.Method != MethodTest && !s.beyondNoise():
		c.ResolvedSummary = fmt.Sprintf("%s no longer drifts: %s %.2f is within the sampling noise of %d values against %d (χ² over %d cells p = %.3g ≥ %g) over %s",
			subject, name, s.DistanceValue, s.N, s.RefN, s.Cells, s.NoiseP, NoiseAlpha, spanText(w))
	default:
		c.ResolvedSummary = fmt.Sprintf("%s no longer drifts: %s %.2f but %s is not significant at %.3g over %s", subject, name, s.DistanceValue, test, s.Alpha, spanText(w))
	}
	c.Details = map[string]string{
		"test": s.Test, "statistic": fmt.Sprintf("%.6g", s.Statistic), "p_value": fmt.Sprintf("%.6g", s.PValue),
		"alpha": fmt.Sprintf("%.6g", s.Alpha), "p_adjusted": fmt.Sprintf("%.6g", s.PAdjusted), "window_values": fmt.Sprint(s.N),
		"feature_kind": s.Kind, "psi": fmt.Sprintf("%.4f", s.PSI), "js": fmt.Sprintf("%.4f", s.JS),
		"hellinger": fmt.Sprintf("%.4f", s.Hellinger), "method": th.Method.String(),
		"noise_chi2": fmt.Sprintf("%.6g", s.NoiseChi2), "noise_p": fmt.Sprintf("%.6g", s.NoiseP), "noise_alpha": fmt.Sprintf("%g", NoiseAlpha),
	}
	if s.Estimated {
		c.Details["bins"] = "estimated from the window's sketch"
	}
	return c
}

// datasetCondition judges the window as a whole: it drifts when at least share of its
// judged features (the prediction included) drift.
func datasetCondition(w *processors.WindowAgg, drifted, judged int, share float64) Condition {
	start, end := span(w)
	got := float64(drifted) / float64(judged)
	subject := fmt.Sprintf("%s %s", w.Series.Model, w.Series.Version)
	if w.Series.Deployment != schemas.DeploymentPrimary {
		subject += " (" + w.Series.Deployment + ")"
	}
	return Condition{Kind: schemas.KindDataDrift, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
		Metric: "drifted_share", Value: got, Threshold: share, Breached: got >= share, Severity: schemas.SeverityCritical,
		WindowStart: start, WindowEnd: end,
		FiringSummary:   fmt.Sprintf("%d of %d features of %s drifted (%.0f%% ≥ %.0f%%) over %s", drifted, judged, subject, 100*got, 100*share, spanText(w)),
		ResolvedSummary: fmt.Sprintf("%d of %d features of %s drift (%.0f%% < %.0f%%) over %s", drifted, judged, subject, 100*got, 100*share, spanText(w)),
		Details:         map[string]string{"drifted": fmt.Sprint(drifted), "judged": fmt.Sprint(judged)}}
}

// serviceConditions judges everything a window says besides its feature distributions:
// input quality, output quality, latency and errors against the reference (ref may be
// nil, or lack those baselines: they are then not judged), and latency and errors
// against their absolute thresholds.
//
// The absolute thresholds need evidence too: a ceiling fires when the window is above it
// beyond chance (an exact binomial test at the signals' level), so that a model whose
// usual error rate sits below the ceiling does not page whenever a small window holds a
// few more failures (1% errors cross 5% in 0.14% of 120-event windows).
func serviceConditions(w *processors.WindowAgg, ref *Profile, thresholds func(feature string) Thresholds) []Condition {
	th := thresholds("")
	if w.Events == 0 || w.Events < th.MinEvents {
		return nil // an empty window is judged for volume only
	}
	start, end := span(w)
	subject := seriesSubject(w)
	out := inputQualityConditions(w, ref, thresholds)
	out = append(out, outputQualityConditions(w, ref, th.Signals)...)
	// The latency rules judge the events that carry a latency (not every event must), on
	// as many as a feature needs present values: a few latencies sent with, say, the
	// timeouts alone are not the window's.
	latencies := w.Latency.Count() >= max(1, float64(th.MinEvents))
	if th.LatencyP99Ms > 0 && latencies {
		p99 := w.Latency.Quantile(0.99)
		m := w.Latency.Count()
		// Under a p99 at or below the threshold at most 1% of latencies exceed it.
		above := w.Latency.Histogram([]float64{th.LatencyP99Ms})[1]
		p := BinomialSF(int(math.Round(above)), int(math.Round(m)), 0.01)
		out = append(out, Condition{
			Kind: schemas.KindLatency, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
			Metric: "latency_p99_ms", Value: p99, Threshold: th.LatencyP99Ms, Breached: p99 >= th.LatencyP99Ms && p < th.Signals.PValue,
			Severity: schemas.SeverityWarning, WindowStart: start, WindowEnd: end,
			FiringSummary:   fmt.Sprintf("p99 latency of %s is %.0f ms ≥ %.0f ms (%.1f%% of %.0f requests above it) over %s", subject, p99, th.LatencyP99Ms, 100*above/m, m, spanText(w)),
			ResolvedSummary: fmt.Sprintf("p99 latency of %s is back to %.0f ms against %.0f ms over %s", subject, p99, th.LatencyP99Ms, spanText(w)),
			Details: map[string]string{"events": fmt.Sprint(w.Events), "latencies": fmt.Sprintf("%.0f", m), "latency_max_ms": fmt.Sprintf("%.6g", w.LatencyMax),
				"above_threshold": fmt.Sprintf("%.0f", above), "test": "binomial_above_1_percent", "p_value": g6(p), "alpha": g6(th.Signals.PValue)},
		})
	}
	if latencies {
		out = append(out, latencyConditions(w, ref, th.Signals)...)
	}
	if th.ErrorRate > 0 {
		rate := w.ErrorRate()
		p := BinomialSF(int(w.Errors+w.Timeouts), int(w.Events), th.ErrorRate)
		out = append(out, Condition{
			Kind: schemas.KindErrors, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
			Metric: "error_rate", Value: rate, Threshold: th.ErrorRate, Breached: rate >= th.ErrorRate && p < th.Signals.PValue,
			Severity: schemas.SeverityWarning, WindowStart: start, WindowEnd: end,
			FiringSummary:   fmt.Sprintf("%s failed %.1f%% of %d requests (errors and timeouts) ≥ %.1f%% over %s", subject, 100*rate, w.Events, 100*th.ErrorRate, spanText(w)),
			ResolvedSummary: fmt.Sprintf("%s error rate is back to %.1f%% against %.1f%% over %s", subject, 100*rate, 100*th.ErrorRate, spanText(w)),
			Details: map[string]string{"events": fmt.Sprint(w.Events), "errors": fmt.Sprint(w.Errors), "timeouts": fmt.Sprint(w.Timeouts),
				"test": "binomial_above_ceiling", "p_value": g6(p), "alpha": g6(th.Signals.PValue)},
		})
	}
	return append(out, errorConditions(w, ref, th.Signals)...)
}
