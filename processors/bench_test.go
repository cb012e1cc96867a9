package processors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

func events20(n int) []*schemas.PredictionEvent {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	out := make([]*schemas.PredictionEvent, n)
	for i := range out {
		e := &schemas.PredictionEvent{EventID: fmt.Sprintf("evt-%d", i), Model: "fraud-scorer", ModelVersion: "3.2.0",
			Deployment: "primary", Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Status: "ok",
			LatencyMs: 5 + rng.ExpFloat64()*10, Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
		for f := 0; f < 14; f++ {
			e.Features = append(e.Features, schemas.Feature{Name: fmt.Sprintf("num_%02d", f), Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()*float64(f+1) + 100}})
		}
		for f := 0; f < 4; f++ {
			e.Features = append(e.Features, schemas.Feature{Name: fmt.Sprintf("cat_%02d", f), Value: schemas.Value{Kind: schemas.String, Str: fmt.Sprintf("c%d", rng.IntN(12))}})
		}
		for f := 0; f < 2; f++ {
			e.Features = append(e.Features, schemas.Feature{Name: fmt.Sprintf("flag_%02d", f), Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(2))}})
		}
		out[i] = e
	}
	return out
}

// layoutFor builds a reference from the events, so windows count over its bins as in
// production.
func layoutFor(evs []*schemas.PredictionEvent) *processors.Layout {
	s := detectors.NewSample()
	for _, e := range evs {
		s.AddEvent(e)
	}
	return s.Build("fraud-scorer", "3.2.0", detectors.SourceFirstWindows, 1, time.Time{}).Layout()
}

func newProc(l *processors.Layout) *processors.Processor {
	p := processors.NewProcessor(func(string) processors.WindowSpec {
		return processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
	}, processors.Limits{})
	p.SetLayout("fraud-scorer", "3.2.0", l)
	return p
}

// BenchmarkWindowUpdate20Features measures one event's aggregation into its window:
// status, latency sketch, and 20 features binned against the reference.
func BenchmarkWindowUpdate20Features(b *testing.B) {
	evs := events20(4096)
	p := newProc(layoutFor(evs))
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Add(evs[i%len(evs)], processors.Source{Topic: "in", Offset: int64(i)}, now)
		i++
	}
}

// BenchmarkWindowUpdateWithScores is BenchmarkWindowUpdate20Features for a classifier
// that sends three class scores: their confidence and entropy are aggregated too.
func BenchmarkWindowUpdateWithScores(b *testing.B) {
	evs := events20(4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, e := range evs {
		a, c := rng.Float64(), rng.Float64()
		sum := a + c + 1
		e.Scores = map[string]float64{"approve": a / sum, "review": c / sum, "decline": 1 / sum}
	}
	p := newProc(layoutFor(evs))
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Add(evs[i%len(evs)], processors.Source{Topic: "in", Offset: int64(i)}, now)
		i++
	}
}

// BenchmarkDecodeAndUpdate20Features is the per-event hot path: decode a record and
// aggregate it. events/s per core = 1e9 / ns/op (the benchmark runs on one goroutine).
func BenchmarkDecodeAndUpdate20Features(b *testing.B) {
	evs := events20(4096)
	layout := layoutFor(evs)
	reg, _ := schemas.NewRegistry("", map[uint32]string{1: schemas.SchemaPrediction}, nil)
	codec, _ := reg.Codec(context.Background(), 1)
	for _, format := range []string{"json", "avro"} {
		recs := make([][]byte, len(evs))
		for i, e := range evs {
			var err error
			if format == "json" {
				recs[i], err = schemas.MarshalPredictionJSON(e)
			} else {
				recs[i], err = schemas.EncodePredictionAvro(codec, 1, e)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Run(format, func(b *testing.B) {
			p := newProc(layout)
			d := schemas.Decoder{Format: schemas.FormatAuto, Registry: reg}
			var e schemas.PredictionEvent
			ctx, now := context.Background(), time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := d.Prediction(ctx, recs[i%len(recs)], &e); err != nil {
					b.Fatal(err)
				}
				p.Add(&e, processors.Source{Topic: "in", Offset: int64(i)}, now)
				i++
			}
		})
	}
}
