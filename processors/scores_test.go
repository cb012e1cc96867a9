package processors

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftd/driftd/schemas"
)

// ScoreSignals against scipy.stats.entropy (testdata/gen_scores.py).
func TestScoreSignalsMatchesScipy(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "scores_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Scores              map[string]float64
		Confidence, Entropy float64
	}
	if err := json.Unmarshal(body, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 8 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		conf, ent, ok := ScoreSignals(c.Scores)
		if !ok || math.Abs(conf-c.Confidence) > 1e-12 || math.Abs(ent-c.Entropy) > 1e-12 {
			t.Errorf("%v: confidence %v entropy %v (ok %v); scipy %v %v", c.Scores, conf, ent, ok, c.Confidence, c.Entropy)
		}
	}
}

// Scores near the float64 maximum are read relative to the highest (their sum would be
// +Inf: confidence 0 and entropy 0, both impossible, were reported).
func TestScoreSignalsOfHugeScores(t *testing.T) {
	conf, ent, ok := ScoreSignals(map[string]float64{"a": 1e308, "b": 1e308})
	if !ok || conf != 0.5 || math.Abs(ent-math.Ln2) > 1e-15 {
		t.Errorf("confidence %v entropy %v ok %v; want 0.5, ln 2", conf, ent, ok)
	}
}

func TestScoreSignalsRefusesUnusableScores(t *testing.T) {
	for _, scores := range []map[string]float64{nil, {}, {"a": -0.1, "b": 1.1}, {"a": 0, "b": 0}, {"a": math.NaN(), "b": 1},
		{"a": math.Inf(1), "b": 1}, {"1": 1.5}, {"1": -0.5}} {
		if conf, ent, ok := ScoreSignals(scores); ok {
			t.Errorf("%v: confidence %v entropy %v accepted", scores, conf, ent)
		}
	}
}

// A window aggregates the confidence and entropy of the predictions that have scores,
// outside the features' cap, and the same in any order of the scores.
func TestWindowAggregatesScoreSignals(t *testing.T) {
	w := newWindowAgg(SeriesKey{Model: "m", Version: "1"}, 0, 60000)
	lim := Limits{MaxFeatures: 1, MaxCategories: 10}
	for _, scores := range []map[string]float64{{"a": 0.9, "b": 0.1}, {"b": 0.4, "a": 0.6}, nil} {
		e := &schemas.PredictionEvent{Prediction: schemas.Value{Kind: schemas.String, Str: "a"}, Scores: scores,
			Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: 1}}}}
		w.add(e, nil, lim)
	}
	conf, ent := w.Features[ConfidenceFeature], w.Features[EntropyFeature]
	if conf == nil || ent == nil || conf.Count != 2 || ent.Count != 2 || w.DroppedFeatures != 0 {
		t.Fatalf("confidence %+v entropy %+v dropped %d", conf, ent, w.DroppedFeatures)
	}
	if m := conf.Moments.Mean; math.Abs(m-0.75) > 1e-12 {
		t.Errorf("mean confidence %v, want 0.75", m)
	}
	if !IsOutputFeature(ConfidenceFeature) || !IsOutputFeature(EntropyFeature) || !IsOutputFeature(PredictionFeature) || IsOutputFeature("x") {
		t.Error("IsOutputFeature")
	}
}

// A window's latency is that of the events that carry one: errors sent without a
// latency (NoLatency) count as events and errors, not as answers in 0 ms.
func TestWindowLatencyIsOfTheEventsThatCarryOne(t *testing.T) {
	w := newWindowAgg(SeriesKey{Model: "m", Version: "1"}, 0, 60000)
	lim := Limits{MaxFeatures: 1, MaxCategories: 10}
	for _, e := range []schemas.PredictionEvent{
		{Status: schemas.StatusOK, LatencyMs: 10}, {Status: schemas.StatusOK, LatencyMs: 20}, {Status: schemas.StatusOK, LatencyMs: 30},
		{Status: schemas.StatusError, NoLatency: true}, {Status: schemas.StatusError, NoLatency: true}, {Status: schemas.StatusError, NoLatency: true},
	} {
		w.add(&e, nil, lim)
	}
	if w.Events != 6 || w.Errors != 3 || w.Latency.Count() != 3 || w.LatencyMax != 30 {
		t.Fatalf("events %d errors %d latencies %v max %v, want 6, 3, 3, 30", w.Events, w.Errors, w.Latency.Count(), w.LatencyMax)
	}
	if p50 := w.Latency.Quantile(0.5); math.Abs(p50-20) > 20*0.02 {
		t.Errorf("p50 latency %v, want 20 (the sketch's 1%%)", p50)
	}
}
