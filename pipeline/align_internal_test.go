package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
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
	paused   map[int]bool
	dry      map[int]bool // the reader waits on the broker (Waiting: an hour)
	inflight []consumers.Record
	depth    int
	turn     int
	// inOrder serves the records in event-time order, as they were written (live).
	inOrder bool
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
func (s *pausable) Pause(tp consumers.TopicPartition)                                { s.paused[tp.Partition] = true }
func (s *pausable) Resume(tp consumers.TopicPartition)                               { delete(s.paused, tp.Partition) }
func (s *pausable) Waiting(tp consumers.TopicPartition) time.Duration {
	if s.dry[tp.Partition] {
		return time.Hour
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
// than a skew bound and the records already handed over, never all are paused with
// records left (reading would stop for a fetch's tick), and a partition that has nothing
// more to read, although its last record said more would come, holds nobody. Live,
// nothing is paused. Each partition gets one record every gap (spacings in event time).
func TestBacklogReadingIsAlignedInEventTime(t *testing.T) {
	const topic = "preds"
	const bound = 2 * time.Minute // the skew bound (WindowSpec.MaxSkew)
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	span := 2 * time.Hour
	for _, c := range []struct {
		name      string
		gaps      []time.Duration // per partition
		live      bool            // read in event-time order a second after each record, not an hour after the end
		dry       int             // > 0: partition dry-1 stops after its first record, which says one more follows
		wantPause bool
	}{
		{"a sparse partition", []time.Duration{100 * time.Millisecond, 2 * time.Second}, false, 0, true},
		{"three densities", []time.Duration{50 * time.Millisecond, time.Second, 10 * time.Second}, false, 0, true},
		{"one partition", []time.Duration{time.Second}, false, 0, false},
		{"a partition that says more will come but has none", []time.Duration{100 * time.Millisecond, 2 * time.Second, time.Second}, false, 3, true},
		{"live: read as written", []time.Duration{100 * time.Millisecond, 2 * time.Second}, true, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := &pausable{parts: make([][]consumers.Record, len(c.gaps)), paused: map[int]bool{}, dry: map[int]bool{}, depth: 64, inOrder: c.live}
			for p, gap := range c.gaps {
				n := int(span / gap)
				if c.dry == p+1 {
					n = 1
					src.dry[p] = true
				}
				for i := range n {
					at := start.Add(time.Duration(i) * gap)
					b, err := schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint(p, "-", i), Model: "m", ModelVersion: "1",
						Timestamp: at, Status: "ok", LatencyMs: 5,
						Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i % 5)}}},
						Prediction: schemas.Value{Kind: schemas.Number, Num: 1}})
					if err != nil {
						t.Fatal(err)
					}
					hwm := int64(n)
					if src.dry[p] {
						hwm++ // a transaction's marker after it, say
					}
					src.parts[p] = append(src.parts[p], consumers.Record{Topic: topic, Partition: p, Offset: int64(i), Value: b, HighWaterMark: hwm, Time: at})
				}
			}
			wall := start.Add(span + time.Hour)
			set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON},
				WindowSpec: func(string) processors.WindowSpec {
					return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: bound}
				},
				ReferenceWindows: func(string) int { return 3 }}
			r := New(set, src, nil, nil, nil, testenv.Logger(t), func() time.Time { return wall })
			ctx := testenv.Context(t, time.Minute)
			var worst time.Duration // how far the partitions were read apart, at worst
			for src.left() > 0 {
				rec, err := src.Fetch(ctx)
				if err == nil {
					if c.live {
						wall = rec.Time.Add(time.Second) // read as written
					}
					if err := r.handle(ctx, ahead{rec: rec}); err != nil {
						t.Fatal(err)
					}
				}
				r.realign(wall)
				if err != nil && src.stalls > 100 {
					t.Fatalf("reading stopped with %d records left: paused %v", src.left(), src.paused)
				}
				var floor, top time.Time
				for _, p := range r.clock.parts {
					if !p.dated || src.dry[p.tp.Partition] {
						continue
					}
					if p.lag > 0 && (floor.IsZero() || p.max.Before(floor)) {
						floor = p.max
					}
					if p.max.After(top) {
						top = p.max
					}
				}
				if !floor.IsZero() {
					worst = max(worst, top.Sub(floor))
				}
			}
			t.Logf("%d pauses, read at most %v apart, %d stalls", r.stats.Paused, worst, src.stalls)
			if src.stalls != 0 {
				t.Errorf("%d fetches found every partition with records paused", src.stalls)
			}
			if (r.stats.Paused > 0) != c.wantPause {
				t.Errorf("%d pauses, want some: %v", r.stats.Paused, c.wantPause)
			}
			// The records already handed over when a partition is paused run on: 64 of the
			// sparsest partition's at most.
			if limit := bound + time.Duration(src.depth)*maxGap(c.gaps, c.dry); worst > limit {
				t.Errorf("partitions read up to %v apart, more than %v", worst, limit)
			}
			if len(src.paused) != 0 {
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
