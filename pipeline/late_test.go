package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// Out-of-order events: one that arrives after later ones but within the allowed lateness
// (5 s) joins its window; one that arrives after its window closed is counted as late for
// that window, with its id and position; every event is accounted for.
func TestOutOfOrderAndLateEvents(t *testing.T) {
	h := newHarnessN(t, 1) // one partition: the order of arrival is the order produced
	msg := func(id string, at time.Duration) kafka.Message {
		e := &schemas.PredictionEvent{EventID: id, Model: "m", ModelVersion: "1", Timestamp: t0.Add(at), LatencyMs: 1,
			Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(at / time.Second)}}}}
		return kafka.Message{Value: jsonOf(t, e)}
	}
	var first []kafka.Message
	for s := 0; s < 80; s++ { // 10:00:00 … 10:01:19: window 0 closes once the grace is over
		first = append(first, msg(fmt.Sprintf("a%d", s), time.Duration(s)*time.Second))
	}
	h.produce(t, first...)
	waitFor, stop := h.start(t)
	waitFor("window 10:00 closed", func(s pipeline.Stats) bool { return s.WindowsClosed >= 1 })
	h.produce(t,
		msg("b1", 90*time.Second),     // 10:01:30
		msg("b2", 118*time.Second),    // 10:01:58
		msg("b3", 122*time.Second),    // 10:02:02: the watermark reaches 10:01:57
		msg("early", 117*time.Second), // out of order, within the lateness: joins 10:01
		msg("late", 30*time.Second),   // 10:00:30, its window long closed: late
		msg("b4", 190*time.Second),    // 10:03:10: closes 10:01 and 10:02
	)
	total := uint64(len(first) + 6)
	waitFor("every event", func(s pipeline.Stats) bool { return s.Records == total && s.WindowsClosed == 4 })
	stats := stop()
	if stats.Late != 1 || stats.Added != total-1 {
		t.Fatalf("stats %+v: want 1 late and %d added", stats, total-1)
	}
	ctx := testenv.Context(t, time.Minute)
	db := h.store.Database()
	counts := map[string]uint64{}
	rows, err := h.store.Conn().Query(ctx, "SELECT formatDateTime(window_start, '%H:%i'), sum(events) FROM "+db+".window_model_stats FINAL GROUP BY window_start")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w string
		var n uint64
		rows.Scan(&w, &n)
		counts[w] = n
	}
	rows.Close()
	want := map[string]uint64{"10:00": 60, "10:01": 20 + 3, "10:02": 1, "10:03": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("events per window %v, want %v", counts, want)
	}
	var id, window string
	var offset int64
	if err := h.store.Conn().QueryRow(ctx, "SELECT event_id, formatDateTime(window_start, '%H:%i'), offset FROM "+db+".late_events FINAL").Scan(&id, &window, &offset); err != nil {
		t.Fatal(err)
	}
	if id != "late" || window != "10:00" || offset != int64(len(first)+4) {
		t.Errorf("late event %s for window %s at offset %d; want late, 10:00, %d", id, window, offset, len(first)+4)
	}
}

// One event stamped 23 h ahead of the clock (within limits.max_future, so it is windowed)
// must not make the on-time events after it late: it moves the watermark no further than
// the clock, on real Kafka with the records' own timestamps.
func TestEventAheadOfTheClockLeavesOnTimeEventsOnTime(t *testing.T) {
	h := newHarnessN(t, 1)
	msg := func(id string, at time.Time) kafka.Message {
		e := &schemas.PredictionEvent{EventID: id, Model: "m", ModelVersion: "1", Timestamp: at, LatencyMs: 1,
			Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: 1}}}}
		return kafka.Message{Value: jsonOf(t, e)}
	}
	start := time.Now().UTC()
	// The event ahead, then one five minutes old: once the start-up grace is over, the old
	// one's window closes, so the runner has judged the watermark before the rest arrives.
	h.produce(t, msg("ahead", start.Add(23*time.Hour)), msg("old", start.Add(-5*time.Minute)))
	waitFor, stop := h.start(t)
	waitFor("the start-up grace", func(s pipeline.Stats) bool { return s.WindowsClosed >= 1 })
	var onTime []kafka.Message
	for i := 0; i < 1000; i++ {
		onTime = append(onTime, msg(fmt.Sprintf("on-time-%d", i), time.Now().Add(-time.Second+time.Duration(i)*time.Millisecond)))
	}
	h.produce(t, onTime...)
	waitFor("every event", func(s pipeline.Stats) bool { return s.Records == 1002 })
	stats := stop()
	if stats.Late != 0 || stats.Added != 1002 {
		t.Fatalf("stats %+v: want none late and 1002 added", stats)
	}
}

// A backlog on three partitions (three models keyed to one partition each, three spread
// over all of them) is judged without waiting for the start-up grace's time (an hour
// here) once every partition has delivered a record and 100 records are read (100,000
// by default), and no event is late for it: while
// the time lasts, a partition read behind holds the models it has not delivered yet
// (docs/reliability.md "Start-up").
func TestBacklogIsJudgedBeforeTheGraceTimeWithNoEventLate(t *testing.T) {
	h := newHarnessN(t, 3)
	h.tweak = func(s *pipeline.Settings) { s.StartupGrace, s.EarlyCloseRecords = time.Hour, 100 }
	const models, perModel = 6, 180 // an event every 10 s for 30 minutes
	var msgs []kafka.Message
	for i := range perModel {
		for m := range models {
			e := &schemas.PredictionEvent{EventID: fmt.Sprintf("m%d-%d", m, i), Model: fmt.Sprintf("m%d", m), ModelVersion: "1",
				Timestamp: t0.Add(time.Duration(i) * 10 * time.Second), LatencyMs: 1,
				Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i % 7)}}}}
			p := m % 3 // models 0 to 2: one partition each
			if m >= 3 {
				p = (i + m) % 3 // models 3 to 5: every partition in turn
			}
			msgs = append(msgs, kafka.Message{Key: keyOn(t, p, 3), Value: jsonOf(t, e)})
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	total := uint64(len(msgs))
	// Thirty windows a model; the watermark passes 29 of them. The last would close when
	// the models fall idle, which waits for the grace's time.
	waitFor("the windows the watermark passed", func(s pipeline.Stats) bool { return s.Records == total && s.WindowsClosed == models*29 })
	stats := stop()
	if stats.Late != 0 || stats.Added != total || stats.Started {
		t.Fatalf("stats %+v: want every event added, none late, and the grace's time not over", stats)
	}
	ctx := testenv.Context(t, time.Minute)
	var windows, events uint64
	if err := h.store.Conn().QueryRow(ctx, "SELECT uniqExact(model, window_start), sum(events) FROM "+h.store.Database()+".window_model_stats FINAL").Scan(&windows, &events); err != nil {
		t.Fatal(err)
	}
	if want := uint64(total - models*6); windows != models*29 || events != want { // six events in each model's last minute
		t.Fatalf("%d windows with %d events stored, want %d with %d", windows, events, models*29, want)
	}
}
