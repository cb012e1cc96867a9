package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// churn serves bursts of events of ever new series (model m-0, m-1, …), each burst two
// hours of the (simulated) wall clock after the last, then stops the run.
type churn struct {
	series, perSeries, n int
	clock                time.Time
	stop                 func()
}

func (c *churn) Fetch(ctx context.Context) (consumers.Record, error) {
	if c.n >= c.series*c.perSeries {
		c.stop()
		return consumers.Record{}, context.DeadlineExceeded
	}
	s, i := c.n/c.perSeries, c.n%c.perSeries
	if i == 0 {
		c.clock = c.clock.Add(2 * time.Hour)
	}
	c.n++
	e := &schemas.PredictionEvent{EventID: fmt.Sprint(c.n), Model: fmt.Sprintf("m-%d", s), ModelVersion: "1", Deployment: "primary",
		Timestamp: c.clock.Add(time.Duration(i) * time.Second), Status: "ok", LatencyMs: 10,
		Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i % 7)}}},
		Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
	b, err := schemas.MarshalPredictionJSON(e)
	if err != nil {
		return consumers.Record{}, err
	}
	return consumers.Record{Topic: "p", Offset: int64(c.n), Value: b, Time: e.Timestamp, HighWaterMark: int64(c.n + 1)}, nil
}

func (c *churn) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (c *churn) Assigned() int                                                    { return 1 }

// Per-series state is bounded by limits.max_series, not by every series ever seen: when
// the processor forgets idle series to make room for new ones, the judge's state of
// them (windows, trails, volumes, alert states, reference builders) goes too.
func TestSeriesStateIsBoundedBySeriesLimit(t *testing.T) {
	src := &churn{series: 60, perSeries: 150, clock: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}
	set := Settings{PredictionTopic: "p", Decoder: schemas.Decoder{Format: schemas.FormatJSON},
		WindowSpec: func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: time.Minute, Lateness: time.Second}
		},
		Limits:           processors.Limits{MaxSeries: 5, SeriesIdle: time.Hour},
		Thresholds:       func(string, string) detectors.Thresholds { return detectors.DefaultThresholds },
		ReferenceWindows: func(string) int { return 3 }, FlushInterval: time.Second, IdleClose: time.Minute}
	store, sink := replay.NewStore(), &replay.Sink{}
	r := New(set, src, sink, sink, store, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return src.clock })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	src.stop = stop
	if err := r.Run(runCtx); err != nil && ctx.Err() != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.DeadLetters) > 0 {
		t.Fatalf("%d series refused, first: %s", len(sink.DeadLetters), sink.DeadLetters[0])
	}
	if n := len(r.j.series); n > 6 {
		t.Errorf("judge state of %d series kept, want at most the limit (5) and the newest", n)
	}
	// A series' conditions: service ones, and the features' once it has a reference.
	if n := r.j.alerter.Len(); n > 6*8 {
		t.Errorf("%d alert states kept for at most 6 series", n)
	}
	if n := len(r.j.building); n > 6 {
		t.Errorf("%d reference builders kept", n)
	}
	if store.Verdicts < 60 {
		t.Errorf("%d windows judged: the churn did not run", store.Verdicts)
	}
}
