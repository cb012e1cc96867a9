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

// BenchmarkLiveBatchesDuringTheStartUpHold is live traffic in the start-up grace's time,
// with the hold of partitions read behind on (HoldUnseen), and after it (off): 1,000
// models over 16 partitions, fetched in batches of 10 (each record but a batch's last
// read behind, so the flag flips with every batch). Settling every model on each flip
// cost 36 µs a record (review of session 17); they are settled lazily, before Ready.
func BenchmarkLiveBatchesDuringTheStartUpHold(b *testing.B) {
	for _, hold := range []bool{true, false} {
		b.Run(fmt.Sprintf("hold=%v", hold), func(b *testing.B) { benchLiveBatches(b, hold) })
	}
}

func benchLiveBatches(b *testing.B, hold bool) {
	const models, partitions, batch = 1000, 16, 10
	p := processors.NewProcessor(func(string) processors.WindowSpec {
		return processors.WindowSpec{Size: time.Minute, Lateness: 10 * time.Second}
	}, processors.Limits{})
	p.HoldUnseen(hold)
	events := make([]*schemas.PredictionEvent, models)
	for m := range events {
		events[m] = &schemas.PredictionEvent{Model: fmt.Sprintf("m%04d", m), ModelVersion: "1", Deployment: "primary", Status: "ok",
			Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: 1}}}}
	}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	offsets := make([]int64, partitions)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		part := (i / batch) % partitions
		m := (i*7919 + part) % models
		e := events[m]
		e.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		tp := processors.TopicPartition{Topic: "in", Partition: part}
		p.Read(tp, i%batch != batch-1)
		p.Add(e, processors.Source{Topic: "in", Partition: part, Offset: offsets[part]}, now)
		offsets[part]++
		i++
	}
}
