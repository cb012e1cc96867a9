package pipeline

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/linkedin/goavro/v2"
	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/schemas"
)

// AlertPublisher puts alerts on the alert topic, keyed by fingerprint so that one
// condition's firing and resolved events stay in order on one partition.
type AlertPublisher struct {
	w     *consumers.Writer
	codec *goavro.Codec // nil for JSON
	id    uint32
}

// NewAlertPublisher returns a publisher; for Avro, codec and schema id frame each alert.
func NewAlertPublisher(w *consumers.Writer, codec *goavro.Codec, schemaID uint32) *AlertPublisher {
	return &AlertPublisher{w: w, codec: codec, id: schemaID}
}

// Publish writes alerts and waits for the broker.
func (p *AlertPublisher) Publish(ctx context.Context, alerts []*schemas.AlertEvent) error {
	msgs := make([]kafka.Message, 0, len(alerts))
	for _, a := range alerts {
		var body []byte
		var err error
		if p.codec != nil {
			body, err = schemas.EncodeAlertAvro(p.codec, p.id, a)
		} else {
			body, err = json.Marshal(a)
		}
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.AlertID, err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(a.Fingerprint), Value: body,
			Headers: []kafka.Header{{Key: "driftd.alert.state", Value: []byte(a.State)}, {Key: "driftd.alert.kind", Value: []byte(a.Kind)}}})
	}
	return p.w.Write(ctx, msgs...)
}
