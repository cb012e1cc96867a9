package storage_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	dsql "github.com/driftd/driftd/sql"
	"github.com/driftd/driftd/storage"
)

// labelSeries shares its model with resultsBatch's, whose name a query must quote.
var labelSeries = processors.SeriesKey{Model: "fraud's \"scorer\"", Version: "2", Deployment: schemas.DeploymentPrimary}

// labelData is one window of five predictions (r1…r5, one a minute from t0) and labels
// that exercise every rule of the join. Written twice, as after a restart.
func labelData() ([]storage.PredictionKey, []storage.LabelRow) {
	start, end := t0.UnixMilli(), t0.Add(5*time.Minute).UnixMilli()
	var keys []storage.PredictionKey
	for i, id := range []string{"r1", "r2", "r3", "r4", "r5"} {
		keys = append(keys, storage.PredictionKey{Series: labelSeries, RequestID: id, EventTime: t0.Add(time.Duration(i) * time.Minute),
			Start: start, End: end, Prediction: schemas.Value{Kind: schemas.Number, Num: 0.8}, Scores: map[string]float64{"1": 0.8}})
	}
	one := schemas.Value{Kind: schemas.Number, Num: 1}
	zero := schemas.Value{Kind: schemas.Number, Num: 0}
	label := func(id string, at time.Duration, v schemas.Value, partition int, offset int64) storage.LabelRow {
		return storage.LabelRow{Event: schemas.LabelEvent{EventID: id + "-l", RequestID: id, Model: labelSeries.Model, Timestamp: t0.Add(at), Label: v},
			Topic: "labels", Partition: partition, Offset: offset}
	}
	outcome := func(l storage.LabelRow, name string) storage.LabelRow {
		l.Event.Outcome = name
		return l
	}
	labels := []storage.LabelRow{
		label("r1", 6*time.Minute, one, 0, 1),
		// r2 labelled twice: the newer one counts, once.
		label("r2", 6*time.Minute, one, 0, 2),
		label("r2", 7*time.Minute, zero, 0, 3),
		// r3's label is stamped after the window's labels are taken (Until).
		label("r3", 30*time.Minute, one, 0, 4),
		// r4's label was read on partition 1 after a record stamped past the cutoff.
		label("r4", 40*time.Minute, one, 1, 1),
		label("r4", 8*time.Minute, one, 1, 2),
		// a label for a request never predicted.
		label("unknown", 6*time.Minute, one, 0, 5),
		// r5's label came beyond the horizon (one hour).
		label("r5", 9*time.Minute+2*time.Hour, one, 0, 6),
		// user outcomes, on partition 2: two for r1 (one of them with no label, so no ground truth), one
		// for r3 stamped after the window's labels are taken.
		outcome(label("r1", 6*time.Minute, schemas.Value{}, 2, 1), "clicked"),
		outcome(label("r1", 7*time.Minute, one, 2, 2), "redo_search"),
		outcome(label("r3", 30*time.Minute, schemas.Value{}, 2, 3), "clicked"),
	}
	return keys, labels
}

func TestLabelJoin(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	keys, labels := labelData()
	for i := 0; i < 2; i++ {
		if err := s.WriteLabelData(ctx, keys, labels, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	w := storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)}
	parts := labelPartitions(3)
	for _, c := range []struct {
		name       string
		js         storage.JoinSpec
		want       []float64 // per request, the label joined (NaN: none)
		wantBeyond uint64
		outcomes   [5]string // per request, its outcomes joined
	}{
		{"settled at 20 min", storage.JoinSpec{From: t0.Add(-time.Minute), Until: t0.Add(20 * time.Minute), Cutoff: t0.Add(25 * time.Minute), Horizon: time.Hour, Partitions: parts},
			[]float64{1, 0, math.NaN(), math.NaN(), math.NaN()}, 0, [5]string{"clicked redo_search"}},
		{"no cutoff on partition 1", storage.JoinSpec{From: t0.Add(-time.Minute), Until: t0.Add(20 * time.Minute), Cutoff: t0.Add(time.Hour), Horizon: time.Hour, Partitions: parts},
			[]float64{1, 0, math.NaN(), 1, math.NaN()}, 0, [5]string{"clicked redo_search"}},
		{"everything, horizon 1h", storage.JoinSpec{From: t0.Add(-time.Minute), Until: t0.Add(5 * time.Hour), Cutoff: t0.Add(6 * time.Hour), Horizon: time.Hour, Partitions: parts},
			[]float64{1, 0, 1, 1, math.NaN()}, 1, [5]string{"clicked redo_search", "", "clicked"}},
		{"everything, horizon 7d", storage.JoinSpec{From: t0.Add(-time.Minute), Until: t0.Add(5 * time.Hour), Cutoff: t0.Add(6 * time.Hour), Horizon: 7 * 24 * time.Hour, Partitions: parts},
			[]float64{1, 0, 1, 1, 1}, 0, [5]string{"clicked redo_search", "", "clicked"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pairs, beyond, err := joinWindow(ctx, s, w, c.js)
			if err != nil {
				t.Fatal(err)
			}
			if len(pairs) != len(c.want) {
				t.Fatalf("%d pairs, want %d", len(pairs), len(c.want))
			}
			for i, p := range pairs {
				if p.Prediction.Num != 0.8 || p.Scores["1"] != 0.8 {
					t.Errorf("pair %d: prediction %+v scores %v", i, p.Prediction, p.Scores)
				}
				if got := strings.Join(p.Outcomes, " "); got != c.outcomes[i] {
					t.Errorf("pair %d: outcomes %q, want %q", i, got, c.outcomes[i])
				}
				switch {
				case math.IsNaN(c.want[i]) && p.Label.Kind != schemas.Missing:
					t.Errorf("pair %d: label %+v, want none", i, p.Label)
				case !math.IsNaN(c.want[i]) && (p.Label.Kind != schemas.Number || p.Label.Num != c.want[i]):
					t.Errorf("pair %d: label %+v, want %v", i, p.Label, c.want[i])
				}
			}
			if beyond != c.wantBeyond {
				t.Errorf("%d beyond the horizon, want %d", beyond, c.wantBeyond)
			}
		})
	}

	progress, models, err := s.LoadLabelProgress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 3 || !progress[0].Latest.Equal(t0.Add(9*time.Minute+2*time.Hour)) || !progress[1].Latest.Equal(t0.Add(40*time.Minute)) ||
		!progress[2].Latest.Equal(t0.Add(30*time.Minute)) ||
		len(models) != 1 || models[0] != labelSeries.Model {
		t.Errorf("progress %+v, models %v", progress, models)
	}
}

// A settled window's row and its detector state read back as written: the reference is
// restored from the rows' sums, bit for bit.
func TestPerformanceRowsRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	b, want := performanceBatch(t)
	for i := 0; i < 2; i++ {
		b.WrittenAt = t0.Add(time.Duration(i) * time.Second)
		if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	settled, err := s.LoadSettled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(settled) != 1 {
		t.Fatalf("%d series settled, want 1: %+v", len(settled), settled)
	}
	got := settled[0]
	// The newest row with a state gives it: a row without one was written before 0010.
	if got.Series != labelSeries || !got.LastStart.Equal(t0.Add(10*time.Minute)) || len(got.Reference) != 1 || string(got.Change) != "state" {
		t.Fatalf("settled %+v", got)
	}
	c := got.Reference[0].Counts
	if c.Predictions != want.Predictions || c.Labelled != want.Labelled || c.LogLossSum != want.LogLossSum || c.Scored != want.Scored ||
		len(c.Confusion) != len(want.Confusion) || c.Confusion[detectors.ClassPair{True: "1", Pred: "0"}] != 1 ||
		len(c.Outcomes) != 2 || c.Outcomes["clicked"] != 1 || c.Outcomes["redo_search"] != 1 {
		t.Errorf("reference counts %+v, want %+v", c, want)
	}
}

// performanceBatch is two settled windows of one series, the first in its reference.
func performanceBatch(t *testing.T) (*storage.Batch, detectors.PerfCounts) {
	t.Helper()
	c, _, _ := detectors.ScorePairs([]detectors.PerfPair{
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.9}, Label: schemas.Value{Kind: schemas.Number, Num: 1}, Outcomes: []string{"clicked", "redo_search"}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.2}, Label: schemas.Value{Kind: schemas.Number, Num: 1}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.3}, Label: schemas.Value{Kind: schemas.Number, Num: 0}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.3}},
	})
	row := func(start time.Time, inRef bool, state string) storage.PerformanceRow {
		return storage.PerformanceRow{Window: detectors.PerfWindow{Series: labelSeries, Start: start, End: start.Add(5 * time.Minute)},
			LabelsUntil: start.Add(time.Hour), InReference: inRef, Counts: c, Change: []byte(state)}
	}
	return &storage.Batch{WrittenAt: t0, Performance: []storage.PerformanceRow{row(t0, true, "first"), row(t0.Add(5*time.Minute), false, "state"),
		row(t0.Add(10*time.Minute), false, "")}}, c
}

// labelPartitions are partitions 0 to n-1 of the test's label topic.
func labelPartitions(n int) []storage.LabelPartition {
	out := make([]storage.LabelPartition, n)
	for i := range out {
		out[i] = storage.LabelPartition{Topic: "labels", Partition: i}
	}
	return out
}

// joinWindow collects what LoadWindowPairs passes.
func joinWindow(ctx context.Context, s *storage.Store, w storage.SettledWindow, js storage.JoinSpec) ([]detectors.PerfPair, uint64, error) {
	var pairs []detectors.PerfPair
	beyond, err := s.LoadWindowPairs(ctx, w, js, func(p detectors.PerfPair) { pairs = append(pairs, p) })
	return pairs, beyond, err
}

// Keys of several series and windows, interleaved, are stored a row per series and
// window of each write; stored again in other cuts (a replay), each prediction is
// still joined once, with its own prediction and scores.
func TestLabelJoinKeysStoredTwice(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	other := processors.SeriesKey{Model: labelSeries.Model, Version: "3", Deployment: schemas.DeploymentCanary}
	var keys []storage.PredictionKey
	for i := 0; i < 60; i++ {
		series := labelSeries
		if i%3 == 1 {
			series = other
		}
		w := t0.Add(time.Duration(i%2) * 5 * time.Minute)
		keys = append(keys, storage.PredictionKey{Series: series, RequestID: fmt.Sprintf("r%02d", i), EventTime: w.Add(time.Duration(i) * time.Second),
			Start: w.UnixMilli(), End: w.Add(5 * time.Minute).UnixMilli(), Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i)},
			Scores: map[string]float64{"1": float64(i) / 100}})
	}
	if err := s.WriteLabelData(ctx, keys, nil, t0); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < len(keys); from += 7 {
		if err := s.WriteLabelData(ctx, keys[from:min(from+7, len(keys))], nil, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for _, series := range []processors.SeriesKey{labelSeries, other} {
		for _, w := range []time.Time{t0, t0.Add(5 * time.Minute)} {
			var want []string
			for i, k := range keys {
				if k.Series == series && k.Start == w.UnixMilli() {
					want = append(want, fmt.Sprintf("%d %v %v", i, k.EventTime.Format(time.TimeOnly), k.Scores["1"]))
				}
			}
			pairs, _, err := joinWindow(ctx, s, storage.SettledWindow{Series: series, Start: w, End: w.Add(5 * time.Minute)},
				storage.JoinSpec{From: t0, Until: t0.Add(time.Hour), Cutoff: t0.Add(time.Hour), Horizon: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pairs {
				got = append(got, fmt.Sprintf("%d %v %v", int(p.Prediction.Num), p.EventTime.Format(time.TimeOnly), p.Scores["1"]))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
				t.Errorf("%v at %v: joined %v, want %v", series, w.Format(time.TimeOnly), got, want)
			}
		}
	}
}

// A window larger than a page of the join is read whole, once, in (request id, event
// time) order, each with its time: the window's request ids out of time order, and a
// request id used twice at different times is two predictions.
func TestLabelJoinPages(t *testing.T) {
	s := openStore(t)
	s.SetJoinPage(50_000)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	const n = 120_001
	const perMilli = 777
	start, end := t0.UnixMilli(), t0.Add(5*time.Minute).UnixMilli()
	type key struct {
		at time.Time
		id string
		i  int
	}
	keys := make([]storage.PredictionKey, 0, n)
	want := make([]key, 0, n)
	var labels []storage.LabelRow
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i/perMilli) * time.Millisecond)
		id := fmt.Sprintf("r%06d", (n-i)%(n-1)) // ids descend within a millisecond; r000001 is used twice
		keys = append(keys, storage.PredictionKey{Series: labelSeries, RequestID: id, EventTime: at, Start: start, End: end,
			Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i)}})
		want = append(want, key{at, id, i})
		if i%3 == 0 {
			labels = append(labels, storage.LabelRow{Event: schemas.LabelEvent{EventID: id, RequestID: id, Model: labelSeries.Model,
				Timestamp: t0.Add(6 * time.Minute), Label: schemas.Value{Kind: schemas.Number, Num: float64(i % 2)}}, Topic: "labels", Offset: int64(i)})
		}
	}
	if err := s.WriteLabelData(ctx, keys, labels, t0); err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(a, b int) bool {
		if want[a].id != want[b].id {
			return want[a].id < want[b].id
		}
		return want[a].at.Before(want[b].at)
	})
	labelOf := map[string]float64{}
	for _, l := range labels {
		labelOf[l.Event.RequestID] = l.Event.Label.Num
	}
	pairs, beyond, err := joinWindow(ctx, s, storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)},
		storage.JoinSpec{From: t0, Until: t0.Add(time.Hour), Cutoff: t0.Add(time.Hour), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != n || beyond != 0 {
		t.Fatalf("%d pairs (%d beyond the horizon), want %d", len(pairs), beyond, n)
	}
	for j, p := range pairs {
		w := want[j]
		if int(p.Prediction.Num) != w.i || !p.EventTime.Equal(w.at) {
			t.Fatalf("pair %d is prediction %v at %v, want %d (%s at %v)", j, p.Prediction.Num, p.EventTime, w.i, w.id, w.at)
		}
		l, labelled := labelOf[w.id]
		if labelled != (p.Label.Kind != schemas.Missing) || (labelled && p.Label.Num != l) {
			t.Fatalf("pair %d (%s): label %+v, want %v (labelled %v)", j, w.id, p.Label, l, labelled)
		}
	}
}

// Upgrading from 0009 loses nothing: the prediction keys move to prediction_keys_by_window,
// the labels to label_events (and their places and progress to label_offsets and
// label_progress), each stored detector state to its window's row (0010), then the old
// tables go (0011).
func TestMigrationMovesLabelData(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	migs, exec := migrateThrough(ctx, t, s, 9)
	db := s.Database()
	exec(`INSERT INTO `+db+`.prediction_keys (model, request_id, model_version, deployment, event_time, window_start, window_end,
  prediction_kind, prediction_num, prediction_class, scores, written_at) VALUES (?, 'r1', ?, ?, ?, ?, ?, 1, 0.8, '', map('1', 0.8), ?)`,
		labelSeries.Model, labelSeries.Version, labelSeries.Deployment, t0.Add(time.Minute), t0, t0.Add(5*time.Minute), t0)
	exec(`INSERT INTO `+db+`.labels (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
  VALUES (?, 'r1', 'l1', ?, 1, 1, '', '', 'labels', 0, 7, ?)`, labelSeries.Model, t0.Add(6*time.Minute), t0)
	for i, st := range []string{"", "old state"} { // the state was taken at the second window
		start := t0.Add(time.Duration(i) * 5 * time.Minute)
		exec(`INSERT INTO `+db+`.window_performance (model, model_version, deployment, window_start, window_end, labels_until, in_reference, task,
  predictions, labelled, written_at) VALUES (?, ?, ?, ?, ?, ?, 0, 'classification', 1, 1, ?)`,
			labelSeries.Model, labelSeries.Version, labelSeries.Deployment, start, start.Add(5*time.Minute), start.Add(time.Hour), t0)
		if st != "" {
			exec(`INSERT INTO `+db+`.change_state (model, model_version, deployment, window_start, state, written_at) VALUES (?, ?, ?, ?, ?, ?)`,
				labelSeries.Model, labelSeries.Version, labelSeries.Deployment, start, st, t0)
		}
	}
	done, err := s.Migrate(ctx, 3650)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != len(migs)-9 {
		t.Fatalf("applied %v, want the %d after 0009", done, len(migs)-9)
	}
	settled, err := s.LoadSettled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(settled) != 1 || string(settled[0].Change) != "old state" || !settled[0].LastStart.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("settled %+v", settled)
	}
	pairs, _, err := joinWindow(ctx, s, storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)},
		storage.JoinSpec{From: t0, Until: t0.Add(time.Hour), Cutoff: t0.Add(time.Hour), Horizon: time.Hour})
	if err != nil || len(pairs) != 1 || pairs[0].Prediction.Num != 0.8 || pairs[0].Scores["1"] != 0.8 || pairs[0].Label.Num != 1 {
		t.Errorf("joined %+v, %v", pairs, err)
	}
	progress, models, err := s.LoadLabelProgress(ctx)
	if err != nil || len(progress) != 1 || progress[0].Partition != 0 || !progress[0].Latest.Equal(t0.Add(6*time.Minute)) ||
		fmt.Sprint(models) != fmt.Sprint([]string{labelSeries.Model}) {
		t.Errorf("label progress %+v, models %v (%v)", progress, models, err)
	}
	cuts, err := s.LabelCuts(ctx, t0, time.Time{}, labelPartitions(1))
	if err != nil || cuts[storage.LabelPartition{Topic: "labels", Partition: 0}] != 7 {
		t.Errorf("label cuts %v (%v): the label's offset not moved to label_offsets", cuts, err)
	}
	for _, gone := range []string{"prediction_keys", "labels", "change_state", "prediction_keys_by_window"} {
		var n uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, gone).Scan(&n); err != nil || n != 0 {
			t.Errorf("table %s: %d left (%v)", gone, n, err)
		}
	}
}

// migrateThrough applies the migrations up to version by hand, as a driftd of that version
// would have, and returns them all and an exec for the test's own statements.
func migrateThrough(ctx context.Context, t *testing.T, s *storage.Store, version uint32) ([]dsql.Migration, func(string, ...any)) {
	t.Helper()
	l := dsql.Layout{Database: s.Database(), TTLDays: 3650}
	setup, err := dsql.Setup(l)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := dsql.Migrations(l)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if err := s.Conn().Exec(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	for _, q := range setup {
		exec(q)
	}
	for _, m := range migs {
		if m.Version > version {
			continue
		}
		for _, q := range m.Statements {
			exec(q)
		}
		exec("INSERT INTO "+s.Database()+".schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, t0)
	}
	return migs, exec
}

// Upgrading to 0022 moves the prediction keys kept a row each into rows of arrays: every
// key once (duplicates of the old table's unmerged rows too), over more than the 100
// days an INSERT block may otherwise touch, and the join reads them as before. A copy
// interrupted before 0023 dropped the old table runs again from it.
func TestMigrationMovesPredictionKeysIntoArrays(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	migs, exec := migrateThrough(ctx, t, s, 21)
	db := s.Database()
	// 150 days, a window an hour, 10 keys each (the last with scores), written twice.
	for i := 0; i < 2; i++ {
		exec(`INSERT INTO ` + db + `.prediction_keys_by_window (model, model_version, deployment, window_start, window_end, event_time, request_id,
  prediction_kind, prediction_num, prediction_class, scores, written_at)
SELECT 'm', '1', 'primary', toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalHour(intDiv(number, 10)),
  toDateTime64('2026-01-01 00:05:00', 3, 'UTC') + toIntervalHour(intDiv(number, 10)),
  toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalHour(intDiv(number, 10)) + toIntervalSecond(number % 10),
  concat('r', toString(number)), 1, number, '', if(number % 10 = 9, map('1', 0.5), map()), now64(3)
FROM numbers(36000) SETTINGS max_partitions_per_insert_block = 0`)
	}
	// The copy once, by hand, as a run that stopped before recording it would have.
	for _, m := range migs {
		if m.Version == 22 {
			for _, q := range m.Statements {
				exec(q)
			}
		}
	}
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	var keys, distinct, rows uint64
	var sum float64
	if err := s.Conn().QueryRow(ctx, `SELECT count(), uniqExact(request_id, event_time), (SELECT count() FROM `+db+`.prediction_key_batches), sum(num) FROM (
  SELECT request_id, event_time, any(n) AS num FROM `+db+`.prediction_key_batches ARRAY JOIN request_ids AS request_id, event_times AS event_time, prediction_nums AS n
  GROUP BY request_id, event_time)`).Scan(&keys, &distinct, &rows, &sum); err != nil {
		t.Fatal(err)
	}
	if keys != 36000 || distinct != 36000 || sum != 35999*36000/2 {
		t.Errorf("%d keys (%d distinct), sum %v: want 36000, each once", keys, distinct, sum)
	}
	if rows < 3600 {
		t.Errorf("%d rows of keys, want one per window at least", rows)
	}
	w := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(3599 * time.Hour) // the last window
	pairs, _, err := joinWindow(ctx, s, storage.SettledWindow{Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}, Start: w, End: w.Add(5 * time.Minute)},
		storage.JoinSpec{From: w, Until: w.Add(time.Hour), Cutoff: w.Add(time.Hour), Horizon: time.Hour})
	if err != nil || len(pairs) != 10 || pairs[9].Prediction.Num != 35999 || pairs[9].Scores["1"] != 0.5 || len(pairs[0].Scores) != 0 {
		t.Errorf("the last window joined %+v (%v), want its 10 keys", pairs, err)
	}
	var n uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'prediction_keys_by_window'", db).Scan(&n); err != nil || n != 0 {
		t.Errorf("prediction_keys_by_window: %d left (%v)", n, err)
	}
}

// BenchmarkLabelJoinWindow joins one settled window of 100,000 predictions (a 5-minute
// window at 333 events/s), every one labelled, and scores it as the settle loop does:
// predictions/s of the join, and driftd's allocations per window.
func BenchmarkLabelJoinWindow(b *testing.B) {
	s := openStore(b)
	ctx := testenv.Context(b, 10*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	start, end := t0.UnixMilli(), t0.Add(5*time.Minute).UnixMilli()
	keys := make([]storage.PredictionKey, n)
	labels := make([]storage.LabelRow, n)
	for i := range keys {
		id := fmt.Sprintf("req-%06d", i)
		at := t0.Add(time.Duration(i) * 3 * time.Millisecond)
		keys[i] = storage.PredictionKey{Series: labelSeries, RequestID: id, EventTime: at, Start: start, End: end,
			Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i%100) / 100}}
		labels[i] = storage.LabelRow{Event: schemas.LabelEvent{EventID: id, RequestID: id, Model: labelSeries.Model, Timestamp: at.Add(time.Minute),
			Label: schemas.Value{Kind: schemas.Number, Num: float64(i % 2)}}, Topic: "labels", Partition: i % 3, Offset: int64(i / 3)}
	}
	if err := s.WriteLabelData(ctx, keys, labels, t0); err != nil {
		b.Fatal(err)
	}
	w := storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)}
	js := storage.JoinSpec{From: t0, Until: t0.Add(time.Hour), Cutoff: t0.Add(time.Hour), Horizon: time.Hour, Partitions: labelPartitions(3)}
	b.ReportAllocs()
	for b.Loop() {
		var sc detectors.Scorer
		if _, err := s.LoadWindowPairs(ctx, w, js, sc.Add); err != nil {
			b.Fatal(err)
		}
		if c, _, _ := sc.Result(); c.Labelled != n {
			b.Fatalf("%d labelled, want %d", c.Labelled, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
}

// A request id a series used twice in a window: a label stamped before the second
// prediction (less the lateness) is the first's, not the second's.
func TestLabelJoinReusedRequestID(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	start, end := t0.UnixMilli(), t0.Add(5*time.Minute).UnixMilli()
	var keys []storage.PredictionKey
	for i, at := range []time.Duration{time.Minute, 4 * time.Minute} {
		keys = append(keys, storage.PredictionKey{Series: labelSeries, RequestID: "dup", EventTime: t0.Add(at), Start: start, End: end,
			Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i)}})
	}
	labels := []storage.LabelRow{{Event: schemas.LabelEvent{EventID: "l", RequestID: "dup", Model: labelSeries.Model, Timestamp: t0.Add(2 * time.Minute),
		Label: schemas.Value{Kind: schemas.Number, Num: 1}}, Topic: "labels", Offset: 1}}
	if err := s.WriteLabelData(ctx, keys, labels, t0); err != nil {
		t.Fatal(err)
	}
	pairs, _, err := joinWindow(ctx, s, storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)},
		storage.JoinSpec{From: t0, Until: t0.Add(time.Hour), Cutoff: t0.Add(time.Hour), Horizon: time.Hour, Before: 5 * time.Second, Partitions: labelPartitions(1)})
	if err != nil || len(pairs) != 2 {
		t.Fatalf("%d pairs (%v)", len(pairs), err)
	}
	for _, p := range pairs {
		first := p.Prediction.Num == 0
		if labelled := p.Label.Kind != schemas.Missing; labelled != first {
			t.Errorf("prediction at %v: labelled %v (%+v), want only the first", p.EventTime, labelled, p.Label)
		}
	}
}
