package detectors

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Canary analysis judges a canary's window against the primary's window of the same model
// and period, not against fixed thresholds nor the canary's own reference: a canary slow
// from its first request has a slow reference. The primary's window becomes the reference
// (ProfileFromWindow) and the canary's window is evaluated against it as any window is,
// so every comparison is one of the tests the rest of driftd uses, each with its effect
// floor and a sample-size-aware test (docs/detection.md): latency quantiles by the
// beta-binomial exceedance test, the error and null-prediction rates as two proportions,
// the prediction distribution by its distance and test.

// CanaryOutcome is a canary window's verdict.
type CanaryOutcome uint8

const (
	// CanaryInconclusive: too little traffic on either side to tell.
	CanaryInconclusive CanaryOutcome = iota
	// CanaryHealthy: compared, and no comparison breached.
	CanaryHealthy
	// CanaryRegression: at least one comparison breached.
	CanaryRegression
)

func (o CanaryOutcome) String() string {
	switch o {
	case CanaryHealthy:
		return "healthy"
	case CanaryRegression:
		return "regression"
	default:
		return "inconclusive"
	}
}

// CanarySettings are how canaries are judged.
type CanarySettings struct {
	// MinEvents is the least requests each side needs in a window for a verdict other
	// than inconclusive.
	MinEvents uint64
	// RegressionWindows consecutive regressions fire the critical rollback alert;
	// PromoteWindows consecutive healthy windows the info-level promote recommendation.
	// Inconclusive windows break neither run nor count.
	RegressionWindows, PromoteWindows int
}

// DefaultCanarySettings are the canary section's defaults.
var DefaultCanarySettings = CanarySettings{MinEvents: 100, RegressionWindows: 2, PromoteWindows: 10}

// CanaryComparison is one canary window compared with the primary's.
type CanaryComparison struct {
	Canary, Primary processors.SeriesKey
	// Start and End are the window's bounds (unix ms).
	Start, End                  int64
	CanaryEvents, PrimaryEvents uint64
	Outcome                     CanaryOutcome
	// Evidence are the comparisons judged (conditions of the canary's series, against
	// the primary's window); Reason says in one line why the verdict is what it is.
	Evidence []Condition
	Reason   string
	// Confounded are the input features whose distribution differs from the primary's:
	// the canary is not sent the same traffic, which explains differences the model
	// does not cause. They are evidence about the split, not a regression of the model.
	Confounded []string
}

// primaryWords rewrites a condition's summary, written against "its reference", to say
// what the reference is here.
var primaryWords = strings.NewReplacer("its reference", "the primary's", "the reference", "the primary's", "reference", "primary")

// CompareCanary compares a canary's window with the primary's (nil: the primary sent
// nothing in that window) at time now.
func CompareCanary(canary, primary *processors.WindowAgg, thresholds func(feature string) Thresholds, set CanarySettings, now time.Time) CanaryComparison {
	c := CanaryComparison{Canary: canary.Series, Start: canary.Start, End: canary.End, CanaryEvents: canary.Events}
	if primary == nil {
		c.Reason = "the primary sent no request in this window: nothing to compare with"
		return c
	}
	c.Primary, c.PrimaryEvents = primary.Series, primary.Events
	if canary.Events < set.MinEvents || primary.Events < set.MinEvents {
		c.Reason = fmt.Sprintf("too little traffic to tell: %d canary and %d primary requests (at least %d each)", canary.Events, primary.Events, set.MinEvents)
		return c
	}
	v := Evaluate(canary, ProfileFromWindow(primary, SourceFirstWindows, now), thresholds)
	var breached []string
	for _, cond := range v.Conditions {
		switch {
		case cond.Kind == schemas.KindDataDrift:
			if cond.Breached && cond.Feature != "" {
				c.Confounded = append(c.Confounded, cond.Feature)
			}
			continue
		case !canaryEvidence(cond):
			continue
		}
		cond.FiringSummary, cond.ResolvedSummary = primaryWords.Replace(cond.FiringSummary), primaryWords.Replace(cond.ResolvedSummary)
		c.Evidence = append(c.Evidence, cond)
		if cond.Breached {
			breached = append(breached, cond.FiringSummary)
		}
	}
	if len(breached) > 0 {
		c.Outcome, c.Reason = CanaryRegression, strings.Join(breached, "; ")
	} else {
		c.Outcome = CanaryHealthy
		c.Reason = fmt.Sprintf("%d comparisons with the primary's %d requests, none beyond its noise and effect floor", len(c.Evidence), primary.Events)
	}
	if len(c.Confounded) > 0 {
		c.Reason += fmt.Sprintf(" (inputs differ from the primary's: %s; the canary does not see the same traffic)", strings.Join(c.Confounded, ", "))
	}
	if primary.Latency.Count() > 0 && !slices.ContainsFunc(c.Evidence, func(e Condition) bool { return e.Kind == schemas.KindLatency }) {
		// A healthy verdict must not read as "as fast as the primary" when nothing said so.
		c.Reason += fmt.Sprintf(" (latency not compared: %.0f of the canary's %d requests carry one)", canary.Latency.Count(), canary.Events)
	}
	return c
}

// canaryEvidence reports whether a condition from judging a canary's window against the
// primary's compares the two models: the prediction, confidence and null-prediction
// distributions, latency and errors against the primary's. Fixed ceilings, input quality
// (the traffic's, not the model's) and volume (the traffic split) are not.
func canaryEvidence(c Condition) bool {
	switch c.Kind {
	case schemas.KindPredictionDrift, schemas.KindOutputQuality:
		return true
	case schemas.KindLatency, schemas.KindErrors:
		return strings.HasSuffix(c.Metric, "_vs_reference")
	}
	return false
}

// Conditions are the comparison's alert conditions, on the canary's series: a critical
// regression that fires after set.RegressionWindows consecutive regressions and
// recommends rollback, and an info-level promote recommendation after set.PromoteWindows
// consecutive healthy windows, withdrawn on the first window that is not (so that it
// never stands beside a rollback). An inconclusive window with traffic has none: it
// moves neither. A window without canary traffic (rolled back, or replaced by another
// version) clears both: nothing is left to roll back or promote.
func (c CanaryComparison) Conditions(set CanarySettings) []Condition {
	silent := c.CanaryEvents == 0
	if c.Outcome == CanaryInconclusive && !silent {
		return nil
	}
	start, end := time.UnixMilli(c.Start).UTC(), time.UnixMilli(c.End).UTC()
	span := fmt.Sprintf("%s–%s UTC", start.Format("15:04"), end.Format("15:04"))
	subject := fmt.Sprintf("canary %s %s", c.Canary.Model, c.Canary.Version)
	details := map[string]string{"verdict": c.Outcome.String(), "primary_version": c.Primary.Version,
		"canary_events": fmt.Sprint(c.CanaryEvents), "primary_events": fmt.Sprint(c.PrimaryEvents), "reason": c.Reason}
	if len(c.Confounded) > 0 {
		details["confounded"] = strings.Join(c.Confounded, ",")
	}
	regressed, healthy := c.Outcome == CanaryRegression, c.Outcome == CanaryHealthy
	base := Condition{Kind: schemas.KindCanary, Model: c.Canary.Model, Version: c.Canary.Version, Deployment: c.Canary.Deployment,
		WindowStart: start, WindowEnd: end, Details: details}
	regression := base
	regression.Metric, regression.Severity, regression.FireAfter = "canary_regression", schemas.SeverityCritical, set.RegressionWindows
	regression.Value, regression.Threshold, regression.Breached = b2f(regressed), 1, regressed
	regression.FiringSummary = fmt.Sprintf("%s regressed against primary %s for %d windows; recommend rollback: %s",
		subject, c.Primary.Version, set.RegressionWindows, c.Reason)
	regression.ResolvedSummary = fmt.Sprintf("%s is healthy against primary %s again over %s", subject, c.Primary.Version, span)
	if silent {
		regression.ResolvedSummary = fmt.Sprintf("%s sends nothing since %s UTC (rolled back, or replaced): nothing left to roll back", subject, start.Format("15:04"))
	}
	promote := base
	promote.Metric, promote.Severity, promote.FireAfter = "canary_promote", schemas.SeverityInfo, set.PromoteWindows
	promote.Value, promote.Threshold, promote.Breached = b2f(healthy), 1, healthy
	promote.ResolveAfter = 1
	promote.FiringSummary = fmt.Sprintf("%s has been healthy against primary %s for %d windows; it can be promoted (last over %s)",
		subject, c.Primary.Version, set.PromoteWindows, span)
	promote.ResolvedSummary = fmt.Sprintf("%s is no longer healthy against primary %s (over %s): do not promote", subject, c.Primary.Version, span)
	if silent {
		promote.ResolvedSummary = fmt.Sprintf("%s sends nothing since %s UTC: nothing left to promote", subject, start.Format("15:04"))
	}
	return []Condition{regression, promote}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// CanaryPerformance judges a canary's settled window against the primary's window of the
// same period (PerformanceCondition with the primary's counts as the reference): a
// critical condition that fires after set.RegressionWindows windows in a row. ok is
// false when there is nothing to judge (no shared task, too few labels on either side).
func CanaryPerformance(w PerfWindow, canary, primary PerfCounts, primaryVersion string, th PerformanceThresholds, set CanarySettings) (Condition, bool) {
	c, ok := PerformanceCondition(w, canary, primary, th)
	if !ok {
		return Condition{}, false
	}
	c.Kind, c.Metric = schemas.KindCanary, "canary_performance"
	c.FireAfter = set.RegressionWindows
	c.Severity = schemas.SeverityCritical
	c.FiringSummary = fmt.Sprintf("canary %s %s did worse than primary %s on labelled predictions for %d windows; recommend rollback: %s",
		w.Series.Model, w.Series.Version, primaryVersion, set.RegressionWindows, primaryWords.Replace(c.FiringSummary))
	c.ResolvedSummary = primaryWords.Replace(c.ResolvedSummary)
	c.Details["primary_version"] = primaryVersion
	return c, true
}
