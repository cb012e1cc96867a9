package storage

import (
	"strings"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// MaxPartitionsPerBlock is how many table partitions one INSERT block may touch: the
// engine refuses more (setting max_partitions_per_insert_block, default 100, code 252),
// and the result tables are partitioned by day, so a backfill over more days is split.
const MaxPartitionsPerBlock = 100

// table is one of the tables Write fills: its columns, in the order of its rows, and
// the partition of a row (its PARTITION BY; nil for an unpartitioned table).
type table struct {
	name      string
	cols      string
	partition func(row []any) int64
}

// byDay is toDate of the time in column i; byMonth its toYYYYMM (both in UTC, the
// columns' time zone).
func byDay(i int) func([]any) int64 {
	return func(row []any) int64 { return day(row[i].(time.Time)) }
}

// day is t's partition in a table partitioned by day (byDay).
func day(t time.Time) int64 { return t.Unix() / 86400 }

// insertSQL is the statement that fills t, in the column order of its rows.
func (t table) insertSQL(db string) string {
	return "INSERT INTO " + db + "." + t.name + " (" + t.cols + ")"
}

func byMonth(i int) func([]any) int64 {
	return func(row []any) int64 {
		t := row[i].(time.Time).UTC()
		return int64(t.Year())*12 + int64(t.Month())
	}
}

func (t table) columns() []string { return strings.Split(t.cols, ", ") }

// The result tables (sql/migrations), in the column order of their rows below.
func modelStats() table {
	return table{"window_model_stats", "model, model_version, deployment, window_start, window_end, topic, partition, first_offset, last_offset, events, ok, errors, timeouts, null_predictions, latency_p50, latency_p90, latency_p95, latency_p99, latency_max, latency_sketch, input_size_count, input_size_mean, input_size_std, input_size_min, input_size_max, dropped_features, judgement, judged_from, expected_events, volume_low, joint_n, joint_mean, joint_comoments, written_at", byDay(3)}
}

func featureStats() table {
	return table{"window_feature_stats", "model, model_version, deployment, window_start, window_end, topic, partition, feature, kind, count, missing, mismatched, mean, std, min, max, p50, p90, p95, p99, sketch, reference_id, bin_edges, bin_counts, raw, categories, unseen, written_at", byDay(3)}
}

func driftScores() table {
	return table{"drift_scores", "model, model_version, deployment, window_start, window_end, feature, kind, reference_id, n, psi, test, statistic, p_value, p_adjusted, alpha, drifted, severity, js, hellinger, kl, wasserstein_norm, tvd, linf, g_test_p, ad_p, cvm_p, written_at", byDay(3)}
}

func stageStats() table {
	return table{"pipeline_stage_stats", "pipeline, stage, window_start, window_end, topic, partition, first_offset, last_offset, runs, failures, duration_p50, duration_p90, duration_p99, duration_max, records_in, records_out, records_lost, null_count, last_success, errors, written_at", byDay(2)}
}

func lateEvents() table {
	return table{"late_events", "topic, partition, offset, event_id, model, model_version, deployment, window_start, window_end, event_time, written_at", byDay(7)}
}

func alertRows() table {
	return table{"alerts", "alert_id, fingerprint, state, severity, kind, model, model_version, deployment, feature, pipeline, stage, metric, value, threshold, window_start, window_end, emitted_at, summary, details", byMonth(15)}
}

func modelRow(b *Batch, c processors.Closed, p *processors.Partial, at time.Time) []any {
	judgement, judgedFrom, expected, low := judgementOf(b, c.Merged)
	w := p.WindowAgg
	jointN, jointMean, jointC := 0.0, []float64{}, []float64{}
	if w.Joint != nil && w.Joint.N > 0 {
		jointN, jointMean, jointC = w.Joint.N, w.Joint.Mean, w.Joint.C
	}
	return []any{w.Series.Model, w.Series.Version, w.Series.Deployment, ms(w.Start), ms(w.End),
		p.Topic, int32(p.Partition), p.FirstOffset, p.LastOffset, w.Events, w.OK, w.Errors, w.Timeouts, w.NullPredictions,
		w.Latency.Quantile(0.5), w.Latency.Quantile(0.9), w.Latency.Quantile(0.95), w.Latency.Quantile(0.99), w.LatencyMax,
		string(w.Latency.Encode()), uint64(w.InputSize.N), finite(w.InputSize.Mean), finite(w.InputSize.Std()),
		finite(w.InputSize.Min), finite(w.InputSize.Max), w.DroppedFeatures, judgement, judgedFrom, expected, low,
		jointN, jointMean, jointC, at}
}

// judgementOf is how window w was judged, as its partials' rows carry it: the
// judgement, the start of the span judged, the events expected and whether it was low.
func judgementOf(b *Batch, w *processors.WindowAgg) (string, time.Time, float64, uint8) {
	v := b.verdict(w)
	judgement, judgedFrom, expected, low := "", ms(w.Start), 0.0, uint8(0)
	if v != nil {
		judgement, expected = v.Judgement, finite(v.ExpectedEvents)
		if !v.JudgedFrom.IsZero() {
			judgedFrom = v.JudgedFrom.UTC()
		}
		low = flag(v.VolumeLow)
	}
	return judgement, judgedFrom, expected, low
}

func featureRows(p *processors.Partial, at time.Time) [][]any {
	w := p.WindowAgg
	all := make([]*processors.FeatureAgg, 0, len(w.Features)+1)
	for _, name := range w.FeatureNames() {
		all = append(all, w.Features[name])
	}
	if w.Prediction != nil {
		all = append(all, w.Prediction)
	}
	rows := make([][]any, 0, len(all))
	for _, f := range all {
		var sketch string
		var q [4]float64
		if f.Kind == processors.Numeric {
			sketch = string(f.Sketch.Encode())
			for i, qq := range processors.Quantiles {
				q[i] = f.Sketch.Quantile(qq)
			}
		}
		edges, bins, raw := f.Edges, f.Bins, []float64{}
		if edges == nil {
			edges, bins = []float64{}, []uint64{}
		}
		if p.KeepRaw && len(f.Raw) > 0 {
			raw = f.Raw
		}
		cats := f.Categories
		if cats == nil {
			cats = map[string]uint64{}
		}
		rows = append(rows, []any{w.Series.Model, w.Series.Version, w.Series.Deployment, ms(w.Start), ms(w.End),
			p.Topic, int32(p.Partition), f.Name, f.Kind.String(), f.Count, f.Missing, f.Mismatched,
			finite(f.Moments.Mean), finite(f.Moments.Std()), finite(f.Moments.Min), finite(f.Moments.Max),
			q[0], q[1], q[2], q[3], sketch, w.ReferenceID, edges, bins, raw, cats, f.Unseen, at})
	}
	return rows
}

func scoreRows(v detectors.Verdict, at time.Time) [][]any {
	w := v.Window
	var rows [][]any
	for _, sc := range v.Scores {
		rows = append(rows, []any{w.Series.Model, w.Series.Version, w.Series.Deployment, ms(w.Start), ms(w.End),
			sc.Feature, sc.Kind, v.ReferenceID, sc.N, finite(sc.PSI), sc.Test, finite(sc.Statistic), finite(sc.PValue),
			finite(sc.PAdjusted), sc.Alpha, flag(sc.Drifted), sc.Severity, finite(sc.JS), finite(sc.Hellinger), finite(sc.KL),
			finite(sc.WassersteinNorm), finite(sc.TVD), finite(sc.LInf), finite(sc.GTestP), finite(sc.ADP), finite(sc.CvMP), at})
	}
	if m := v.Multivariate; m != nil {
		rows = append(rows, []any{w.Series.Model, w.Series.Version, w.Series.Deployment, ms(w.Start), ms(w.End),
			MultivariateFeature, "multivariate", v.ReferenceID, uint64(m.N), 0.0, "pca_reconstruction", finite(m.Error), 0.0,
			0.0, 0.0, flag(m.Drifted), "", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, at})
	}
	return rows
}

func stageRow(r StageRow, at time.Time) []any {
	errs := r.Errors
	if errs == nil {
		errs = map[string]uint64{}
	}
	return []any{r.Pipeline, r.Stage, r.Start.UTC(), r.End.UTC(), r.TP.Topic, int32(r.TP.Partition), r.FirstOffset, r.LastOffset,
		r.Runs, r.Failures, finite(r.DurationP50), finite(r.DurationP90), finite(r.DurationP99), finite(r.DurationMax),
		finite(r.RecordsIn), finite(r.RecordsOut), finite(r.RecordsIn - r.RecordsOut), finite(r.NullCount), r.LastSuccess.UTC(), errs, at}
}

func lateRow(l LateEvent, at time.Time) []any {
	return []any{l.Source.Topic, int32(l.Source.Partition), l.Source.Offset, l.EventID, l.Series.Model,
		l.Series.Version, l.Series.Deployment, ms(l.Start), ms(l.End), l.EventTime.UTC(), at}
}

func alertRow(a *schemas.AlertEvent) []any {
	details := a.Details
	if details == nil {
		details = map[string]string{}
	}
	return []any{a.AlertID, a.Fingerprint, a.State, a.Severity, a.Kind, a.Model, a.ModelVersion, a.Deployment,
		a.Feature, a.Pipeline, a.Stage, a.Metric, finite(a.Value), finite(a.Threshold), a.WindowStart.UTC(),
		a.WindowEnd.UTC(), a.EmittedAt.UTC(), a.Summary, details}
}

// flag is a bool as the UInt8 columns hold it.
func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
