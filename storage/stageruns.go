package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/processors"
)

// StageRun is one finished run of a pipeline stage as read from the pipeline topic
// (migration 0018): what a drift alert's upstream hint is made of when the model's judge
// is not the member that reads the pipeline topic (a spread group).
type StageRun struct {
	Pipeline, Stage string
	Time            time.Time
	Failed          bool
	// Models are the models the run says it feeds.
	Models []string
	Source processors.Source
}

// StageLink is a stage that said it feeds a model, from its first run that said so.
type StageLink struct {
	Model, Pipeline, Stage string
	Since                  time.Time
}

func stageRuns() table {
	return table{"stage_runs", "pipeline, stage, event_time, failed, models, topic, partition, offset, written_at", byDay(2)}
}

func (s *Store) writeStageRuns(ctx context.Context, b *Batch) error {
	in := s.inserter(ctx, stageRuns())
	for _, r := range b.StageRuns {
		models := r.Models
		if models == nil {
			models = []string{}
		}
		if err := in.append([]any{r.Pipeline, r.Stage, r.Time.UTC(), flag(r.Failed), models, r.Source.Topic, int32(r.Source.Partition),
			r.Source.Offset, b.WrittenAt.UTC()}); err != nil {
			return err
		}
	}
	return in.flush()
}

// LoadStageLinks returns the stages whose runs said they feed a model, each from the
// first such run: runs before before (none: every run) and of models (none named: every
// model).
func (s *Store) LoadStageLinks(ctx context.Context, before time.Time, models ...string) ([]StageLink, error) {
	where, args := "", []any{}
	if !before.IsZero() {
		where += " AND event_time < {before:DateTime64(3, 'UTC')}"
		args = append(args, clickhouse.Named("before", chTime(before)))
	}
	if len(models) > 0 {
		where += " AND model IN {models:Array(String)}"
		args = append(args, clickhouse.Named("models", models))
	}
	rows, err := s.conn.Query(ctx, `SELECT model, pipeline, stage, min(event_time) FROM `+s.db+`.stage_runs FINAL
ARRAY JOIN models AS model WHERE 1`+where+`
GROUP BY model, pipeline, stage ORDER BY model, pipeline, stage`, args...)
	if err != nil {
		return nil, fmt.Errorf("load the stages feeding models: %w", err)
	}
	defer rows.Close()
	var out []StageLink
	for rows.Next() {
		var l StageLink
		if err := rows.Scan(&l.Model, &l.Pipeline, &l.Stage, &l.Since); err != nil {
			return nil, fmt.Errorf("load the stages feeding models: %w", err)
		}
		l.Since = l.Since.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// LoadStageRuns returns a stage's failed runs in [from, to) and its last successes
// up to to (at most successes of them, each time once), oldest first.
func (s *Store) LoadStageRuns(ctx context.Context, pipeline, stage string, from, to time.Time, successes int) (failures, succeeded []time.Time, err error) {
	args := []any{clickhouse.Named("pipeline", pipeline), clickhouse.Named("stage", stage),
		clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)), clickhouse.Named("n", successes)}
	load := func(what, q string) ([]time.Time, error) {
		rows, err := s.conn.Query(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("load the %s of stage %s of pipeline %s: %w", what, stage, pipeline, err)
		}
		defer rows.Close()
		var out []time.Time
		for rows.Next() {
			var t time.Time
			if err := rows.Scan(&t); err != nil {
				return nil, fmt.Errorf("load the %s of stage %s of pipeline %s: %w", what, stage, pipeline, err)
			}
			out = append(out, t.UTC())
		}
		return out, rows.Err()
	}
	where := `FROM ` + s.db + `.stage_runs FINAL WHERE pipeline = {pipeline:String} AND stage = {stage:String}`
	if failures, err = load("failures", `SELECT event_time `+where+` AND failed = 1
AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} ORDER BY event_time`); err != nil {
		return nil, nil, err
	}
	if succeeded, err = load("successes", `SELECT t FROM (SELECT DISTINCT event_time AS t `+where+` AND failed = 0
AND event_time <= {to:DateTime64(3, 'UTC')} ORDER BY t DESC LIMIT {n:UInt32}) ORDER BY t`); err != nil {
		return nil, nil, err
	}
	return failures, succeeded, nil
}
