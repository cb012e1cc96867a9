package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// historyStore is the in-memory store with a volume history stored, whose read of the
// recent windows' volumes fails the first failures times.
type historyStore struct {
	*replay.Store
	hourly   []storage.HourlyEvents
	failures int
}

func (s *historyStore) LoadHourlyEvents(context.Context, time.Duration) ([]storage.HourlyEvents, error) {
	return s.hourly, nil
}

func (s *historyStore) LoadVolumeWindows(ctx context.Context, lookback time.Duration, n int) ([]storage.WindowVolume, error) {
	if s.failures > 0 {
		s.failures--
		return nil, errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")
	}
	return s.Store.LoadVolumeWindows(ctx, lookback, n)
}

// A restore after a rebalance that ClickHouse cuts off half-way, then answers, ends with
// the state one restore gives: each attempt starts from nothing. Before, an attempt
// added the stored volume history to what the failed ones had added (twice the events
// and windows per hour after one failure), and every series then looked well below its
// expected volume.
func TestRestoreRetriedAfterARebalanceCountsTheHistoryOnce(t *testing.T) {
	series := processors.SeriesKey{Model: "m", Version: "1"}
	hour := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	hourly := []storage.HourlyEvents{{Series: series, Hour: hour, Events: 600, Windows: 60, Squares: 6000}}
	for _, failures := range []int{0, 1, 3} {
		store := &historyStore{Store: replay.NewStore(), hourly: hourly, failures: failures}
		set := Settings{}
		set.Backoff.Initial, set.Backoff.Max = time.Millisecond, time.Millisecond
		r := New(set, nil, nil, nil, store, testenv.Logger(t), func() time.Time { return hour.Add(2 * time.Hour) })
		if err := r.rebalanced(testenv.Context(t, time.Minute), errors.New("generation 2 assigned other partitions")); err != nil {
			t.Fatalf("%d failures: %v", failures, err)
		}
		got := r.j.state(series).volume.hours[hour.UnixMilli()]
		if got.events != 600 || got.windows != 60 || got.squares != 6000 || store.failures != 0 {
			t.Errorf("%d failures: the hour restored as %d events, %d windows (squares %v); want 600, 60 (6000)", failures, got.events, got.windows, got.squares)
		}
	}
}
