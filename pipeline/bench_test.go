package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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
