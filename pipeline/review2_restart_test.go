package pipeline_test

// Review (h-review2): restarts on the real engine (Kafka and ClickHouse), where the state
// a restart restores lives. A restarted run must give the rows and alerts of an
// uninterrupted one.

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/segmentio/kafka-go"
)

// reviewStream is 110 minutes of one model at 2 events/s (half-second apart) from t0, with
// a numeric feature x shifted by 3σ over minutes 60–74 and traffic at a tenth over minutes
// 85–99 when changes is set. It returns the records and the index of the first record at
// or after each minute.
func reviewStream(t *testing.T, changes bool) ([]kafka.Message, []int) {
	return reviewStreamFor(t, 110, changes)
}

// reviewStreamFor is reviewStream over minutes minutes.
func reviewStreamFor(t *testing.T, minutes int, changes bool) ([]kafka.Message, []int) {
	rng := rand.New(rand.NewPCG(42, 7))
	var msgs []kafka.Message
	var minute []int
	for s := 0; s < minutes*60; s++ {
		if s%60 == 0 {
			minute = append(minute, len(msgs))
		}
		m := s / 60
		if changes && m >= 85 && m < 100 && s%5 != 0 {
			continue
		}
		for _, half := range []time.Duration{0, 500 * time.Millisecond} {
			if changes && m >= 85 && m < 100 && half > 0 {
				continue
			}
			at := t0.Add(time.Duration(s)*time.Second + half)
			x := rng.NormFloat64()
			if changes && m >= 60 && m < 75 {
				x += 3
			}
			e := &schemas.PredictionEvent{EventID: fmt.Sprint("e-", at.UnixMilli()), Model: "orders", ModelVersion: "1", Deployment: "primary",
				Timestamp: at, Status: "ok", LatencyMs: 10 + 5*rng.ExpFloat64(),
				Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: x}}},
				Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
			msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: jsonOf(t, e)})
		}
	}
	return msgs, minute
}

// A restart (stop, then a new runner on the same ClickHouse and consumer group) at
// several moments gives the alerts and rows of the uninterrupted run: during the first
// windows (before the reference exists), during the first hour (before the series has an
// hour of recent windows), exactly at a window boundary, and during the feature shift.
func TestReviewRestartAnywhereEqualsUninterrupted(t *testing.T) {
	msgs, minute := reviewStream(t, true)
	tweak := func(s *pipeline.Settings) { s.IdleClose = 0 } // windows close by the watermark
	const closed = 109                                      // the last window stays open

	clean := newHarness(t)
	clean.tweak = tweak
	clean.produce(t, msgs...)
	waitFor, stop := clean.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.WindowsClosed == closed })
	n := int(stop().AlertsEmitted)
	cleanLines := alertLines(t, clean, n)
	cleanRows := results(t, clean)
	t.Logf("uninterrupted: %d alerts: %s", n, strings.Join(cleanLines, "\n"))
	if n == 0 {
		t.Fatal("no alerts: the stream has a shift and a drop")
	}

	for _, c := range []struct {
		name string
		at   int // index of the first record of the second run
	}{
		{"before the reference (minute 2, mid-window)", minute[2] + 37},
		{"first hour (minute 30, mid-window)", minute[30] + 61},
		{"at a window boundary (first record of minute 40)", minute[40]},
		{"during the shift (minute 66, mid-window)", minute[66] + 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.tweak = tweak
			h.produce(t, msgs[:c.at]...)
			waitFor, stop := h.start(t)
			splitMinute := c.at / 120
			waitFor("windows before the split", func(s pipeline.Stats) bool { return s.WindowsClosed >= uint64(max(splitMinute-1, 0)) })
			first := stop()
			h.produce(t, msgs[c.at:]...)
			waitFor, stop = h.start(t)
			waitFor("the other windows", func(s pipeline.Stats) bool { return s.WindowsClosed >= closed-first.WindowsClosed })
			second := stop()
			if got := int(first.AlertsEmitted + second.AlertsEmitted); got != n {
				t.Errorf("%d alerts (%d + %d) after a restart, %d uninterrupted", got, first.AlertsEmitted, second.AlertsEmitted, n)
			}
			if got := alertLines(t, h, min(n, int(first.AlertsEmitted+second.AlertsEmitted))); strings.Join(got, "\n") != strings.Join(cleanLines, "\n") {
				t.Errorf("alerts after a restart:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(cleanLines, "\n"))
			}
			if g := results(t, h); g != cleanRows {
				t.Errorf("rows differ from the uninterrupted run:\n%s", firstDiff(g, cleanRows))
			}
		})
	}
}

// firstDiff returns the first lines where a and b differ, for a readable failure.
func firstDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(x), len(y)) && len(out) < 6; i++ {
		var p, q string
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		if p != q {
			out = append(out, fmt.Sprintf("line %d\n  restarted:     %s\n  uninterrupted: %s", i, p, q))
		}
	}
	return strings.Join(out, "\n")
}

// The window size changed across a restart (1 minute, then 5 minutes from minute 30), on
// a stationary stream: no alert of any kind (a new size must not be judged against the
// old size's counts or reference), and the run goes on to close the new windows.
func TestReviewWindowSizeChangedAcrossRestartIsQuiet(t *testing.T) {
	msgs, minute := reviewStream(t, false)
	h := newHarness(t)
	h.tweak = func(s *pipeline.Settings) { s.IdleClose = 0 }
	h.produce(t, msgs[:minute[30]+17]...)
	waitFor, stop := h.start(t)
	waitFor("windows before the split", func(s pipeline.Stats) bool { return s.WindowsClosed >= 29 })
	first := stop()
	h.produce(t, msgs[minute[30]+17:]...)
	h.tweak = func(s *pipeline.Settings) {
		s.IdleClose = 0
		s.WindowSpec = func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: 5 * time.Minute, Lateness: 5 * time.Second}
		}
	}
	waitFor, stop = h.start(t)
	// 5-minute windows from 30:00 to 105:00 close (105–110 stays open).
	waitFor("the 5-minute windows", func(s pipeline.Stats) bool { return s.WindowsClosed >= 15 })
	second := stop()
	t.Logf("first run: %d windows, %d alerts; second: %d windows, %d alerts, %d late", first.WindowsClosed, first.AlertsEmitted, second.WindowsClosed, second.AlertsEmitted, second.Late)
	if n := int(first.AlertsEmitted + second.AlertsEmitted); n > 0 {
		t.Errorf("%d alerts on a stationary stream after a window-size change:\n%s", n, strings.Join(alertLines(t, h, n), "\n"))
	}
}

// The backlog holes of TestReviewRandomBurstsLiveEqualsBacklog on the real engine: a
// bursty model (a burst of 150 events over 5 s at random moments, exponential gaps
// averaging 2 minutes, 1-minute windows, 3 hours) written to Kafka first and then read
// as a backlog by a driftd that has never seen it. Every minute from the first window to
// the last must have a row in window_model_stats (an empty window where no burst fell),
// as a live read gives.
func TestReviewBacklogOfABurstyModelHasNoHoles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var msgs []kafka.Message
	for at := t0; at.Before(t0.Add(3 * time.Hour)); at = at.Add(time.Duration(rng.ExpFloat64() * float64(2*time.Minute))) {
		for i := 0; i < 150; i++ {
			ts := at.Add(time.Duration(i) * 5 * time.Second / 150)
			e := &schemas.PredictionEvent{EventID: fmt.Sprint("b-", ts.UnixNano()), Model: "bursty", ModelVersion: "1", Deployment: "primary",
				Timestamp: ts, Status: "ok", LatencyMs: 10 + 5*rng.ExpFloat64(),
				Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}},
				Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
			msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: jsonOf(t, e)})
		}
	}
	// A steady model on the same topic keeps every partition's event time moving.
	for s := 0; s < 3*3600+120; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		e := &schemas.PredictionEvent{EventID: fmt.Sprint("s-", s), Model: "steady", ModelVersion: "1", Deployment: "primary",
			Timestamp: at, Status: "ok", LatencyMs: 10, Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: 1}}
		msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: jsonOf(t, e)})
	}
	h := newHarness(t)
	h.tweak = func(s *pipeline.Settings) { s.IdleClose = 0 }
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("the steady model's windows", func(s pipeline.Stats) bool { return s.WindowsClosed >= 3*60+60 })
	time.Sleep(2 * time.Second) // a flush for the silent windows due by now
	st := stop()
	var rows, empty uint64
	var first, last time.Time
	q := "SELECT count(DISTINCT window_start), countIf(events = 0), min(window_start), max(window_start) FROM " + h.store.Database() + ".window_model_stats FINAL WHERE model = 'bursty' AND window_start < toDateTime64('2026-03-04 13:00:00', 3, 'UTC')"
	if err := h.store.Conn().QueryRow(testenv.Context(t, time.Minute), q).Scan(&rows, &empty, &first, &last); err != nil {
		t.Fatal(err)
	}
	want := uint64(last.Sub(first)/time.Minute) + 1
	t.Logf("bursty: %d window rows (%d empty) from %s to %s, want %d; %d alerts", rows, empty, first.Format("15:04"), last.Format("15:04"), want, st.AlertsEmitted)
	if rows != want {
		t.Errorf("%d of the %d minutes from %s to %s have a row: the empty windows between bursts were not judged", rows, want, first.Format("15:04"), last.Format("15:04"))
	}
	if st.AlertsEmitted > 0 {
		t.Errorf("%d alerts on a stationary bursty model:\n%s", st.AlertsEmitted, strings.Join(alertLines(t, h, int(st.AlertsEmitted)), "\n"))
	}
}

// The window size shortened across a restart (1 hour, then 1 minute from 13:05) for a
// series younger than a day, on a stationary stream at 2 events/s. Until the series has
// an hour of 1-minute windows, volume falls back to the reference's windows, whose counts
// are of the old size (7,200 per hour-window; the profile does not record the size): every
// 1-minute window (120 events, 1.7% of 7,200) is then "a near-stop", a critical page.
func TestReviewShorterWindowsAfterARestartDoNotPage(t *testing.T) {
	msgs, minute := reviewStreamFor(t, 250, false)
	h := newHarness(t)
	spec := func(d time.Duration) func(*pipeline.Settings) {
		return func(s *pipeline.Settings) {
			s.IdleClose = 0
			s.WindowSpec = func(string) processors.WindowSpec { return processors.WindowSpec{Size: d, Lateness: 5 * time.Second} }
		}
	}
	h.tweak = spec(time.Hour)
	split := minute[185]
	h.produce(t, msgs[:split]...)
	waitFor, stop := h.start(t)
	waitFor("three hour-windows (the reference)", func(s pipeline.Stats) bool { return s.WindowsClosed >= 3 })
	first := stop()
	h.produce(t, msgs[split:]...)
	h.tweak = spec(time.Minute)
	waitFor, stop = h.start(t)
	waitFor("the 1-minute windows", func(s pipeline.Stats) bool { return s.WindowsClosed >= 60 })
	second := stop()
	t.Logf("first run: %d windows, %d alerts; second: %d windows, %d alerts", first.WindowsClosed, first.AlertsEmitted, second.WindowsClosed, second.AlertsEmitted)
	if n := int(first.AlertsEmitted + second.AlertsEmitted); n > 0 {
		lines := alertLines(t, h, n)
		t.Errorf("%d alerts on a stationary stream after windows went from 1 hour to 1 minute; first:\n%s", n, strings.Join(lines[:min(3, len(lines))], "\n"))
	}
}

// A low-volume model (60 or 30 events a window, min_events 100: each window judged merged
// with the ones before) restarted mid-stream gives the rows and alerts of the
// uninterrupted run. After the restart the first window's merge reads the windows before
// it back from ClickHouse: they must come back with their bins against the reference's
// edges and their joint co-moments, or, written before the reference existed, with the
// values they kept. Its feature sits at 1000 ± 15, where the sketch's 1% relative error
// spans a third of a standard deviation: a window rebuilt from its sketch alone drifted.
func TestRestartInALowVolumeMergeEqualsUninterrupted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		every    int // seconds between events: 60/every events per one-minute window
		merged   string
		restarts []int // seconds of the stream at which driftd is stopped and restarted
	}{
		// Just after the reference is built; later.
		{"60 events a window", 1, "judged over 2 windows merged", []int{3*60 + 30, 20*60 + 30}},
		// Merges of four reach back into the reference's own first windows, which were
		// written before the reference existed.
		{"30 events a window", 2, "judged over 4 windows merged", []int{2*60 + 30, 4*60 + 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restartedLikeUninterrupted(t, tc.every, tc.merged, tc.restarts)
		})
	}
}

func restartedLikeUninterrupted(t *testing.T, every int, merged string, restarts []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	var msgs []kafka.Message
	for s := 0; s < 40*60; s += every {
		at := t0.Add(time.Duration(s) * time.Second)
		x := rng.NormFloat64()
		e := &schemas.PredictionEvent{EventID: fmt.Sprint("e-", s), Model: "sparse", ModelVersion: "1", Deployment: "primary",
			Timestamp: at, Status: "ok", LatencyMs: 10 + 5*rng.ExpFloat64(),
			Features: []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 1000 + 15*x}},
				{Name: "balance", Value: schemas.Value{Kind: schemas.Number, Num: 2*x + rng.NormFloat64()}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
		msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: jsonOf(t, e)})
	}
	tweak := func(s *pipeline.Settings) { s.IdleClose = 0 }
	const closed = 39

	clean := newHarness(t)
	clean.tweak = tweak
	clean.produce(t, msgs...)
	waitFor, stop := clean.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.WindowsClosed == closed })
	n := int(stop().AlertsEmitted)
	cleanRows := results(t, clean)
	if !strings.Contains(cleanRows, merged) {
		t.Fatalf("no window was %s", merged)
	}

	for _, at := range restarts {
		t.Run(fmt.Sprintf("restart at second %d", at), func(t *testing.T) {
			split := at / every
			h := newHarness(t)
			h.tweak = tweak
			h.produce(t, msgs[:split]...)
			waitFor, stop := h.start(t)
			waitFor("windows before the split", func(s pipeline.Stats) bool { return s.WindowsClosed >= uint64(at/60-1) })
			first := stop()
			h.produce(t, msgs[split:]...)
			waitFor, stop = h.start(t)
			waitFor("the other windows", func(s pipeline.Stats) bool { return s.WindowsClosed >= closed-first.WindowsClosed })
			second := stop()
			if got := int(first.AlertsEmitted + second.AlertsEmitted); got != n {
				t.Errorf("%d alerts after a restart, %d uninterrupted", got, n)
			}
			if g := results(t, h); g != cleanRows {
				t.Errorf("rows differ from the uninterrupted run:\n%s", firstDiff(g, cleanRows))
			}
		})
	}
}
