package simulate

import (
	"context"
	"fmt"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/schemas"
)

// Topics name where each kind of record goes.
type Topics struct {
	Predictions, Labels, Pipeline string
}

// Encoder turns records into Kafka messages in JSON or Confluent Avro.
type Encoder struct {
	Avro     *goavro.Codec // nil for JSON
	SchemaID uint32
}

// Encode returns the message for r (its topic set) and whether it has one.
func (e Encoder) Encode(r Record, t Topics) (kafka.Message, error) {
	var (
		body  []byte
		err   error
		topic string
	)
	switch r.Kind {
	case Prediction:
		topic = t.Predictions
		if e.Avro != nil {
			body, err = schemas.EncodePredictionAvro(e.Avro, e.SchemaID, r.Prediction)
		} else {
			body, err = schemas.MarshalPredictionJSON(r.Prediction)
		}
	case Label:
		topic = t.Labels
		body, err = schemas.MarshalLabelJSON(r.Label)
	case Pipeline:
		topic = t.Pipeline
		body, err = schemas.MarshalPipelineJSON(r.Pipeline)
	}
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode simulated record: %w", err)
	}
	return kafka.Message{Topic: topic, Key: []byte(r.Key), Value: body}, nil
}

// Producer writes messages (a kafka.Writer without a fixed topic).
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Run emits g's records as simulated time passes on clock, checking every tick, until
// ctx ends or maxWindows windows have been emitted (0: no limit). now is the wall clock.
// It returns the number of records produced.
func Run(ctx context.Context, g *Generator, clock Clock, now func() time.Time, tick time.Duration, maxWindows int, enc Encoder, topics Topics, p Producer) (int, error) {
	var buf []Record
	produced, windows := 0, 0
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		sim := clock.At(now())
		for {
			if len(buf) == 0 {
				if maxWindows > 0 && windows >= maxWindows {
					return produced, nil
				}
				buf = g.NextWindow()
				windows++
			}
			n := 0
			for n < len(buf) && !buf[n].Time.After(sim) {
				n++
			}
			if n == 0 {
				break
			}
			msgs := make([]kafka.Message, 0, n)
			for _, r := range buf[:n] {
				m, err := enc.Encode(r, topics)
				if err != nil {
					return produced, err
				}
				if m.Topic != "" {
					msgs = append(msgs, m)
				}
			}
			if err := p.WriteMessages(ctx, msgs...); err != nil {
				return produced, fmt.Errorf("produce simulated events: %w", err)
			}
			produced += len(msgs)
			buf = buf[n:]
			if len(buf) > 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return produced, ctx.Err()
		case <-t.C:
		}
	}
}
