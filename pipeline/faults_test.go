package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// committed is the group's committed offset of the prediction topic's partition (-1:
// none).
func (h *harness) committed(t *testing.T, partition int) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(h.brokers)}
	res, err := c.OffsetFetch(testenv.Context(t, 30*time.Second), &kafka.OffsetFetchRequest{GroupID: h.predictions + ".driftd",
		Topics: map[string][]int{h.predictions: {partition}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	for _, p := range res.Topics[h.predictions] {
		if p.Partition == partition {
			if p.Error != nil {
				t.Fatal(p.Error)
			}
			return p.CommittedOffset
		}
	}
	return -1
}

// waitEnded waits (bounded) for Run to end by itself and returns its error.
func (h *harness) waitEnded(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-h.ended:
		return h.runErr()
	case <-time.After(within):
		t.Fatalf("Run did not end within %v", within)
		return nil
	}
}

func (h *harness) count(t *testing.T, q string) uint64 {
	t.Helper()
	var n uint64
	if err := h.store.Conn().QueryRow(testenv.Context(t, time.Minute), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// An error ClickHouse gives for no fault of the rows (here: a table gone, code 60) is
// retried, not treated as fatal: nothing is set aside or committed past the windows not
// written; after limits.max_outage Run ends with an outage (driftd exits non-zero, a
// standby takes over); once the table is back, a restart writes every window exactly.
// Before, every code off a short list was fatal: the windows were replaced by a summary on
// the dead-letter topic and their records committed — lost.
func TestUnknownClickHouseErrorIsRetriedThenRunEnds(t *testing.T) {
	h := newHarness(t)
	const maxOutage = 4 * time.Second
	h.tweak = func(s *pipeline.Settings) {
		s.Backoff = storage.Backoff{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond}
		s.MaxOutage = maxOutage
	}
	const windows = 10
	msgs := stream(rand.New(rand.NewPCG(3, 14)), windows, nil)
	half := len(msgs) / 2
	h.produce(t, msgs[:half]...)
	waitFor, stop := h.start(t)
	waitFor("the first half", func(s pipeline.Stats) bool { return s.Records == uint64(half) && s.WindowsClosed >= 8 })

	db := h.store.Database()
	ctx := testenv.Context(t, 3*time.Minute)
	if err := h.store.Conn().Exec(ctx, "RENAME TABLE "+db+".window_feature_stats TO "+db+".away"); err != nil {
		t.Fatal(err)
	}
	h.produce(t, msgs[half:]...)
	began := time.Now()
	err := h.waitEnded(t, 2*time.Minute)
	took := time.Since(began)
	stop()
	if !errors.Is(err, retry.ErrOutage) {
		t.Fatalf("Run ended with %v, want an outage", err)
	}
	if took < maxOutage-time.Second || took > maxOutage+time.Minute { // the write may begin before produce returns
		t.Errorf("Run ended %v after the table went, limits.max_outage is %v", took, maxOutage)
	}
	readAll(t, h.brokers, h.dlq, 0)

	if err := h.store.Conn().Exec(ctx, "RENAME TABLE "+db+".away TO "+db+".window_feature_stats"); err != nil {
		t.Fatal(err)
	}
	h.tweak = nil
	waitFor, stop = h.start(t)
	waitFor("the rest", func(s pipeline.Stats) bool { return s.WindowsClosed > 0 && s.Records > 0 })
	deadline := testenv.Context(t, 2*time.Minute)
	for h.count(t, "SELECT uniqExact(model, window_start) FROM "+db+".window_model_stats FINAL") < 2*windows && deadline.Err() == nil {
		pause(t, 200*time.Millisecond)
	}
	stop()
	if n, events := h.count(t, "SELECT uniqExact(model, window_start) FROM "+db+".window_model_stats FINAL"),
		h.count(t, "SELECT sum(events) FROM "+db+".window_model_stats FINAL"); n != 2*windows || events != uint64(len(msgs)) {
		t.Errorf("after the outage: %d windows, %d events; want %d, %d", n, events, 2*windows, len(msgs))
	}
}

// deadLetterRow is one table's row in a refused window's dead letter.
type deadLetterRow struct {
	Model      string `json:"model"`
	Kind       string `json:"kind"`
	Events     uint64 `json:"events"`
	FirstOfset int64  `json:"first_offset"`
	LastOffset int64  `json:"last_offset"`
}

// Rows ClickHouse refuses for good (here: constraints the engine enforces, code 469):
// only they are set aside, each window per source partition with its real rows and the
// topic, partition and offset range of its records; the other windows are written; an
// alert that could not be stored is not published. Before, the whole flush became one
// summary with offset -1 and its alerts were published although not stored.
func TestRefusedRowsAreSetAsideWithTheirRecords(t *testing.T) {
	h := newHarness(t)
	db := h.store.Database()
	ctx := testenv.Context(t, 3*time.Minute)
	for _, q := range []string{
		"ALTER TABLE " + db + ".window_model_stats ADD CONSTRAINT not_stable CHECK model != 'stable-model'",
		"ALTER TABLE " + db + ".alerts ADD CONSTRAINT no_drift CHECK kind != 'data_drift'",
	} {
		if err := h.store.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const windows = 6
	msgs := stream(rand.New(rand.NewPCG(42, 7)), windows, map[int]bool{4: true, 5: true})
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.Records == uint64(len(msgs)) && s.WindowsClosed == 2*windows })
	stats := stop()

	if n, events := h.count(t, "SELECT uniqExact(window_start) FROM "+db+".window_model_stats FINAL WHERE model = 'fraud-scorer'"),
		h.count(t, "SELECT sum(events) FROM "+db+".window_model_stats FINAL"); n != windows || events != windows*perWindow {
		t.Errorf("fraud-scorer: %d windows with %d events stored; want %d with %d, and nothing of stable-model", n, events, windows, windows*perWindow)
	}
	if n := h.count(t, "SELECT count() FROM "+db+".alerts"); n != 0 {
		t.Errorf("%d alerts stored", n)
	}
	readAll(t, h.brokers, h.alerts, 0) // not stored, not published

	// The dead letters: stable-model's windows, one per window and partition, and the
	// data_drift alert.
	dead := readAll(t, h.brokers, h.dlq, int(stats.DeadLettered))
	var events uint64
	var parts, alerts int
	seen := map[string]bool{}
	for _, m := range dead {
		if c := testenv.Header(m, consumers.HeaderErrorClass); c != consumers.ClassWriteFatal {
			t.Errorf("class %s", c)
		}
		var rows map[string][]json.RawMessage
		if err := json.Unmarshal(m.Value, &rows); err != nil {
			t.Fatalf("dead letter %q: %v", m.Value, err)
		}
		if a := rows["alerts"]; len(a) > 0 {
			alerts++
			var al deadLetterRow
			json.Unmarshal(a[0], &al)
			if al.Kind != schemas.KindDataDrift || al.Model != "fraud-scorer" || testenv.Header(m, consumers.HeaderSourceOffset) != "-1" {
				t.Errorf("alert dead letter %s", m.Value)
			}
			continue
		}
		parts++
		var w deadLetterRow
		if len(rows["window_model_stats"]) != 1 || json.Unmarshal(rows["window_model_stats"][0], &w) != nil || w.Model != "stable-model" {
			t.Fatalf("window dead letter %s", m.Value)
		}
		if len(rows["window_feature_stats"]) != 4 { // amount, country, is_new, the prediction
			t.Errorf("%d feature rows", len(rows["window_feature_stats"]))
		}
		first, _ := strconv.ParseInt(testenv.Header(m, consumers.HeaderSourceOffset), 10, 64)
		last, _ := strconv.ParseInt(testenv.Header(m, consumers.HeaderSourceLastOffset), 10, 64)
		part := testenv.Header(m, consumers.HeaderSourcePartition)
		if testenv.Header(m, consumers.HeaderSourceTopic) != h.predictions || first != w.FirstOfset || last != w.LastOffset || first < 0 || last < first {
			t.Errorf("provenance %s/%s %d-%d of a window with offsets %d-%d", testenv.Header(m, consumers.HeaderSourceTopic), part, first, last, w.FirstOfset, w.LastOffset)
		}
		key := fmt.Sprintf("%s/%d", part, first)
		if seen[key] {
			t.Errorf("two dead letters for %s", key)
		}
		seen[key] = true
		events += w.Events
	}
	if events != windows*perWindow || alerts != 1 || parts < windows {
		t.Errorf("dead letters: %d windows' partials with %d events and %d alerts; want stable-model's %d events and 1 alert", parts, events, alerts, windows*perWindow)
	}
}

// failingDLQ is a dead-letter topic that cannot be reached.
type failingDLQ struct {
	pipeline.DeadLetterer
	tries atomic.Int64
}

func (f *failingDLQ) Send(context.Context, consumers.Record, string, error, time.Time) error {
	f.tries.Add(1)
	return fmt.Errorf("produce to dlq: %w", kafka.LeaderNotAvailable)
}

// registry is a schema registry that answers 503 while down, then 404 (it never had the
// schema id asked for).
type registry struct {
	down  atomic.Bool
	tries atomic.Int64
}

func (g *registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	g.tries.Add(1)
	if g.down.Load() {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	http.NotFound(w, nil)
}

// A bad record at offset 41 while what it needs is down — the dead-letter topic, or the
// schema registry it waits for: SIGTERM (the runner's context ends, then Shutdown
// flushes and commits, as driftd run does) must not commit past it, nor must giving up
// after limits.max_outage; once the dependency is back, the record is set aside and only
// then committed. Before, the offset was recorded however its handling ended, and 42 was
// committed with the record nowhere.
func TestCutOffRecordIsNotCommitted(t *testing.T) {
	for _, c := range []struct {
		name string
		// down takes the dependency down for h; tries counts the attempts to reach it, up
		// brings it back.
		down func(h *harness) (tries func() int64, up func())
		bad  []byte
	}{
		{"dead-letter topic", func(h *harness) (func() int64, func()) {
			f := &failingDLQ{}
			h.deadLetters = func(d pipeline.DeadLetterer) pipeline.DeadLetterer { f.DeadLetterer = d; return f }
			return f.tries.Load, func() { h.deadLetters = nil }
		}, []byte("not an event")},
		{"schema registry", func(h *harness) (func() int64, func()) {
			g := &registry{}
			g.down.Store(true)
			srv := httptest.NewServer(g)
			t.Cleanup(srv.Close)
			reg, err := schemas.NewRegistry(srv.URL, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			h.decoder = &schemas.Decoder{Format: schemas.FormatAuto, Registry: reg}
			return g.tries.Load, func() { g.down.Store(false) }
		}, schemas.AppendConfluent(nil, 77, []byte{2, 'x'})},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarnessN(t, 1)
			h.shutdown = true
			tries, up := c.down(h)
			var good []kafka.Message
			for i := 0; i < 41; i++ {
				good = append(good, kafka.Message{Value: jsonOf(t, &schemas.PredictionEvent{EventID: fmt.Sprint("e", i), Model: "m", ModelVersion: "1",
					Timestamp: t0.Add(time.Duration(i) * time.Second), Status: "ok", LatencyMs: 5, Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}})})
			}
			h.produce(t, good...)
			waitFor, stop := h.start(t)
			waitFor("the window written", func(s pipeline.Stats) bool { return s.WindowsClosed == 1 })
			deadline := testenv.Context(t, time.Minute)
			for h.committed(t, 0) != 41 && deadline.Err() == nil {
				pause(t, 100*time.Millisecond)
			}
			stop()
			if got := h.committed(t, 0); got != 41 {
				t.Fatalf("committed %d after the first 41 records, want 41", got)
			}

			h.produce(t, kafka.Message{Value: c.bad}) // offset 41
			for _, end := range []string{"SIGTERM", "the outage bound"} {
				h.tweak = func(s *pipeline.Settings) {
					s.Backoff = storage.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
					if end == "the outage bound" {
						s.MaxOutage = 2 * time.Second
					}
				}
				before := tries()
				_, stop := h.start(t)
				deadline := testenv.Context(t, time.Minute)
				for tries() < before+3 && deadline.Err() == nil {
					pause(t, 50*time.Millisecond)
				}
				if end == "SIGTERM" {
					stop()
				} else {
					err := h.waitEnded(t, time.Minute)
					stop()
					if !errors.Is(err, retry.ErrOutage) {
						t.Errorf("%s: Run ended with %v, want an outage", end, err)
					}
				}
				if got := h.committed(t, 0); got != 41 {
					t.Errorf("%s: committed %d with record 41 not handled, want 41", end, got)
				}
			}

			up()
			h.tweak = nil
			waitFor, stop = h.start(t)
			waitFor("the bad record set aside", func(s pipeline.Stats) bool { return s.DeadLettered == 1 })
			deadline = testenv.Context(t, time.Minute)
			for h.committed(t, 0) != 42 && deadline.Err() == nil {
				pause(t, 100*time.Millisecond)
			}
			stop()
			dead := readAll(t, h.brokers, h.dlq, 1)
			if testenv.Header(dead[0], consumers.HeaderSourceOffset) != "41" || string(dead[0].Value) != string(c.bad) {
				t.Errorf("dead letter %q at offset %s", dead[0].Value, testenv.Header(dead[0], consumers.HeaderSourceOffset))
			}
			if got := h.committed(t, 0); got != 42 {
				t.Errorf("committed %d once record 41 is set aside, want 42", got)
			}
		})
	}
}
