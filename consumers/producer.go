package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/internal/retry"
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
	// HeaderSourceLastOffset is the last offset of a range of records (window results
	// ClickHouse refused: their records run from HeaderSourceOffset to it).
	HeaderSourceLastOffset = "driftd.source.last_offset"
	HeaderErrorClass       = "driftd.error.class"
	HeaderErrorMessage     = "driftd.error.message"
	HeaderFailedAt         = "driftd.failed_at"
	// HeaderTruncatedFrom is set when the dead-letter topic refused the record's size:
	// the value kept is its first TruncatedValueBytes bytes, and the header holds the
	// original length (the whole record stays at its source offset until retention).
	HeaderTruncatedFrom = "driftd.value.truncated_from"
	// HeaderKeyTruncatedFrom is the original length of a key cut to TruncatedKeyBytes.
	HeaderKeyTruncatedFrom = "driftd.key.truncated_from"
	// HeaderHeadersTruncatedFrom is the original number of the record's own headers when
	// some were left out to keep them within TruncatedHeaderBytes.
	HeaderHeadersTruncatedFrom = "driftd.headers.truncated_from"
)

// What is kept of a record too large for the dead-letter topic: the first
// TruncatedValueBytes of its value and TruncatedKeyBytes of its key, and its own headers,
// in order, as long as they add up to TruncatedHeaderBytes (a larger one is left out).
// Together under 100 KiB, which any broker accepts (Kafka's default limit is 1 MiB).
const (
	TruncatedValueBytes  = 64 << 10
	TruncatedKeyBytes    = 1 << 10
	TruncatedHeaderBytes = 16 << 10
)

// Error classes of dead-lettered records.
const (
	ClassDecode     = "decode"      // not JSON or Avro, unknown schema, truncated
	ClassInvalid    = "invalid"     // decoded, but breaks the event contract
	ClassWriteFatal = "write_fatal" // window results (or an alert) ClickHouse refused for good
	ClassLimit      = "limit"       // valid, but beyond a configured limit (limits.max_series)
	// ClassAlertRefused is an alert stored in ClickHouse that cannot be published: it does
	// not encode, or the alert topic refuses it for good.
	ClassAlertRefused = "alert_refused"
)

// DeadLetter sets records aside on the dead-letter topic with provenance headers.
type DeadLetter struct{ w *Writer }

// NewDeadLetter returns a dead-letter writer.
func NewDeadLetter(o Options, topic string) *DeadLetter { return &DeadLetter{w: NewWriter(o, topic)} }

// Send writes rec's key and value unchanged, with the reason in headers. at is the time
// of failure (passed in, for deterministic tests). A record the topic refuses as too
// large is written again cut down (see TruncatedValueBytes); one refused even so, or for
// what it is, returns an error that ClassifyWrite calls fatal.
func (d *DeadLetter) Send(ctx context.Context, rec Record, class string, reason error, at time.Time) error {
	text := reason.Error()
	if len(text) > 4096 {
		text = text[:4096]
	}
	provenance := []kafka.Header{
		{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(rec.Partition))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		{Key: HeaderErrorClass, Value: []byte(class)},
		{Key: HeaderErrorMessage, Value: []byte(text)},
		{Key: HeaderFailedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	}
	msg := kafka.Message{Key: rec.Key, Value: rec.Value, Headers: append(provenance[:len(provenance):len(provenance)], rec.Headers...)}
	err := d.w.Write(ctx, msg)
	if tooLarge(err) {
		// Retrying the same size would block the partition for good.
		err = d.w.Write(ctx, cutDown(rec, provenance))
	}
	return err
}

// cutDown is rec as the dead-letter topic keeps a record too large for it.
func cutDown(rec Record, provenance []kafka.Header) kafka.Message {
	msg := kafka.Message{Key: rec.Key, Value: rec.Value, Headers: provenance}
	if len(rec.Value) > TruncatedValueBytes {
		msg.Value = rec.Value[:TruncatedValueBytes]
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderTruncatedFrom, Value: []byte(strconv.Itoa(len(rec.Value)))})
	}
	if len(rec.Key) > TruncatedKeyBytes {
		msg.Key = rec.Key[:TruncatedKeyBytes]
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderKeyTruncatedFrom, Value: []byte(strconv.Itoa(len(rec.Key)))})
	}
	budget, kept := TruncatedHeaderBytes, 0
	var own []kafka.Header
	for _, h := range rec.Headers {
		if n := len(h.Key) + len(h.Value); n <= budget {
			own = append(own, h)
			budget -= n
			kept++
		}
	}
	if kept < len(rec.Headers) {
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderHeadersTruncatedFrom, Value: []byte(strconv.Itoa(len(rec.Headers)))})
	}
	msg.Headers = append(msg.Headers, own...)
	return msg
}

// ClassifyWrite is the one place that decides whether a produce error is retried. A
// record the broker refuses for what it is (too large, invalid, a topic name that cannot
// exist) is refused again: fatal. Anything else — brokers down, leaders moving, timeouts,
// authorization, which an operator can fix — is retried.
func ClassifyWrite(err error) retry.Class {
	if err == nil {
		return 0
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && ClassifyWrite(e) == retry.Fatal {
				return retry.Fatal
			}
		}
		return retry.Retryable
	}
	for _, code := range []kafka.Error{kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize, kafka.InvalidTopic,
		kafka.RecordListTooLarge, kafka.InvalidTimestamp, kafka.UnsupportedForMessageFormat, kafka.InvalidRecord} {
		if errors.Is(err, code) {
			return retry.Fatal
		}
	}
	return retry.Retryable
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
