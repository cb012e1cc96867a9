package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

var rv0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// rvWindow is the one-minute window `minute` of model m, slot/version, n requests with
// predictions U(0,1)+shift and log-normal latency times slower.
func rvWindow(rng *rand.Rand, version, slot string, minute, n int, shift, slower float64) processors.Closed {
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	for i := 0; i < n; i++ {
		e := &schemas.PredictionEvent{EventID: fmt.Sprint(i), Model: "m", ModelVersion: version, Deployment: slot, Status: "ok",
			Timestamp:  rv0.Add(time.Duration(minute)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n)),
			LatencyMs:  40 * math.Exp(0.5*rng.NormFloat64()) * max(slower, 1),
			Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64() + shift}}
		p.Add(e, processors.Source{Offset: int64(i)}, rv0)
	}
	c := p.CloseAll()
	if len(c) != 1 {
		panic(len(c))
	}
	return c[0]
}

func alertsOf(b *storage.Batch, metric, deployment string) []string {
	var out []string
	for _, a := range b.Alerts {
		if a.Metric == metric && a.Deployment == deployment {
			out = append(out, a.State+" "+a.ModelVersion+" "+a.Summary)
		}
	}
	return out
}

// Blue/green: green 2 predicts otherwise and fires switch_regression; the operator does
// what the page says and switches back to blue 1, unchanged. Blue is not paged as a
// regression against green's (regressed) last window (review: it was, for good).
func TestSwitchBackIsNotARegression(t *testing.T) {
	j := testJudge()
	rng := rand.New(rand.NewPCG(3, 3))
	ctx := context.Background()
	plan := []struct {
		slot, version string
		shift         float64
	}{{"blue", "1", 0}, {"blue", "1", 0}, {"blue", "1", 0}, {"green", "2", 0.3}, {"blue", "1", 0}, {"blue", "1", 0}, {"blue", "1", 0}}
	for range 20 {
		plan = append(plan, plan[len(plan)-1])
	}
	var blueFP string
	for m, p := range plan {
		b := &storage.Batch{}
		if err := j.compareSwitches(ctx, []processors.Closed{rvWindow(rng, p.version, p.slot, m, 500, p.shift, 1)}, rv0, b); err != nil {
			t.Fatal(err)
		}
		for _, c := range b.Canary {
			t.Logf("minute %d: %s %s vs %s %s: %s (%s)", m, c.Canary.Deployment, c.Canary.Version, c.Primary.Deployment, c.Primary.Version, c.Outcome, c.Reason)
		}
		if got := alertsOf(b, "switch_regression", "green"); len(got) > 0 {
			t.Logf("minute %d green: %v", m, got)
		}
		if got := alertsOf(b, "switch_regression", "blue"); len(got) > 0 {
			t.Errorf("minute %d: blue 1, back on its own traffic and unchanged, paged: %v", m, got)
			blueFP = b.Alerts[0].Fingerprint
			for _, a := range b.Alerts {
				if a.Deployment == "blue" {
					blueFP = a.Fingerprint
				}
			}
		}
	}
	if blueFP != "" && j.alerter.State(blueFP).Firing {
		t.Errorf("blue's switch_regression still firing %d windows after the switch back", len(plan)-4)
	}
}

// A canary that regressed fires canary_regression; the operator rolls it back (the canary
// slot falls silent: silentWindows gives it empty windows) or replaces it with a fixed
// version 3. The rollback alert of version 2 resolves (review: it stayed firing).
func TestCanaryRollbackAlertResolves(t *testing.T) {
	for _, fix := range []string{"rollback", "new version"} {
		t.Run(fix, func(t *testing.T) {
			j := testJudge()
			rng := rand.New(rand.NewPCG(4, 4))
			var fp string
			for m := 0; m < 30; m++ {
				closed := []processors.Closed{rvWindow(rng, "1", "primary", m, 900, 0, 1)}
				switch {
				case m < 3:
					closed = append(closed, rvWindow(rng, "2", "canary", m, 300, 0, 4))
				case fix == "rollback":
					w := processors.EmptyWindow(processors.SeriesKey{Model: "m", Version: "2", Deployment: "canary"}, closed[0].Merged.Start, closed[0].Merged.End)
					closed = append(closed, processors.Closed{Merged: w})
				default:
					closed = append(closed, rvWindow(rng, "3", "canary", m, 300, 0, 1))
				}
				b := &storage.Batch{}
				j.compareCanaries(closed, rv0, b)
				for _, a := range b.Alerts {
					t.Logf("minute %d: %s %s %s %s", m, a.State, a.Metric, a.ModelVersion, a.Severity)
					if a.Metric == "canary_regression" && a.ModelVersion == "2" {
						fp = a.Fingerprint
					}
				}
			}
			if fp == "" {
				t.Fatal("no canary_regression for version 2")
			}
			if j.alerter.State(fp).Firing {
				t.Errorf("%s: canary 2's critical rollback alert still firing 27 windows after the %s", fix, fix)
			}
		})
	}
}

// The promote recommendation (info, read by automation) and the rollback alert
// (critical) are never firing together for one canary, whatever detection.resolve_after.
func TestPromoteAndRollbackNotBothFiring(t *testing.T) {
	a := detectors.NewAlerter(1, 3) // detection.resolve_after: 3
	set := detectors.DefaultCanarySettings
	k := processors.SeriesKey{Model: "m", Version: "2", Deployment: "canary"}
	state := map[string]bool{}
	for i := 0; i < 13; i++ {
		out := detectors.CanaryHealthy
		if i >= 10 {
			out = detectors.CanaryRegression
		}
		c := detectors.CanaryComparison{Canary: k, Primary: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"},
			Start: rv0.Add(time.Duration(i) * time.Minute).UnixMilli(), End: rv0.Add(time.Duration(i+1) * time.Minute).UnixMilli(), Outcome: out, Reason: "x"}
		for _, cond := range c.Conditions(set) {
			if ev := a.Observe(cond, rv0); ev != nil {
				state[ev.Metric] = ev.State == schemas.StateFiring
				t.Logf("window %d (%s): %s %s", i, out, ev.Metric, ev.State)
			}
		}
		if state["canary_regression"] && state["canary_promote"] {
			t.Errorf("window %d: rollback (critical) and promote (info) both firing", i)
		}
	}
}

// A restart while green's switch_regression fires (states restored as Restore does):
// when the operator switches back to blue, the alert resolves, and blue is not paged.
func TestSwitchRegressionAfterRestartResolves(t *testing.T) {
	j := testJudge()
	rng := rand.New(rand.NewPCG(3, 3))
	ctx := context.Background()
	run := func(j *judge, m int, slot, version string, shift float64) *storage.Batch {
		b := &storage.Batch{}
		if err := j.compareSwitches(ctx, []processors.Closed{rvWindow(rng, version, slot, m, 500, shift, 1)}, rv0, b); err != nil {
			t.Fatal(err)
		}
		for _, a := range b.Alerts {
			if a.Metric == "switch_regression" {
				t.Logf("minute %d: %s %s %s", m, a.State, a.Deployment, a.ModelVersion)
			}
		}
		return b
	}
	var fp string
	for m := 0; m < 4; m++ {
		slot, v, s := "blue", "1", 0.0
		if m == 3 {
			slot, v, s = "green", "2", 0.3
		}
		for _, a := range run(j, m, slot, v, s).Alerts {
			if a.Metric == "switch_regression" && a.State == schemas.StateFiring {
				fp = a.Fingerprint
			}
		}
	}
	if fp == "" {
		t.Fatal("green did not fire")
	}
	// Restart: a new judge with the persisted alert states.
	k := testJudge()
	for _, s := range j.alerter.Changes() {
		k.alerter.RestoreState(s.Fingerprint, s.AlertState)
	}
	run(k, 4, "green", "2", 0.3)
	for m := 5; m < 25; m++ {
		run(k, m, "blue", "1", 0)
	}
	if k.alerter.State(fp).Firing {
		t.Errorf("green's switch_regression still firing 20 windows after traffic switched back to blue")
	}
}

// A blue/green switch across a quiet spell (blue until minute 2, nothing from either
// slot for three minutes, then green) is a switch all the same: marked, and green
// compared with blue's last window.
func TestSwitchAcrossAQuietSpell(t *testing.T) {
	j := testJudge()
	rng := rand.New(rand.NewPCG(5, 5))
	ctx := context.Background()
	var marked, compared bool
	for _, m := range []int{0, 1, 2, 6, 7} {
		slot, version := "blue", "1"
		if m >= 6 {
			slot, version = "green", "2"
		}
		b := &storage.Batch{}
		if err := j.compareSwitches(ctx, []processors.Closed{rvWindow(rng, version, slot, m, 500, 0, 1)}, rv0, b); err != nil {
			t.Fatal(err)
		}
		for _, a := range b.Alerts {
			marked = marked || a.Metric == "traffic_switch" && a.State == schemas.StateFiring && m == 6
		}
		for _, c := range b.Canary {
			compared = compared || c.Canary.Deployment == "green" && c.Primary.Deployment == "blue" && c.Outcome == detectors.CanaryHealthy
		}
	}
	if !marked || !compared {
		t.Errorf("switch marked %v, green compared with blue %v", marked, compared)
	}
}
