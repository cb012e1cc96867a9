package consumers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Writer produces records synchronously (acks from all in-sync replicas).
type Writer struct {
	w     *kafka.Writer
	topic string
}

// NewWriter returns a writer for one topic.
func NewWriter(o Options, topic string) *Writer {
	return &Writer{topic: topic, w: &kafka.Writer{
		Addr:                   kafka.TCP(o.Brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		AllowAutoTopicCreation: true,
		Transport:              &kafka.Transport{TLS: o.TLS, SASL: o.SASL, DialTimeout: 10 * time.Second},
	}}
}

// Write produces records and waits for the broker's acknowledgement.
func (w *Writer) Write(ctx context.Context, msgs ...kafka.Message) error {
	if err := w.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce to %s: %w", w.topic, err)
	}
	return nil
}

// Close flushes and closes.
func (w *Writer) Close() error { return w.w.Close() }

// Dead-letter headers: where a record came from and why it was set aside.
const (
	HeaderSourceTopic     = "driftd.source.topic"
	HeaderSourcePartition = "driftd.source.partition"
	HeaderSourceOffset    = "driftd.source.offset"
	HeaderErrorClass      = "driftd.error.class"
	HeaderErrorMessage    = "driftd.error.message"
	HeaderFailedAt        = "driftd.failed_at"
)

// Error classes of dead-lettered records.
const (
	ClassDecode     = "decode"      // not JSON or Avro, unknown schema, truncated
	ClassInvalid    = "invalid"     // decoded, but breaks the event contract
	ClassWriteFatal = "write_fatal" // a window result ClickHouse refused for good
)

// DeadLetter sets records aside on the dead-letter topic with provenance headers.
type DeadLetter struct{ w *Writer }

// NewDeadLetter returns a dead-letter writer.
func NewDeadLetter(o Options, topic string) *DeadLetter { return &DeadLetter{w: NewWriter(o, topic)} }

// Send writes rec's key and value unchanged, with the reason in headers. at is the time
// of failure (passed in, for deterministic tests).
func (d *DeadLetter) Send(ctx context.Context, rec Record, class string, reason error, at time.Time) error {
	msg := reason.Error()
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	headers := append([]kafka.Header{
		{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(rec.Partition))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		{Key: HeaderErrorClass, Value: []byte(class)},
		{Key: HeaderErrorMessage, Value: []byte(msg)},
		{Key: HeaderFailedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	}, rec.Headers...)
	return d.w.Write(ctx, kafka.Message{Key: rec.Key, Value: rec.Value, Headers: headers})
}

// Close closes the writer.
func (d *DeadLetter) Close() error { return d.w.Close() }
