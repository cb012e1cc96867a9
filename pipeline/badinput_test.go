package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Bad input of every kind the contract names, against real Kafka: each record ends in
// the dead-letter topic with provenance and its class, nothing panics, and the valid
// records around them (on the same partition) are all counted.
func TestBadInputEndsInTheDeadLetterTopic(t *testing.T) {
	h := newHarnessN(t, 1) // one partition: a stuck record would stop everything behind it
	reg, err := schemas.NewRegistry("", map[uint32]string{7: schemas.SchemaPrediction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.tweak = func(s *pipeline.Settings) {
		s.Decoder = schemas.Decoder{Format: schemas.FormatAuto, Registry: reg}
		s.MaxEventBytes = 1 << 20
		s.Limits.MaxSeries = 3 // fraud-scorer, stable-model and one more
	}
	ctx := testenv.Context(t, 3*time.Minute)
	codec, err := reg.Codec(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	event := func(model string, at time.Duration, features ...schemas.Feature) *schemas.PredictionEvent {
		return &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%v", model, at), Model: model, ModelVersion: "1", Timestamp: t0.Add(at),
			LatencyMs: 5, Features: features, Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
	}
	avroOf := func(e *schemas.PredictionEvent) []byte {
		b, err := schemas.EncodePredictionAvro(codec, 7, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nan := event("fraud-scorer", time.Second, schemas.Feature{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: math.NaN()}})
	inf := event("fraud-scorer", time.Second, schemas.Feature{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: math.Inf(-1)}})
	far := event("fraud-scorer", 0)
	far.Timestamp = time.UnixMilli(math.MaxInt64 - 1000).UTC()
	var wide []schemas.Feature
	for i := 0; i < 100_000; i++ {
		wide = append(wide, schemas.Feature{Name: fmt.Sprintf("f%d", i), Value: schemas.Value{Kind: schemas.Number, Num: 1}})
	}
	var fewWide []schemas.Feature // within max_event_bytes, over max_features
	for i := 0; i < 1500; i++ {
		fewWide = append(fewWide, schemas.Feature{Name: fmt.Sprintf("f%d", i), Value: schemas.Value{Kind: schemas.Number, Num: 1}})
	}
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	valid := avroOf(event("fraud-scorer", 2*time.Second))
	bad := []struct {
		value []byte
		class string
	}{
		{random, consumers.ClassDecode},
		{schemas.AppendConfluent(nil, 999, []byte{2, 'x'}), consumers.ClassDecode},                                         // unknown schema id
		{valid[:len(valid)-3], consumers.ClassDecode},                                                                      // truncated Avro
		{[]byte(`{"model":"fraud-scorer","timestamp":"2026-03-04T10:00:01Z","latency_ms":"slow"}`), consumers.ClassDecode}, // wrong type
		{[]byte(`{"model":"fraud-scorer","timestamp":"2026-03-04T10:00:01Z","features":{"amount":NaN}}`), consumers.ClassDecode},
		{avroOf(nan), consumers.ClassInvalid},
		{avroOf(inf), consumers.ClassInvalid},
		{jsonOf(t, event("", time.Second)), consumers.ClassInvalid},                         // empty model
		{jsonOf(t, event("fraud-scorer", 73*365*24*time.Hour)), consumers.ClassInvalid},     // 2099
		{bytes.Repeat([]byte("x"), 10<<20), consumers.ClassInvalid},                         // 10 MB
		{jsonOf(t, event("fraud-scorer", time.Second, wide...)), consumers.ClassInvalid},    // 100k features
		{jsonOf(t, event("fraud-scorer", time.Second, fewWide...)), consumers.ClassInvalid}, // 1.5k features
		{jsonOf(t, event("model-4", time.Second)), consumers.ClassLimit},                    // a fourth series
		{[]byte(`{"model":"fraud-scorer","timestamp":"2026-03-04T10:00:01Z","features":{"amount":1,"amount":2}}`), consumers.ClassInvalid},
		{[]byte(`{"model":"fraud-scorer","timestamp":"2026-03-04T10:00:01Z","features":{"amount":1},"features":{"amount":2}}`), consumers.ClassInvalid},
		{[]byte(`{"model":"fraud-scorer","timestamp":"1500-03-04T10:00:01Z"}`), consumers.ClassInvalid},
		{avroOf(far), consumers.ClassInvalid}, // the window would end before it starts
		// a feature named as the model's confidence (processors.IsOutputFeature)
		{jsonOf(t, event("fraud-scorer", time.Second, schemas.Feature{Name: "__confidence__", Value: schemas.Value{Kind: schemas.Number, Num: 42}})), consumers.ClassInvalid},
	}
	// Valid events before, between and after, on the one partition; one of them carries a
	// categorical feature with a new value each time (bounded: top values plus other).
	var msgs []kafka.Message
	goodN := 0
	good := func(model string) {
		e := event(model, time.Duration(goodN)*100*time.Millisecond,
			schemas.Feature{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: float64(goodN)}},
			schemas.Feature{Name: "user", Value: schemas.Value{Kind: schemas.String, Str: fmt.Sprintf("user-%d", goodN)}})
		e.EventID = fmt.Sprintf("good-%d", goodN)
		goodN++
		msgs = append(msgs, kafka.Message{Value: jsonOf(t, e)})
	}
	for _, model := range []string{"fraud-scorer", "stable-model", "third"} {
		good(model)
	}
	for _, b := range bad {
		msgs = append(msgs, kafka.Message{Value: b.value})
		for i := 0; i < 30; i++ {
			good("fraud-scorer")
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("every record", func(s pipeline.Stats) bool { return s.Records == uint64(len(msgs)) && s.WindowsClosed == 3 })
	stats := stop()
	if stats.DeadLettered != uint64(len(bad)) || stats.Added != uint64(goodN) {
		t.Fatalf("stats %+v: want %d dead-lettered and %d added", stats, len(bad), goodN)
	}
	dead := readAll(t, h.brokers, h.dlq, len(bad))
	var got, want []string
	for i, m := range dead {
		if testenv.Header(m, consumers.HeaderSourceTopic) != h.predictions || testenv.Header(m, consumers.HeaderSourcePartition) != "0" ||
			testenv.Header(m, consumers.HeaderSourceOffset) == "" || testenv.Header(m, consumers.HeaderErrorMessage) == "" {
			t.Errorf("dead letter %d without provenance: %v", i, m.Headers)
		}
		if !bytes.Equal(m.Value, bad[i].value) {
			t.Errorf("dead letter %d: value of %d bytes differs from the %d bytes sent", i, len(m.Value), len(bad[i].value))
		}
		got = append(got, testenv.Header(m, consumers.HeaderErrorClass))
		want = append(want, bad[i].class)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("classes %v, want %v", got, want)
	}
	// The limits name their setting.
	for i, setting := range map[int]string{9: "limits.max_event_bytes", 10: "limits.max_event_bytes", 11: "limits.max_features", 12: "limits.max_series"} {
		if msg := testenv.Header(dead[i], consumers.HeaderErrorMessage); !strings.Contains(msg, setting) {
			t.Errorf("dead letter %d says %q; want it to name %s", i, msg, setting)
		}
	}
	var users, other uint64
	q := "SELECT length(mapKeys(categories)), categories['" + processors.OtherCategory + "'] FROM " + h.store.Database() + ".window_feature_stats FINAL WHERE model = 'fraud-scorer' AND feature = 'user' ORDER BY window_start LIMIT 1"
	if err := h.store.Conn().QueryRow(context.Background(), q).Scan(&users, &other); err != nil {
		t.Fatal(err)
	}
	if users > 201 || other == 0 {
		t.Errorf("a user id per event kept %d categories (%d in other); want at most 200 plus other", users, other)
	}
}
