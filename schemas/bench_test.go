package schemas

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// Event20 returns a prediction with 20 features (14 numeric, 4 categorical, 2 boolean),
// the benchmark's and docs/performance.md's reference event.
func event20(i int) *PredictionEvent {
	e := &PredictionEvent{EventID: fmt.Sprintf("evt-%d", i), RequestID: fmt.Sprintf("req-%d", i), Model: "fraud-scorer",
		ModelVersion: "3.2.0", Deployment: "primary", Timestamp: time.UnixMilli(1772618400000 + int64(i)).UTC(),
		Prediction: Value{Kind: Number, Num: 0.42}, LatencyMs: 12.5, Status: "ok"}
	for f := 0; f < 14; f++ {
		e.Features = append(e.Features, Feature{Name: fmt.Sprintf("num_%02d", f), Value: Value{Kind: Number, Num: float64(i%1000) * 1.5 / float64(f+1)}})
	}
	for f := 0; f < 4; f++ {
		e.Features = append(e.Features, Feature{Name: fmt.Sprintf("cat_%02d", f), Value: Value{Kind: String, Str: fmt.Sprintf("c%d", (i+f)%7)}})
	}
	for f := 0; f < 2; f++ {
		e.Features = append(e.Features, Feature{Name: fmt.Sprintf("flag_%02d", f), Value: Value{Kind: Bool, Num: float64((i + f) % 2)}})
	}
	return e
}

// event6 returns a prediction of driftd bench's default shape (--features 6, the
// simulator's stream): amount, country, age, is_returning, session_seconds, device.
func event6(i int) *PredictionEvent {
	e := event20(i)
	e.Features = []Feature{
		{Name: "amount", Value: Value{Kind: Number, Num: float64(i%5000) / 100}},
		{Name: "country", Value: Value{Kind: String, Str: []string{"DE", "FR", "US", "GB"}[i%4]}},
		{Name: "age", Value: Value{Kind: Number, Num: float64(18 + i%60)}},
		{Name: "is_returning", Value: Value{Kind: Bool, Num: float64(i % 2)}},
		{Name: "session_seconds", Value: Value{Kind: Number, Num: 37.25 + float64(i%100)}},
		{Name: "device", Value: Value{Kind: String, Str: []string{"web", "ios", "android"}[i%3]}},
	}
	return e
}

func BenchmarkDecode20Features(b *testing.B) { benchmarkDecode(b, event20(1)) }

func BenchmarkDecode6Features(b *testing.B) { benchmarkDecode(b, event6(1)) }

// benchmarkDecode decodes one record of e, as JSON and as Confluent Avro, into one reused
// event, as the consumer does.
func benchmarkDecode(b *testing.B, e *PredictionEvent) {
	reg, _ := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	codec, _ := reg.Codec(context.Background(), 1)
	js, _ := MarshalPredictionJSON(e)
	av, _ := EncodePredictionAvro(codec, 1, e)
	// json-fallback: the same record with status written with an escape, which the fast
	// path leaves to encoding/json; status is near the end of the record (json.Marshal
	// sorts keys), so nearly all of the fast path's pass is spent before it gives up.
	fallback := bytes.Replace(js, []byte(`"status":"ok"`), []byte(`"status":"o\u006b"`), 1)
	var probe PredictionEvent
	if bytes.Equal(fallback, js) || probe.scanPrediction(fallback) {
		b.Fatal("the fallback record does not fall back")
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"json", js}, {"json-fallback", fallback}, {"avro", av}} {
		b.Run(c.name, func(b *testing.B) {
			d := Decoder{Format: FormatAuto, Registry: reg}
			var e PredictionEvent
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if err := d.Prediction(ctx, c.data, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
