package main

import (
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
)

// A JSON-lines baseline with class scores gives the reference of the model's confidence
// and entropy, as the first windows of its events would; flat and event-shaped lines
// alike.
func TestBaselineReadsScores(t *testing.T) {
	lines := `{"amount": 10, "prediction": "a", "scores": {"a": 0.9, "b": 0.1}}
{"features": {"amount": 12}, "prediction": "b", "scores": {"a": 0.3, "b": 0.7}}
{"amount": 11, "prediction": "a"}
`
	s, err := readJSONL(strings.NewReader(lines), "scores.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Build("m", "1", detectors.SourceFile, 1, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
	conf, ent := p.Features[processors.ConfidenceFeature], p.Features[processors.EntropyFeature]
	if conf == nil || ent == nil || p.Features["scores"] != nil || p.Features["amount"] == nil {
		t.Fatalf("features %v", p.Features)
	}
	if conf.Present != 2 || ent.Present != 2 {
		t.Errorf("confidence from %d lines, entropy from %d; want 2 each", conf.Present, ent.Present)
	}
	if _, err := readJSONL(strings.NewReader(`{"amount": 1, "scores": [0.5]}`), "bad.jsonl"); err == nil || !strings.Contains(err.Error(), "scores") {
		t.Errorf("scores not an object: %v", err)
	}
}
