package storage_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// The runs a spread group's judges read a model's upstream hint from: the stages linked
// to the model by a run before the window's end (from the first such run), a stage's
// failures in [from, to) and its last successes up to to, each time once; a run read
// again (same topic, partition and offset) counted once.
func TestStageRunsReadBack(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	var offset int64
	run := func(stage string, min int, failed bool, models ...string) storage.StageRun {
		offset++
		return storage.StageRun{Pipeline: "orders", Stage: stage, Time: at(min), Failed: failed, Models: models,
			Source: processors.Source{Topic: "pipe", Partition: int(offset % 2), Offset: offset}}
	}
	runs := []storage.StageRun{
		run("join", 0, false, "fraud"), run("join", 10, false), run("join", 10, false), run("join", 20, true, "fraud"),
		run("join", 30, true), run("join", 40, false), run("join", 50, true),
		run("load", 25, false, "fraud", "churn"), run("load", 5, true), run("extract", 45, false, "churn"),
	}
	for _, b := range []*storage.Batch{{StageRuns: runs, WrittenAt: t0}, {StageRuns: runs[3:5], WrittenAt: t0.Add(time.Hour)}} {
		if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	links, err := s.LoadStageLinks(ctx, at(25), "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(links), fmt.Sprint([]storage.StageLink{{Model: "fraud", Pipeline: "orders", Stage: "join", Since: at(0)}}); got != want {
		t.Errorf("links of fraud before minute 25: %s, want %s (load's run at 25 is not before)", got, want)
	}
	if links, err = s.LoadStageLinks(ctx, at(60), "churn"); err != nil || len(links) != 2 || links[0].Stage != "extract" || !links[1].Since.Equal(at(25)) {
		t.Errorf("links of churn: %v %v, want extract and load (from minute 25)", links, err)
	}
	// Every model's (a restart's).
	if links, err = s.LoadStageLinks(ctx, time.Time{}); err != nil || len(links) != 4 || links[0].Model != "churn" || links[3].Model != "fraud" || links[3].Stage != "load" {
		t.Errorf("every link: %v %v, want churn's two and fraud's two", links, err)
	}
	failures, successes, err := s.LoadStageRuns(ctx, "orders", "join", at(20), at(50), 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{at(20), at(30)}; !slices.EqualFunc(failures, want, time.Time.Equal) {
		t.Errorf("failures in [20, 50): %v, want %v (each once, though written twice)", failures, want)
	}
	if want := []time.Time{at(10), at(40)}; !slices.EqualFunc(successes, want, time.Time.Equal) {
		t.Errorf("last 2 successes up to 50: %v, want %v (10 once)", successes, want)
	}
	if _, successes, err = s.LoadStageRuns(ctx, "orders", "join", at(0), at(40), 10); err != nil || !slices.EqualFunc(successes, []time.Time{at(0), at(10), at(40)}, time.Time.Equal) {
		t.Errorf("successes up to 40 (inclusive): %v %v", successes, err)
	}
}
