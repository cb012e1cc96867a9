package storage_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// A spread group writes partials before their windows are judged: a member's restart
// restores the judging state (series ends, hourly events, recent volume) from the windows
// judged only, up to judge_progress (ForSpreadGroup). A window judged from its partials read back has its partials'
// rows written again with its judgement, replacing them (not added).
func TestRestoreReadsOnlyJudgedWindows(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	series, end := closed[0].Merged.Series, func(i int) time.Time { return time.UnixMilli(closed[i].Merged.End).UTC() }
	// Partials written unjudged, and three windows judged.
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0,
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(2)}}}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	sp := s.ForSpreadGroup()
	restored := func() string {
		t.Helper()
		ends, err := sp.LoadSeriesEnds(ctx, 48*time.Hour)
		if err != nil || len(ends) != 1 {
			t.Fatalf("series ends %v %v", ends, err)
		}
		hourly, err := sp.LoadHourlyEvents(ctx, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var events uint64
		for _, h := range hourly {
			events += h.Events
		}
		recent, err := sp.LoadVolumeWindows(ctx, 48*time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		last := recent[len(recent)-1]
		return fmt.Sprintf("end %v, %d events, %d windows, last %g/%t", ends[0].End.Sub(t0), events, len(recent), last.Expected, last.Low)
	}
	if got, want := restored(), "end 1h30m0s, 300 events, 3 windows, last 0/false"; got != want {
		t.Errorf("restored %q, want %q", got, want)
	}
	// The fourth window judged from its partials read back.
	judged := &storage.Batch{WrittenAt: t0.Add(time.Hour), Closed: []processors.Closed{{Merged: closed[3].Merged}},
		Verdicts:      []detectors.Verdict{{Window: closed[3].Merged, ExpectedEvents: 400, VolumeLow: true, Judgement: "judged from its partitions"}},
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(3)}}}
	if err := s.WriteWithRetry(ctx, judged, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := restored(), "end 2h0m0s, 400 events, 4 windows, last 400/true"; got != want {
		t.Errorf("after judging the fourth window, restored %q, want %q", got, want)
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT count(), countIf(judgement != ''), sum(events), sum(volume_low) FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if want := "12\t2\t600\t2"; strings.TrimSpace(out) != want {
		t.Errorf("rows (count, judged, events, low) %q, want %q: the fourth window's two partial rows rewritten", out, want)
	}
	// Judge progress only moves forward.
	if err := s.WriteWithRetry(ctx, &storage.Batch{WrittenAt: t0.Add(2 * time.Hour),
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(0)}}}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadJudgeProgress(ctx); err != nil || len(got) != 1 || !got[0].Through.Equal(end(3)) {
		t.Errorf("judge progress %v %v, want the fourth window's end", got, err)
	}
}

// A model's windows read back together (a spread group's judge) are the windows read
// back one by one.
func TestLoadWindowsEqualsLoadWindow(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	series := closed[0].Merged.Series
	summary := func(w *processors.WindowAgg) string {
		a := w.Features["amount"]
		return fmt.Sprintf("%v %d-%d events %d errors %d latency %g/%g amount %d %.9g %.9g", w.Series, w.Start, w.End, w.Events, w.Errors,
			w.Latency.Count(), w.Latency.Quantile(0.9), a.Count, a.Moments.Mean, a.Sketch.Quantile(0.5))
	}
	// Windows ending after the first one's end and up to the fifth's.
	all, err := s.LoadWindows(ctx, series.Model, time.UnixMilli(closed[0].Merged.End), time.UnixMilli(closed[4].Merged.End))
	if err != nil || len(all) != 4 {
		t.Fatalf("%d windows read back (%v), want 4", len(all), err)
	}
	for i, w := range all {
		one, err := s.LoadWindow(ctx, series, time.UnixMilli(closed[i+1].Merged.Start))
		if err != nil || one == nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		if got, want := summary(w), summary(one); got != want {
			t.Errorf("window %d read back with the others:\n%s\nalone:\n%s", i+1, got, want)
		}
		if got, want := summary(w), summary(closed[i+1].Merged); got != want {
			t.Errorf("window %d read back:\n%s\nwritten:\n%s", i+1, got, want)
		}
	}
}
