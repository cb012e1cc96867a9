package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/processors"
)

// What a spread group writes so that one member per model judges the model's windows
// exactly from the partials every member wrote (migration 0017, pipeline/spread.go).

// PartitionProgress is how far one member has written a model's windows from one
// partition: every window of the model ending at or before Through is written for it,
// and EventMax is the newest event time the partition delivered for the model. Model ""
// says the partition has been read past its reader's start-up grace.
type PartitionProgress struct {
	Model    string
	TP       processors.TopicPartition
	Through  time.Time
	EventMax time.Time
	// Lagging: the partition had records not read yet when the row was written.
	Lagging bool
	// Generation is the consumer group's generation its writer read the partition in
	// (0: not known).
	Generation int32
}

// SamplePart is what one partition's events add to a first window of a model version
// that has no reference yet (detectors.Sample.MarshalBinary).
type SamplePart struct {
	Model, Version string
	Start          time.Time
	TP             processors.TopicPartition
	Sample         []byte
}

// JudgeProgress is the end of the last window of a model that is judged: its verdicts,
// alerts and judgement are written.
type JudgeProgress struct {
	Model   string
	Through time.Time
}

func (s *Store) writeSampleParts(ctx context.Context, b *Batch) error {
	in := s.inserter(ctx, table{name: "reference_sample_parts", cols: "model, model_version, window_start, topic, partition, sample, written_at"})
	for _, p := range b.SampleParts {
		if err := in.append([]any{p.Model, p.Version, p.Start.UTC(), p.TP.Topic, int32(p.TP.Partition), string(p.Sample), b.WrittenAt.UTC()}); err != nil {
			return err
		}
	}
	return in.flush()
}

// writeJudgement writes what judging windows read back changed in their partials' rows
// (the judgement and volume columns, as one member writes them with the partials), then
// how far each model is judged: a restart that finds the progress finds the rows.
func (s *Store) writeJudgement(ctx context.Context, b *Batch) error {
	if err := s.rewriteJudged(ctx, b); err != nil {
		return err
	}
	in := s.inserter(ctx, table{name: "judge_progress", cols: "model, through, written_at"})
	for _, p := range b.JudgedThrough {
		if err := in.append([]any{p.Model, p.Through.UTC(), b.WrittenAt.UTC()}); err != nil {
			return err
		}
	}
	return in.flush()
}

// rewriteJudged writes again, with their window's judgement, the partials' rows of the
// windows in b that were read back (Closed without partials): one INSERT … SELECT for
// the batch, so that ClickHouse copies the rows it holds (ReplacingMergeTree keeps the
// newer written_at) and nothing of a partial passes through driftd.
func (s *Store) rewriteJudged(ctx context.Context, b *Batch) error {
	var (
		models, versions, deployments, judgements []string
		starts                                    []int64
		from                                      []time.Time
		expected                                  []float64
		low                                       []uint32 // not []uint8: that binds as a string
	)
	distinct := map[string]bool{}
	for _, c := range b.Closed {
		if len(c.Partials) > 0 || c.Supplement {
			continue
		}
		w := c.Merged
		judgement, judgedFrom, exp, l := judgementOf(b, w)
		models, versions, deployments = append(models, w.Series.Model), append(versions, w.Series.Version), append(deployments, w.Series.Deployment)
		starts, judgements, from = append(starts, w.Start), append(judgements, judgement), append(from, judgedFrom)
		expected, low = append(expected, exp), append(low, uint32(l))
		distinct[w.Series.Model] = true
	}
	if len(starts) == 0 {
		return nil
	}
	lo, hi := slices.Min(starts), slices.Max(starts)
	uniq := make([]string, 0, len(distinct))
	for m := range distinct {
		uniq = append(uniq, m)
	}
	replace := map[string]string{
		"judgement":       "arrayElement({judgements:Array(String)}, i)",
		"judged_from":     "arrayElement({judged_from:Array(DateTime64(3, 'UTC'))}, i)",
		"expected_events": "arrayElement({expected:Array(Float64)}, i)",
		"volume_low":      "toUInt8(arrayElement({low:Array(UInt32)}, i))",
		// Newer than the row it replaces even when its writer's clock was ahead.
		"written_at": "greatest({at:DateTime64(3, 'UTC')}, written_at + toIntervalMillisecond(1))",
	}
	cols := strings.Split(modelStats().cols, ", ")
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = c
		if e, ok := replace[c]; ok {
			sel[i] = e + " AS " + c
		}
	}
	q := fmt.Sprintf(`INSERT INTO %[1]s.window_model_stats (%[2]s)
SELECT %[3]s FROM (
  SELECT *, indexOf(arrayZip({models:Array(String)}, {versions:Array(String)}, {deployments:Array(String)}, {starts:Array(Int64)}),
                    (model, model_version, deployment, toUnixTimestamp64Milli(window_start))) AS i
  FROM %[1]s.window_model_stats FINAL
  WHERE model IN {uniq:Array(String)} AND window_start >= {lo:DateTime64(3, 'UTC')} AND window_start <= {hi:DateTime64(3, 'UTC')} AND partition >= 0)
WHERE i > 0`, s.db, strings.Join(cols, ", "), strings.Join(sel, ", "))
	fromStr := make([]string, len(from))
	for i, t := range from {
		fromStr[i] = chTime(t)
	}
	err := s.conn.Exec(s.writing(ctx), q, clickhouse.Named("models", models), clickhouse.Named("versions", versions),
		clickhouse.Named("deployments", deployments), clickhouse.Named("starts", starts), clickhouse.Named("uniq", uniq),
		clickhouse.Named("lo", chTime(ms(lo))), clickhouse.Named("hi", chTime(ms(hi))),
		clickhouse.Named("judgements", judgements), clickhouse.Named("judged_from", fromStr),
		clickhouse.Named("expected", expected), clickhouse.Named("low", low), clickhouse.Named("at", chTime(b.WrittenAt)))
	if err != nil {
		return fmt.Errorf("write the judgement of %d windows read back: %w", len(starts), err)
	}
	return nil
}

func (s *Store) writeProgress(ctx context.Context, b *Batch) error {
	in := s.inserter(ctx, table{name: "read_progress", cols: "model, topic, partition, through, event_max, lagging, generation, written_at"})
	for _, p := range b.Progress {
		if err := in.append([]any{p.Model, p.TP.Topic, int32(p.TP.Partition), p.Through.UTC(), p.EventMax.UTC(), p.Lagging, p.Generation, b.WrittenAt.UTC()}); err != nil {
			return err
		}
	}
	return in.flush()
}

// LoadPartitionProgress returns every partition's progress, per model: the row written
// last (read_progress, migration 0024), which may say less than an earlier one (a
// partition re-read from its commit by the member it moved to).
func (s *Store) LoadPartitionProgress(ctx context.Context) ([]PartitionProgress, error) {
	rows, err := s.conn.Query(ctx, `SELECT model, topic, partition, through, event_max, lagging, generation FROM `+s.db+`.read_progress FINAL ORDER BY model, topic, partition`)
	if err != nil {
		return nil, fmt.Errorf("load partition progress: %w", err)
	}
	defer rows.Close()
	var out []PartitionProgress
	for rows.Next() {
		var (
			p    PartitionProgress
			part int32
		)
		if err := rows.Scan(&p.Model, &p.TP.Topic, &part, &p.Through, &p.EventMax, &p.Lagging, &p.Generation); err != nil {
			return nil, fmt.Errorf("load partition progress: %w", err)
		}
		p.TP.Partition, p.Through, p.EventMax = int(part), p.Through.UTC(), p.EventMax.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// LoadJudgeProgress returns how far each model is judged: every model's, or only those
// of models if any are named.
func (s *Store) LoadJudgeProgress(ctx context.Context, models ...string) ([]JudgeProgress, error) {
	where, args := "", []any(nil)
	if len(models) > 0 {
		where, args = " WHERE model IN {models:Array(String)}", []any{clickhouse.Named("models", models)}
	}
	rows, err := s.conn.Query(ctx, `SELECT model, max(through) FROM `+s.db+`.judge_progress`+where+` GROUP BY model ORDER BY model`, args...)
	if err != nil {
		return nil, fmt.Errorf("load judge progress: %w", err)
	}
	defer rows.Close()
	var out []JudgeProgress
	for rows.Next() {
		var p JudgeProgress
		if err := rows.Scan(&p.Model, &p.Through); err != nil {
			return nil, fmt.Errorf("load judge progress: %w", err)
		}
		p.Through = p.Through.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// LoadWrittenWindows returns the windows of models starting after from and ending at or
// before through, with the last offset written per partition: what a spread member
// learns is written when it learns that those windows are judged, so that records of
// them it reads again are replays, not late. Bounded by window_start, the read skips the
// days' partitions outside the range.
func (s *Store) LoadWrittenWindows(ctx context.Context, models []string, from, through time.Time) ([]ClosedWindow, error) {
	rows, err := s.conn.Query(ctx, `SELECT model, window_start, any(window_end), topic, partition, max(last_offset)
FROM `+s.db+`.window_model_stats
WHERE model IN {models:Array(String)} AND window_start > {from:DateTime64(3, 'UTC')} AND window_start < {through:DateTime64(3, 'UTC')}
  AND window_end <= {through:DateTime64(3, 'UTC')}
GROUP BY model, window_start, topic, partition`, clickhouse.Named("models", models),
		clickhouse.Named("from", chTime(from)), clickhouse.Named("through", chTime(through)))
	if err != nil {
		return nil, fmt.Errorf("load written windows: %w", err)
	}
	out, err := closedWindows(rows)
	if err != nil {
		return nil, fmt.Errorf("load written windows: %w", err)
	}
	return out, nil
}

// WindowEnd returns the end of model's nth window (counted from 1, over every series)
// ending after after, and whether it has that many: a spread judge reads back and judges
// at most so many windows at once.
func (s *Store) WindowEnd(ctx context.Context, model string, after time.Time, nth int) (time.Time, bool, error) {
	if nth < 1 {
		return time.Time{}, false, fmt.Errorf("the window end of %s after %v: window %d, want 1 or more", model, after, nth)
	}
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT window_end FROM `+s.db+`.window_model_stats
WHERE model = {model:String} AND window_end > {after:DateTime64(3, 'UTC')}
ORDER BY window_end LIMIT 1 OFFSET {skip:UInt64}`,
		clickhouse.Named("model", model), clickhouse.Named("after", chTime(after)), clickhouse.Named("skip", uint64(nth-1)))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("the end of window %d of %s after %v: %w", nth, model, after, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return time.Time{}, false, rows.Err()
	}
	var end time.Time
	if err := rows.Scan(&end); err != nil {
		return time.Time{}, false, fmt.Errorf("the end of window %d of %s after %v: %w", nth, model, after, err)
	}
	return end.UTC(), true, rows.Err()
}

// LoadSampleParts returns the partitions' shares of model's first windows starting in
// [from, to], by version, window and partition.
func (s *Store) LoadSampleParts(ctx context.Context, model string, from, to time.Time) ([]SamplePart, error) {
	rows, err := s.conn.Query(ctx, `SELECT model_version, window_start, topic, partition, sample FROM `+s.db+`.reference_sample_parts FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3, 'UTC')} AND window_start <= {to:DateTime64(3, 'UTC')}
ORDER BY model_version, window_start, topic, partition`,
		clickhouse.Named("model", model), clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)))
	if err != nil {
		return nil, fmt.Errorf("load reference sample parts of %s: %w", model, err)
	}
	defer rows.Close()
	var out []SamplePart
	for rows.Next() {
		p := SamplePart{Model: model}
		var (
			part int32
			body string
		)
		if err := rows.Scan(&p.Version, &p.Start, &p.TP.Topic, &part, &body); err != nil {
			return nil, fmt.Errorf("load reference sample parts of %s: %w", model, err)
		}
		p.Start, p.TP.Partition, p.Sample = p.Start.UTC(), int(part), []byte(body)
		out = append(out, p)
	}
	return out, rows.Err()
}

// judgedOnly restricts a read of window_model_stats (aliased w), in a spread group's view
// (ForSpreadGroup), to the windows judged as judge_progress records them (a spread group
// writes partials before they are judged; a model with no row has none judged): a restart
// restores the judging state from what was judged, as one member's does. Migration 0017
// recorded the windows written before it as judged, and one member records what it judges.
func (s *Store) judgedOnly() (join, cond string) {
	if !s.spreadGroup {
		return "", "1"
	}
	// A model with no row reads as NULL (join_use_nulls = 1) or 1970 (the default).
	return `GLOBAL LEFT JOIN (SELECT model, max(through) AS judged FROM ` + s.db + `.judge_progress GROUP BY model) AS jp ON w.model = jp.model`,
		`w.window_end <= ifNull(jp.judged, toDateTime64(0, 3, 'UTC'))`
}
