package storage_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// Rolling upgrade in active_standby: the new binary runs migration 0017 (which seeds
// judge_progress with max(window_end)) while the old binary, still active, keeps writing
// windows without judge_progress. When the new binary takes over, its restore must see
// every written window, as it did before the seed.
func TestOneMemberRestoreReadsEveryWindowWritten(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	// old binary: windows 0..2 written before the migration
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed[:3], WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// Migration 0017's seed, as it runs on the upgraded database (run again: it is
	// skipped once judge_progress holds rows).
	if err := s.Conn().Exec(ctx, "DELETE FROM "+s.Database()+".schema_migrations WHERE version = 17"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadJudgeProgress(ctx); err != nil || len(got) != 1 || !got[0].Through.Equal(time.UnixMilli(closed[2].Merged.End).UTC()) {
		t.Fatalf("seeded judge progress %v %v, want the third window's end", got, err)
	}
	// old binary, still active until the new one takes over: windows 3..5
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed[3:], WrittenAt: t0.Add(time.Hour)}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	ends, err := s.LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(ends) != 1 {
		t.Fatalf("series ends %v %v", ends, err)
	}
	if want := time.UnixMilli(closed[5].Merged.End).UTC(); !ends[0].End.Equal(want) {
		t.Errorf("restored series end %v, want %v (the last window written): windows 3..5 are hidden from the one-member restore, and its fillGaps gives them empty windows", ends[0].End.Sub(t0), want.Sub(t0))
	}
}

// Several series of a model in the same windows (two versions, two deployments), with
// different volumes and error counts, and an empty window (partition -1) of a third
// series: LoadWindows gives each window its own service counts, as LoadWindow does.
func TestLoadWindowsSeveralSeries(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 30 * time.Minute} }, processors.Limits{})
	series := [][2]string{{"1", "primary"}, {"2", "primary"}, {"1", "canary"}}
	for i := 0; i < 900; i++ {
		e := event(rng, time.Duration(i)*6*time.Second, 0)
		sv := series[i%3]
		if i%3 == 2 && i%2 == 0 {
			continue // fewer events on the canary
		}
		e.ModelVersion, e.Deployment = sv[0], sv[1]
		if i%7 == 0 {
			e.Status = schemas.StatusError
		}
		p.Add(e, processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	empty := processors.EmptyWindow(processors.SeriesKey{Model: closed[0].Merged.Series.Model, Version: "3", Deployment: "primary"}, closed[0].Merged.Start, closed[0].Merged.End)
	closed = append(closed, processors.Closed{Merged: empty, Partials: []*processors.Partial{{WindowAgg: empty,
		TopicPartition: processors.TopicPartition{Topic: "in", Partition: -1}, FirstOffset: -1, LastOffset: -1}}})
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	sum := func(w *processors.WindowAgg) string {
		a := w.Features["amount"]
		return fmt.Sprintf("%v %d events %d errors %d lat %g amount %d %.6g in %v", w.Series, w.Start, w.Events, w.Errors, w.Latency.Count(), a.Count, a.Moments.Mean, w.InputSize)
	}
	model := closed[0].Merged.Series.Model
	all, err := s.LoadWindows(ctx, model, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range closed {
		if c.Merged.Events > 0 {
			want[sum(c.Merged)] = true
		}
	}
	if len(all) != len(want) {
		t.Errorf("%d windows read back, want %d", len(all), len(want))
	}
	for _, w := range all {
		if !want[sum(w)] {
			t.Errorf("read back %s: not a written window", sum(w))
		}
	}
}
