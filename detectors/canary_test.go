package detectors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// canaryTraffic is one slot's traffic in a window: n requests with an amount (normal,
// shifted by amountShift stds) and a country, a score from the amount (plus predShift),
// log-normal latency (median 40 ms, times slower), and errors at errorRate.
type canaryTraffic struct {
	n                      int
	slower, errorRate      float64
	predShift, amountShift float64
	noLatency              bool // its requests carry no latency
}

// canaryWindow is the window of series slot over [t0, t0+5m) with traffic tr.
func canaryWindow(rng *rand.Rand, version, slot string, tr canaryTraffic) *processors.WindowAgg {
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 5 * time.Minute} }, processors.Limits{})
	countries := []string{"DE", "FR", "NL", "US", "GB"}
	for i := 0; i < tr.n; i++ {
		amount := 100 + 15*(rng.NormFloat64()+tr.amountShift)
		e := &schemas.PredictionEvent{EventID: fmt.Sprint(i), Model: "m", ModelVersion: version, Deployment: slot, Status: "ok",
			Timestamp: t0.Add(time.Duration(i) * 5 * time.Minute / time.Duration(tr.n)),
			LatencyMs: 40 * math.Exp(0.5*rng.NormFloat64()) * max(tr.slower, 1), NoLatency: tr.noLatency,
			Features: []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: amount}},
				{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: countries[rng.IntN(len(countries))]}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: 1/(1+math.Exp(-(amount-100)/15-0.5*rng.NormFloat64())) + tr.predShift}}
		if rng.Float64() < tr.errorRate {
			e.Status = "error"
		}
		p.Add(e, processors.Source{Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	if len(closed) != 1 {
		panic(fmt.Sprintf("%d windows", len(closed)))
	}
	return closed[0].Merged
}

// A canary is judged against the primary's window of the same period: slower, failing
// more or predicting otherwise is a regression whose evidence names the signal; the same
// model is healthy; too little traffic on either side (a canary at 1%) is inconclusive,
// as is a window the primary sent nothing in; inputs that differ (the split is not
// random) are named as confounding, not a regression.
func TestCanaryVerdicts(t *testing.T) {
	thresholds := func(string) Thresholds { return DefaultThresholds }
	primary := canaryTraffic{n: 1000, errorRate: 0.01}
	for _, c := range []struct {
		name       string
		canary     canaryTraffic
		noPrimary  bool
		want       CanaryOutcome
		evidence   string // a breached metric
		confounded string
		reason     string // in the reason
	}{
		{name: "same model", canary: canaryTraffic{n: 300, errorRate: 0.01}, want: CanaryHealthy},
		{name: "no latency sent by the canary: healthy, saying latency was not compared", canary: canaryTraffic{n: 300, errorRate: 0.01, noLatency: true},
			want: CanaryHealthy, reason: "latency not compared: 0 of the canary's 300 requests carry one"},
		{name: "four times slower", canary: canaryTraffic{n: 300, errorRate: 0.01, slower: 4}, want: CanaryRegression, evidence: "latency_p99_vs_reference"},
		{name: "errors 1% to 8%", canary: canaryTraffic{n: 300, errorRate: 0.08}, want: CanaryRegression, evidence: "error_rate_vs_reference"},
		{name: "predictions shifted", canary: canaryTraffic{n: 300, errorRate: 0.01, predShift: 0.3}, want: CanaryRegression, evidence: "prediction"},
		{name: "1% of traffic, four times slower", canary: canaryTraffic{n: 10, errorRate: 0.01, slower: 4}, want: CanaryInconclusive},
		{name: "no primary", canary: canaryTraffic{n: 300, errorRate: 0.01}, noPrimary: true, want: CanaryInconclusive},
		{name: "other inputs: the predictions follow them, and the inputs are named", canary: canaryTraffic{n: 300, errorRate: 0.01, amountShift: 1}, want: CanaryRegression,
			evidence: "prediction", confounded: "amount"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 7))
			var pw *processors.WindowAgg
			if !c.noPrimary {
				pw = canaryWindow(rng, "1", schemas.DeploymentPrimary, primary)
			}
			cw := canaryWindow(rng, "2", schemas.DeploymentCanary, c.canary)
			got := CompareCanary(cw, pw, thresholds, DefaultCanarySettings, t0)
			t.Logf("%s: %s", got.Outcome, got.Reason)
			if got.Outcome != c.want {
				t.Fatalf("verdict %s, want %s", got.Outcome, c.want)
			}
			if c.evidence != "" {
				found := false
				for _, e := range got.Evidence {
					found = found || (e.Breached && (e.Metric == c.evidence || e.Kind == schemas.KindPredictionDrift && c.evidence == "prediction"))
				}
				if !found {
					t.Errorf("no breached %s in the evidence: %+v", c.evidence, got.Evidence)
				}
			}
			if !strings.Contains(got.Reason, c.reason) || (c.reason == "" && strings.Contains(got.Reason, "latency not compared")) {
				t.Errorf("reason %q, want it to say %q", got.Reason, c.reason)
			}
			if fmt.Sprint(got.Confounded) != fmt.Sprint(strings.Fields(c.confounded)) {
				t.Errorf("confounded %v, want %q", got.Confounded, c.confounded)
			}
			if strings.Contains(got.Reason, "reference") {
				t.Errorf("the reason speaks of a reference, not the primary: %s", got.Reason)
			}
			conds := got.Conditions(DefaultCanarySettings)
			if c.want == CanaryInconclusive {
				if len(conds) != 0 {
					t.Errorf("an inconclusive window moves the alerts: %+v", conds)
				}
				return
			}
			if len(conds) != 2 || conds[0].Breached != (c.want == CanaryRegression) || conds[1].Breached != (c.want == CanaryHealthy) ||
				conds[0].Severity != schemas.SeverityCritical || conds[1].Severity != schemas.SeverityInfo {
				t.Errorf("conditions %+v", conds)
			}
		})
	}
}

// A canary running the primary's model, on its share of the same traffic, is never
// judged a regression for long: stationary windows at several volumes and splits, the
// windows judged a regression counted, and the runs of DefaultCanarySettings'
// RegressionWindows of them that would page (none). The numbers are in
// docs/deployments.md.
func TestCanaryQuietOnIdenticalModels(t *testing.T) {
	thresholds := func(string) Thresholds { return DefaultThresholds }
	for _, c := range []struct {
		windows, canary, primary int
	}{
		{2000, 100, 900},
		{2000, 100, 9900},
		{500, 1000, 9000},
		{50, 5000, 45000},
	} {
		if testing.Short() && c.canary > 1000 {
			continue
		}
		rng := rand.New(rand.NewPCG(uint64(c.canary), uint64(c.primary)))
		regressions, run, pages, healthy := 0, 0, 0, 0
		for w := 0; w < c.windows; w++ {
			pw := canaryWindow(rng, "1", schemas.DeploymentPrimary, canaryTraffic{n: c.primary, errorRate: 0.01})
			cw := canaryWindow(rng, "2", schemas.DeploymentCanary, canaryTraffic{n: c.canary, errorRate: 0.01})
			got := CompareCanary(cw, pw, thresholds, DefaultCanarySettings, t0)
			switch got.Outcome {
			case CanaryRegression:
				regressions++
				if run++; run == DefaultCanarySettings.RegressionWindows {
					pages++
				}
				t.Logf("%d+%d window %d: %s", c.canary, c.primary, w, got.Reason)
			case CanaryHealthy:
				healthy++
				run = 0
			}
		}
		t.Logf("canary %d, primary %d requests a window: %d windows, %d healthy, %d judged a regression, %d pages",
			c.canary, c.primary, c.windows, healthy, regressions, pages)
		if pages > 0 || float64(regressions) > 0.01*float64(c.windows) {
			t.Errorf("canary %d, primary %d: %d regressions in %d windows, %d pages", c.canary, c.primary, regressions, c.windows, pages)
		}
	}
}
