package storage

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Units splits b into the parts that are written, or refused, on their own: each window
// with its verdict, each stage row, each late event, each alert. When ClickHouse refuses
// a batch for good, writing its units apart finds the rows at fault and keeps the rest.
func (b *Batch) Units() []*Batch {
	var out []*Batch
	judged := make([]bool, len(b.Verdicts))
	for _, c := range b.Closed {
		u := &Batch{Closed: []processors.Closed{c}, WrittenAt: b.WrittenAt}
		for i, v := range b.Verdicts {
			if !c.Supplement && !judged[i] && v.Window.Series == c.Merged.Series && v.Window.Start == c.Merged.Start {
				u.Verdicts = append(u.Verdicts, v)
				judged[i] = true
			}
		}
		out = append(out, u)
	}
	for i, v := range b.Verdicts {
		if !judged[i] {
			out = append(out, &Batch{Verdicts: []detectors.Verdict{v}, WrittenAt: b.WrittenAt})
		}
	}
	for _, r := range b.Stages {
		out = append(out, &Batch{Stages: []StageRow{r}, WrittenAt: b.WrittenAt})
	}
	for _, l := range b.Late {
		out = append(out, &Batch{Late: []LateEvent{l}, WrittenAt: b.WrittenAt})
	}
	for _, a := range b.Alerts {
		out = append(out, &Batch{Alerts: []*schemas.AlertEvent{a}, WrittenAt: b.WrittenAt})
	}
	for _, c := range b.Canary {
		out = append(out, &Batch{Canary: []detectors.CanaryComparison{c}, WrittenAt: b.WrittenAt})
	}
	for _, r := range b.Shadow {
		out = append(out, &Batch{Shadow: []ShadowRow{r}, WrittenAt: b.WrittenAt})
	}
	if len(b.AlertStates) > 0 || len(b.StageStates) > 0 || len(b.ReferenceSamples) > 0 || len(b.Performance) > 0 ||
		len(b.SampleParts) > 0 || len(b.JudgedThrough) > 0 || len(b.Progress) > 0 || len(b.StageRuns) > 0 {
		// driftd's own detection state: one unit, written after the rows it follows.
		out = append(out, &Batch{AlertStates: b.AlertStates, StageStates: b.StageStates, ReferenceSamples: b.ReferenceSamples,
			Performance: b.Performance, SampleParts: b.SampleParts, JudgedThrough: b.JudgedThrough, Progress: b.Progress, StageRuns: b.StageRuns, WrittenAt: b.WrittenAt})
	}
	return out
}

// Merge is one batch of the rows of every unit (written at the first one's time).
func Merge(units []*Batch) *Batch {
	m := &Batch{}
	for i, u := range units {
		if i == 0 {
			m.WrittenAt = u.WrittenAt
		}
		m.Closed = append(m.Closed, u.Closed...)
		m.Stages = append(m.Stages, u.Stages...)
		m.Verdicts = append(m.Verdicts, u.Verdicts...)
		m.Late = append(m.Late, u.Late...)
		m.Alerts = append(m.Alerts, u.Alerts...)
		m.AlertStates = append(m.AlertStates, u.AlertStates...)
		m.StageStates = append(m.StageStates, u.StageStates...)
		m.ReferenceSamples = append(m.ReferenceSamples, u.ReferenceSamples...)
		m.Performance = append(m.Performance, u.Performance...)
		m.Canary = append(m.Canary, u.Canary...)
		m.Shadow = append(m.Shadow, u.Shadow...)
		m.SampleParts = append(m.SampleParts, u.SampleParts...)
		m.JudgedThrough = append(m.JudgedThrough, u.JudgedThrough...)
		m.Progress = append(m.Progress, u.Progress...)
		m.StageRuns = append(m.StageRuns, u.StageRuns...)
	}
	return m
}

// Refused is a part of a batch that ClickHouse refused for good, as the rows it would
// have written, with the Kafka records those rows were computed from.
type Refused struct {
	// The records: Topic's Partition from FirstOffset to LastOffset (-1 and -1 for an
	// alert, which no one record stands behind).
	Topic                   string
	Partition               int
	FirstOffset, LastOffset int64
	// Rows is JSON, {"<table>": [{"<column>": value, ...}, ...], ...}: each table's rows
	// as INSERT INTO <table> FORMAT JSONEachRow reads them, except that the sketch columns
	// (binary) are base64 and ±Inf and NaN are strings.
	Rows []byte
}

// Refused turns b into what is set aside for it: one Refused per window and source
// partition (the window's drift scores go with its first partition), per stage row, per
// late event, per alert, per canary comparison and per shadow window. A window's rows carry
// the version they would have been written with (spreadGroup: as a spread group's member
// writes them), so that rows replayed from the dead-letter topic replace what they would
// have.
func (b *Batch) Refused(spreadGroup bool) ([]Refused, error) {
	at := b.WrittenAt.UTC()
	var out []Refused
	add := func(topic string, partition int, first, last int64, rows map[string][]map[string]any) error {
		body, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encode refused rows of %s/%d at %d: %w", topic, partition, first, err)
		}
		out = append(out, Refused{Topic: topic, Partition: partition, FirstOffset: first, LastOffset: last, Rows: body})
		return nil
	}
	scored := map[*processors.WindowAgg]bool{}
	for _, c := range b.Closed {
		for i, p := range c.Partials {
			rows := map[string][]map[string]any{
				"window_model_stats":   named(modelStats(), [][]any{modelRow(b, c, p, b.partialVersion(c.Merged, spreadGroup))}),
				"window_feature_stats": named(featureStats(), featureRows(p, at)),
			}
			if i == 0 && !c.Supplement {
				for _, v := range b.Verdicts {
					if v.Window.Series == c.Merged.Series && v.Window.Start == c.Merged.Start {
						if sc := scoreRows(v, at); len(sc) > 0 {
							rows["drift_scores"] = append(rows["drift_scores"], named(driftScores(), sc)...)
						}
						scored[v.Window] = true
					}
				}
			}
			if err := add(p.Topic, p.Partition, p.FirstOffset, p.LastOffset, rows); err != nil {
				return nil, err
			}
		}
	}
	for _, v := range b.Verdicts {
		if sc := scoreRows(v, at); !scored[v.Window] && len(sc) > 0 {
			if err := add("", -1, -1, -1, map[string][]map[string]any{"drift_scores": named(driftScores(), sc)}); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range b.Stages {
		if err := add(r.TP.Topic, r.TP.Partition, r.FirstOffset, r.LastOffset,
			map[string][]map[string]any{"pipeline_stage_stats": named(stageStats(), [][]any{stageRow(r, at)})}); err != nil {
			return nil, err
		}
	}
	for _, l := range b.Late {
		if err := add(l.Source.Topic, l.Source.Partition, l.Source.Offset, l.Source.Offset,
			map[string][]map[string]any{"late_events": named(lateEvents(), [][]any{lateRow(l, at)})}); err != nil {
			return nil, err
		}
	}
	for _, a := range b.Alerts {
		if err := add("", -1, -1, -1, map[string][]map[string]any{"alerts": named(alertRows(), [][]any{alertRow(a)})}); err != nil {
			return nil, err
		}
	}
	for _, c := range b.Canary {
		if err := add("", -1, -1, -1, map[string][]map[string]any{"canary_analysis": named(canaryRows(), [][]any{canaryRow(c, at)})}); err != nil {
			return nil, err
		}
	}
	for _, r := range b.Shadow {
		if err := add("", -1, -1, -1, map[string][]map[string]any{"shadow_analysis": named(shadowRows(), [][]any{shadowRow(r, at)})}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonFloat is f, or its name where JSON has no number for it (bin edges may be ±Inf).
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// named turns rows of t into column → value maps for JSON.
func named(t table, rows [][]any) []map[string]any {
	cols := t.columns()
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		m := make(map[string]any, len(cols))
		for j, c := range cols {
			v := row[j]
			switch x := v.(type) {
			case time.Time:
				if x.IsZero() {
					x = time.Unix(0, 0) // as clickhouse-go stores a zero time
				}
				// As ClickHouse's JSONEachRow reads a DateTime64(3).
				v = x.UTC().Format("2006-01-02 15:04:05.000")
			case string:
				if c == "sketch" || c == "latency_sketch" {
					v = []byte(x) // base64: the sketch is binary
				}
			case float64:
				v = jsonFloat(x)
			case []float64:
				fs := make([]any, len(x))
				for k, f := range x {
					fs[k] = jsonFloat(f)
				}
				v = fs
			}
			m[c] = v
		}
		out[i] = m
	}
	return out
}
