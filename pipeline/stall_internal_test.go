package pipeline

import (
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// failingScript is a source whose Failing says what the test sets.
type failingScript struct {
	scripted
	failing []consumers.TopicPartition
	known   bool
}

func (f *failingScript) Failing(time.Time) ([]consumers.TopicPartition, bool) {
	return f.failing, f.known
}

// A stalled partition stays read behind until the source stops listing it, whatever
// happens meanwhile: a rejoin (the source cannot tell), a record handled between two
// failures or fetched before the failure and handled after it. Then what its last record
// said stands again. The stream clock waits at the partition's newest event all along:
// it never goes back, so one moment's release would let the idle close run on for good.
func TestStalledPartitionHoldsUntilTheSourceStopsListingIt(t *testing.T) {
	const topic = "preds"
	t0 := time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC)
	p1 := consumers.TopicPartition{Topic: topic, Partition: 1}
	type step struct {
		after   time.Duration // wall time since the last step
		failing bool          // the source lists p1 (known)
		unknown bool          // the source cannot tell (between generations)
		record  int64         // > 0: a record of p1 handled, with this many unread after it (-1: none unread; -2: one that does not say)
	}
	for _, c := range []struct {
		name        string
		steps       []step
		wantStalled bool
		wantLag     int64
	}{
		{"marked", []step{{0, true, false, 0}}, true, 1},
		{"a rejoin changes nothing", []step{{0, true, false, 0}, {5 * time.Minute, false, true, 0}}, true, 1},
		{"a record between failures keeps it marked", []step{{0, true, false, 0}, {0, true, false, -1}, {2 * time.Second, true, false, 0}}, true, 1},
		{"a record handled after the source stopped listing it says where it stands", []step{{0, true, false, 0}, {2 * time.Second, false, false, 0}, {0, false, false, 7}}, false, 7},
		{"readable again: its last record's standing", []step{{0, true, false, 0}, {0, true, false, 3}, {2 * time.Second, false, false, 0}}, false, 3},
		{"quiet once readable: its standing before", []step{{0, true, false, 0}, {2 * time.Second, false, false, 0}}, false, 0},
		{"a record that does not say where it stands keeps the standing before", []step{{0, true, false, 0}, {0, true, false, -2}, {2 * time.Second, false, false, 0}}, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			wall := t0
			src := &failingScript{}
			set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON},
				WindowSpec: func(string) processors.WindowSpec {
					return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second}
				}}
			r := New(set, src, nil, nil, nil, testenv.Logger(t), func() time.Time { return wall })
			for p := range 2 { // both read to their end, dated
				tp := consumers.TopicPartition{Topic: topic, Partition: p}
				r.readRecord(tp, consumers.Record{Topic: topic, Partition: p, Offset: 0, HighWaterMark: 1})
				r.clock.event(tp, t0, t0)
			}
			for _, s := range c.steps {
				wall = wall.Add(s.after)
				src.failing, src.known = nil, !s.unknown
				if s.failing {
					src.failing = []consumers.TopicPartition{p1}
				}
				switch {
				case s.record == -2:
					r.readRecord(p1, consumers.Record{Topic: topic, Partition: 1, Offset: 1})
				case s.record != 0:
					unread := max(s.record, 0)
					r.readRecord(p1, consumers.Record{Topic: topic, Partition: 1, Offset: 1, HighWaterMark: 2 + unread})
				}
				r.stallAsked = time.Time{} // asked at every step
				r.markStalled(wall)
			}
			_, stalled := r.stalled[p1]
			lag := r.clock.part(p1).lag
			lagging := r.proc.Lagging(processors.TopicPartition{Topic: topic, Partition: 1})
			if stalled != c.wantStalled || lag != c.wantLag || lagging != (c.wantLag > 0) {
				t.Errorf("stalled %v, lag %d, read behind %v; want %v, %d", stalled, lag, lagging, c.wantStalled, c.wantLag)
			}
			// The clock waits at the partitions' newest event while p1 is behind.
			if clock := r.clock.now(wall.Add(10 * time.Minute)); c.wantLag > 0 && !clock.Equal(t0) {
				t.Errorf("stream clock %v, want it held at %v", clock, t0)
			}
		})
	}
}
