package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/simulate"
	"github.com/driftd/driftd/storage"
)

// countingSource counts the records a source served, for a store's goroutine to read,
// and reassigns the partitions once, after rebalanceAt records (0: never), calling
// onRebalance (if not nil) then.
type countingSource struct {
	*replay.Source
	served      atomic.Int64
	rebalanceAt int64
	rebalanced  atomic.Bool
	onRebalance func()
}

func (s *countingSource) Fetch(ctx context.Context) (consumers.Record, error) {
	if s.rebalanceAt > 0 && s.served.Load() == s.rebalanceAt && !s.rebalanced.Load() {
		s.rebalanced.Store(true)
		if s.onRebalance != nil {
			s.onRebalance()
		}
		return consumers.Record{}, fmt.Errorf("generation 2 assigned other partitions: %w", consumers.ErrRebalanced)
	}
	rec, err := s.Source.Fetch(ctx)
	if err == nil {
		s.served.Add(1)
	}
	return rec, err
}

// keyLog is the in-memory store with its prediction keys' writes recorded, and a hook
// that runs before each (numbered from 1) and may hold or fail it.
type keyLog struct {
	*replay.Store
	hook   func(ctx context.Context, n int) error
	mu     sync.Mutex
	calls  int
	writes [][]storage.PredictionKey // the writes that succeeded, in order
}

func (s *keyLog) WriteLabelData(ctx context.Context, keys []storage.PredictionKey, labels []storage.LabelRow, at time.Time) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if err := s.hook(ctx, n); err != nil {
		return err
	}
	s.mu.Lock()
	s.writes = append(s.writes, append([]storage.PredictionKey(nil), keys...))
	s.mu.Unlock()
	return s.Store.WriteLabelData(ctx, keys, labels, at)
}

// errInsert is a ClickHouse insert that failed and may be retried.
var errInsert = errors.New("insert into prediction_key_batches: connection reset by peer")

// Full batches of prediction keys are stored on the label writer's goroutine while the
// loop reads on; whatever happens to a batch there, every key is stored once, and in
// the order its partition was read:
//   - a batch held long: the loop reads on meanwhile (more than 20,000 records);
//   - an attempt that fails: the batch is stored from the loop, before the next;
//   - an attempt that hangs for all of limits.max_outage: Run ends with an outage,
//     and Shutdown's flush stores the batch;
//   - the run ends during a write: the batch is stored by Shutdown's flush.
func TestLabelWriterStoresEveryKeyInOrder(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 7, Start: start, Duration: 30 * time.Minute}
	for i := range 4 {
		o.Models = append(o.Models, simulate.StreamModel{Name: fmt.Sprintf("m%d", i), Rate: 40})
	}
	var src *countingSource
	var stop func()
	var stalled atomic.Pointer[error]
	// atOnce bounds the keys of one write: a batch that goes back to the loop is stored
	// with the keys read after it, up to twice the batch.
	hold := func(ctx context.Context) error {
		from := src.served.Load()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		for src.served.Load() < from+20_000 {
			select {
			case <-ctx.Done():
				err := fmt.Errorf("the loop read %d records while a batch was stored, want 20,000: %w", src.served.Load()-from, ctx.Err())
				stalled.Store(&err)
				return err
			case <-time.After(time.Millisecond):
			}
		}
		return nil
	}
	// A rebalance drops the keys of records not committed (they are read again, here by
	// no one: the replay source goes on); rebalanceAt > 0 allows for them.
	cases := []struct {
		name        string
		atOnce      int
		rebalanceAt int64
		maxOutage   time.Duration // 0: the default (10 min)
		hook        func(ctx context.Context, n int) error
	}{
		{"a batch held while the loop reads on", 25_000, 0, 0, func(ctx context.Context, n int) error {
			if n != 1 {
				return nil
			}
			return hold(ctx)
		}},
		{"a rebalance, then a batch held", 25_000, 30_000, 0, func(ctx context.Context, n int) error {
			if !src.rebalanced.Load() || n != 3 {
				return nil
			}
			return hold(ctx)
		}},
		{"an attempt that fails", 25_000, 0, 0, func(_ context.Context, n int) error {
			if n == 2 {
				return errInsert
			}
			return nil
		}},
		{"an attempt that hangs, cut at max_outage (2 s)", 50_000, 0, 2 * time.Second, func(ctx context.Context, n int) error {
			if n != 1 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(30 * time.Second):
				err := errors.New("the first attempt was not cut at max_outage")
				stalled.Store(&err)
				return err
			}
		}},
		{"the run ends during a write", 50_000, 0, 0, func(ctx context.Context, n int) error {
			if n != 1 {
				return nil
			}
			stop()
			<-ctx.Done()
			return ctx.Err()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stalled.Store(nil)
			cfg := config.Default()
			cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
			cfg.Kafka.Topics.Labels = "labels" // no record: the keys are kept for labels to come
			cfg.Kafka.FlushInterval = config.Duration(time.Hour)
			if tc.maxOutage > 0 {
				cfg.Limits.MaxOutage = config.Duration(tc.maxOutage)
			}
			clock := &replay.Clock{}
			rs, err := replay.NewSource(o, replay.Backlog, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
			if err != nil {
				t.Fatal(err)
			}
			src = &countingSource{Source: rs, rebalanceAt: tc.rebalanceAt}
			store := &keyLog{Store: replay.NewStore(), hook: tc.hook}
			r, sink, runErr := runOnStore(t, cfg, src, clock.Now, func(s func()) { rs.Stop, stop = s, s }, nil, 5*time.Minute, store)
			// An attempt that hung for all of max_outage is an outage: Run ends with it, and
			// Shutdown's flush stores the batch.
			if wantOutage := tc.maxOutage > 0; errors.Is(runErr, retry.ErrOutage) != wantOutage || !wantOutage && runErr != nil && !errors.Is(runErr, context.Canceled) {
				t.Fatalf("Run ended with %v; outage wanted: %v", runErr, wantOutage)
			}
			if err := stalled.Load(); err != nil {
				t.Fatal(*err)
			}
			if len(sink.DeadLetters) > 0 {
				t.Fatalf("dead letters: %v", sink.DeadLetters[:min(3, len(sink.DeadLetters))])
			}
			added := r.Stats().Added
			if added < 25_000 {
				t.Fatalf("%d predictions added, want at least a batch's", added)
			}
			seen := map[consumers.TopicPartition]int64{}
			stored := uint64(0)
			for i, w := range store.writes {
				for _, k := range w {
					tp := consumers.TopicPartition{Topic: k.Source.Topic, Partition: k.Source.Partition}
					if last, ok := seen[tp]; ok && k.Source.Offset <= last {
						t.Fatalf("write %d stores the key of %v at offset %d after one at %d", i+1, tp, k.Source.Offset, last)
					}
					seen[tp] = k.Source.Offset
				}
				stored += uint64(len(w))
			}
			dropped := uint64(0)
			if tc.rebalanceAt > 0 {
				if !src.rebalanced.Load() || r.Stats().Rebalances != 1 {
					t.Fatalf("rebalanced: %v, %d rebalances seen; want one", src.rebalanced.Load(), r.Stats().Rebalances)
				}
				// The keys kept since the first batch was handed over, not the batch.
				dropped = uint64(tc.rebalanceAt) - uint64(tc.atOnce)
			}
			if stored+dropped != added || store.MostKeys > tc.atOnce || len(store.writes) == 0 {
				t.Fatalf("%d keys stored in %d writes (at most %d at once), %d predictions added; want each key once, %d at most at once", stored, len(store.writes), store.MostKeys, added, tc.atOnce)
			}
		})
	}
}
