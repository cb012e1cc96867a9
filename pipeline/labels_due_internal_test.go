package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// dueStore holds written windows; a window is settled once a performance row for it is
// written. The join finds no labels.
type dueStore struct {
	Store
	windows []storage.SettledWindow
	settled map[[2]any]bool
	loads   int
}

func (s *dueStore) LoadUnsettledWindows(_ context.Context, models []string, since, until time.Time) ([]storage.SettledWindow, error) {
	s.loads++
	var out []storage.SettledWindow
	for _, w := range s.windows {
		if w.End.After(since) && !w.End.After(until) && !s.settled[[2]any{w.Series, w.Start.UnixMilli()}] {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *dueStore) LoadSettled(context.Context, ...processors.SeriesKey) ([]storage.SeriesSettled, error) {
	return nil, nil
}

func (s *dueStore) LoadWindowPairs(context.Context, storage.SettledWindow, storage.JoinSpec, func(detectors.PerfPair)) (uint64, error) {
	return 0, nil
}

func (s *dueStore) WriteWithRetry(_ context.Context, b *storage.Batch, _ storage.Backoff, _ func(error)) error {
	for _, r := range b.Performance {
		s.settled[[2]any{r.Window.Series, r.Window.Start.UnixMilli()}] = true
	}
	return nil
}

// The settle loop's due times with two settle times: "fast" settles after 1 minute, "slow"
// after 1 day; five-minute windows for a day and a half, a settle loop after each window
// as Flush runs it. Each window settles once its model's time is up; the due list holds
// each waiting window once (review: it re-added them on every loop, 41,904 entries for
// ~290 windows), and ClickHouse is asked only when a window is due.
func TestSettleLoopDueTimes(t *testing.T) {
	st := &dueStore{settled: map[[2]any]bool{}}
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	set := Settings{LabelTopic: "labels", ReferenceWindows: func(string) int { return 3 },
		Labels: LabelSettings{Horizon: 7 * 24 * time.Hour, Settle: time.Minute, Lateness: time.Second, Detector: detectors.ChangeADWIN}}
	set.Labels.ForModel = func(m string) LabelSettings {
		ls := set.Labels
		ls.ForModel = nil
		if m == "slow" {
			ls.Settle = 24 * time.Hour
		}
		return ls
	}
	set.Labels.MinSettle = time.Minute
	r := New(set, nil, nil, nil, st, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0 })
	r.lab.models["fast"], r.lab.models["slow"] = true, true
	tp := consumers.TopicPartition{Topic: "labels"}
	ctx := context.Background()
	maxDue := 0
	for i := 0; i < 12*36; i++ {
		start := t0.Add(time.Duration(i) * 5 * time.Minute)
		end := start.Add(5 * time.Minute)
		for _, m := range []string{"fast", "slow"} {
			w := storage.SettledWindow{Series: processors.SeriesKey{Model: m, Version: "1", Deployment: "primary"}, Start: start, End: end}
			st.windows = append(st.windows, w)
			if r.lab.dueKnown {
				r.lab.addDue(set.Labels.dueKey(m, end))
			}
		}
		r.lab.progress[tp] = labelPart{stamp: end.Add(2 * time.Minute)} // labels read past the window
		if err := r.settleLabels(ctx); err != nil {
			t.Fatal(err)
		}
		maxDue = max(maxDue, len(r.lab.due))
	}
	settled := 0
	for range st.settled {
		settled++
	}
	t.Logf("windows written %d, settled %d, loads %d, len(due) now %d (max %d)", len(st.windows), settled, st.loads, len(r.lab.due), maxDue)
	// fast: every window; slow: those that ended a day before the last loop's labels.
	if want := 12*36 + 12*12; settled != want {
		t.Errorf("%d windows settled, want %d", settled, want)
	}
	if maxDue > 12*24+2 {
		t.Errorf("due holds %d entries for at most %d waiting windows", maxDue, 12*24+2)
	}
	if st.loads > 12*36+2 {
		t.Errorf("%d loads for %d loops", st.loads, 12*36)
	}
}

func (s *dueStore) LabelCuts(context.Context, time.Time, time.Time, []storage.LabelPartition) (map[storage.LabelPartition]int64, error) {
	return map[storage.LabelPartition]int64{}, nil
}

// standbySource is a member's source reading assigned partitions (0: a standby).
type standbySource struct {
	Source
	assigned int
}

func (s standbySource) Assigned() int { return s.assigned }
func (s standbySource) Commit(context.Context, map[consumers.TopicPartition]int64) error {
	return nil
}

// A standby (no partition assigned) settles nothing, though it restored the label
// partitions' progress and the wall clock is far past the windows (review: it judged
// windows the active member had not read every label of, and the active member then
// found them settled); the active member does.
func TestStandbySettlesNothing(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	for _, assigned := range []int{0, 1} {
		st := &dueStore{settled: map[[2]any]bool{}, windows: []storage.SettledWindow{{Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"},
			Start: t0, End: t0.Add(5 * time.Minute)}}}
		set := Settings{LabelTopic: "labels", ReferenceWindows: func(string) int { return 3 }, StartupGrace: time.Second,
			Labels: LabelSettings{Horizon: 7 * 24 * time.Hour, Settle: time.Minute, Lateness: time.Second, Detector: detectors.ChangeADWIN}}
		r := New(set, standbySource{assigned: assigned}, nil, nil, st, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0.Add(30 * 24 * time.Hour) })
		r.lab.models["m"] = true
		r.lab.progress[consumers.TopicPartition{Topic: "labels"}] = labelPart{stamp: t0.Add(time.Hour)} // restored: labels read past the window
		if err := r.settleAndCommit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if settled := len(st.settled); (assigned == 0) != (settled == 0) || (assigned == 0) != (st.loads == 0) {
			t.Errorf("%d partitions assigned: %d windows settled, %d loads", assigned, settled, st.loads)
		}
	}
}
