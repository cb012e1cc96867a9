package pipeline_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
)

func TestTrafficCanaryAndShadowOfTheSameVersionAreQuiet(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	alerts, _, _ := revRun(t, replay.Live, revStart, end, nil,
		newRevModel(1, "fraud", "1.0", "primary", revStart, end, 10, constRate(10)),
		newRevModel(2, "fraud", "1.0", "canary", revStart, end, 0.5, constRate(0.5)),
		newRevModel(3, "fraud", "1.0", "shadow", revStart, end, 10, constRate(10)),
	)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts on a stationary stream (%s); first: %v%s", len(f), countKinds(alerts), f[:min(5, len(f))], summaries(alerts, 4))
	}
	// The canary (150 requests a window) is healthy against the primary: after ten
	// windows it can be promoted.
	promoted := false
	for _, x := range replay.Transitions(alerts) {
		promoted = promoted || x.Metric == "canary_promote" && x.State == "firing"
	}
	if !promoted {
		t.Errorf("no promote recommendation for a canary as good as the primary (%s)", countKinds(alerts))
	}
}

func TestTrafficHourlyBatchModelIsNotStopped(t *testing.T) {
	end := revStart.Add(30 * time.Hour)
	for _, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		m := newRevModel(1, "batch", "1.0", "", revStart, end, 1, constRate(1))
		m.times = burstTimes(revStart, end, time.Hour, time.Minute, 3000)
		m.advance()
		alerts, _, _ := revRun(t, pace, revStart, end, nil, m)
		if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
			t.Errorf("%s: %d alerts on a stationary hourly batch (%s); first: %v%s", paceName(pace), len(f), countKinds(alerts), f[:min(3, len(f))], summaries(alerts, 4))
		}
	}
}

func TestTraffic45MinuteWindowsVolumeIsQuiet(t *testing.T) {
	end := revStart.Add(60 * time.Hour)
	edit := func(c *config.Config) { c.Windows.Size = config.Duration(45 * time.Minute) }
	alerts, store, src := revRun(t, replay.Backlog, revStart, end, edit, newRevModel(21, "fraud", "1", "", revStart, end, 2, constRate(2)))
	if f := firing(alerts, end.Add(-2*time.Hour)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 3))
		_ = src
	}
}

func TestTrafficDailyCycleVolumeIsQuiet(t *testing.T) {
	end := revStart.Add(30 * time.Hour)
	rate := func(t time.Time) float64 {
		return 5 * (1 + 0.8*math.Cos(2*math.Pi*t.Sub(revStart).Hours()/24))
	}
	alerts, store, _ := revRun(t, replay.Backlog, revStart, end, nil, newRevModel(22, "shop", "1", "", revStart, end, 9, rate))
	if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 3))
	}
}

func TestTrafficPCAQuietOnStationaryStream(t *testing.T) {
	end := revStart.Add(24 * time.Hour)
	edit := func(c *config.Config) { c.Windows.Size = config.Duration(15 * time.Minute) }
	alerts, store, src := revRun(t, replay.Backlog, revStart, end, edit, newRevModel(31, "fraud", "1", "", revStart, end, 5, constRate(5)))
	if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 3))
	}
	pca := 0
	for _, v := range src.verdicts {
		if v.Multivariate != nil && v.Multivariate.Drifted {
			pca++
		}
	}
	t.Logf("PCA over threshold in %d of %d windows", pca, len(src.verdicts))
}

func TestTrafficLowVolumeMergedIsQuiet(t *testing.T) {
	end := revStart.Add(24 * time.Hour)
	alerts, store, src := revRun(t, replay.Live, revStart, end, nil,
		newRevModel(51, "rare", "1", "", revStart, end, 0.05, constRate(0.05)),
		newRevModel(52, "few", "1", "", revStart, end, 0.25, constRate(0.25)))
	if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 4))
	}
	notJudged := 0
	for _, v := range src.verdicts {
		if strings.HasPrefix(v.Judgement, "not judged") {
			notJudged++
		}
	}
	t.Logf("%d of %d verdicts not judged", notJudged, len(src.verdicts))
}

func TestTrafficIrregularPipelineIsNotStale(t *testing.T) {
	end := revStart.Add(12 * time.Hour)
	rng := rand.New(rand.NewPCG(9, 9))
	var runs []time.Time
	for at := revStart; at.Before(end.Add(-time.Minute)); at = at.Add(time.Duration(rng.ExpFloat64() * float64(10*time.Minute))) {
		runs = append(runs, at)
	}
	p := &revPipeline{name: "ingest", stages: []string{"extract", "load"}, runs: runs, rng: rand.New(rand.NewPCG(1, 2))}
	alerts, _, _ := revRun(t, replay.Live, revStart, end, nil,
		newRevModel(1, "fraud", "1.0", "", revStart, end, 5, constRate(5)), p)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts for %d healthy runs (%s); first: %v%s", len(f), len(runs), countKinds(alerts), f[:min(5, len(f))], summaries(alerts, 4))
	}
}

// A stationary categorical feature with about 2,000 distinct values (exponential
// ranks, most of them rare) must not drift: its rare categories and the ones beyond
// the reference's kept set are noise, not change (issue 10, item 3).
func TestTrafficHighCardinalityCategoricalIsQuiet(t *testing.T) {
	end := revStart.Add(3 * time.Hour)
	for _, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		m := newRevModel(16, "merchants", "1", "", revStart, end, 5, constRate(5))
		m.body = func(m *revModel, _ time.Time) string {
			return fmt.Sprintf(`"features":{"merchant":"m-%d","amount":%.2f},"prediction":%.3f,"latency_ms":%.1f,"status":"ok"`,
				int(m.rng.ExpFloat64()*300), 100+15*m.rng.NormFloat64(), m.rng.Float64(), 20+8*m.rng.ExpFloat64())
		}
		alerts, store, src := revRun(t, pace, revStart, end, nil, m)
		if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
			t.Errorf("%s: %d alerts in %d windows (%s); first: %v%s", paceName(pace), len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 3))
			t.Logf("breached per window: %v", breachedPerWindow(src.verdicts, "merchants")[:12])
		}
	}
}

// keep config imported for scenarios that edit it.
var _ = config.Default
