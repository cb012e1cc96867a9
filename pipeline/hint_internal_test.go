package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// A spread group's judge words a model's upstream hint from the runs written to
// ClickHouse (storedHint); one member from its stages in memory (upstreamHint). Over a day
// of random runs (failures, outages, late runs, runs naming different models, a stage
// with a configured interval and one linked only by configuration), the two give the
// same hint for every model and window.
func TestStoredHintIsTheHintInMemory(t *testing.T) {
	store, ctx := hintStore(t)
	set := Settings{PipelineTopic: "pipe", Spread: true, FreshnessFactor: 2,
		PipelineWindow: processors.WindowSpec{Size: 30 * time.Minute, Lateness: time.Minute},
		StageInterval: func(p, _ string) time.Duration {
			if p == "fixed" {
				return 20 * time.Minute
			}
			return 0
		},
		StagesOf: func(m string) [][2]string {
			if m == "churn" {
				return [][2]string{{"ml", "features"}}
			}
			return nil
		}}
	r := New(set, nil, nil, nil, store, testenv.Logger(t), nil)
	rng := rand.New(rand.NewPCG(9, 9))
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	type stage struct {
		k      stageKey
		every  time.Duration
		models []string
	}
	stages := []stage{{stageKey{"etl", "extract"}, 10 * time.Minute, []string{"fraud"}}, {stageKey{"etl", "join"}, 15 * time.Minute, []string{"fraud", "churn"}},
		{stageKey{"fixed", "load"}, 20 * time.Minute, []string{"churn"}}, {stageKey{"ml", "features"}, 30 * time.Minute, nil}}
	var runs []storage.StageRun
	for i, s := range stages {
		for at := t0.Add(time.Duration(rng.IntN(600)) * time.Second); at.Before(t0.Add(24 * time.Hour)); at = at.Add(s.every) {
			if h := at.Sub(t0).Hours(); h > float64(4+i*4) && h < float64(7+i*4) {
				continue // an outage
			}
			failed := rng.Float64() < 0.2
			status := schemas.StageSucceeded
			if failed {
				status = schemas.StageFailed
			}
			ts := at
			if rng.Float64() < 0.05 {
				ts = ts.Add(-time.Duration(rng.IntN(3600)) * time.Second) // read late
			}
			var models []string
			if at.After(t0.Add(time.Duration(2+3*i) * time.Hour)) { // the links start at different runs
				models = s.models
			}
			r.up.observe(&schemas.PipelineEvent{Pipeline: s.k.pipeline, Stage: s.k.stage, Status: status, Timestamp: ts, Models: models}, processors.Added, 0)
			runs = append(runs, storage.StageRun{Pipeline: s.k.pipeline, Stage: s.k.stage, Time: ts, Failed: failed, Models: models,
				Source: processors.Source{Topic: "pipe", Partition: i, Offset: int64(len(runs))}})
		}
	}
	if err := store.WriteWithRetry(ctx, &storage.Batch{StageRuns: runs, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	hinted := 0
	for _, model := range []string{"fraud", "churn", "idle"} {
		for start := t0; start.Before(t0.Add(25 * time.Hour)); start = start.Add(time.Hour) {
			end := start.Add(time.Hour)
			want, _ := r.upstreamHint(ctx, model, start, end)
			got, err := r.storedHint(ctx, model, start, end)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s %s: stored hint %q, in memory %q", model, start.Format("15:04"), got, want)
			}
			if want != "" {
				hinted++
			}
		}
	}
	if hinted < 20 {
		t.Errorf("only %d windows have a hint: the runs test little", hinted)
	}
	t.Logf("%d of %d windows hinted, %d runs", hinted, 3*25, len(runs))
}

// hintStore is a migrated store in a database of the test's own.
func hintStore(t *testing.T) (*storage.Store, context.Context) {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	ctx := testenv.Context(t, 3*time.Minute)
	store, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		store.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+store.Database())
		store.Close()
	})
	if _, err := store.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	return store, ctx
}

// Runs stamped between milliseconds, a failure just before a window's end and a success
// just after it: stage_runs keeps milliseconds, and the hint read from it must count them
// as the member reading them does (without the cut to milliseconds where runs are read,
// one member said "has not succeeded since 00:10" and the stored hint "failed 1 times").
func TestStoredHintOfRunsBetweenMilliseconds(t *testing.T) {
	store, ctx := hintStore(t)
	set := Settings{PipelineTopic: "pipe", Spread: true, FreshnessFactor: 2, PipelineDecoder: schemas.Decoder{},
		PipelineWindow: processors.WindowSpec{Size: 30 * time.Minute, Lateness: time.Minute},
		StageInterval:  func(string, string) time.Duration { return 20 * time.Minute }}
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	end := t0.Add(time.Hour)
	r := New(set, nil, nil, nil, store, testenv.Logger(t), func() time.Time { return end.Add(time.Hour) })
	for i, run := range []struct {
		at     time.Time
		status schemas.StageStatus
	}{
		{t0.Add(10 * time.Minute), schemas.StageSucceeded},
		{end.Add(-300 * time.Microsecond), schemas.StageFailed},
		{end.Add(500 * time.Microsecond), schemas.StageSucceeded},
	} {
		b := fmt.Sprintf(`{"event_id":"r%d","pipeline":"etl","stage":"join","run_id":"%d","status":%q,"timestamp":%q,"models":["fraud"]}`,
			i, i, run.status, run.at.Format(time.RFC3339Nano))
		if err := r.handlePipeline(ctx, consumers.Record{Topic: "pipe", Offset: int64(i), Value: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.WriteWithRetry(ctx, &storage.Batch{StageRuns: r.up.runs, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	want, _ := r.upstreamHint(ctx, "fraud", t0, end)
	got, err := r.storedHint(ctx, "fraud", t0, end)
	if err != nil {
		t.Fatal(err)
	}
	// The failure is in the window (at end - 1 ms); the success counts at the end.
	if got != want || want != "stage join of pipeline etl failed 1 times in this period" {
		t.Errorf("stored hint %q, in memory %q; want both to count the failure only", got, want)
	}
}
