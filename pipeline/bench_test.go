package pipeline_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
)

// BenchmarkEndToEnd measures one driftd member on real Kafka and the embedded ClickHouse
// engine: records fetched from three partitions, decoded (JSON, or Confluent Avro with
// the bundled schema), windowed, judged, written and committed. b.N is the number of
// records; the producing is not timed. Everything (broker, engine, benchmark) shares the
// machine's cores.
func BenchmarkEndToEnd(b *testing.B) {
	for _, format := range []string{"json", "avro"} {
		b.Run(format, func(b *testing.B) {
			h := newHarness(b)
			reg, err := schemas.NewRegistry("", map[uint32]string{1: schemas.SchemaPrediction}, nil)
			if err != nil {
				b.Fatal(err)
			}
			enc := simulate.Encoder{}
			if format == "avro" {
				if enc.Avro, err = reg.Codec(context.Background(), 1); err != nil {
					b.Fatal(err)
				}
				enc.SchemaID = 1
			}
			h.tweak = func(s *pipeline.Settings) {
				s.Decoder = schemas.Decoder{Format: schemas.FormatAuto, Registry: reg}
				s.StartupGrace, s.IdleClose = 100*time.Millisecond, time.Second
			}
			g, err := simulate.New(simulate.Options{Seed: 1, Start: t0, Window: time.Minute, PerWindow: 1000,
				Scenarios: []string{"stationary", "abrupt-shift", "gradual-drift", "canary-latency"}})
			if err != nil {
				b.Fatal(err)
			}
			var msgs []kafka.Message
			for len(msgs) < b.N {
				for _, r := range g.NextWindow() {
					if r.Kind != simulate.Prediction || len(msgs) >= b.N {
						continue
					}
					m, err := enc.Encode(r, simulate.Topics{Predictions: h.predictions})
					if err != nil {
						b.Fatal(err)
					}
					m.Topic = ""
					msgs = append(msgs, m)
				}
			}
			h.produce(b, msgs...)
			b.ResetTimer()
			began := time.Now()
			waitFor, stop := h.start(b)
			waitFor("every record", func(s pipeline.Stats) bool { return s.Records >= uint64(b.N) })
			elapsed := time.Since(began)
			b.StopTimer()
			stats := stop()
			if stats.DeadLettered != 0 {
				b.Fatalf("%d records dead-lettered", stats.DeadLettered)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(stats.WindowsClosed), "windows")
		})
	}
}

// BenchmarkPipelineInMemory measures the pipeline alone, without Kafka or ClickHouse: a
// backlog of an hour of eight models (JSON predictions with 5 features, about 32 events/s
// each) and two upstream pipelines, already encoded, read at full speed on three
// partitions with the default settings, every window judged and kept in memory. One op
// is the whole backlog; events/s and allocs/event are per record.
func BenchmarkPipelineInMemory(b *testing.B) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	o := simulate.StreamOptions{Seed: 7, Start: start, Duration: time.Hour,
		Pipelines: []simulate.StreamPipeline{
			{Name: "orders", Stages: []string{"extract", "join", "build"}, Every: 5 * time.Minute, Models: []string{"m0"}},
			{Name: "users", Stages: []string{"extract", "load"}, Every: time.Minute, Change: simulate.ChangeFailingStage, ChangeAt: 40 * time.Minute},
		}}
	changes := []string{simulate.ChangeNone, simulate.ChangeShift, simulate.ChangeLatency, simulate.ChangeNewCategory}
	for i := range 8 {
		o.Models = append(o.Models, simulate.StreamModel{Name: fmt.Sprintf("m%d", i), Rate: 32, Change: changes[i%len(changes)], ChangeAt: 30 * time.Minute})
	}
	const partitions = 3
	recs, err := replay.Record(o, partitions)
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	tail := 2*time.Duration(cfg.Windows.IdleClose) + time.Duration(cfg.Pipelines.Window)
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	mallocs := mem.Mallocs
	b.ReportAllocs()
	for b.Loop() {
		clock := &replay.Clock{}
		src, err := replay.NewRecordedSource(o, recs, replay.Backlog, partitions, tail, clock)
		if err != nil {
			b.Fatal(err)
		}
		r, store, sink := runInMemory(b, cfg, src, clock.Now, func(stop func()) { src.Stop = stop }, nil, 10*time.Minute)
		if len(sink.DeadLetters) > 0 || r.Stats().Records != uint64(len(recs)) || store.Verdicts == 0 {
			b.Fatalf("%d records of %d read, %d windows judged, dead letters: %v", r.Stats().Records, len(recs), store.Verdicts, sink.DeadLetters[:min(3, len(sink.DeadLetters))])
		}
	}
	runtime.ReadMemStats(&mem)
	events := float64(len(recs)) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mem.Mallocs-mallocs)/events, "allocs/event")
}
