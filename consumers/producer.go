package consumers

import (
	"context"
	"errors"
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
		// A record as large as the consumer may fetch must fit (the dead-letter topic gets
		// whatever arrived); kafka-go's default refuses anything over 1 MiB.
		BatchBytes: int64(max(o.MaxBytes, 16<<20) + 1<<20),
		Transport:  &kafka.Transport{TLS: o.TLS, SASL: o.SASL, DialTimeout: 10 * time.Second},
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
	// HeaderTruncatedFrom is set when the dead-letter topic refused the record's size:
	// the value kept is its first TruncatedValueBytes bytes, and the header holds the
	// original length (the whole record stays at its source offset until retention).
	HeaderTruncatedFrom = "driftd.value.truncated_from"
)

// TruncatedValueBytes is how much of a value too large for the dead-letter topic is kept.
const TruncatedValueBytes = 64 << 10

// Error classes of dead-lettered records.
const (
	ClassDecode     = "decode"      // not JSON or Avro, unknown schema, truncated
	ClassInvalid    = "invalid"     // decoded, but breaks the event contract
	ClassWriteFatal = "write_fatal" // a window result ClickHouse refused for good
	ClassLimit      = "limit"       // valid, but beyond a configured limit (limits.max_series)
)

// DeadLetter sets records aside on the dead-letter topic with provenance headers.
type DeadLetter struct{ w *Writer }

// NewDeadLetter returns a dead-letter writer.
func NewDeadLetter(o Options, topic string) *DeadLetter { return &DeadLetter{w: NewWriter(o, topic)} }

// Send writes rec's key and value unchanged, with the reason in headers. at is the time
// of failure (passed in, for deterministic tests).
func (d *DeadLetter) Send(ctx context.Context, rec Record, class string, reason error, at time.Time) error {
	text := reason.Error()
	if len(text) > 4096 {
		text = text[:4096]
	}
	headers := append([]kafka.Header{
		{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(rec.Partition))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		{Key: HeaderErrorClass, Value: []byte(class)},
		{Key: HeaderErrorMessage, Value: []byte(text)},
		{Key: HeaderFailedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	}, rec.Headers...)
	msg := kafka.Message{Key: rec.Key, Value: rec.Value, Headers: headers}
	err := d.w.Write(ctx, msg)
	if tooLarge(err) && len(rec.Value) > TruncatedValueBytes {
		// Retrying the same size would block the partition for good.
		msg.Value = rec.Value[:TruncatedValueBytes]
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderTruncatedFrom, Value: []byte(strconv.Itoa(len(rec.Value)))})
		err = d.w.Write(ctx, msg)
	}
	return err
}

// tooLarge reports whether err says a record was over a size limit (the writer's or the
// broker's).
func tooLarge(err error) bool {
	if err == nil {
		return false
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if tooLarge(e) {
				return true
			}
		}
	}
	return errors.Is(err, kafka.MessageSizeTooLarge)
}

// Close closes the writer.
func (d *DeadLetter) Close() error { return d.w.Close() }
