package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// spareStore checks that the keys it is given are not changed while it holds them (a
// write in flight on the label writer's goroutine, or from the Run loop), and records
// the request ids of each successful write.
type spareStore struct {
	Store
	mu     sync.Mutex
	fail   map[int]bool // calls (from 1) that fail
	calls  int
	hold   time.Duration
	stored []string
	bad    error
}

func (s *spareStore) WriteLabelData(ctx context.Context, keys []storage.PredictionKey, rows []storage.LabelRow, at time.Time) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	snap := append([]storage.PredictionKey(nil), keys...)
	time.Sleep(s.hold) // the Run loop works on meanwhile
	for i := range keys {
		if keys[i].RequestID != snap[i].RequestID || keys[i].Start != snap[i].Start {
			s.mu.Lock()
			s.bad = fmt.Errorf("call %d: key %d changed in flight: %q -> %q", n, i, snap[i].RequestID, keys[i].RequestID)
			s.mu.Unlock()
		}
	}
	if s.fail[n] {
		return errors.New("insert: connection reset by peer")
	}
	s.mu.Lock()
	for _, k := range keys {
		s.stored = append(s.stored, k.RequestID)
	}
	s.mu.Unlock()
	return nil
}

// TestLabelWriterArraysNeverChangeWhileStored drives handOffLabels, writeLabelData (a flush),
// failed attempts (requeue), rebalances (dropLabelBatch) and stopLabelWriter in random
// order, and checks that no batch changes while stored, and that every key not dropped
// is stored once, in order.
func TestLabelWriterArraysNeverChangeWhileStored(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 1))
		st := &spareStore{fail: map[int]bool{}, hold: time.Duration(rng.IntN(300)) * time.Microsecond}
		for i := range 200 {
			if rng.IntN(4) == 0 {
				st.fail[i+1] = true
			}
		}
		set := Settings{LabelTopic: "labels", Backoff: storage.Backoff{Initial: time.Microsecond, Max: time.Microsecond}}
		r := New(set, nil, nil, nil, st, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
		ctx := context.Background()
		r.labWriter = startLabelWriter(ctx, st, 0)
		var want []string // keys not dropped, in order
		var kept []string // keys held by the loop or in flight (dropped by a rebalance)
		next := 0
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op < 6:
				for range rng.IntN(40) {
					e := &schemas.PredictionEvent{RequestID: fmt.Sprintf("r%d", next), Model: "m"}
					r.addKey(e, processors.Source{Topic: "p", Offset: int64(next)}, int64(next), int64(next+1))
					kept = append(kept, e.RequestID)
					next++
				}
			case op < 8:
				if err := r.handOffLabels(ctx); err != nil {
					t.Fatalf("seed %d step %d: hand-off: %v", seed, step, err)
				}
			case op < 9:
				if err := r.writeLabelData(ctx); err != nil {
					t.Fatalf("seed %d step %d: flush: %v", seed, step, err)
				}
				want, kept = append(want, kept...), nil
			default:
				// A rebalance: what is in flight or kept is dropped (read again).
				r.dropLabelBatch()
				r.lab = newLabelState()
				st.mu.Lock()
				st.stored = st.stored[:len(want)] // a batch stored before the drop is fine too; keep it simple
				st.mu.Unlock()
				kept = nil
			}
		}
		r.stopLabelWriter()
		r.labWriter = nil
		if err := r.writeLabelData(ctx); err != nil {
			t.Fatal(err)
		}
		want = append(want, kept...)
		if seed < 3 {
			t.Logf("seed %d: %d writes, %d keys stored", seed, st.calls, len(st.stored))
		}
		if st.bad != nil {
			t.Fatalf("seed %d: %v", seed, st.bad)
		}
		if fmt.Sprint(st.stored) != fmt.Sprint(want) {
			t.Fatalf("seed %d: stored %d keys, want %d\nstored %v\nwant   %v", seed, len(st.stored), len(want), st.stored, want)
		}
	}
}
