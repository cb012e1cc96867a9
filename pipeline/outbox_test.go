package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// unreachable is an alert topic that refuses every alert.
type unreachable struct{ tries atomic.Int64 }

func (u *unreachable) Publish(context.Context, []*schemas.AlertEvent) error {
	u.tries.Add(1)
	return errors.New("alert topic unreachable")
}

// The alert outbox: driftd stops after storing an alert and before publishing it; the
// next start publishes it (same id), and a start after that publishes nothing again.
func TestStoredAlertIsPublishedAfterARestart(t *testing.T) {
	h := newHarness(t)
	msgs := stream(rand.New(rand.NewPCG(42, 7)), 6, map[int]bool{4: true, 5: true})
	h.produce(t, msgs...)
	blocked := &unreachable{}
	h.sink = func(pipeline.AlertSink) pipeline.AlertSink { return blocked }
	_, stop := h.start(t)
	ctx := testenv.Context(t, 2*time.Minute)
	var stored []string
	for len(stored) == 0 || blocked.tries.Load() < 2 {
		rows, err := h.store.Conn().Query(ctx, "SELECT alert_id FROM "+h.store.Database()+".alerts FINAL")
		if err != nil {
			t.Fatal(err)
		}
		stored = stored[:0]
		for rows.Next() {
			var id string
			rows.Scan(&id)
			stored = append(stored, id)
		}
		rows.Close()
		if ctx.Err() != nil {
			t.Fatalf("no alert stored while the alert topic is down (tries %d)", blocked.tries.Load())
		}
		pause(t, 200*time.Millisecond)
	}
	stop() // stopped between storing and publishing

	h.sink = nil
	_, stop = h.start(t)
	got := readAll(t, h.brokers, h.alerts, len(stored))
	stop()
	for i, m := range got {
		var a schemas.AlertEvent
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.AlertID != stored[i] || a.Kind != schemas.KindDataDrift || a.Model != "fraud-scorer" || a.Summary == "" {
			t.Errorf("published alert %d: %+v; stored %v", i, a, stored)
		}
	}
	// Published and recorded: a further start publishes nothing again (readAll, reading
	// on from where it stopped, fails on an extra record).
	_, stop = h.start(t)
	pause(t, 3*time.Second)
	stop()
	readAll(t, h.brokers, h.alerts, 0)
}
