package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// stallingStore stalls one WriteLabelData (a slow or retried ClickHouse insert, within
// limits.max_outage) and runs during the stall what the world does meanwhile.
type stallingStore struct {
	pipeline.Store
	armed  *atomic.Bool
	during func()
}

func (s stallingStore) WriteLabelData(ctx context.Context, keys []storage.PredictionKey, labels []storage.LabelRow, at time.Time) error {
	if len(labels) > 0 && s.armed.CompareAndSwap(true, false) {
		s.during()
	}
	return s.Store.WriteLabelData(ctx, keys, labels, at)
}

// A label partition counts as read to its end only by its end offset asked of the broker
// when it matters, not by the lag its last fetch said (review). One window, one label
// partition, a simulated timeline (broker clock = driftd clock): half the window's labels
// are appended on time, the other half 50 minutes after the window's cutoff C (within
// C + 1 h). Live, the flush that writes an unrelated label stalls for 20 minutes (a
// ClickHouse insert retried), during which the second half is appended; when it goes on,
// the wall clock is past C + 1 h 1 min, but the partition has records unread: the window
// waits for them, and has every label, as read from a backlog.
func TestLabelsAppendedDuringAStallAreWaitedFor(t *testing.T) {
	const n = 100
	cutoff := t0.Add(time.Minute + 30*time.Second + 5*time.Second) // end + settle + lateness
	var preds, first, second []kafka.Message
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Minute / n)
		id := fmt.Sprintf("req-0-%d", i)
		preds = append(preds, kafka.Message{Key: []byte(id), Value: jsonOf(t, &schemas.PredictionEvent{EventID: id, RequestID: id, Model: labelModel,
			ModelVersion: "1", Timestamp: at, Status: "ok", LatencyMs: 10, Prediction: schemas.Value{Kind: schemas.Number, Num: 0.7}})})
		m := labelMessage(t, &schemas.LabelEvent{EventID: "l-" + id, RequestID: id, Model: labelModel, Timestamp: at.Add(10 * time.Second),
			Label: schemas.Value{Kind: schemas.Number, Num: float64(i % 2)}})
		if i < n/2 {
			first = append(first, m)
		} else {
			m.Time = cutoff.Add(50 * time.Minute) // appended 50 min after the cutoff
			second = append(second, m)
		}
	}
	trigger := labelMessage(t, &schemas.LabelEvent{EventID: "l-other", RequestID: "other", Model: labelModel, Timestamp: t0.Add(20 * time.Second),
		Label: schemas.Value{Kind: schemas.Number, Num: 1}})
	trigger.Time = cutoff.Add(45 * time.Minute)
	at := func(h *harness, sim time.Time) { h.skew.Store(int64(sim.Sub(time.Now()))) }

	run := func(live bool) []perfRow {
		h := newHarnessN(t, 1)
		h.tweak = joinLabels(h)
		var armed atomic.Bool
		h.wrapStore = func(s pipeline.Store) pipeline.Store {
			return stallingStore{Store: s, armed: &armed, during: func() {
				h.produceTo(t, h.labels, second...)
				at(h, cutoff.Add(65*time.Minute)) // the insert took 20 minutes
			}}
		}
		h.produce(t, preds...)
		h.produceTo(t, h.labels, first...)
		if live {
			at(h, t0.Add(2*time.Minute))
		} else {
			h.produceTo(t, h.labels, trigger)
			h.produceTo(t, h.labels, second...)
			at(h, cutoff.Add(2*time.Hour))
		}
		waitFor, stop := h.start(t)
		if live {
			waitFor("first half read, window written", func(st pipeline.Stats) bool { return st.Labels == n/2 && st.WindowsClosed >= 1 })
			at(h, cutoff.Add(45*time.Minute))
			armed.Store(true)
			h.produceTo(t, h.labels, trigger)
		}
		waitFor("the window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows >= 1 })
		waitFor("every label read", func(st pipeline.Stats) bool { return st.Labels == n+1 })
		stop()
		return h.performance(t)[:1] // window 0 (the clock's jumps write empty windows after it)
	}
	live, backlog := run(true), run(false)
	if fmt.Sprint(live) != fmt.Sprint(backlog) || live[0].labelled != n {
		t.Errorf("want every label joined, live as from a backlog:\nlive:    %+v\nbacklog: %+v", live, backlog)
	}
}

// A label record whose Kafka timestamp is far in the future (a producer's broken clock,
// or microseconds sent as milliseconds; a Kafka 3.x topic accepts any CreateTime, as
// does a 4.x topic with message.timestamp.after.max.ms raised) dates nothing (review:
// it was every window's append cutoff on its partition until 2100, and every label after
// it joined nothing).
func TestLabelsRecordTimeAheadDatesNothing(t *testing.T) {
	h := newHarnessN(t, 1)
	h.tweak = joinLabels(h)
	ctx := testenv.Context(t, time.Minute)
	resp, err := (&kafka.Client{Addr: kafka.TCP(h.brokers)}).AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: h.labels,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "message.timestamp.after.max.ms", Value: "9223372036854775807"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.Errors {
		if e != nil {
			t.Fatal(e)
		}
	}
	s := labelled{windows: 6, n: 50, flip: -1, seed: 4}
	preds, labels := s.messages(t)
	bad := labelMessage(t, &schemas.LabelEvent{EventID: "bad", RequestID: "nobody", Model: labelModel, Timestamp: t0.Add(90 * time.Second),
		Label: schemas.Value{Kind: schemas.Number, Num: 1}})
	bad.Time = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for ; i < len(labels); i++ { // after window 1's labels
		if strings.Contains(string(labels[i].Value), `"req-2-`) {
			break
		}
	}
	labels = append(labels[:i:i], append([]kafka.Message{bad}, labels[i:]...)...)
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	stop()
	for _, r := range h.performance(t) {
		if r.labelled != uint64(s.n) {
			t.Errorf("window %d: %d of %d labelled", r.start, r.labelled, s.n)
		}
	}
}
