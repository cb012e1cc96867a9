package schemas

import (
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

func BenchmarkDecode20Features(b *testing.B) {
	reg, _ := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	codec, _ := reg.Codec(context.Background(), 1)
	js, _ := MarshalPredictionJSON(event20(1))
	av, _ := EncodePredictionAvro(codec, 1, event20(1))
	for _, c := range []struct {
		name string
		data []byte
	}{{"json", js}, {"avro", av}} {
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
