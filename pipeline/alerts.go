package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

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

// UnencodableError is an alert that does not encode: publishing it again fails again.
type UnencodableError struct {
	Alert *schemas.AlertEvent
	Err   error
}

func (e *UnencodableError) Error() string {
	return fmt.Sprintf("encode alert %s: %v", e.Alert.AlertID, e.Err)
}

func (e *UnencodableError) Unwrap() error { return e.Err }

// finiteAlert replaces a value or threshold that is not a number (NaN, ±Inf: JSON has no
// such number, and ClickHouse stores 0) with 0 and names it in the details
// (non_finite_value, non_finite_threshold), so that the alert encodes and the stored and
// the published alert agree.
func finiteAlert(a *schemas.AlertEvent) {
	for _, f := range []struct {
		name string
		v    *float64
	}{{"non_finite_value", &a.Value}, {"non_finite_threshold", &a.Threshold}} {
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) {
			if a.Details == nil {
				a.Details = map[string]string{}
			}
			a.Details[f.name] = strconv.FormatFloat(*f.v, 'g', -1, 64)
			*f.v = 0
		}
	}
}

// Publish writes alerts and waits for the broker. An alert that does not encode fails the
// call with an *UnencodableError before anything is written.
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
			return &UnencodableError{Alert: a, Err: err}
		}
		msgs = append(msgs, kafka.Message{Key: []byte(a.Fingerprint), Value: body,
			Headers: []kafka.Header{{Key: "driftd.alert.state", Value: []byte(a.State)}, {Key: "driftd.alert.kind", Value: []byte(a.Kind)}}})
	}
	return p.w.Write(ctx, msgs...)
}
