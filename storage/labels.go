package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// The label join (migration 0009, docs/concept-drift.md): predictions' keys and labels
// are written as they are read; a window's predictions are joined to their labels when
// it settles, with the labels as of a point in event time, so that the result is the
// same live, from a backlog or across a restart.

// PredictionKey is what the join needs of one prediction that carries a request_id.
type PredictionKey struct {
	Series     processors.SeriesKey
	RequestID  string
	EventTime  time.Time
	Start, End int64 // its window (unix ms)
	Prediction schemas.Value
	Scores     map[string]float64
	// Source is the prediction's record (not stored: the place a key refused for good
	// is set aside with).
	Source processors.Source
}

// LabelRow is one label record as read.
type LabelRow struct {
	Event     schemas.LabelEvent
	Topic     string
	Partition int
	Offset    int64
	// RecordTime is the record's Kafka timestamp: when it was appended, for a topic with
	// message.timestamp.type=LogAppendTime or producers that send at once (zero: none).
	RecordTime time.Time
}

// PerformanceRow is one settled window's performance.
type PerformanceRow struct {
	Window      detectors.PerfWindow
	LabelsUntil time.Time
	// InReference: the window is in the series' performance reference; OutcomeReference:
	// in its outcomes' reference (stored as bits 1 and 2 of in_reference).
	InReference, OutcomeReference bool
	Counts                        detectors.PerfCounts
	// BeyondHorizon counts the window's predictions whose only labels came later than
	// the horizon after them (not joined).
	BeyondHorizon uint64
	// Change is the series' concept-drift detector state as of the window's end
	// (detectors.ConceptState's encoding). Stored in the row that says the window is
	// settled, a restart finds the two together or neither.
	Change []byte
}

func predictionKeys() table {
	return table{"prediction_key_batches", "model, model_version, deployment, window_start, window_end, request_ids, event_times, prediction_kinds, prediction_nums, prediction_classes, scores, written_at", byDay(3)}
}

func labelRows() table {
	return table{"label_events", "model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at", byDay(3)}
}

func labelOffsets() table {
	return table{"label_offsets", "topic, partition, offset, event_time, record_time, written_at", byDay(3)}
}

func labelProgress() table {
	return table{name: "label_progress", cols: "topic, partition, model, latest, written_at"}
}

func performanceRows() table {
	return table{"window_performance", "model, model_version, deployment, window_start, window_end, labels_until, in_reference, task, predictions, labelled, beyond_horizon, coverage, correct, accuracy, macro_precision, macro_recall, macro_f1, class_f1, confusion_true, confusion_pred, confusion_count, scored, log_loss_sum, log_loss, roc_auc, regression, error_sum, abs_error_sum, squared_error_sum, ape_sum, ape_count, mae, rmse, mean_error, mape, change_state, outcomes, written_at", byDay(3)}
}

// valueColumns are a value as the kind, num and class columns hold it.
func valueColumns(v schemas.Value) (uint8, float64, string) {
	if v.Kind == schemas.String {
		return uint8(v.Kind), 0, v.Str
	}
	return uint8(v.Kind), finite(v.Num), ""
}

func valueOf(kind uint8, num float64, class string) schemas.Value {
	switch k := schemas.Kind(kind); k {
	case schemas.String:
		return schemas.Value{Kind: k, Str: class}
	case schemas.Number, schemas.Bool:
		return schemas.Value{Kind: k, Num: num}
	}
	return schemas.Value{}
}

// keyAlone is a key's row by itself (as set aside on the dead-letter topic).
func keyAlone(k PredictionKey, at time.Time) []any {
	kind, num, class := valueColumns(k.Prediction)
	scores := k.Scores
	if scores == nil {
		scores = map[string]float64{}
	}
	return []any{k.Series.Model, k.Series.Version, k.Series.Deployment, ms(k.Start), ms(k.End), []string{k.RequestID}, []time.Time{k.EventTime.UTC()},
		[]uint8{kind}, []float64{num}, []string{class}, []map[string]float64{scores}, at}
}

func labelRow(l LabelRow, at time.Time) []any {
	kind, num, class := valueColumns(l.Event.Label)
	return []any{l.Event.Model, l.Event.RequestID, l.Event.EventID, l.Event.Timestamp.UTC(), kind, num, class, l.Event.Outcome,
		l.Topic, int32(l.Partition), l.Offset, at}
}

func performanceRow(r PerformanceRow, at time.Time) []any {
	c := r.Counts
	m := c.Metrics()
	pairs := make([]detectors.ClassPair, 0, len(c.Confusion))
	for k := range c.Confusion {
		pairs = append(pairs, k)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].True != pairs[j].True {
			return pairs[i].True < pairs[j].True
		}
		return pairs[i].Pred < pairs[j].Pred
	})
	truth, pred, count := make([]string, len(pairs)), make([]string, len(pairs)), make([]uint64, len(pairs))
	for i, k := range pairs {
		truth[i], pred[i], count[i] = k.True, k.Pred, c.Confusion[k]
	}
	f1 := map[string]float64{}
	for k, v := range m.ClassF1 {
		f1[k] = finite(v)
	}
	outcomes := c.Outcomes
	if outcomes == nil {
		outcomes = map[string]uint64{}
	}
	var inRef uint8
	if r.InReference {
		inRef |= 1
	}
	if r.OutcomeReference {
		inRef |= 2
	}
	w := r.Window
	return []any{w.Series.Model, w.Series.Version, w.Series.Deployment, w.Start.UTC(), w.End.UTC(), r.LabelsUntil.UTC(), inRef, c.Task(),
		c.Predictions, c.Labelled, r.BeyondHorizon, c.Coverage(), m.Correct, finite(m.Accuracy), finite(m.MacroPrecision),
		finite(m.MacroRecall), finite(m.MacroF1), f1, truth, pred, count, c.Scored, finite(c.LogLossSum), finite(m.LogLoss),
		finite(m.AUC), c.Regression, finite(c.ErrorSum), finite(c.AbsErrorSum), finite(c.SquaredSum), finite(c.APESum),
		c.APECount, finite(m.MAE), finite(m.RMSE), finite(m.MeanError), finite(m.MAPE), string(r.Change), outcomes, at}
}

// WriteLabelData writes prediction keys and labels. Rows are keyed (a record read again
// writes the same row again), so writing twice changes nothing.
func (s *Store) WriteLabelData(ctx context.Context, keys []PredictionKey, labels []LabelRow, at time.Time) error {
	at = at.UTC()
	if err := s.writeKeys(ctx, keys, at); err != nil {
		return err
	}
	in := s.inserter(ctx, labelRows())
	for _, l := range labels {
		if err := in.append(labelRow(l, at)); err != nil {
			return err
		}
	}
	if err := in.flush(); err != nil {
		return err
	}
	in = s.inserter(ctx, labelOffsets())
	for _, l := range labels {
		if err := in.append([]any{l.Topic, int32(l.Partition), l.Offset, l.Event.Timestamp.UTC(), recordTime(l.RecordTime), at}); err != nil {
			return err
		}
	}
	if err := in.flush(); err != nil {
		return err
	}
	// The progress rows go last: a partition's progress is never ahead of its labels.
	type key struct {
		topic     string
		partition int
		model     string
	}
	latest := map[key]time.Time{}
	var order []key
	for _, l := range labels {
		k := key{l.Topic, l.Partition, l.Event.Model}
		t, ok := latest[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || l.Event.Timestamp.After(t) {
			latest[k] = l.Event.Timestamp
		}
	}
	in = s.inserter(ctx, labelProgress())
	for _, k := range order {
		if err := in.append([]any{k.topic, int32(k.partition), k.model, latest[k].UTC(), at}); err != nil {
			return err
		}
	}
	return in.flush()
}

// writeKeys stores prediction keys, one row per series and window of each block, the
// keys in arrays (migration 0022): with one key per prediction this is the largest
// insert by far, and a row per key cost the engine a sort, statistics and merges per
// prediction. Blocks are cut as the inserter cuts them: at most maxRows keys, of at
// most MaxPartitionsPerBlock days. A key written again (a record read again) may land
// in another row: readers take one per (request_id, event_time).
func (s *Store) writeKeys(ctx context.Context, keys []PredictionKey, at time.Time) error {
	t := predictionKeys()
	ctx = s.writingWith(ctx, nil)
	days := map[int64]bool{}
	c := s.keyCols.Get().(*keyColumns)
	defer func() {
		c.release()
		s.keyCols.Put(c)
	}()
	for from := 0; from < len(keys); {
		to := from
		clear(days)
		for ; to < len(keys) && to-from < s.maxRows; to++ {
			d := day(ms(keys[to].Start))
			if !days[d] && len(days) >= MaxPartitionsPerBlock {
				break
			}
			days[d] = true
		}
		c.fill(keys[from:to], at)
		b, err := s.prepareInsert(ctx, t)
		if err != nil {
			return err
		}
		if err := c.appendTo(b); err != nil {
			b.Abort()
			s.insertFailed()
			return fmt.Errorf("append to %s: %w", t.name, err)
		}
		if err := s.sendInsert(t, b); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// keyColumns are a block of prediction keys by column, in predictionKeys' order: a row
// per series and window, in the order of their first key.
type keyColumns struct {
	model, version, deployment []string
	start, end                 []int64 // unix ms: DateTime64(3)
	requestIDs                 [][]string
	eventTimes                 [][]time.Time
	kinds                      [][]uint8
	nums                       [][]float64
	classes                    [][]string
	scores                     [][]map[string]float64
	writtenAt                  []time.Time
	rows                       map[keyRow]int

	// One row's elements by pointer, for appendTo.
	strs  []*string
	times []*time.Time
	bytes []*uint8
	nums1 []*float64
}

// keyRow is what a row of prediction keys is one of.
type keyRow struct {
	series processors.SeriesKey
	start  int64
}

func (c *keyColumns) fill(keys []PredictionKey, at time.Time) {
	if c.rows == nil {
		c.rows = map[keyRow]int{}
	}
	clear(c.rows)
	c.model, c.version, c.deployment, c.start, c.end, c.writtenAt = c.model[:0], c.version[:0], c.deployment[:0], c.start[:0], c.end[:0], c.writtenAt[:0]
	// A row's arrays are reused from the block before (the client copies them on Append).
	c.requestIDs, c.eventTimes, c.kinds, c.nums, c.classes, c.scores = c.requestIDs[:0], c.eventTimes[:0], c.kinds[:0], c.nums[:0], c.classes[:0], c.scores[:0]
	noScores := map[string]float64{} // shared by the keys without scores: only read
	r, last := -1, keyRow{}
	for _, k := range keys {
		// Keys come in runs of one series and window (a partition's records of a model),
		// so the row is usually the last key's.
		if r < 0 || k.Start != last.start || k.Series != last.series {
			last = keyRow{k.Series, k.Start}
			var ok bool
			if r, ok = c.rows[last]; !ok {
				r = len(c.model)
				c.rows[last] = r
				c.model, c.version, c.deployment = append(c.model, k.Series.Model), append(c.version, k.Series.Version), append(c.deployment, k.Series.Deployment)
				c.start, c.end, c.writtenAt = append(c.start, k.Start), append(c.end, k.End), append(c.writtenAt, at)
				c.requestIDs, c.eventTimes, c.kinds = nextRow(c.requestIDs), nextRow(c.eventTimes), nextRow(c.kinds)
				c.nums, c.classes, c.scores = nextRow(c.nums), nextRow(c.classes), nextRow(c.scores)
			}
		}
		kind, num, class := valueColumns(k.Prediction)
		scores := k.Scores
		if scores == nil {
			scores = noScores
		}
		c.requestIDs[r], c.eventTimes[r] = append(c.requestIDs[r], k.RequestID), append(c.eventTimes[r], k.EventTime.UTC())
		c.kinds[r], c.nums[r], c.classes[r] = append(c.kinds[r], kind), append(c.nums[r], num), append(c.classes[r], class)
		c.scores[r] = append(c.scores[r], scores)
	}
}

// release drops what the columns refer to of the keys written (request ids, classes,
// scores), keeping the arrays for the next write: a pooled block holds no batch's
// strings alive.
func (c *keyColumns) release() {
	for _, rows := range [][][]string{c.requestIDs, c.classes} {
		for _, row := range rows {
			clear(row[:cap(row)])
		}
	}
	for _, row := range c.scores {
		clear(row[:cap(row)])
	}
	for _, col := range [][]string{c.model, c.version, c.deployment} {
		clear(col[:cap(col)])
	}
	clear(c.rows)
}

// nextRow adds an empty row of arrays, reusing the array a block before had there.
func nextRow[T any](rows [][]T) [][]T {
	if len(rows) < cap(rows) {
		rows = rows[:len(rows)+1]
		rows[len(rows)-1] = rows[len(rows)-1][:0]
		return rows
	}
	return append(rows, nil)
}

// appendTo appends the block to b. The array columns are appended a row at a time with
// their elements by pointer: the client's typed path for a []*T copies each element,
// where a [][]T (or a []T given to Append) goes through reflection and boxes every
// element, which cost the client more than the engine's insert.
func (c *keyColumns) appendTo(b driver.Batch) error {
	for i, col := range []any{c.model, c.version, c.deployment, c.start, c.end} {
		if err := b.Column(i).Append(col); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	for r := range c.model {
		c.strs, c.times, c.bytes, c.nums1 = pointers(c.strs, c.requestIDs[r]), pointers(c.times, c.eventTimes[r]), pointers(c.bytes, c.kinds[r]), pointers(c.nums1, c.nums[r])
		for i, row := range []any{c.strs, c.times, c.bytes, c.nums1} {
			if err := b.Column(5 + i).AppendRow(row); err != nil {
				return fmt.Errorf("column %d: %w", 5+i, err)
			}
		}
		c.strs = pointers(c.strs, c.classes[r])
		if err := b.Column(9).AppendRow(c.strs); err != nil {
			return fmt.Errorf("column 9: %w", err)
		}
		if err := b.Column(10).AppendRow(c.scores[r]); err != nil {
			return fmt.Errorf("column 10: %w", err)
		}
	}
	if err := b.Column(11).Append(c.writtenAt); err != nil {
		return fmt.Errorf("column 11: %w", err)
	}
	return nil
}

// pointers are the addresses of vs' elements, in buf's array.
func pointers[T any](buf []*T, vs []T) []*T {
	buf = buf[:0]
	for i := range vs {
		buf = append(buf, &vs[i])
	}
	return buf
}

// recordTime is a record's timestamp as stored: 1970 for a record without one (Kafka's
// -1, or none given), which no cutoff is ever before.
func recordTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// writePerformance writes the batch's performance rows (which say a window is settled:
// they go last).
func (s *Store) writePerformance(ctx context.Context, b *Batch) error {
	at := b.WrittenAt.UTC()
	in := s.inserter(ctx, performanceRows())
	for _, r := range b.Performance {
		if err := in.append(performanceRow(r, at)); err != nil {
			return err
		}
	}
	return in.flush()
}

// chTime is t as a DateTime64(3) query parameter.
func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// LabelProgress is how far one label partition has been written (newest event time).
type LabelProgress struct {
	Topic     string
	Partition int
	Latest    time.Time
}

// LoadLabelProgress returns every label partition's progress and the models with labels.
func (s *Store) LoadLabelProgress(ctx context.Context) ([]LabelProgress, []string, error) {
	rows, err := s.conn.Query(ctx, `SELECT topic, partition, max(latest) FROM `+s.db+`.label_progress GROUP BY topic, partition ORDER BY topic, partition`)
	if err != nil {
		return nil, nil, fmt.Errorf("load label progress: %w", err)
	}
	defer rows.Close()
	var out []LabelProgress
	for rows.Next() {
		var p LabelProgress
		var part int32
		if err := rows.Scan(&p.Topic, &part, &p.Latest); err != nil {
			return nil, nil, fmt.Errorf("load label progress: %w", err)
		}
		p.Partition = int(part)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	models, err := s.strings(ctx, `SELECT DISTINCT model FROM `+s.db+`.label_progress ORDER BY model`)
	if err != nil {
		return nil, nil, fmt.Errorf("load labelled models: %w", err)
	}
	return out, models, nil
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SettledWindow is a written window whose performance is due.
type SettledWindow struct {
	Series     processors.SeriesKey
	Start, End time.Time
}

// LoadUnsettledWindows returns the written windows of the models whose end is after
// since and at most until and that are not settled yet, oldest first.
func (s *Store) LoadUnsettledWindows(ctx context.Context, models []string, since, until time.Time) ([]SettledWindow, error) {
	rows, err := s.conn.Query(ctx, `SELECT model, model_version, deployment, window_start, any(window_end)
FROM `+s.db+`.window_model_stats
WHERE has({models:Array(String)}, model) AND window_end > {since:DateTime64(3, 'UTC')} AND window_end <= {until:DateTime64(3, 'UTC')}
  AND (model, model_version, deployment, window_start) GLOBAL NOT IN (
    SELECT model, model_version, deployment, window_start FROM `+s.db+`.window_performance
    WHERE has({models:Array(String)}, model) AND window_end > {since:DateTime64(3, 'UTC')} AND window_end <= {until:DateTime64(3, 'UTC')})
GROUP BY model, model_version, deployment, window_start
ORDER BY window_start, model, model_version, deployment`,
		clickhouse.Named("models", models), clickhouse.Named("since", chTime(since)), clickhouse.Named("until", chTime(until)))
	if err != nil {
		return nil, fmt.Errorf("load windows to settle: %w", err)
	}
	defer rows.Close()
	var out []SettledWindow
	for rows.Next() {
		var w SettledWindow
		if err := rows.Scan(&w.Series.Model, &w.Series.Version, &w.Series.Deployment, &w.Start, &w.End); err != nil {
			return nil, fmt.Errorf("load windows to settle: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// JoinSpec says which labels join a window's predictions: those stamped from From up to
// Until, and no later than Horizon after their prediction; on each label partition, only
// the records before the first one stamped after Cutoff or appended after AppendCutoff
// (when there is one), so that a label read late, out of its partition's order or
// appended to a partition after the window could settle, is left out alike however the
// partitions were interleaved and whether they were read live or as a backlog. Of a
// request's labels the newest counts (the highest event time, then topic, partition and
// offset).
type JoinSpec struct {
	From, Until, Cutoff time.Time
	// AppendCutoff bounds the records' Kafka timestamps (zero: no bound).
	AppendCutoff time.Time
	Horizon      time.Duration
	// Before is how long before its prediction a label may be stamped (the lateness:
	// clocks differ): one stamped earlier is another prediction's that reused the
	// request id.
	Before time.Duration
	// Partitions are the label partitions the cutoff is looked for on (those with labels).
	Partitions []LabelPartition
	// Cuts are the cutoffs already found (LabelCuts of Cutoff, AppendCutoff and
	// Partitions; nil: found by LoadWindowPairs): windows that share a cutoff share them.
	Cuts map[LabelPartition]int64
}

// LabelPartition is one partition of the label topic.
type LabelPartition struct {
	Topic     string
	Partition int
}

// joinPage is how many predictions one query of a window's join returns: driftd holds
// one page of the join, whatever the window's size (a window at 10,000 events/s for 5
// minutes is 3 million predictions, 12 pages). Each page reads the model's labels in the
// window's label range again (docs/concept-drift.md, "Not yet"): fewer, larger pages.
const joinPage = 250_000

// LoadWindowPairs joins a window's predictions to their labels, in ClickHouse, and passes
// each pair to add in (request id, event time) order, a page at a time (the scorer puts
// the losses in event-time order). It returns how many of the predictions have labels
// only beyond the horizon. A call that fails has passed some of the pairs: the caller
// starts again from a fresh state.
func (s *Store) LoadWindowPairs(ctx context.Context, w SettledWindow, js JoinSpec, add func(detectors.PerfPair)) (uint64, error) {
	cuts := js.Cuts
	if cuts == nil {
		var err error
		if cuts, err = s.LabelCuts(ctx, js.Cutoff, js.AppendCutoff, js.Partitions); err != nil {
			return 0, err
		}
	}
	cutKeys, cutOffsets := make([]string, 0, len(cuts)), make([]int64, 0, len(cuts))
	for k, off := range cuts {
		cutKeys = append(cutKeys, k.Topic+"/"+strconv.Itoa(k.Partition))
		cutOffsets = append(cutOffsets, off)
	}
	q := s.joinQuery()
	var beyond uint64
	afterID, afterTime := "", w.Start.Add(-time.Millisecond)
	for {
		rows, err := s.conn.Query(ctx, q, clickhouse.Named("model", w.Series.Model), clickhouse.Named("version", w.Series.Version),
			clickhouse.Named("deployment", w.Series.Deployment), clickhouse.Named("start", chTime(w.Start)),
			clickhouse.Named("after_time", chTime(afterTime)), clickhouse.Named("after_id", afterID), clickhouse.Named("page", strconv.Itoa(s.joinPage)),
			clickhouse.Named("horizon", strconv.FormatInt(js.Horizon.Milliseconds(), 10)), clickhouse.Named("before", strconv.FormatInt(js.Before.Milliseconds(), 10)),
			clickhouse.Named("from", chTime(js.From)), clickhouse.Named("until", chTime(js.Until)),
			clickhouse.Named("cut_keys", cutKeys), clickhouse.Named("cut_offsets", cutOffsets))
		if err != nil {
			return 0, fmt.Errorf("join labels to %v at %v: %w", w.Series, w.Start, err)
		}
		n := 0
		for rows.Next() {
			var (
				pair             detectors.PerfPair
				kind, lkind      uint8
				num, lnum        float64
				class, lclass    string
				within, anyLabel uint64
			)
			if err := rows.Scan(&afterID, &afterTime, &kind, &num, &class, &pair.Scores, &lkind, &lnum, &lclass, &within, &anyLabel, &pair.Outcomes); err != nil {
				rows.Close()
				return 0, fmt.Errorf("join labels to %v at %v: %w", w.Series, w.Start, err)
			}
			pair.Prediction, pair.EventTime = valueOf(kind, num, class), afterTime
			if within > 0 {
				pair.Label = valueOf(lkind, lnum, lclass)
			} else if anyLabel > 0 {
				beyond++
			}
			add(pair)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("join labels to %v at %v: %w", w.Series, w.Start, err)
		}
		if n < s.joinPage {
			return beyond, nil
		}
	}
}

// joinQuery is LoadWindowPairs' query: a page of a window's keys in request id order
// (the window is one range of the table's primary key; a key stored twice counts once,
// and of two at the same request id and millisecond the lesser, prediction then scores,
// whichever was stored last), each with its newest label within the horizon. The partition of a label record is named topic/partition in cut_keys (a topic
// name has no "/"). The labels are read by model, the hours of the label range and the
// page's request ids (a range of ids, as the page is in id order: the index reads that
// range in each hour): three leading columns of label_events' index, so that a window's
// pages read its labels about once, not each page all of them.
func (s *Store) joinQuery() string {
	return `WITH p AS (
  SELECT event_time, request_id, prediction_kind, prediction_num, prediction_class, scores
  FROM ` + s.db + `.prediction_key_batches
  ARRAY JOIN request_ids AS request_id, event_times AS event_time, prediction_kinds AS prediction_kind,
    prediction_nums AS prediction_num, prediction_classes AS prediction_class, scores
  WHERE model = {model:String} AND model_version = {version:String} AND deployment = {deployment:String}
    AND window_start = {start:DateTime64(3, 'UTC')}
    AND request_id >= {after_id:String} AND (request_id > {after_id:String} OR event_time > {after_time:DateTime64(3, 'UTC')})
  ORDER BY request_id, event_time, prediction_kind, prediction_num, prediction_class, mapKeys(scores), mapValues(scores)
  LIMIT 1 BY request_id, event_time
  LIMIT {page:UInt32})
SELECT p.request_id, p.event_time, any(p.prediction_kind), any(p.prediction_num), any(p.prediction_class), any(p.scores),
  argMaxIf(l.label_kind, (l.event_time, l.topic, l.partition, l.offset) AS newest,
    (l.request_id != '' AND l.event_time <= p.event_time + toIntervalMillisecond({horizon:Int64})
      AND l.event_time >= p.event_time - toIntervalMillisecond({before:Int64})) AS within AND l.label_kind != 0),
  argMaxIf(l.label_num, newest, within AND l.label_kind != 0), argMaxIf(l.label_class, newest, within AND l.label_kind != 0),
  countIf(within AND l.label_kind != 0), countIf(l.request_id != '' AND l.label_kind != 0),
  arraySort(groupUniqArrayIf(l.outcome, within AND l.outcome != ''))
FROM p LEFT JOIN (
  SELECT request_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset
  FROM ` + s.db + `.label_events FINAL
  WHERE model = {model:String} AND (label_kind != 0 OR outcome != '') AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time <= {until:DateTime64(3, 'UTC')}
    AND request_id GLOBAL IN (SELECT request_id FROM p)
    AND (indexOf({cut_keys:Array(String)}, concat(topic, '/', toString(partition))) = 0
      OR offset < {cut_offsets:Array(Int64)}[indexOf({cut_keys:Array(String)}, concat(topic, '/', toString(partition)))])
) AS l ON l.request_id = p.request_id
GROUP BY p.request_id, p.event_time
ORDER BY p.request_id, p.event_time`
}

// LabelCuts are, per label partition of partitions, the offset of the first record
// stamped after t or appended after appended (zero: no such bound; none: no such record
// yet).
func (s *Store) LabelCuts(ctx context.Context, t, appended time.Time, partitions []LabelPartition) (map[LabelPartition]int64, error) {
	out := map[LabelPartition]int64{}
	if len(partitions) == 0 {
		return out, nil
	}
	q, params := s.labelCutsQuery(t, appended, partitions)
	rows, err := s.conn.Query(ctx, q, namedArgs(params)...)
	if err != nil {
		return nil, fmt.Errorf("load label cutoffs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k LabelPartition
		var part int32
		var off int64
		if err := rows.Scan(&k.Topic, &part, &off); err != nil {
			return nil, fmt.Errorf("load label cutoffs: %w", err)
		}
		k.Partition = int(part)
		if o, ok := out[k]; !ok || off < o {
			out[k] = off
		}
	}
	return out, rows.Err()
}

// namedArgs are a query's named parameters.
func namedArgs(params map[string]string) []any {
	args := make([]any, 0, len(params))
	for k, v := range params {
		args = append(args, clickhouse.Named(k, v))
	}
	return args
}

// labelCutsQuery is LabelCuts' query and its parameters: per partition and bound, a read
// in offset order from the first granule not wholly within the bound (label_offsets'
// minmax indexes on event_time and record_time) up to the first row past it, on one
// thread in granule-sized blocks (the row is in the first granule or two read; a read
// ahead would only read more). The two bounds are two reads, each on its own index: one
// condition "past either" would let neither index skip a granule.
func (s *Store) labelCutsQuery(t, appended time.Time, partitions []LabelPartition) (string, map[string]string) {
	params := map[string]string{"t": chTime(t)}
	bounds := []string{"event_time > {t:DateTime64(3, 'UTC')}"}
	if !appended.IsZero() {
		params["appended"] = chTime(appended)
		bounds = append(bounds, "record_time > {appended:DateTime64(3, 'UTC')}")
	}
	var q strings.Builder
	for i, p := range partitions {
		for j, bound := range bounds {
			if i > 0 || j > 0 {
				q.WriteString("\nUNION ALL\n")
			}
			fmt.Fprintf(&q, `(SELECT topic, partition, offset FROM %s.label_offsets
WHERE topic = {topic%d:String} AND partition = {partition%d:Int32} AND %s
ORDER BY topic, partition, offset LIMIT 1)`, s.db, i, i, bound)
		}
		params[fmt.Sprintf("topic%d", i)], params[fmt.Sprintf("partition%d", i)] = p.Topic, strconv.Itoa(p.Partition)
	}
	q.WriteString("\nSETTINGS max_threads = 1, max_block_size = 8192")
	return q.String(), params
}

// SeriesSettled is how far a series' performance is settled, with the windows of its
// references (in start order; InReference and OutcomeReference say which) and its change
// detector's state.
type SeriesSettled struct {
	Series    processors.SeriesKey
	LastStart time.Time
	Reference []PerformanceRow
	// Recent are its last RecentSettled windows judged against the reference (oldest
	// first), which a low-volume window is judged together with.
	Recent []PerformanceRow
	Change []byte
}

// RecentSettled is how many of a series' latest judged windows LoadSettled returns.
const RecentSettled = 12

// LoadSettled returns the series with settled windows: every one, or those of only.
func (s *Store) LoadSettled(ctx context.Context, only ...processors.SeriesKey) ([]SeriesSettled, error) {
	filter, args := "1", []any{}
	if len(only) > 0 {
		var b strings.Builder
		for i, k := range only {
			if i > 0 {
				b.WriteString(" OR ")
			}
			fmt.Fprintf(&b, "(model = {model%d:String} AND model_version = {version%d:String} AND deployment = {deployment%d:String})", i, i, i)
			args = append(args, clickhouse.Named(fmt.Sprintf("model%d", i), k.Model), clickhouse.Named(fmt.Sprintf("version%d", i), k.Version),
				clickhouse.Named(fmt.Sprintf("deployment%d", i), k.Deployment))
		}
		filter = "(" + b.String() + ")"
	}
	bySeries := map[processors.SeriesKey]*SeriesSettled{}
	var order []processors.SeriesKey
	get := func(k processors.SeriesKey) *SeriesSettled {
		st, ok := bySeries[k]
		if !ok {
			st = &SeriesSettled{Series: k}
			bySeries[k] = st
			order = append(order, k)
		}
		return st
	}
	// A window row written before 0010 has no state: the newest row that has one (0010
	// moved the states stored apart into their windows' rows).
	rows, err := s.conn.Query(ctx, `SELECT model, model_version, deployment, max(window_start), argMaxIf(change_state, window_start, change_state != '')
FROM `+s.db+`.window_performance FINAL WHERE `+filter+`
GROUP BY model, model_version, deployment ORDER BY model, model_version, deployment`, args...)
	if err != nil {
		return nil, fmt.Errorf("load settled windows: %w", err)
	}
	for rows.Next() {
		var k processors.SeriesKey
		var last time.Time
		var state string
		if err := rows.Scan(&k.Model, &k.Version, &k.Deployment, &last, &state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load settled windows: %w", err)
		}
		st := get(k)
		st.LastStart = last
		if state != "" {
			st.Change = []byte(state)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.conn.Query(ctx, `SELECT model, model_version, deployment, window_start, window_end, labels_until, predictions, labelled,
  beyond_horizon, confusion_true, confusion_pred, confusion_count, scored, log_loss_sum, regression, error_sum,
  abs_error_sum, squared_error_sum, ape_sum, ape_count, outcomes, in_reference
FROM `+s.db+`.window_performance FINAL
WHERE `+filter+` AND (in_reference != 0 OR (model, model_version, deployment, window_start) GLOBAL IN (
  SELECT model, model_version, deployment, window_start FROM `+s.db+`.window_performance FINAL WHERE `+filter+` AND in_reference = 0
  ORDER BY window_start DESC LIMIT `+strconv.Itoa(RecentSettled)+` BY model, model_version, deployment))
ORDER BY model, model_version, deployment, window_start`, args...)
	if err != nil {
		return nil, fmt.Errorf("load performance references: %w", err)
	}
	for rows.Next() {
		var (
			r           PerformanceRow
			truth, pred []string
			count       []uint64
			inRef       uint8
		)
		c := &r.Counts
		if err := rows.Scan(&r.Window.Series.Model, &r.Window.Series.Version, &r.Window.Series.Deployment, &r.Window.Start, &r.Window.End,
			&r.LabelsUntil, &c.Predictions, &c.Labelled, &r.BeyondHorizon, &truth, &pred, &count, &c.Scored, &c.LogLossSum,
			&c.Regression, &c.ErrorSum, &c.AbsErrorSum, &c.SquaredSum, &c.APESum, &c.APECount, &c.Outcomes, &inRef); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load performance references: %w", err)
		}
		if len(truth) != len(pred) || len(pred) != len(count) {
			rows.Close()
			return nil, fmt.Errorf("load performance references: %v at %v: confusion arrays of unequal length", r.Window.Series, r.Window.Start)
		}
		for i := range truth {
			if c.Confusion == nil {
				c.Confusion = map[detectors.ClassPair]uint64{}
			}
			c.Confusion[detectors.ClassPair{True: truth[i], Pred: pred[i]}] = count[i]
		}
		c.AUC = math.NaN() // not stored as a sum: it does not add up
		r.InReference, r.OutcomeReference = inRef&1 != 0, inRef&2 != 0
		st := get(r.Window.Series)
		if inRef != 0 {
			st.Reference = append(st.Reference, r)
		} else {
			st.Recent = append(st.Recent, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]SeriesSettled, len(order))
	for i, k := range order {
		out[i] = *bySeries[k]
	}
	return out, nil
}

// RefusedLabelData is what is set aside when ClickHouse refuses keys and labels for good:
// each as its row, with the place of the record it comes from.
func RefusedLabelData(keys []PredictionKey, labels []LabelRow, at time.Time) []Refused {
	at = at.UTC()
	var out []Refused
	add := func(topic string, partition int, offset int64, rows map[string][]map[string]any) {
		body, err := json.Marshal(rows)
		if err != nil {
			body = fmt.Appendf(nil, "%v", rows)
		}
		out = append(out, Refused{Topic: topic, Partition: partition, FirstOffset: offset, LastOffset: offset, Rows: body})
	}
	for _, k := range keys {
		add(k.Source.Topic, k.Source.Partition, k.Source.Offset, map[string][]map[string]any{"prediction_key_batches": named(predictionKeys(), [][]any{keyAlone(k, at)})})
	}
	for _, l := range labels {
		add(l.Topic, l.Partition, l.Offset, map[string][]map[string]any{"label_events": named(labelRows(), [][]any{labelRow(l, at)})})
	}
	return out
}
