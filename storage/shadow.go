package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// ShadowRow is one shadow window's join with the primary, as stored.
type ShadowRow struct {
	Window      detectors.ShadowWindow
	InReference bool
}

func shadowRows() table {
	return table{"shadow_analysis", "model, shadow_version, primary_version, window_start, window_end, in_reference, shadows, matched, agreed, agreement, numeric, abs_diff_sum, sum_shadow, sum_primary, sum_shadow_sq, sum_primary_sq, sum_product, mean_abs_diff, correlation, written_at", byDay(3)}
}

func shadowRow(r ShadowRow, at time.Time) []any {
	w, c := r.Window, r.Window.Counts
	return []any{w.Shadow.Model, w.Shadow.Version, w.PrimaryVersion, w.Start.UTC(), w.End.UTC(), flag(r.InReference), c.Shadows, c.Matched, c.Agreed,
		finite(c.Agreement()), c.Numeric, finite(c.AbsDiff), finite(c.SumS), finite(c.SumP), finite(c.SSS), finite(c.SPP), finite(c.SSP),
		finite(c.MeanAbsDiff()), finite(c.Correlation()), at}
}

// writeShadow writes the batch's shadow rows.
func (s *Store) writeShadow(ctx context.Context, b *Batch) error {
	at := b.WrittenAt.UTC()
	in := s.inserter(ctx, shadowRows())
	for _, r := range b.Shadow {
		if err := in.append(shadowRow(r, at)); err != nil {
			return err
		}
	}
	return in.flush()
}

// JoinShadow joins a shadow's predictions in the window starting at start to the
// primary version's in the same window by request id (the prediction keys, written
// before the window is judged; a request id used twice in a window counts by its first
// prediction, and of two at the same millisecond by the lesser, so that a replay that
// stores keys again in other rows counts the same), in ClickHouse: what the window's ShadowCounts are. A
// primary prediction in the next window is not looked for (that window is not complete
// yet), so a pair split by a window boundary counts as unmatched, alike on every replay.
func (s *Store) JoinShadow(ctx context.Context, shadow processors.SeriesKey, primaryVersion string, start time.Time) (detectors.ShadowCounts, error) {
	var c detectors.ShadowCounts
	q := fmt.Sprintf(`WITH s AS (
  SELECT request_id, argMin((prediction_kind, prediction_num, prediction_class), (event_time, prediction_kind, prediction_num, prediction_class)) AS first,
    tupleElement(first, 1) AS k, tupleElement(first, 2) AS x, tupleElement(first, 3) AS c
  FROM %[1]s.prediction_key_batches
  ARRAY JOIN request_ids AS request_id, event_times AS event_time, prediction_kinds AS prediction_kind, prediction_nums AS prediction_num, prediction_classes AS prediction_class
  WHERE model = {model:String} AND model_version = {shadow:String} AND deployment = {slot:String} AND window_start = {start:DateTime64(3, 'UTC')}
  GROUP BY request_id),
p AS (
  SELECT request_id, argMin((prediction_kind, prediction_num, prediction_class), (event_time, prediction_kind, prediction_num, prediction_class)) AS first,
    tupleElement(first, 1) AS k, tupleElement(first, 2) AS x, tupleElement(first, 3) AS c
  FROM %[1]s.prediction_key_batches
  ARRAY JOIN request_ids AS request_id, event_times AS event_time, prediction_kinds AS prediction_kind, prediction_nums AS prediction_num, prediction_classes AS prediction_class
  WHERE model = {model:String} AND model_version = {primary:String} AND deployment = 'primary' AND window_start = {start:DateTime64(3, 'UTC')}
  GROUP BY request_id),
j AS (
  SELECT s.k AS sk, s.x AS sx, s.c AS sc, p.k AS pk, p.x AS px, p.c AS pc, s.k = %[2]d AND p.k = %[2]d AS numeric
  FROM s INNER JOIN p ON s.request_id = p.request_id)
SELECT (SELECT count() FROM s), count(),
  countIf(multiIf(
    numeric AND sx BETWEEN 0 AND 1 AND px BETWEEN 0 AND 1, (sx >= 0.5) = (px >= 0.5) AND abs(sx - px) <= 0.1,
    numeric, abs(sx - px) <= 0.1 * abs(px),
    sk = pk AND sk = %[3]d, sc = pc,
    sk = pk, sx = px,
    0)),
  countIf(numeric), sumIf(abs(sx - px), numeric), sumIf(sx, numeric), sumIf(px, numeric),
  sumIf(sx * sx, numeric), sumIf(px * px, numeric), sumIf(sx * px, numeric)
FROM j`, s.db, schemas.Number, schemas.String)
	err := s.conn.QueryRow(ctx, q, namedArgs(map[string]string{"model": shadow.Model, "shadow": shadow.Version, "slot": shadow.Deployment,
		"primary": primaryVersion, "start": chTime(start)})...).Scan(&c.Shadows, &c.Matched, &c.Agreed, &c.Numeric, &c.AbsDiff, &c.SumS, &c.SumP, &c.SSS, &c.SPP, &c.SSP)
	if err != nil {
		return c, fmt.Errorf("join shadow %v at %v to primary %s: %w", shadow, start, primaryVersion, err)
	}
	return c, nil
}

// LoadShadowReference returns the windows of a shadow's reference (in_reference), oldest
// first: their start and counts.
func (s *Store) LoadShadowReference(ctx context.Context, shadow processors.SeriesKey) ([]detectors.ShadowWindow, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT window_start, window_end, primary_version, shadows, matched, agreed, numeric, abs_diff_sum, sum_shadow, sum_primary, sum_shadow_sq, sum_primary_sq, sum_product
FROM %s.shadow_analysis FINAL WHERE model = {model:String} AND shadow_version = {shadow:String} AND in_reference = 1 ORDER BY window_start`, s.db),
		namedArgs(map[string]string{"model": shadow.Model, "shadow": shadow.Version})...)
	if err != nil {
		return nil, fmt.Errorf("load the reference of shadow %v: %w", shadow, err)
	}
	defer rows.Close()
	var out []detectors.ShadowWindow
	for rows.Next() {
		w := detectors.ShadowWindow{Shadow: shadow}
		c := &w.Counts
		if err := rows.Scan(&w.Start, &w.End, &w.PrimaryVersion, &c.Shadows, &c.Matched, &c.Agreed, &c.Numeric, &c.AbsDiff, &c.SumS, &c.SumP, &c.SSS, &c.SPP, &c.SSP); err != nil {
			return nil, fmt.Errorf("load the reference of shadow %v: %w", shadow, err)
		}
		w.Start, w.End = w.Start.UTC(), w.End.UTC()
		out = append(out, w)
	}
	return out, rows.Err()
}
