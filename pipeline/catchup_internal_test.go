package pipeline

import (
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
)

// The flush waits only while a prediction partition is read a backlog behind: far from
// its end and reading records appended a while ago. A member keeping up with heavy live
// traffic (a large lag of fresh records), a stalled partition (its lag as last known),
// another topic's backlog, and the interval's end do not make it wait.
func TestCatchingUpTakesOnlyABacklogForOne(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	preds := consumers.TopicPartition{Topic: "preds", Partition: 0}
	labels := consumers.TopicPartition{Topic: "labels", Partition: 0}
	for _, c := range []struct {
		name      string
		tp        consumers.TopicPartition
		lag       int64
		appended  time.Time
		stalled   bool
		sinceLast time.Duration
		want      bool
	}{
		{"backlog", preds, 50_000, t0.Add(-time.Hour), false, 2 * time.Second, true},
		{"at the catch-up interval", preds, 50_000, t0.Add(-time.Hour), false, 5 * time.Second, false},
		{"near its end", preds, 9_999, t0.Add(-time.Hour), false, 2 * time.Second, false},
		{"live, a flush's pause behind", preds, 50_000, t0.Add(-300 * time.Millisecond), false, 2 * time.Second, false},
		{"no record time", preds, 50_000, time.Time{}, false, 2 * time.Second, false},
		{"stalled", preds, 50_000, t0.Add(-time.Hour), true, 2 * time.Second, false},
		{"another topic", labels, 50_000, t0.Add(-time.Hour), false, 2 * time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Runner{set: Settings{PredictionTopic: "preds", FlushInterval: time.Second, CatchUpFlushInterval: 5 * time.Second},
				clock: newStreamClock(), stalled: map[consumers.TopicPartition]stall{}, lastFlush: t0.Add(-c.sinceLast)}
			// A live partition besides it, read to its end.
			live := r.clock.part(consumers.TopicPartition{Topic: "preds", Partition: 1})
			live.lag, live.appended = 0, t0
			p := r.clock.part(c.tp)
			p.lag, p.appended = c.lag, c.appended
			if c.stalled {
				r.stalled[c.tp] = stall{lag: c.lag, lagging: true}
			}
			if got := r.catchingUp(t0); got != c.want {
				t.Errorf("catchingUp = %v, want %v", got, c.want)
			}
		})
	}
}
