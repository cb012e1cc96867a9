package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

const perWindow = 300

// stream produces perWindow predictions per model per one-minute window for windows
// [0, n), shifting amount of fraud-scorer in the shifted windows. It returns the number
// of records produced.
func stream(rng *rand.Rand, n int, shifted map[int]bool) []kafka.Message {
	var msgs []kafka.Message
	for w := 0; w < n; w++ {
		for i := 0; i < perWindow; i++ {
			at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow)
			for _, model := range []string{"fraud-scorer", "stable-model"} {
				shift := 0.0
				if model == "fraud-scorer" && shifted[w] {
					shift = 3
				}
				status := "ok"
				if i%50 == 7 {
					status = "error"
				}
				e := &schemas.PredictionEvent{
					EventID: fmt.Sprintf("%s-%d-%d", model, w, i), RequestID: strconv.Itoa(rng.IntN(1 << 30)),
					Model: model, ModelVersion: "3.2.0", Deployment: "primary", Timestamp: at, Status: status,
					LatencyMs: 20 + rng.ExpFloat64()*10,
					Features: []schemas.Feature{
						{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 10*(rng.NormFloat64()+shift)}},
						{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: []string{"DE", "FR", "NL", "US"}[rng.IntN(4)]}},
						{Name: "is_new", Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(2))}},
					},
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()},
				}
				b, err := schemas.MarshalPredictionJSON(e)
				if err != nil {
					panic(err)
				}
				msgs = append(msgs, kafka.Message{Key: []byte(e.RequestID), Value: b})
			}
		}
	}
	return msgs
}

// jsonOf is e as a JSON record.
func jsonOf(t testing.TB, e *schemas.PredictionEvent) []byte {
	t.Helper()
	b, err := schemas.MarshalPredictionJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	brokers                            string
	predictions, pipeline, alerts, dlq string
	// labels is a label topic, read by the consumer; a test that joins labels sets
	// Settings.LabelTopic to it (tweak).
	labels string
	// tweak adjusts the settings before start; skew moves the runner's clock ahead.
	tweak func(*pipeline.Settings)
	// spread spreads partitions over members instead of active/standby.
	spread bool
	// sink, if set, stands between the runner and the alert topic; deadLetters between
	// it and the dead-letter topic.
	sink        func(pipeline.AlertSink) pipeline.AlertSink
	deadLetters func(pipeline.DeadLetterer) pipeline.DeadLetterer
	// shutdown: stop runs Shutdown after Run, as driftd run does on SIGTERM.
	shutdown bool
	// decoder, if set, decodes predictions (with a schema registry of the test's).
	decoder *schemas.Decoder
	// ended is closed when the last started Run returns; runErr is then its error.
	ended  chan struct{}
	runErr func() error

	skew atomic.Int64
	// wrapStore, if set, stands between the runner and the store.
	wrapStore func(pipeline.Store) pipeline.Store
	store     *storage.Store
	mu        sync.Mutex
	stats     pipeline.Stats
}

func newHarness(t testing.TB) *harness { t.Helper(); return newHarnessN(t, 3) }

// newHarnessN is newHarness with partitions partitions per topic.
func newHarnessN(t testing.TB, partitions int) *harness {
	t.Helper()
	return newHarnessOn(t, testenv.KafkaBrokers(t), partitions)
}

// newHarnessOn is newHarnessN on the given brokers.
func newHarnessOn(t testing.TB, brokers string, partitions int) *harness {
	t.Helper()
	h := &harness{brokers: brokers}
	name := testenv.UniqueName(t)
	h.predictions, h.pipeline, h.alerts, h.dlq, h.labels = name+".predictions", name+".pipeline", name+".alerts", name+".dlq", name+".labels"
	ctx := testenv.Context(t, time.Minute)
	if err := consumers.EnsureTopics(ctx, consumers.Options{Brokers: []string{h.brokers}}, partitions, h.predictions, h.pipeline, h.alerts, h.dlq, h.labels); err != nil {
		t.Fatal(err)
	}
	addr, proto := testenv.ClickHouse(t)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: name}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	h.store = s
	return h
}

func (h *harness) produce(t testing.TB, msgs ...kafka.Message) {
	t.Helper()
	h.produceTo(t, h.predictions, msgs...)
}

func (h *harness) produceTo(t testing.TB, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := consumers.NewWriter(consumers.Options{Brokers: []string{h.brokers}}, topic)
	defer w.Close()
	if err := w.Write(testenv.Context(t, time.Minute), msgs...); err != nil {
		t.Fatal(err)
	}
}

// start runs the pipeline in the background. waitFor blocks until a condition on its
// stats holds after a flush (bounded); stop shuts it down and returns the final stats.
func (h *harness) start(t testing.TB) (waitFor func(what string, cond func(pipeline.Stats) bool), stop func() pipeline.Stats) {
	t.Helper()
	o := consumers.Options{Brokers: []string{h.brokers}, GroupID: h.predictions + ".driftd", Topics: []string{h.predictions, h.pipeline, h.labels}, Spread: h.spread, OneReader: []string{h.pipeline}}
	log := testenv.Logger(t)
	c, err := consumers.NewConsumer(o, log)
	if err != nil {
		t.Fatal(err)
	}
	dlq := consumers.NewDeadLetter(o, h.dlq)
	aw := consumers.NewWriter(o, h.alerts)
	set := pipeline.Settings{
		PredictionTopic: h.predictions,
		Decoder:         schemas.Decoder{Format: schemas.FormatAuto},
		WindowSpec: func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: time.Minute, Lateness: 5 * time.Second}
		},
		Thresholds:       func(string, string) detectors.Thresholds { return detectors.DefaultThresholds },
		ReferenceWindows: func(string) int { return 3 },
		FireAfter:        1, ResolveAfter: 2,
		FlushInterval: 200 * time.Millisecond,
		MaxFuture:     24 * time.Hour,
		// The stream ends: its last windows close when the models fall idle.
		IdleClose: 3 * time.Second, StartupGrace: 2 * time.Second,
		PipelineTopic: h.pipeline, PipelineDecoder: schemas.Decoder{Format: schemas.FormatAuto},
		DecodeAhead: pipeline.DefaultDecodeAhead, // as driftd run
	}
	if h.decoder != nil {
		set.Decoder = *h.decoder
	}
	set.Spread = h.spread
	if h.tweak != nil {
		h.tweak(&set)
	}
	now := func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }
	var sink pipeline.AlertSink = pipeline.NewAlertPublisher(aw, nil, 0)
	if h.sink != nil {
		sink = h.sink(sink)
	}
	var dl pipeline.DeadLetterer = dlq
	if h.deadLetters != nil {
		dl = h.deadLetters(dl)
	}
	var st pipeline.Store = h.store
	if h.spread {
		st = h.store.ForSpreadGroup()
	}
	if h.wrapStore != nil {
		st = h.wrapStore(st)
	}
	r := pipeline.New(set, c, dl, sink, st, log, now)
	// A restart's waitFor must see this run's counts, not the last run's.
	h.mu.Lock()
	h.stats = pipeline.Stats{}
	h.mu.Unlock()
	flushed := make(chan struct{}, 1)
	r.OnFlush(func(s pipeline.Stats) {
		h.mu.Lock()
		h.stats = s
		h.mu.Unlock()
		select {
		case flushed <- struct{}{}:
		default:
		}
	})
	if err := r.Restore(testenv.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	var runErr error
	h.ended, h.runErr = ended, func() error { return runErr }
	go func() { runErr = r.Run(ctx); close(ended) }()
	stopped := false
	stop = func() pipeline.Stats {
		if !stopped {
			stopped = true
			select {
			case <-ended: // Run ended by itself: the test checks h.runErr
			default:
				cancel()
				<-ended
				if !errors.Is(runErr, context.Canceled) {
					t.Errorf("Run returned %v", runErr)
				}
				if h.shutdown {
					sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
					if err := r.Shutdown(sctx); err != nil {
						t.Logf("shutdown: %v", err)
					}
					scancel()
				}
			}
			cancel()
			c.Close()
			dlq.Close()
			aw.Close()
		}
		return r.Stats()
	}
	t.Cleanup(func() { stop() })
	waitFor = func(what string, cond func(pipeline.Stats) bool) {
		t.Helper()
		deadline := testenv.Context(t, 3*time.Minute)
		for {
			h.mu.Lock()
			s := h.stats
			h.mu.Unlock()
			if cond(s) {
				return
			}
			select {
			case <-flushed:
			case <-deadline.Done():
				t.Fatalf("waiting for %s: stats %+v", what, s)
			}
		}
	}
	return waitFor, stop
}

func readAll(t *testing.T, brokers, topic string, want int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, GroupID: topic + ".reader", Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	ctx := testenv.Context(t, 30*time.Second)
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), want, err)
		}
		out = append(out, m)
	}
	// Nothing more than expected: wait a little for stragglers.
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m, err := r.ReadMessage(short); err == nil {
		t.Fatalf("unexpected extra message on %s: %s", topic, m.Value)
	}
	return out
}

// The whole backbone against real Kafka and the real ClickHouse engine: exact window
// counts, a data_drift alert that fires when amount shifts and resolves after, silence for
// the stationary model, and bad records in the dead-letter topic without stopping.
func TestPipelineEndToEnd(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(42, 7))
	const windows = 10
	msgs := stream(rng, windows, map[int]bool{5: true, 6: true})
	// Bad records in the middle of the stream.
	bad := []kafka.Message{{Key: []byte("x"), Value: []byte("not an event")}, {Key: []byte("y"), Value: []byte(`{"model":"fraud-scorer","timestamp":"2026-03-04T10:03:00Z","latency_ms":"slow"}`)},
		{Key: []byte("z"), Value: []byte(`{"model":"fraud-scorer","timestamp":"2099-01-01T00:00:00Z"}`)}}
	msgs = append(msgs[:len(msgs)/2], append(bad, msgs[len(msgs)/2:]...)...)
	// The first four windows come in as a backlog; the reference (windows 0-2) is built
	// from them. The rest arrives while driftd runs, so windows 4-9 are binned exactly
	// against the reference and window 3 (open when it was built) from its sketch.
	split := 4 * perWindow * 2
	h.produce(t, msgs[:split]...)
	waitFor, stop := h.start(t)
	waitFor("references", func(s pipeline.Stats) bool { return s.ReferencesBuilt == 2 })
	h.produce(t, msgs[split:]...)
	total := uint64(len(msgs))
	waitFor("every window", func(s pipeline.Stats) bool { return s.Records == total && s.WindowsClosed == 2*windows })
	stats := stop()
	if stats.Added != total-3 || stats.DeadLettered != 3 || stats.Late != 0 || stats.ReferencesBuilt != 2 {
		t.Fatalf("stats %+v", stats)
	}

	ctx := testenv.Context(t, time.Minute)
	db := h.store.Database()
	rows, err := h.store.Conn().Query(ctx, "SELECT model, toUnixTimestamp(window_start), sum(events), sum(errors), count() FROM "+db+".window_model_stats FINAL GROUP BY model, window_start ORDER BY model, window_start")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var (
			model                string
			start                uint32
			events, errs, partns uint64
		)
		if err := rows.Scan(&model, &start, &events, &errs, &partns); err != nil {
			t.Fatal(err)
		}
		n++
		if events != perWindow || errs != perWindow/50 || partns < 2 {
			t.Errorf("%s window %v: %d events, %d errors over %d partitions; want %d, %d, several", model, time.Unix(int64(start), 0).UTC(), events, errs, partns, perWindow, perWindow/50)
		}
	}
	rows.Close()
	if n != 2*windows {
		t.Fatalf("%d windows in ClickHouse, want %d", n, 2*windows)
	}
	var amountCount, binned uint64
	if err := h.store.Conn().QueryRow(ctx, "SELECT sum(count), sum(arraySum(bin_counts)) FROM "+db+".window_feature_stats FINAL WHERE model = 'fraud-scorer' AND feature = 'amount' AND window_start >= '2026-03-04 10:04:00'").Scan(&amountCount, &binned); err != nil {
		t.Fatal(err)
	}
	if amountCount != 6*perWindow || binned != 6*perWindow {
		t.Errorf("amount counted %d, binned %d over windows 4-9; want %d", amountCount, binned, 6*perWindow)
	}
	drifted := map[string]bool{}
	rows, err = h.store.Conn().Query(ctx, "SELECT model, feature, formatDateTime(window_start, '%H:%i') FROM "+db+".drift_scores FINAL WHERE drifted = 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m, f, w string
		rows.Scan(&m, &f, &w)
		drifted[m+"/"+f+"@"+w] = true
	}
	rows.Close()
	if len(drifted) != 2 || !drifted["fraud-scorer/amount@10:05"] || !drifted["fraud-scorer/amount@10:06"] {
		t.Errorf("drifted windows %v; want fraud-scorer/amount at 10:05 and 10:06 only", drifted)
	}

	alerts := readAll(t, h.brokers, h.alerts, 2)
	var got []schemas.AlertEvent
	for _, m := range alerts {
		var a schemas.AlertEvent
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if got[0].State != "firing" || got[0].Kind != "data_drift" || got[0].Feature != "amount" || got[0].Model != "fraud-scorer" ||
		got[0].WindowStart != t0.Add(5*time.Minute) || got[0].Severity != "critical" {
		t.Errorf("first alert %+v", got[0])
	}
	if got[1].State != "resolved" || got[1].Fingerprint != got[0].Fingerprint || got[1].WindowStart != t0.Add(8*time.Minute) {
		t.Errorf("second alert %+v", got[1])
	}
	if want := "feature amount of fraud-scorer 3.2.0 drifted: PSI "; len(got[0].Summary) < len(want) || got[0].Summary[:len(want)] != want {
		t.Errorf("summary %q", got[0].Summary)
	}
	var stored uint64
	h.store.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".alerts FINAL").Scan(&stored)
	if stored != 2 {
		t.Errorf("%d alerts stored, want 2", stored)
	}

	dead := readAll(t, h.brokers, h.dlq, 3)
	for _, m := range dead {
		if testenv.Header(m, consumers.HeaderSourceTopic) != h.predictions || testenv.Header(m, consumers.HeaderSourceOffset) == "" ||
			testenv.Header(m, consumers.HeaderSourcePartition) == "" || testenv.Header(m, consumers.HeaderErrorMessage) == "" {
			t.Errorf("dead letter without provenance: %+v", m.Headers)
		}
	}
	var classes []string
	for _, m := range dead {
		classes = append(classes, testenv.Header(m, consumers.HeaderErrorClass))
	}
	sort.Strings(classes)
	// Random bytes and a wrong type do not decode; a timestamp in 2099 breaks the contract.
	if strings.Join(classes, ",") != "decode,decode,invalid" {
		t.Errorf("dead-letter classes %v", classes)
	}
}
