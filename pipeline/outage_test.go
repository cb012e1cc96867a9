package pipeline_test

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/storage"
)

// ClickHouse goes away for a while: consumption pauses (memory stays bounded: no more
// records are read), writes retry with backoff, nothing more is committed, and after it
// comes back the results are complete and exact.
func TestClickHouseOutage(t *testing.T) {
	h := newHarness(t)
	addr, proto := testenv.ClickHouse(t)
	px := testenv.NewProxy(t, addr)
	ctx := testenv.Context(t, 3*time.Minute)
	through, err := storage.Open(ctx, storage.Options{Addr: px.Addr(), Protocol: storage.Protocol(proto), Database: h.store.Database()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer through.Close()
	direct := h.store
	h.store = through
	retries := &retryCounter{}
	h.tweak = func(s *pipeline.Settings) {
		s.Backoff = storage.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
		s.Observer = retries
	}

	rng := rand.New(rand.NewPCG(3, 14))
	const windows = 10
	msgs := stream(rng, windows, nil)
	half := len(msgs) / 2 // windows 0-4
	h.produce(t, msgs[:half]...)
	waitFor, stop := h.start(t)
	waitFor("the first half", func(s pipeline.Stats) bool { return s.Records == uint64(half) && s.WindowsClosed >= 8 })

	px.SetDown(true)
	h.produce(t, msgs[half:]...)
	// While ClickHouse is away the pipeline is stuck retrying one flush: it stops reading
	// and closes nothing more. The outage lasts five retries.
	deadline := testenv.Context(t, time.Minute)
	for retries.n.Load() < 5 {
		select {
		case <-deadline.Done():
			t.Fatal("no write was retried while ClickHouse was away")
		case <-time.After(50 * time.Millisecond):
		}
	}
	h.mu.Lock()
	during := h.stats
	h.mu.Unlock()
	px.SetDown(false)
	waitFor("recovery", func(s pipeline.Stats) bool { return s.Records == uint64(len(msgs)) && s.WindowsClosed == 2*windows })
	stop()
	if during.WindowsClosed > 10 || during.Records >= uint64(len(msgs)) {
		t.Errorf("consumption went on while ClickHouse was away: %+v", during)
	}

	var n, events uint64
	if err := direct.Conn().QueryRow(ctx, "SELECT uniqExact(model, window_start), sum(events) FROM "+direct.Database()+".window_model_stats FINAL").Scan(&n, &events); err != nil {
		t.Fatal(err)
	}
	if n != 2*windows || events != uint64(len(msgs)) {
		t.Errorf("after the outage: %d windows, %d events; want %d, %d", n, events, 2*windows, len(msgs))
	}
}

// retryCounter counts retried writes; it ignores the other observations.
type retryCounter struct {
	pipeline.NopObserver
	n atomic.Int64
}

func (r *retryCounter) Insert(_ time.Duration, class string) {
	if class == storage.Retryable.String() {
		r.n.Add(1)
	}
}
