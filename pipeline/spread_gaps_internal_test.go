package pipeline

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
)

// A spread group's judge gives the silent windows between a series' windows read back,
// as one member gives them between the windows it closes.
func TestSpreadJudgeFillsGaps(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC).UnixMilli()
	s := processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}
	w := func(i int64) processors.Closed {
		win := processors.EmptyWindow(s, t0+i*60000, t0+(i+1)*60000)
		win.Events = 10
		return processors.Closed{Merged: win}
	}
	count := func(spread bool) int {
		set := Settings{Spread: spread, PredictionTopic: "p"}
		set.Limits = processors.Limits{}
		r := &Runner{set: set, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r.proc = processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
		r.j = newJudge(&r.set, r.log, nil)
		// windows 0 and 1 judged, then window 5 after a silence of three windows
		got := r.fillGaps([]processors.Closed{w(0), w(1)})
		got = r.fillGaps([]processors.Closed{w(5)})
		return len(got)
	}
	one, spread := count(false), count(true)
	if one != 4 {
		t.Fatalf("one member: %d windows, want 3 empty + 1", one)
	}
	if spread != one {
		t.Errorf("spread judge: %d windows, one member %d: the silence after window 1 is not filled in a spread group", spread, one)
	}
}
