package storage_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// backfill is a batch as a flush after a long backlog writes it: windows on days
// consecutive days over two source partitions, judged, with a late event and a stage row
// per day and an alert per month over months months.
func backfill(t *testing.T, days, months int) *storage.Batch {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 5))
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
	sample := detectors.NewSample()
	for i := 0; i < 500; i++ {
		sample.AddEvent(event(rng, 0, 0))
	}
	ref := sample.Build("fraud's \"scorer\"", "1", detectors.SourceFirstWindows, 3, t0)
	p.SetLayout(ref.Model, ref.Version, ref.Layout())
	for d := 0; d < days; d++ {
		for i := 0; i < 20; i++ {
			p.Add(event(rng, time.Duration(d)*24*time.Hour+time.Duration(i)*time.Second, 0),
				processors.Source{Topic: "in", Partition: i % 2, Offset: int64(d*10 + i/2)}, t0)
		}
	}
	b := &storage.Batch{Closed: p.CloseAll(), WrittenAt: t0}
	th := detectors.DefaultThresholds
	th.MinEvents = 1
	for _, c := range b.Closed {
		b.Verdicts = append(b.Verdicts, detectors.Evaluate(c.Merged, ref, func(string) detectors.Thresholds { return th }))
		w := c.Merged
		b.Late = append(b.Late, storage.LateEvent{Source: processors.Source{Topic: "in", Partition: 1, Offset: int64(len(b.Late))}, EventID: fmt.Sprint("late-", len(b.Late)),
			Series: w.Series, Start: w.Start, End: w.End, EventTime: time.UnixMilli(w.Start)})
		b.Stages = append(b.Stages, storage.StageRow{Pipeline: "orders", Stage: "join", Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End),
			TP: processors.TopicPartition{Topic: "p", Partition: 0}, FirstOffset: int64(len(b.Stages)), LastOffset: int64(len(b.Stages)), Runs: 1})
	}
	for m := 0; m < months; m++ {
		at := t0.AddDate(0, m, 0)
		b.Alerts = append(b.Alerts, &schemas.AlertEvent{AlertID: fmt.Sprint("a", m), Fingerprint: "f", State: "firing", Severity: "warning",
			Kind: schemas.KindDataDrift, Model: "m", WindowStart: at, WindowEnd: at.Add(time.Minute), EmittedAt: at, Summary: "s"})
	}
	return b
}

// A backfill over more than 100 days: the tables are partitioned by day (alerts by month)
// and the engine refuses a block touching more than 100 partitions, so Write splits its
// inserts. Before, the whole flush failed with code 252, retried for ever.
func TestBackfillOverMoreThan100DaysIsWritten(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 3*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil { // the alerts run 11 years ahead: keep them past the TTL
		t.Fatal(err)
	}
	const days, months = 150, 130
	b := backfill(t, days, months)
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("write %d days: %v", days, err)
	}
	// Prediction keys too (written a column at a time), 3 a day.
	var keys []storage.PredictionKey
	for _, c := range b.Closed {
		for i := range 3 {
			at := time.UnixMilli(c.Merged.Start).Add(time.Duration(i) * time.Second).UTC()
			keys = append(keys, storage.PredictionKey{Series: c.Merged.Series, RequestID: fmt.Sprintf("r-%d-%d", c.Merged.Start, i), EventTime: at,
				Start: c.Merged.Start, End: c.Merged.End, Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i)}})
		}
	}
	if err := s.WriteLabelData(ctx, keys, nil, b.WrittenAt); err != nil {
		t.Fatalf("write the keys of %d days: %v", days, err)
	}
	db := s.Database()
	for _, c := range []struct {
		q    string
		want uint64
	}{
		{"SELECT count() FROM " + db + ".window_model_stats FINAL", 2 * days},
		{"SELECT uniqExact(toDate(window_start)) FROM " + db + ".window_feature_stats FINAL", days},
		{"SELECT sum(events) FROM " + db + ".window_model_stats FINAL", 20 * days},
		{"SELECT uniqExact(toDate(window_start)) FROM " + db + ".drift_scores FINAL", days},
		{"SELECT count() FROM " + db + ".late_events FINAL", days},
		{"SELECT count() FROM " + db + ".pipeline_stage_stats FINAL", days},
		{"SELECT count() FROM " + db + ".alerts FINAL", months},
		{"SELECT uniqExact(model, model_version, deployment, window_start, request_id, event_time) FROM " + db + ".prediction_key_batches ARRAY JOIN request_ids AS request_id, event_times AS event_time", uint64(len(keys))},
		{"SELECT uniqExact(toDate(window_start)) FROM " + db + ".prediction_key_batches", days},
		{"SELECT toUInt64(sum(arraySum(prediction_nums))) FROM " + db + ".prediction_key_batches", uint64(len(keys))},
	} {
		var got uint64
		if err := s.Conn().QueryRow(ctx, c.q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}
}

// What a flush sets aside when ClickHouse refuses it for good is its real content: per
// window and source partition, the rows it would have written, with the records'
// topic, partition and offset range. Inserted as they are (JSONEachRow), they are the
// very rows Write stores.
func TestRefusedRowsAreTheRowsWritten(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 3*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	b := backfill(t, 3, 2)
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	refused, err := b.Refused(false)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*len(b.Closed) + len(b.Stages) + len(b.Late) + len(b.Alerts); len(refused) != want {
		t.Fatalf("%d refused parts, want %d", len(refused), want)
	}
	// Provenance: each window's partials in order, then stages, late events, alerts.
	for i, c := range b.Closed {
		for j, p := range c.Partials {
			r := refused[2*i+j]
			if r.Topic != p.Topic || r.Partition != p.Partition || r.FirstOffset != p.FirstOffset || r.LastOffset != p.LastOffset || r.FirstOffset < 0 {
				t.Errorf("window %d partial %d: provenance %s/%d %d-%d, want %s/%d %d-%d", i, j, r.Topic, r.Partition, r.FirstOffset, r.LastOffset,
					p.Topic, p.Partition, p.FirstOffset, p.LastOffset)
			}
		}
	}
	if a := refused[len(refused)-1]; a.FirstOffset != -1 || a.Topic != "" {
		t.Errorf("an alert's provenance %+v", a)
	}
	// Replay every refused row into an empty copy of the database, as docs/reliability.md
	// says: through a staging table, decoding the sketches.
	other := openStore(t)
	if _, err := other.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	for _, r := range refused {
		var tables map[string][]json.RawMessage
		if err := json.Unmarshal(r.Rows, &tables); err != nil {
			t.Fatal(err)
		}
		for table, rows := range tables {
			var lines []string
			for _, row := range rows {
				lines = append(lines, string(row))
			}
			stage, dest := other.Database()+".staging_"+table, other.Database()+"."+table
			replace := map[string]string{"window_model_stats": " REPLACE (base64Decode(latency_sketch) AS latency_sketch)",
				"window_feature_stats": " REPLACE (base64Decode(sketch) AS sketch)"}[table]
			for _, q := range []string{"CREATE TABLE IF NOT EXISTS " + stage + " AS " + dest,
				"INSERT INTO " + stage + " FORMAT JSONEachRow " + strings.Join(lines, "\n"),
				"INSERT INTO " + dest + " SELECT *" + replace + " FROM " + stage,
				"TRUNCATE TABLE " + stage} {
				if err := other.Conn().Exec(ctx, q); err != nil {
					t.Fatalf("%.200s: %v", q, err)
				}
			}
		}
	}
	// Maps compare sorted: ClickHouse keeps a map's insertion order, which differs.
	for table, maps := range map[string]string{"window_model_stats": "", "window_feature_stats": " REPLACE (mapSort(categories) AS categories)",
		"drift_scores": "", "pipeline_stage_stats": " REPLACE (mapSort(errors) AS errors)", "late_events": "", "alerts": " REPLACE (mapSort(details) AS details)"} {
		want, err := testenv.TSV(ctx, s.Conn(), "SELECT *"+maps+" FROM "+s.Database()+"."+table+" FINAL")
		if err != nil {
			t.Fatal(err)
		}
		got, err := testenv.TSV(ctx, other.Conn(), "SELECT *"+maps+" FROM "+other.Database()+"."+table+" FINAL")
		if err != nil {
			t.Fatal(err)
		}
		if got != want || want == "" {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			from := max(0, i-200)
			t.Errorf("%s from the refused rows differs from what Write stored, at byte %d:\n got %.400q\nwant %.400q", table, i, got[from:], want[from:])
		}
	}
}

// Units split a batch into parts written on their own, and Merge puts them back.
func TestUnitsMergeBackToTheBatch(t *testing.T) {
	b := backfill(t, 4, 3)
	units := b.Units()
	if want := len(b.Closed) + len(b.Stages) + len(b.Late) + len(b.Alerts); len(units) != want {
		t.Fatalf("%d units, want %d", len(units), want)
	}
	for i, u := range units[:len(b.Closed)] {
		if len(u.Closed) != 1 || len(u.Verdicts) != 1 || u.Verdicts[0].Window != u.Closed[0].Merged || u.Closed[0].Merged != b.Closed[i].Merged {
			t.Errorf("window unit %d: %d windows, %d verdicts", i, len(u.Closed), len(u.Verdicts))
		}
	}
	m := storage.Merge(units)
	if len(m.Closed) != len(b.Closed) || len(m.Verdicts) != len(b.Verdicts) || len(m.Stages) != len(b.Stages) ||
		len(m.Late) != len(b.Late) || len(m.Alerts) != len(b.Alerts) || !m.WrittenAt.Equal(b.WrittenAt) {
		t.Errorf("merged %+v", m)
	}
}
