package storage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// The judge's rewrite of a window's partial rows wins over the unjudged rows (the
// ReplacingMergeTree keeps the newest written_at) even when the reader that wrote them,
// on another host, has a clock ahead of the judge's.
func TestJudgementRewriteWinsOverAReaderClockAhead(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	// The reader (clock 2 s ahead) writes its partials unjudged.
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0.Add(time.Hour + 2*time.Second)}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// One second later by the reader's clock, the judge (its clock 2 s behind) judges window 0.
	judged := &storage.Batch{WrittenAt: t0.Add(time.Hour + time.Second), Closed: []processors.Closed{{Merged: closed[0].Merged}},
		Verdicts:      []detectors.Verdict{{Window: closed[0].Merged, ExpectedEvents: 100, Judgement: "judged"}},
		JudgedThrough: []storage.JudgeProgress{{Model: closed[0].Merged.Series.Model, Through: time.UnixMilli(closed[0].Merged.End).UTC()}}}
	if err := s.WriteWithRetry(ctx, judged, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT countIf(judgement != '') FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "2" {
		t.Errorf("judged partial rows after the rewrite: %s, want 2 (window 0's two partitions): the judgement lost to the reader's newer written_at", strings.TrimSpace(out))
	}
}

// Restoring reads the windows of models without a judge_progress row (every model of a
// deployment upgraded from before 0017) also with join_use_nulls = 1 in driftd's profile.
func TestRestoreWithJoinUseNulls(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(before) != 1 {
		t.Fatalf("series ends %v %v", before, err)
	}
	if err := s.Conn().Exec(ctx, "SET join_use_nulls = 1"); err != nil {
		t.Fatal(err)
	}
	defer s.Conn().Exec(ctx, "SET join_use_nulls = 0")
	after, err := s.ForSpreadGroup().LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(after) != 1 {
		t.Errorf("with join_use_nulls = 1: series ends %v %v, want the one series as before", after, err)
	}
}
