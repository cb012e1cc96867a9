package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// pausable serves a backlog as a consumer's partition readers do: one record of each
// partition not paused in turn (the readers hand records over at about the same rate,
// whatever their event time), through inflight records already handed over, which a
// pause does not take back.
type pausable struct {
	parts    [][]consumers.Record // per partition: the records not handed over yet
	index    map[consumers.TopicPartition]int
	paused   map[int]bool
	dry      map[int]bool // read to its end, its reader waits on the broker (Waiting)
	gave     map[int]time.Time
	now      func() time.Time
	inflight []consumers.Record
	depth    int
	turn     int
	// inOrder serves the records in event-time order, as they were written (live);
	// ignore leaves Pause without effect (reading as before alignment).
	inOrder, ignore bool
	// stalls counts fetches with records left that found none to hand over: every
	// partition with records paused (or dry).
	stalls int
}

func (s *pausable) Fetch(ctx context.Context) (consumers.Record, error) {
	for len(s.inflight) < s.depth {
		gave := false
		if s.inOrder {
			p := -1
			for i, q := range s.parts {
				if len(q) > 0 && !s.paused[i] && (p < 0 || q[0].Time.Before(s.parts[p][0].Time)) {
					p = i
				}
			}
			if p < 0 {
				break
			}
			s.inflight = append(s.inflight, s.parts[p][0])
			s.parts[p] = s.parts[p][1:]
			continue
		}
		for range s.parts {
			p := s.turn % len(s.parts)
			s.turn++
			if len(s.parts[p]) > 0 && !s.paused[p] {
				s.inflight = append(s.inflight, s.parts[p][0])
				s.parts[p] = s.parts[p][1:]
				s.gave[p] = s.now()
				gave = true
				break
			}
		}
		if !gave {
			break
		}
	}
	if len(s.inflight) == 0 {
		for _, q := range s.parts {
			if len(q) > 0 {
				s.stalls++
				break
			}
		}
		return consumers.Record{}, context.DeadlineExceeded
	}
	rec := s.inflight[0]
	s.inflight = s.inflight[1:]
	return rec, nil
}

func (s *pausable) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (s *pausable) Assigned() int                                                    { return len(s.parts) }
func (s *pausable) Pause(tp consumers.TopicPartition) {
	if !s.ignore {
		s.paused[s.index[tp]] = true
	}
}
func (s *pausable) Resume(tp consumers.TopicPartition) { delete(s.paused, s.index[tp]) }
func (s *pausable) Waiting(tp consumers.TopicPartition) time.Duration {
	if p := s.index[tp]; s.dry[p] && len(s.parts[p]) == 0 {
		return s.now().Sub(s.gave[p])
	}
	return 0
}

func (s *pausable) left() int {
	n := len(s.inflight)
	for _, q := range s.parts {
		n += len(q)
	}
	return n
}

// The windowed partitions of a backlog are read together in event time: however many
// records an hour each holds, none runs further ahead of the one read furthest behind
// than a skew bound and the records already handed over, and never all are paused with
// records left (reading would stop for a fetch's tick): not when the partition behind
// ends on a record that is set aside, nor when one has nothing more to read although its
// last record said more would come (it holds nobody). One record stamped hours ahead of
// its partition's others does not park the partition. Live, nothing is paused. Each
// partition gets one record every gap (spacings in event time); the wall clock moves a
// millisecond a fetch.
func TestBacklogReadingIsAlignedInEventTime(t *testing.T) {
	const topic, pipeTopic = "preds", "pipe"
	const bound = 2 * time.Minute // the skew bound (WindowSpec.MaxSkew)
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	span := 2 * time.Hour
	for _, c := range []struct {
		name      string
		gaps      []time.Duration // per partition
		live      bool            // read in event-time order a second after each record, not an hour after the end
		dry       int             // > 0: partition dry-1 stops after its first record, which says one more follows
		outlier   int             // > 0: a record of partition outlier-1 halfway is stamped 3 h ahead
		unaligned bool            // Pause has no effect: the partitions are read ten bounds apart
		pipeline  int             // > 0: partition pipeline-1 is the pipeline topic's, of stage runs
		late      bool            // every 500th record of partition 0 is stamped 10 min back (a client buffered it)
		wantPause bool
	}{
		{name: "a sparse partition", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second}, wantPause: true},
		{name: "a sparse partition, unaligned (baseline)", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second}, unaligned: true, wantPause: true},
		{name: "three densities", gaps: []time.Duration{50 * time.Millisecond, time.Second, 10 * time.Second}, wantPause: true},
		{name: "one partition", gaps: []time.Duration{time.Second}},
		{name: "a partition that says more will come but has none", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second, time.Second}, dry: 3, wantPause: true},
		{name: "one record stamped hours ahead", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second}, outlier: 2, wantPause: true},
		{name: "the pipeline topic", gaps: []time.Duration{100 * time.Millisecond, 30 * time.Second}, pipeline: 2, wantPause: true},
		{name: "live: read as written", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second}, live: true},
		{name: "live, with late events", gaps: []time.Duration{100 * time.Millisecond, 2 * time.Second}, live: true, late: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := &pausable{parts: make([][]consumers.Record, len(c.gaps)), paused: map[int]bool{}, dry: map[int]bool{},
				gave: map[int]time.Time{}, depth: 64, inOrder: c.live, ignore: c.unaligned, index: map[consumers.TopicPartition]int{}}
			for p, gap := range c.gaps {
				tp := consumers.TopicPartition{Topic: topic, Partition: p}
				if c.pipeline == p+1 {
					tp = consumers.TopicPartition{Topic: pipeTopic}
				}
				src.index[tp] = p
				n := int(span / gap)
				if c.dry == p+1 {
					n = 1
					src.dry[p] = true
				}
				for i := range n {
					at := start.Add(time.Duration(i) * gap)
					written := at
					if c.outlier == p+1 && i == n/2 {
						at = at.Add(3 * time.Hour)
					}
					if c.late && p == 0 && i%500 == 250 {
						at = at.Add(-10 * time.Minute)
					}
					var b []byte
					var err error
					if tp.Topic == pipeTopic {
						b, err = schemas.MarshalPipelineJSON(&schemas.PipelineEvent{EventID: fmt.Sprint("run-", i), Pipeline: "orders", Stage: "load",
							RunID: fmt.Sprint(i), Status: schemas.StageSucceeded, Timestamp: at, DurationMs: 5})
					} else {
						b, err = schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint(p, "-", i), Model: "m", ModelVersion: "1",
							Timestamp: at, Status: "ok", LatencyMs: 5,
							Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i % 5)}}},
							Prediction: schemas.Value{Kind: schemas.Number, Num: 1}})
					}
					if err != nil {
						t.Fatal(err)
					}
					hwm := int64(n)
					if src.dry[p] {
						hwm++ // a transaction's marker after it, say
					}
					src.parts[p] = append(src.parts[p], consumers.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: int64(i), Value: b, HighWaterMark: hwm, Time: written})
				}
			}
			wall := start.Add(span + time.Hour)
			src.now = func() time.Time { return wall }
			set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON},
				WindowSpec: func(string) processors.WindowSpec {
					return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: bound}
				},
				ReferenceWindows: func(string) int { return 3 }}
			if c.pipeline > 0 {
				set.PipelineTopic, set.PipelineDecoder = pipeTopic, schemas.Decoder{Format: schemas.FormatJSON}
				set.PipelineWindow = processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: bound}
			}
			r := New(set, src, &replay.Sink{}, nil, nil, testenv.Logger(t), func() time.Time { return wall })
			ctx := testenv.Context(t, time.Minute)
			var worst time.Duration // how far the partitions were read apart, at worst
			read := map[int]int64{} // the offset of each partition's last record handled
			for src.left() > 0 {
				rec, err := src.Fetch(ctx)
				wall = wall.Add(time.Millisecond)
				if err == nil {
					if c.live {
						wall = rec.Time.Add(time.Second) // read as written
					}
					if err := r.handle(ctx, ahead{rec: rec}); err != nil {
						t.Fatal(err)
					}
				}
				r.realign(wall)
				if err != nil && src.stalls > 10_000 {
					t.Fatalf("reading stopped with %d records left: paused %v", src.left(), src.paused)
				}
				// Where each partition's reading stands: its last record's place in the
				// stream (the time it was written at; the outlier's and the late ones'
				// stamps say nothing of the reading).
				if err == nil {
					read[src.index[consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}]] = rec.Offset
				}
				var floor, top time.Time
				for _, p := range r.clock.parts {
					i := src.index[p.tp]
					if !p.dated || src.dry[i] {
						continue
					}
					at := start.Add(time.Duration(read[i]) * c.gaps[i])
					if p.lag > 0 && (floor.IsZero() || at.Before(floor)) {
						floor = at
					}
					if at.After(top) {
						top = at
					}
				}
				if !floor.IsZero() {
					worst = max(worst, top.Sub(floor))
				}
			}
			t.Logf("%d pauses, read at most %v apart, %d stalls", r.stats.Paused, worst, src.stalls)
			// A partition with nothing more to read holds the others for alignWait (a
			// fetch a millisecond) before its reader is known to wait on the broker.
			if stalls := time.Duration(src.stalls) * time.Millisecond; stalls > 0 && (c.dry == 0 || stalls > alignWait+alignEvery) {
				t.Errorf("%d fetches found every partition with records paused", src.stalls)
			}
			if (r.stats.Paused > 0) != c.wantPause {
				t.Errorf("%d pauses, want some: %v", r.stats.Paused, c.wantPause)
			}
			// The records already handed over when a partition is paused run on: 64 of the
			// sparsest partition's at most.
			switch limit := bound + time.Duration(src.depth)*maxGap(c.gaps, c.dry); {
			case c.unaligned && (processors.WindowSpec{MaxSkew: bound}).Holds(worst, true):
				t.Errorf("unaligned, the partitions were read at most %v apart: the scenario does not need aligning", worst)
			case !c.unaligned && worst > limit:
				t.Errorf("partitions read up to %v apart, more than %v", worst, limit)
			}
			if len(src.paused) != 0 && !c.unaligned {
				t.Errorf("paused at the end: %v", src.paused)
			}
		})
	}
}

func maxGap(gaps []time.Duration, dry int) time.Duration {
	var m time.Duration
	for p, g := range gaps {
		if p+1 != dry {
			m = max(m, g)
		}
	}
	return m
}

// The partitions paused for the one behind go on as soon as it is read to its end, also
// when its last record is set aside (it dates nothing): not at the next look, which
// comes after a fetch's whole tick when nothing else is left to read.
func TestPartitionsGoOnWhenThePartitionBehindIsReadToItsEnd(t *testing.T) {
	const topic = "preds"
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	wall := start.Add(24 * time.Hour)
	src := &pausable{paused: map[int]bool{}, index: map[consumers.TopicPartition]int{{Topic: topic, Partition: 1}: 1}}
	set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON},
		WindowSpec: func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: time.Minute}
		},
		ReferenceWindows: func(string) int { return 3 }}
	r := New(set, src, &replay.Sink{}, nil, nil, testenv.Logger(t), func() time.Time { return wall })
	ctx := testenv.Context(t, time.Minute)
	for _, last := range []struct {
		name  string
		value []byte
	}{{"decoded", nil}, {"set aside", []byte("{not json")}} {
		t.Run(last.name, func(t *testing.T) {
			r.reset()
			handle := func(p int, off int64, at time.Time, hwm int64, value []byte) {
				t.Helper()
				if value == nil {
					var err error
					value, err = schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint(p, "-", off), Model: "m", ModelVersion: "1",
						Timestamp: at, Status: "ok", LatencyMs: 5, Prediction: schemas.Value{Kind: schemas.Number, Num: 1}})
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := r.handle(ctx, ahead{rec: consumers.Record{Topic: topic, Partition: p, Offset: off, Value: value, HighWaterMark: hwm}}); err != nil {
					t.Fatal(err)
				}
			}
			handle(0, 0, start, 3, nil)
			handle(1, 0, start.Add(time.Hour), 10, nil)
			r.realign(wall)
			if !src.paused[1] {
				t.Fatalf("partition 1, an hour ahead, not paused (paused: %v)", src.paused)
			}
			handle(0, 1, start.Add(time.Second), 3, nil)
			handle(0, 2, start.Add(2*time.Second), 3, last.value) // read to its end
			r.realign(wall)                                       // no time has passed, no record count reached
			if src.paused[1] {
				t.Errorf("partition 1 still paused once partition 0 was read to its end")
			}
		})
	}
	t.Run("live, a record read to its end looks at nothing again", func(t *testing.T) {
		r.reset()
		handle := func(p int, off int64, at time.Time) {
			t.Helper()
			b, err := schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint(p, "-", off), Model: "m", ModelVersion: "1",
				Timestamp: at, Status: "ok", LatencyMs: 5, Prediction: schemas.Value{Kind: schemas.Number, Num: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.handle(ctx, ahead{rec: consumers.Record{Topic: topic, Partition: p, Offset: off, Value: b, HighWaterMark: off + 2}}); err != nil {
				t.Fatal(err)
			}
		}
		handle(0, 0, start)
		handle(1, 0, start.Add(time.Hour))
		r.realign(wall) // a backlog: partition 0 behind
		for off := int64(1); off < 4; off++ {
			handle(0, off, wall.Add(-time.Second)) // caught up with the wall clock
			handle(1, off, wall.Add(-time.Second))
		}
		r.realign(wall.Add(alignEvery)) // live now
		asked := r.align.asked
		// Each the last of its fetch: nothing is to be looked at again for them.
		for off := int64(4); off < 10; off++ {
			for p := range 2 {
				if err := r.handle(ctx, ahead{rec: consumers.Record{Topic: topic, Partition: p, Offset: off, Value: []byte("{}"), HighWaterMark: off + 1}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !r.align.asked.Equal(asked) {
			t.Errorf("live, records read to their partition's end had the partitions looked at again (asked %v, was %v)", r.align.asked, asked)
		}
	})
	t.Run("a rebalance resumes what was paused", func(t *testing.T) {
		src.paused[1] = true
		r.align.paused[consumers.TopicPartition{Topic: topic, Partition: 1}] = true
		r.reset()
		if len(src.paused) != 0 || len(r.align.paused) != 0 {
			t.Errorf("paused after the reset: source %v, runner %v", src.paused, r.align.paused)
		}
	})
}

// hidden is a source without Pause: reading as before alignment, for the benchmark.
type hidden struct{ Source }

// BenchmarkAlignedReading measures what aligning costs per record read from a backlog of
// two partitions, one twenty times as dense in records as the other: handled, with the
// looks (realign) and per-record checks, against the same read without alignment.
func BenchmarkAlignedReading(b *testing.B) {
	const topic = "preds"
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	gaps := []time.Duration{100 * time.Millisecond, 2 * time.Second}
	var parts [][]consumers.Record
	for p, gap := range gaps {
		n := int(2 * time.Hour / gap)
		var q []consumers.Record
		for i := range n {
			at := start.Add(time.Duration(i) * gap)
			v, err := schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint(p, "-", i), Model: "m", ModelVersion: "1",
				Timestamp: at, Status: "ok", LatencyMs: 5,
				Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i % 5)}}},
				Prediction: schemas.Value{Kind: schemas.Number, Num: 1}})
			if err != nil {
				b.Fatal(err)
			}
			q = append(q, consumers.Record{Topic: topic, Partition: p, Offset: int64(i), Value: v, HighWaterMark: int64(n), Time: at})
		}
		parts = append(parts, q)
	}
	for _, aligned := range []bool{false, true} {
		b.Run(fmt.Sprint("aligned=", aligned), func(b *testing.B) {
			b.ReportAllocs()
			records := 0
			for b.Loop() {
				wall := start.Add(3 * time.Hour)
				src := &pausable{parts: make([][]consumers.Record, len(parts)), paused: map[int]bool{}, depth: 64,
					index: map[consumers.TopicPartition]int{{Topic: topic, Partition: 1}: 1}, gave: map[int]time.Time{},
					now: func() time.Time { return wall }}
				for p := range parts {
					src.parts[p] = parts[p]
				}
				var s Source = src
				if !aligned {
					s = hidden{src}
				}
				set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON},
					WindowSpec: func(string) processors.WindowSpec {
						return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: 2 * time.Minute}
					},
					ReferenceWindows: func(string) int { return 3 }}
				r := New(set, s, &replay.Sink{}, nil, nil, slog.New(slog.DiscardHandler), func() time.Time { return wall })
				ctx := context.Background()
				for src.left() > 0 {
					rec, err := src.Fetch(ctx)
					wall = wall.Add(time.Microsecond)
					if err == nil {
						records++
						if err := r.handle(ctx, ahead{rec: rec}); err != nil {
							b.Fatal(err)
						}
					}
					r.realign(wall)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		})
	}
}
