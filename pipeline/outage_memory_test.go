package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/simulate"
)

// flakyReads is the in-memory store with ClickHouse's reads cut, once cut() is called,
// for a while of wall time: long enough for Run to give up, short enough for Shutdown's
// flush to find it back.
type flakyReads struct {
	*replay.Store
	down time.Duration
	mu   sync.Mutex
	from time.Time // when the reads were cut (zero: not yet)
	// cutAt, if not nil, says from which read of a written window on the reads are cut.
	cutAt   func(n int) bool
	windows int
}

var errReadsDown = errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")

func (s *flakyReads) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.from.IsZero() {
		s.from = time.Now()
	}
}

func (s *flakyReads) failing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.from.IsZero() && time.Since(s.from) < s.down {
		return errReadsDown
	}
	return nil
}

func (s *flakyReads) LoadReferences(ctx context.Context) ([]*detectors.Profile, error) {
	if err := s.failing(); err != nil {
		return nil, fmt.Errorf("load reference profiles: %w", err)
	}
	return s.Store.LoadReferences(ctx)
}

func (s *flakyReads) LoadWindow(ctx context.Context, series processors.SeriesKey, start time.Time) (*processors.WindowAgg, error) {
	s.mu.Lock()
	s.windows++
	if s.cutAt != nil && s.cutAt(s.windows) && s.from.IsZero() {
		s.from = time.Now()
	}
	s.mu.Unlock()
	if err := s.failing(); err != nil {
		return nil, fmt.Errorf("load window: %w", err)
	}
	return s.Store.LoadWindow(ctx, series, start)
}

// ClickHouse unreachable where the loop waits for it outside a flush's writes ends Run
// after limits.max_outage, as a write does: driftd exits non-zero and a standby takes
// over. Before, the restore after a rebalance and a low-volume merge's read of a written
// window retried every second for ever, and an active member that could not reach
// ClickHouse kept its standby out (TestActiveGivesUpWhenClickHouseStaysDown failed so).
func TestReadsDownPastMaxOutageEndRun(t *testing.T) {
	const maxOutage = 2 * time.Second
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		models      []simulate.StreamModel
		rebalanceAt int64
		cutAt       func(n int) bool // nil: cut at the rebalance
	}{
		{"the restore after a rebalance", []simulate.StreamModel{{Name: "m", Rate: 20}}, 5_000, nil},
		{"a low-volume merge reading a written window", []simulate.StreamModel{{Name: "slow", Rate: 1}}, 0,
			func(n int) bool { return n >= 3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Windows.Size = config.Duration(time.Minute)
			cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
			cfg.Limits.MaxOutage = config.Duration(maxOutage)
			clock := &replay.Clock{}
			o := simulate.StreamOptions{Seed: 11, Start: start, Duration: 2 * time.Hour, Models: tc.models}
			rs, err := replay.NewSource(o, replay.Backlog, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
			if err != nil {
				t.Fatal(err)
			}
			src := &countingSource{Source: rs, rebalanceAt: tc.rebalanceAt}
			store := &flakyReads{Store: replay.NewStore(), down: maxOutage + 200*time.Millisecond, cutAt: tc.cutAt}
			if tc.cutAt == nil {
				// Cut at the rebalance: the next fetch after it restores.
				src.onRebalance = store.cut
			}
			r, _, runErr := runOnStore(t, cfg, src, clock.Now, func(s func()) { rs.Stop = s }, nil, 2*time.Minute, store)
			if !errors.Is(runErr, retry.ErrOutage) {
				t.Fatalf("Run ended with %v, want an outage (limits.max_outage %v)", runErr, maxOutage)
			}
			if tc.rebalanceAt > 0 && r.Stats().Rebalances != 1 {
				t.Errorf("%d rebalances, want 1", r.Stats().Rebalances)
			}
		})
	}
}
