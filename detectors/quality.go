package detectors

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// SignalThresholds decide the input, output and service signals of a window against its
// version's reference (docs/detection.md). A signal fires only with evidence (an exact
// test at PValue) AND an effect that matters (the floors below): at high volume a test
// alone finds every irrelevant wiggle, at low volume a floor alone finds noise.
type SignalThresholds struct {
	// PValue is the per-window significance level of each signal kind, shared out
	// (Bonferroni) over the tests the kind runs in a window.
	PValue float64
	// QualityMinIncrease and QualityMinRatio: a feature's missing rate, its share of
	// unseen categories or the null-prediction rate must be at least this much higher than
	// the reference's AND at least this many times it (0 increase disables these rules).
	QualityMinIncrease, QualityMinRatio float64
	// InputSizeMinChange is the relative change of the mean input size that matters (0
	// disables the rule).
	InputSizeMinChange float64
	// LatencyMinRatio and LatencyMinIncreaseMs: a window's p50 or p99 latency must be this
	// many times the reference's AND this many milliseconds above it (0 ratio disables).
	LatencyMinRatio, LatencyMinIncreaseMs float64
	// ErrorMinIncrease and ErrorMinRatio are the floors of the error + timeout rate (0
	// increase disables the rule; the absolute error_rate ceiling is separate).
	ErrorMinIncrease, ErrorMinRatio float64
	// VolumeDrop and VolumeJump: a window's events below VolumeDrop × or above
	// VolumeJump × the expected number (0 disables each).
	VolumeDrop, VolumeJump float64
}

// DefaultSignalThresholds are the defaults documented in docs/detection.md.
var DefaultSignalThresholds = SignalThresholds{PValue: 1e-5, QualityMinIncrease: 0.05, QualityMinRatio: 2, InputSizeMinChange: 0.25,
	LatencyMinRatio: 1.5, LatencyMinIncreaseMs: 20, ErrorMinIncrease: 0.02, ErrorMinRatio: 2, VolumeDrop: 0.5}

// criticalFactor: a signal is critical when its effect is this many times its floors
// (e.g. 20 more points of missing values and 5× the reference's rate).
const criticalFactor = 4

// seriesSubject names a window's series in summaries: "model version", plus the slot when
// it is not the primary one.
func seriesSubject(w *processors.WindowAgg) string {
	s := w.Series.Model + " " + w.Series.Version
	if w.Series.Deployment != schemas.DeploymentPrimary {
		s += " (" + w.Series.Deployment + ")"
	}
	return s
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func g6(x float64) string { return fmt.Sprintf("%.6g", x) }

// rateTest compares a window's rate (x of n) with the reference's (xRef of nRef).
type rateTest struct {
	x, n, xRef, nRef          uint64
	rate, refRate, threshold  float64
	p                         float64
	effect, critical, enabled bool
}

func newRateTest(x, n, xRef, nRef uint64, minIncrease, minRatio float64) rateTest {
	r := rateTest{x: x, n: n, xRef: xRef, nRef: nRef, enabled: minIncrease > 0}
	r.rate, r.refRate = float64(x)/float64(n), float64(xRef)/float64(nRef)
	r.threshold = math.Max(r.refRate+minIncrease, minRatio*r.refRate)
	r.p = FisherGreater(x, n, xRef, nRef)
	r.effect = r.enabled && r.rate >= r.threshold
	r.critical = r.rate-r.refRate >= criticalFactor*minIncrease && r.rate >= (1+criticalFactor*(minRatio-1))*r.refRate
	return r
}

func (r rateTest) details(prefix string) map[string]string {
	return map[string]string{prefix: fmt.Sprint(r.x), "events": fmt.Sprint(r.n), "reference_" + prefix: fmt.Sprint(r.xRef),
		"reference_events": fmt.Sprint(r.nRef), "reference_rate": g6(r.refRate), "test": "fisher_exact_greater", "p_value": g6(r.p)}
}

// judged is a condition waiting for its family's level: breached when its effect
// matters and its p-value is below the level shared out over the family's tests.
type judged struct {
	c                Condition
	p                float64
	effect, critical bool
}

func settle(family []judged, alpha float64) []Condition {
	out := make([]Condition, 0, len(family))
	level := alpha / float64(max(len(family), 1))
	for _, j := range family {
		j.c.Breached = j.effect && j.p < level
		j.c.Severity = schemas.SeverityWarning
		if j.c.Breached && j.critical {
			j.c.Severity = schemas.SeverityCritical
		}
		if j.c.Details == nil {
			j.c.Details = map[string]string{}
		}
		j.c.Details["alpha"] = g6(level)
		out = append(out, j.c)
	}
	return out
}

func newCondition(w *processors.WindowAgg, kind, feature, metric string, value, threshold float64) Condition {
	start, end := span(w)
	return Condition{Kind: kind, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
		Feature: feature, Metric: metric, Value: value, Threshold: threshold, WindowStart: start, WindowEnd: end}
}

// inputQualityConditions judges each reference feature's missing rate and each
// categorical feature's share of unseen categories, and the mean input size: one family
// of tests per window.
func inputQualityConditions(w *processors.WindowAgg, ref *Profile, thresholds func(feature string) Thresholds) []Condition {
	if ref == nil {
		return nil
	}
	subject := seriesSubject(w)
	names := make([]string, 0, len(ref.Features))
	for name, fp := range ref.Features {
		// The output's pseudo-features are judged by their own signals: a confidence is
		// absent where a prediction has no scores, which is no missing input.
		if !processors.IsOutputFeature(name) && fp.Present > 0 && ref.Events > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var family []judged
	for _, name := range names {
		fp, agg := ref.Features[name], w.Features[name]
		if agg == nil && w.DroppedFeatures > 0 {
			continue // absent, or dropped at the window's feature cap: cannot tell
		}
		st := thresholds(name).Signals
		if st.QualityMinIncrease <= 0 {
			continue
		}
		var present uint64
		if agg != nil {
			present = agg.Count + agg.Mismatched
		}
		feature := "feature " + name + " of " + subject
		// Missing: null or absent. Producers often drop null keys, so an absent key is a
		// missing value, and a feature that vanished altogether is 100% missing.
		missing := w.Events - min(present, w.Events)
		r := newRateTest(missing, w.Events, ref.Events-min(fp.Present, ref.Events), ref.Events, st.QualityMinIncrease, st.QualityMinRatio)
		c := newCondition(w, schemas.KindInputQuality, name, "missing_rate", r.rate, r.threshold)
		c.FiringSummary = fmt.Sprintf("%s is missing in %s of %d events (reference %s, threshold %s) over %s", feature, pct(r.rate), w.Events, pct(r.refRate), pct(r.threshold), spanText(w))
		c.ResolvedSummary = fmt.Sprintf("%s is missing in %s of %d events, back near its reference %s, over %s", feature, pct(r.rate), w.Events, pct(r.refRate), spanText(w))
		c.Details = r.details("missing")
		if agg != nil {
			c.Details["nulls"] = fmt.Sprint(agg.Missing)
		}
		family = append(family, judged{c, r.p, r.effect, r.critical})

		if j, ok := outOfRangeJudgement(w, name, feature, agg, fp, st); ok {
			family = append(family, j)
		}
		if fp.Kind != processors.Categorical.String() || agg == nil || agg.Kind != processors.Categorical || agg.Count == 0 || fp.Count == 0 {
			continue
		}
		unseen, top := unseenValues(w, agg, ref, fp)
		r = newRateTest(unseen, agg.Count, fp.Novel, fp.Count, st.QualityMinIncrease, st.QualityMinRatio)
		c = newCondition(w, schemas.KindInputQuality, name, "unseen_share", r.rate, r.threshold)
		c.FiringSummary = fmt.Sprintf("%s has %s of %d values in categories its reference never saw (reference %s, threshold %s) over %s", feature, pct(r.rate), agg.Count, pct(r.refRate), pct(r.threshold), spanText(w))
		if top != "" {
			c.FiringSummary += ": " + top
		}
		c.ResolvedSummary = fmt.Sprintf("%s has %s of %d values in unseen categories, back near its reference %s, over %s", feature, pct(r.rate), agg.Count, pct(r.refRate), spanText(w))
		c.Details = r.details("unseen")
		c.Details["events"], c.Details["reference_events"] = fmt.Sprint(agg.Count), fmt.Sprint(fp.Count)
		if top != "" {
			c.Details["top_unseen"] = top
		}
		family = append(family, judged{c, r.p, r.effect, r.critical})
	}
	if j, ok := inputSizeJudgement(w, ref, thresholds("").Signals); ok {
		family = append(family, j)
	}
	return settle(family, thresholds("").Signals.PValue)
}

// unseenValues counts a window's values in categories the reference does not know, and
// names the most frequent ones. The window's own count is used when it was counted
// against this reference's layout; otherwise its categories are compared here (values
// it folded into its overflow category are then not counted).
func unseenValues(w *processors.WindowAgg, agg *processors.FeatureAgg, ref *Profile, fp *FeatureProfile) (uint64, string) {
	type cat struct {
		name string
		n    uint64
	}
	var unseen uint64
	var cats []cat
	for c, n := range agg.Categories {
		if _, ok := fp.Categories[c]; ok || c == processors.OtherCategory {
			continue
		}
		unseen += n
		cats = append(cats, cat{c, n})
	}
	if w.ReferenceID == ref.ID && w.ReferenceID != "" {
		unseen = agg.Unseen
	}
	sort.Slice(cats, func(i, j int) bool {
		if cats[i].n != cats[j].n {
			return cats[i].n > cats[j].n
		}
		return cats[i].name < cats[j].name
	})
	var parts []string
	for i, c := range cats {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%q (%d)", c.name, c.n))
	}
	return unseen, strings.Join(parts, ", ")
}

// outOfRangeSlack widens a reference's range by the sketch's relative accuracy (and a
// hair for rounding): the window's values are counted from its sketch, whose buckets
// place a value within 1% of itself, so a value in the range is never counted out of it.
// The price is a blind zone: a value less than ~2% of the bound's magnitude outside it
// (a year 1900 against births from 1930) may not be counted.
const outOfRangeSlack = 1.001 * processors.SketchRelativeAccuracy

// outOfRangeJudgement judges the share of a numeric feature's values outside the
// reference's range: a sentinel (-1, 999), a unit changed for part of the traffic, a
// value clipped or overflowed upstream. Under no change, the chance that a value falls
// outside the range of the N reference values is 2/(N+1) whatever the distribution (the
// reference's own two extremes, left out one at a time, are the 2 of N it is tested
// against), so heavy tails do not page. The window's values are counted from its sketch,
// which every window has however it was read (exactly binned or not, merged, read back).
func outOfRangeJudgement(w *processors.WindowAgg, name, feature string, agg *processors.FeatureAgg, fp *FeatureProfile, st SignalThresholds) (judged, bool) {
	if len(fp.Range) != 2 || fp.RangeN < 2 || agg == nil || agg.Kind != processors.Numeric || agg.Count == 0 || fp.Kind != processors.Numeric.String() {
		return judged{}, false
	}
	lo, hi := fp.Range[0], fp.Range[1]
	lo -= outOfRangeSlack * math.Abs(lo)
	hi += outOfRangeSlack * math.Abs(hi)
	// BinIndex's bins: x ≤ edge 0, then edge 0 < x ≤ edge 1, then above: below lo is at
	// or below the float just under it.
	h := agg.Sketch.Histogram([]float64{math.Nextafter(lo, math.Inf(-1)), hi})
	below, above := uint64(math.Round(h[0])), uint64(math.Round(h[2]))
	n := uint64(math.Round(h[0] + h[1] + h[2]))
	if n == 0 {
		return judged{}, false
	}
	r := newRateTest(below+above, n, 2, fp.RangeN, st.QualityMinIncrease, st.QualityMinRatio)
	c := newCondition(w, schemas.KindInputQuality, name, "out_of_range_share", r.rate, r.threshold)
	span := fmt.Sprintf("[%s, %s]", g6(fp.Range[0]), g6(fp.Range[1]))
	c.FiringSummary = fmt.Sprintf("%s has %s of %d values outside its reference's range %s (lowest %s, highest %s; by chance %s, threshold %s) over %s",
		feature, pct(r.rate), n, span, g6(agg.Moments.Min), g6(agg.Moments.Max), pct(r.refRate), pct(r.threshold), spanText(w))
	c.ResolvedSummary = fmt.Sprintf("%s has %s of %d values outside its reference's range %s, near what chance gives (%s), over %s",
		feature, pct(r.rate), n, span, pct(r.refRate), spanText(w))
	c.Details = r.details("out_of_range")
	// The chance rate, not one observed: no reference value is outside its own range.
	delete(c.Details, "reference_out_of_range")
	delete(c.Details, "reference_rate")
	delete(c.Details, "events")
	c.Details["values"], c.Details["chance_rate"] = fmt.Sprint(n), g6(r.refRate)
	c.Details["below"], c.Details["above"] = fmt.Sprint(below), fmt.Sprint(above)
	c.Details["reference_min"], c.Details["reference_max"] = g6(fp.Range[0]), g6(fp.Range[1])
	c.Details["min"], c.Details["max"] = g6(agg.Moments.Min), g6(agg.Moments.Max)
	// Never critical: values out of a reference's few first windows' range are often
	// drift (a feature that follows the clock), which its drift alert rates.
	return judged{c, r.p, r.effect, false}, true
}

// inputSizeJudgement compares the window's mean input size with the reference's
// (Welch's t-test, two-sided: a payload that shrank matters as much as one that grew).
func inputSizeJudgement(w *processors.WindowAgg, ref *Profile, st SignalThresholds) (judged, bool) {
	if ref.Service == nil || ref.Service.InputSize == nil || st.InputSizeMinChange <= 0 || w.InputSize.N < 2 || ref.Service.InputSize.N < 2 {
		return judged{}, false
	}
	rs, ws := ref.Service.InputSize, w.InputSize
	t, df, p := WelchT(ws.Mean, ws.Std(), ws.N, rs.Mean, rs.Std, rs.N)
	change := math.Inf(1)
	if rs.Mean != 0 {
		change = ws.Mean/rs.Mean - 1
	} else if ws.Mean == 0 {
		change = 0
	}
	threshold := rs.Mean * (1 + st.InputSizeMinChange)
	if change < 0 {
		threshold = rs.Mean * (1 - st.InputSizeMinChange)
	}
	subject := seriesSubject(w)
	c := newCondition(w, schemas.KindInputQuality, "", "input_size_mean", ws.Mean, threshold)
	c.FiringSummary = fmt.Sprintf("mean input size of %s is %.4g, %+.0f%% against its reference %.4g (threshold ±%.0f%%) over %s", subject, ws.Mean, 100*change, rs.Mean, 100*st.InputSizeMinChange, spanText(w))
	c.ResolvedSummary = fmt.Sprintf("mean input size of %s is %.4g, back near its reference %.4g, over %s", subject, ws.Mean, rs.Mean, spanText(w))
	c.Details = map[string]string{"events": fmt.Sprintf("%.0f", ws.N), "std": g6(ws.Std()), "reference_mean": g6(rs.Mean), "reference_std": g6(rs.Std),
		"reference_events": fmt.Sprintf("%.0f", rs.N), "change": g6(change), "test": "welch_t", "statistic": g6(t), "df": g6(df), "p_value": g6(p)}
	return judged{c, p, math.Abs(change) >= st.InputSizeMinChange, math.Abs(change) >= criticalFactor*st.InputSizeMinChange}, true
}

// outputQualityConditions judges the null-prediction rate.
func outputQualityConditions(w *processors.WindowAgg, ref *Profile, st SignalThresholds) []Condition {
	if ref == nil || ref.Service == nil || ref.Service.Events == 0 || st.QualityMinIncrease <= 0 {
		return nil
	}
	subject := seriesSubject(w)
	r := newRateTest(w.NullPredictions, w.Events, ref.Service.NullPredictions, ref.Service.Events, st.QualityMinIncrease, st.QualityMinRatio)
	c := newCondition(w, schemas.KindOutputQuality, "", "null_prediction_rate", r.rate, r.threshold)
	c.FiringSummary = fmt.Sprintf("%s returned no prediction for %s of %d requests (reference %s, threshold %s) over %s", subject, pct(r.rate), w.Events, pct(r.refRate), pct(r.threshold), spanText(w))
	c.ResolvedSummary = fmt.Sprintf("%s returned no prediction for %s of %d requests, back near its reference %s, over %s", subject, pct(r.rate), w.Events, pct(r.refRate), spanText(w))
	c.Details = r.details("null_predictions")
	return settle([]judged{{c, r.p, r.effect, r.critical}}, st.PValue)
}

// latencyConditions judge the window's p50 and p99 against the reference's. The test
// counts the window's latencies above the reference quantile: with the quantile at rank
// r of the reference's n (the sketch's rank), the share of future values above it is
// Beta(n − r, r + 1) distributed whatever the latency distribution, so the count of m
// window values above it is beta-binomial under no change — exact at any reference size,
// and conservative with the sketch's buckets (docs/detection.md).
func latencyConditions(w *processors.WindowAgg, ref *Profile, st SignalThresholds) []Condition {
	if ref == nil || ref.Service == nil || ref.Service.LatencyCount < 2 || st.LatencyMinRatio <= 0 || w.Latency.Count() < 1 {
		return nil
	}
	subject := seriesSubject(w)
	n, m := float64(ref.Service.LatencyCount), w.Latency.Count()
	var family []judged
	for _, q := range []struct {
		name string
		q    float64
		ref  float64
	}{{"p50", 0.5, ref.Service.LatencyP50}, {"p99", 0.99, ref.Service.LatencyP99}} {
		value := w.Latency.Quantile(q.q)
		above := w.Latency.Histogram([]float64{q.ref})[1]
		r := math.Floor(q.q * (n - 1))
		a, b := n-r, r+1
		p := BetaBinomialSF(int(math.Round(above)), int(math.Round(m)), a, b)
		threshold := math.Max(st.LatencyMinRatio*q.ref, q.ref+st.LatencyMinIncreaseMs)
		ratio := math.Inf(1)
		if q.ref > 0 {
			ratio = value / q.ref
		}
		c := newCondition(w, schemas.KindLatency, "", "latency_"+q.name+"_vs_reference", value, threshold)
		c.FiringSummary = fmt.Sprintf("%s latency of %s is %.0f ms, %.1f× its reference %.0f ms (threshold %.0f ms; %s of %.0f requests above the reference %s) over %s",
			q.name, subject, value, ratio, q.ref, threshold, pct(above/m), m, q.name, spanText(w))
		c.ResolvedSummary = fmt.Sprintf("%s latency of %s is %.0f ms, back near its reference %.0f ms, over %s", q.name, subject, value, q.ref, spanText(w))
		c.Details = map[string]string{"events": fmt.Sprintf("%.0f", m), "above_reference": fmt.Sprintf("%.0f", above), "expected_share_above": g6(a / (a + b)),
			"reference_" + q.name + "_ms": g6(q.ref), "reference_latencies": fmt.Sprint(ref.Service.LatencyCount), "test": "beta_binomial_exceedance", "p_value": g6(p)}
		critical := value-q.ref >= criticalFactor*st.LatencyMinIncreaseMs && value >= (1+criticalFactor*(st.LatencyMinRatio-1))*q.ref
		family = append(family, judged{c, p, value >= threshold, critical})
	}
	return settle(family, st.PValue)
}

// errorConditions judge the error + timeout rate against the reference's.
func errorConditions(w *processors.WindowAgg, ref *Profile, st SignalThresholds) []Condition {
	if ref == nil || ref.Service == nil || ref.Service.Events == 0 || st.ErrorMinIncrease <= 0 {
		return nil
	}
	subject := seriesSubject(w)
	r := newRateTest(w.Errors+w.Timeouts, w.Events, ref.Service.Errors+ref.Service.Timeouts, ref.Service.Events, st.ErrorMinIncrease, st.ErrorMinRatio)
	c := newCondition(w, schemas.KindErrors, "", "error_rate_vs_reference", r.rate, r.threshold)
	c.FiringSummary = fmt.Sprintf("%s failed %s of %d requests (errors and timeouts; reference %s, threshold %s) over %s", subject, pct(r.rate), w.Events, pct(r.refRate), pct(r.threshold), spanText(w))
	c.ResolvedSummary = fmt.Sprintf("%s failed %s of %d requests, back near its reference %s, over %s", subject, pct(r.rate), w.Events, pct(r.refRate), spanText(w))
	c.Details = r.details("failed")
	c.Details["errors"], c.Details["timeouts"] = fmt.Sprint(w.Errors), fmt.Sprint(w.Timeouts)
	return settle([]judged{{c, r.p, r.effect, r.critical}}, st.PValue)
}

// VolumeExpectation is what a window's event count is judged against.
type VolumeExpectation struct {
	// PerWindow events are expected in a window of Size, learned from Windows windows.
	PerWindow float64
	Size      time.Duration
	Windows   int
	// Basis says where the expectation comes from, for the summary ("its reference",
	// "the same hour of the previous days").
	Basis string
	// Dispersion is the variance of the learned windows' events over their mean (1 for
	// Poisson traffic; 0 when unknown). Real traffic varies more than Poisson: above 1,
	// a window is also held to a negative binomial with that variance, and the larger
	// p-value decides.
	Dispersion float64
	// Fewest, when above 0, is the fewest events any of the windows learned from had: a
	// drop then also needs fewer events than that. Recent windows of one series are the
	// basis most exposed to traffic that varies more than Poisson; a window no lower
	// than one of them is within what the series already did.
	Fewest float64
}

// ModelVolumeCondition judges a series' events in a window (an empty window when the
// series went silent) against the expected number. Under no change the window's count x
// and the expectation's total y = PerWindow × Windows are Poisson with rates in the
// ratio of the time they cover, so x given x + y is binomial: an exact test that accounts
// for how few windows the expectation was learned from. ok is false when there is
// nothing to judge against or both rules are off.
func ModelVolumeCondition(w *processors.WindowAgg, exp VolumeExpectation, th Thresholds) (Condition, bool) {
	st := th.Signals
	if exp.PerWindow <= 0 || exp.Size <= 0 || exp.Windows < 1 || (st.VolumeDrop <= 0 && st.VolumeJump <= 0) {
		return Condition{}, false
	}
	spanWindows := float64(w.End-w.Start) / float64(exp.Size.Milliseconds())
	expected := exp.PerWindow * spanWindows
	x, y := int(w.Events), int(math.Round(exp.PerWindow*float64(exp.Windows)))
	share := spanWindows / (spanWindows + float64(exp.Windows))
	pDrop, pJump := BinomialCDF(x, x+y, share), BinomialSF(x, x+y, share)
	test := "conditional_binomial"
	if exp.Dispersion > 1 {
		// Variance φ·μ = μ + μ²/r.
		r := expected / (exp.Dispersion - 1)
		nbDrop, nbJump := NegBinomialCDF(x, expected, r), 1-NegBinomialCDF(x-1, expected, r)
		if (x <= int(expected) && nbDrop > pDrop) || (x > int(expected) && nbJump > pJump) {
			test = "negative_binomial" // the one that decided
		}
		pDrop, pJump = max(pDrop, nbDrop), max(pJump, nbJump)
	}
	ratio := float64(x) / expected
	level := st.PValue / 2 // two one-sided tests
	drop := st.VolumeDrop > 0 && ratio <= st.VolumeDrop && pDrop < level && (exp.Fewest <= 0 || float64(x) < exp.Fewest*spanWindows)
	jump := st.VolumeJump > 0 && ratio >= st.VolumeJump && pJump < level
	c := newCondition(w, schemas.KindVolume, "", "events_ratio", ratio, st.VolumeDrop)
	if (ratio > 1 && st.VolumeJump > 0) || st.VolumeDrop <= 0 {
		c.Threshold = st.VolumeJump
	}
	c.Breached = drop || jump
	c.Severity = schemas.SeverityWarning
	if drop && ratio < 0.1 {
		c.Severity = schemas.SeverityCritical
	}
	subject := seriesSubject(w)
	basis := exp.Basis
	if basis == "" {
		basis = "its reference"
	}
	switch {
	case x == 0:
		c.FiringSummary = fmt.Sprintf("%s stopped sending: 0 events where %.0f were expected (%s) over %s", subject, expected, basis, spanText(w))
	case jump:
		c.FiringSummary = fmt.Sprintf("%s received %d events, %.1f× the %.0f expected (%s), over %s", subject, x, ratio, expected, basis, spanText(w))
	default:
		c.FiringSummary = fmt.Sprintf("%s received %d events, %.0f%% of the %.0f expected (%s), over %s", subject, x, 100*ratio, expected, basis, spanText(w))
	}
	c.ResolvedSummary = fmt.Sprintf("%s received %d events, back near the %.0f expected (%s), over %s", subject, x, expected, basis, spanText(w))
	p := pDrop
	if ratio > 1 {
		p = pJump
	}
	c.Details = map[string]string{"events": fmt.Sprint(x), "expected": g6(expected), "expected_per_window": g6(exp.PerWindow),
		"learned_from_windows": fmt.Sprint(exp.Windows), "basis": basis, "test": test, "p_value": g6(p), "alpha": g6(level)}
	if exp.Fewest > 0 {
		c.Details["fewest_learned"] = g6(exp.Fewest)
	}
	if exp.Dispersion > 0 {
		c.Details["dispersion"] = g6(exp.Dispersion)
	}
	return c, true
}
