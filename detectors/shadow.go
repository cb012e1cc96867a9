package detectors

import (
	"fmt"
	"math"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Shadow analysis: a shadow model answers the primary's requests beside it, unused. Its
// predictions are joined to the primary's by request id (in ClickHouse: the prediction
// keys the label join keeps) and each window's agreement is judged against the shadow's
// own first windows, so that a shadow that starts answering otherwise is found whatever
// its usual agreement, and optionally against a fixed floor.

// ShadowCounts are a shadow window's predictions joined to the primary's.
type ShadowCounts struct {
	// Shadows are the shadow's predictions with a request id; Matched those the primary
	// answered too (in the same window), Agreed those it answered alike: the same class
	// or boolean, a probability (a number in [0, 1]) on the same side of 0.5 and within
	// 0.1 of the primary's (scores of a rare class, all under 0.5, must agree by value),
	// or another number within 10% of the primary's.
	Shadows, Matched, Agreed uint64
	// Numeric pairs (both numbers): their absolute differences and sums for the mean
	// absolute difference and the correlation.
	Numeric                            uint64
	AbsDiff, SumS, SumP, SSS, SPP, SSP float64
}

// Add adds o's counts.
func (c *ShadowCounts) Add(o ShadowCounts) {
	c.Shadows += o.Shadows
	c.Matched += o.Matched
	c.Agreed += o.Agreed
	c.Numeric += o.Numeric
	c.AbsDiff += o.AbsDiff
	c.SumS += o.SumS
	c.SumP += o.SumP
	c.SSS += o.SSS
	c.SPP += o.SPP
	c.SSP += o.SSP
}

// Agreement is the share of matched predictions answered alike (NaN: none matched).
func (c ShadowCounts) Agreement() float64 { return float64(c.Agreed) / float64(c.Matched) }

// MeanAbsDiff is the numeric pairs' mean absolute difference (NaN: none).
func (c ShadowCounts) MeanAbsDiff() float64 { return c.AbsDiff / float64(c.Numeric) }

// Correlation is the numeric pairs' Pearson correlation (NaN: fewer than two, or either
// side constant).
func (c ShadowCounts) Correlation() float64 {
	n := float64(c.Numeric)
	if n < 2 {
		return math.NaN()
	}
	cov := c.SSP - c.SumS*c.SumP/n
	vs, vp := c.SSS-c.SumS*c.SumS/n, c.SPP-c.SumP*c.SumP/n
	if vs <= 0 || vp <= 0 {
		return math.NaN()
	}
	return cov / math.Sqrt(vs*vp)
}

// ShadowSettings are how shadows are judged.
type ShadowSettings struct {
	// MinMatched is the least joined predictions a window needs to be judged, and to
	// count towards the reference.
	MinMatched uint64
	// ReferenceWindows windows of at least MinMatched make the shadow's reference.
	ReferenceWindows int
	// The disagreement rate breaches against the reference's when it is at least
	// MinIncrease more and MinRatio times as much, and a Fisher test says so at PValue.
	MinIncrease, MinRatio, PValue float64
	// MinAgreement, when above 0, is a floor for the agreement itself (a binomial test
	// at PValue says the window is below it).
	MinAgreement float64
}

// DefaultShadowSettings are the shadow section's defaults.
var DefaultShadowSettings = ShadowSettings{MinMatched: 100, ReferenceWindows: 3, MinIncrease: 0.05, MinRatio: 1.5, PValue: DefaultSignalThresholds.PValue}

// ShadowWindow is one shadow window joined to the primary's.
type ShadowWindow struct {
	Shadow         processors.SeriesKey
	PrimaryVersion string
	Start, End     time.Time
	Counts         ShadowCounts
}

// JudgeShadow judges a shadow window against its reference (Matched 0: none built yet):
// a disagreement rate beyond the reference's, and agreement under set.MinAgreement. A
// window with fewer than set.MinMatched joined predictions is not judged (nil).
func JudgeShadow(w ShadowWindow, ref ShadowCounts, set ShadowSettings) []Condition {
	c := w.Counts
	if c.Matched < set.MinMatched || c.Matched == 0 {
		return nil
	}
	subject := fmt.Sprintf("shadow %s %s", w.Shadow.Model, w.Shadow.Version)
	span := fmt.Sprintf("%s–%s UTC", w.Start.UTC().Format("15:04"), w.End.UTC().Format("15:04"))
	base := Condition{Kind: schemas.KindShadow, Model: w.Shadow.Model, Version: w.Shadow.Version, Deployment: w.Shadow.Deployment,
		WindowStart: w.Start, WindowEnd: w.End}
	details := func() map[string]string {
		d := map[string]string{"primary_version": w.PrimaryVersion, "shadow_predictions": fmt.Sprint(c.Shadows), "matched": fmt.Sprint(c.Matched),
			"agreed": fmt.Sprint(c.Agreed)}
		if c.Numeric > 0 {
			d["mean_abs_diff"], d["correlation"] = g6(c.MeanAbsDiff()), g6(c.Correlation())
		}
		return d
	}
	disagreed := c.Matched - c.Agreed
	var family []judged
	if ref.Matched > 0 && set.MinIncrease > 0 {
		r := newRateTest(disagreed, c.Matched, ref.Matched-ref.Agreed, ref.Matched, set.MinIncrease, set.MinRatio)
		cond := base
		cond.Metric, cond.Value, cond.Threshold = "disagreement_vs_reference", r.rate, r.threshold
		cond.FiringSummary = fmt.Sprintf("%s disagrees with primary %s on %s of %d requests (its reference %s, threshold %s) over %s",
			subject, w.PrimaryVersion, pct(r.rate), c.Matched, pct(r.refRate), pct(r.threshold), span)
		cond.ResolvedSummary = fmt.Sprintf("%s disagrees with primary %s on %s of %d requests, back near its reference %s, over %s",
			subject, w.PrimaryVersion, pct(r.rate), c.Matched, pct(r.refRate), span)
		cond.Details = details()
		for k, v := range r.details("disagreed") {
			cond.Details[k] = v
		}
		family = append(family, judged{cond, r.p, r.effect, r.critical})
	}
	if set.MinAgreement > 0 {
		floor := 1 - set.MinAgreement
		rate := float64(disagreed) / float64(c.Matched)
		p := BinomialSF(int(disagreed), int(c.Matched), floor)
		cond := base
		cond.Metric, cond.Value, cond.Threshold = "agreement", c.Agreement(), set.MinAgreement
		cond.FiringSummary = fmt.Sprintf("%s agrees with primary %s on %s of %d requests, under %s, over %s",
			subject, w.PrimaryVersion, pct(c.Agreement()), c.Matched, pct(set.MinAgreement), span)
		cond.ResolvedSummary = fmt.Sprintf("%s agrees with primary %s on %s of %d requests again over %s", subject, w.PrimaryVersion, pct(c.Agreement()), c.Matched, span)
		cond.Details = details()
		cond.Details["test"], cond.Details["p_value"] = "binomial_above_floor", g6(p)
		family = append(family, judged{cond, p, rate > floor, false})
	}
	return settle(family, set.PValue)
}

// ShadowSilent are the shadow conditions of a window in which the shadow sent nothing
// (removed, or replaced by another version): not breached, so that an alert left firing
// resolves.
func ShadowSilent(shadow processors.SeriesKey, start, end time.Time) []Condition {
	var out []Condition
	for _, metric := range []string{"disagreement_vs_reference", "agreement"} {
		out = append(out, Condition{Kind: schemas.KindShadow, Model: shadow.Model, Version: shadow.Version, Deployment: shadow.Deployment,
			Metric: metric, WindowStart: start, WindowEnd: end, Severity: schemas.SeverityWarning,
			ResolvedSummary: fmt.Sprintf("shadow %s %s sends nothing since %s UTC (removed, or replaced): nothing left to compare", shadow.Model, shadow.Version, start.UTC().Format("15:04"))})
	}
	return out
}
