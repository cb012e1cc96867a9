package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
)

// flakyReads is the in-memory store with ClickHouse's reads cut, once cut() is called
// (or a read of a written window is one cutAt picks), for down of wall time.
type flakyReads struct {
	*replay.Store
	down time.Duration
	mu   sync.Mutex
	from time.Time // when the reads were cut (zero: not yet)
	// cutAt, if not nil, says from which read of a written window on the reads are cut;
	// onCut, if not nil, runs then.
	cutAt   func(n int) bool
	onCut   func()
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

// since is how long ago the reads were cut (0: not cut).
func (s *flakyReads) since() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.from.IsZero() {
		return 0
	}
	return time.Since(s.from)
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
	var onCut func()
	if s.cutAt != nil && s.cutAt(s.windows) && s.from.IsZero() {
		s.from, onCut = time.Now(), s.onCut
	}
	s.mu.Unlock()
	if onCut != nil {
		onCut()
	}
	if err := s.failing(); err != nil {
		return nil, fmt.Errorf("load window: %w", err)
	}
	return s.Store.LoadWindow(ctx, series, start)
}

// runUntilEnd runs a pipeline over src on store (with cfg's settings, in memory) until
// Run ends (within ctx), and returns the runner and Run's error.
func runUntilEnd(t *testing.T, ctx context.Context, cfg config.Config, src pipeline.Source, now func() time.Time, store *flakyReads) (*pipeline.Runner, error) {
	t.Helper()
	r, _ := newInMemory(cfg, src, now, store)
	if err := r.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	return r, r.Run(ctx)
}

// ClickHouse unreachable where the loop waits for it outside a flush's writes ends Run
// after limits.max_outage, as a write does: driftd exits non-zero (no shutdown flush) and
// a standby takes over. Before, the restore after a rebalance and the judge's reads of
// written windows retried every second for ever (a low-volume merge), or judged without
// the window (a rolling reference; a blue/green slot's previous window, which reads
// through the same loadWindow and is not cut here); an active member
// that could not reach ClickHouse kept its standby out
// (TestActiveGivesUpWhenClickHouseStaysDown failed so).
func TestReadsDownPastMaxOutageEndRun(t *testing.T) {
	const maxOutage = 2 * time.Second
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		models      []simulate.StreamModel
		rebalanceAt int64
		cutAt       func(n int) bool // nil: cut at the rebalance
		reference   detectors.ReferenceSource
		gaveUp      string
	}{
		{"the restore after a rebalance", []simulate.StreamModel{{Name: "m", Rate: 20}}, 5_000, nil, "", "restore after rebalance"},
		{"a low-volume merge reading a written window", []simulate.StreamModel{{Name: "slow", Rate: 1}}, 0,
			func(n int) bool { return n >= 3 }, "", "for a low-volume merge"},
		{"a rolling reference read back", []simulate.StreamModel{{Name: "m", Rate: 5}}, 0,
			func(n int) bool { return n >= 30 }, detectors.SourceDayAgo, "for a rolling reference"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Windows.Size = config.Duration(time.Minute)
			cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
			cfg.Limits.MaxOutage = config.Duration(maxOutage)
			if tc.reference != "" {
				cfg.Detection.Reference = tc.reference
			}
			clock := &replay.Clock{}
			o := simulate.StreamOptions{Seed: 11, Start: start, Duration: 2 * time.Hour, Models: tc.models}
			rs, err := replay.NewSource(o, replay.Backlog, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
			if err != nil {
				t.Fatal(err)
			}
			src := &countingSource{Source: rs, rebalanceAt: tc.rebalanceAt}
			store := &flakyReads{Store: replay.NewStore(), down: time.Hour, cutAt: tc.cutAt}
			if tc.cutAt == nil {
				// Cut at the rebalance: the next fetch after it restores.
				src.onRebalance = store.cut
			}
			r, runErr := runUntilEnd(t, testenv.Context(t, 2*time.Minute), cfg, src, clock.Now, store)
			if !errors.Is(runErr, retry.ErrOutage) || !strings.Contains(runErr.Error(), tc.gaveUp) {
				t.Fatalf("Run ended with %v, want an outage (limits.max_outage %v) of %q", runErr, maxOutage, tc.gaveUp)
			}
			if waited := store.since(); waited < maxOutage {
				t.Errorf("Run ended %v after ClickHouse went, limits.max_outage is %v", waited, maxOutage)
			}
			if tc.rebalanceAt > 0 && r.Stats().Rebalances != 1 {
				t.Errorf("%d rebalances, want 1", r.Stats().Rebalances)
			}
		})
	}
}

// A run that ends (SIGTERM) while a flush's judging waits for ClickHouse leaves that
// flush's windows half-judged: the alerter and the volume history have moved on for some
// of them. Shutdown's flush then writes and commits nothing, so the records since the
// last commit are read again and judged once, from the state stored. Before, it judged
// the windows again: an alert the cut pass had raised was never written (the alerter had
// seen its window), and windows counted twice in the volume history.
func TestShutdownAfterJudgingWasCutWritesNothing(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	cfg := config.Default()
	cfg.Windows.Size = config.Duration(time.Minute)
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	clock := &replay.Clock{}
	// Judged against the same window yesterday: each window's reference is read back.
	cfg.Detection.Reference = detectors.SourceDayAgo
	o := simulate.StreamOptions{Seed: 12, Start: start, Duration: 2 * time.Hour, Models: []simulate.StreamModel{{Name: "m", Rate: 5}}}
	src, err := replay.NewSource(o, replay.Live, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
	if err != nil {
		t.Fatal(err)
	}
	// The thirtieth read of a written window (a reference's) finds ClickHouse gone for a
	// moment, and the run is told to stop while the judge waits: ClickHouse is back for
	// the shutdown flush, which could write.
	ctx, stop := context.WithCancel(testenv.Context(t, 2*time.Minute))
	defer stop()
	store := &flakyReads{Store: replay.NewStore(), down: 20 * time.Millisecond, cutAt: func(n int) bool { return n >= 30 }, onCut: stop}
	r, err := runUntilEnd(t, ctx, cfg, src, clock.Now, store)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v, want the run's end", err)
	}
	windows, verdicts, committed := len(store.Windows()), store.Verdicts, src.Committed()
	if verdicts == 0 || len(committed) == 0 {
		t.Fatalf("%d windows judged, %d partitions committed before the cut; want some", verdicts, len(committed))
	}
	pause(t, 50*time.Millisecond) // ClickHouse back
	err = r.Shutdown(testenv.Context(t, time.Minute))
	if !errors.Is(err, pipeline.ErrFlushCut) {
		t.Errorf("Shutdown returned %v, want %v", err, pipeline.ErrFlushCut)
	}
	if len(store.Windows()) != windows || store.Verdicts != verdicts || !maps.Equal(src.Committed(), committed) {
		t.Errorf("Shutdown wrote %d windows (%d verdicts) and committed %v; want nothing more than %d windows, %d verdicts, %v",
			len(store.Windows()), store.Verdicts, src.Committed(), windows, verdicts, committed)
	}
}

// failingFetch fails every fetch with err, as a consumer that gave up on Kafka does.
type failingFetch struct {
	err     error
	fetches atomic.Int32
}

func (s *failingFetch) Fetch(context.Context) (consumers.Record, error) {
	s.fetches.Add(1)
	return consumers.Record{}, s.err
}
func (s *failingFetch) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (s *failingFetch) Assigned() int                                                    { return 1 }

// A fetch error ends Run (driftd exits non-zero and a restart reads from the committed
// offsets), with or without decoding ahead, also when the error gave up on a timeout and
// so wraps context.DeadlineExceeded, as a tick's end does. Before, such an error was taken
// for a tick: Run ticked on for ever (with decoding ahead, after its fetcher had stopped),
// holding the partitions and reading nothing.
func TestFetchErrorEndsRun(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", context.DeadlineExceeded)}
	gaveUp := fmt.Errorf("%w: fetch p/0: failing for 2m0s: %w: %w", consumers.ErrGaveUp, retry.ErrOutage, dial)
	for _, ahead := range []int{0, 512} {
		t.Run(fmt.Sprint("decode ahead ", ahead), func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			set := pipeline.SettingsFromConfig(config.Default(), schemas.Decoder{Format: schemas.FormatJSON}, schemas.Decoder{Format: schemas.FormatJSON})
			set.DecodeAhead = ahead
			sink := &replay.Sink{}
			src := &failingFetch{err: gaveUp}
			r := pipeline.New(set, src, sink, sink, replay.NewStore(), testenv.Logger(t), time.Now)
			if err := r.Run(ctx); !errors.Is(err, consumers.ErrGaveUp) || ctx.Err() != nil {
				t.Fatalf("Run = %v after %d fetches (test deadline: %v), want the fetch error", err, src.fetches.Load(), ctx.Err())
			}
		})
	}
}
