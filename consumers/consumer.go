// Package consumers is driftd's Kafka edge: a consumer-group reader with explicit,
// caller-driven commits, the dead-letter writer, and the alert publisher.
package consumers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Record is one Kafka record as driftd sees it.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
	Time      time.Time
	// HighWaterMark is the partition's end offset when the record was fetched: the
	// partition's lag is HighWaterMark − Offset − 1.
	HighWaterMark int64
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// Options configure the Kafka connection.
type Options struct {
	Brokers []string
	GroupID string
	Topics  []string
	TLS     *tls.Config
	// SASL authenticates to the brokers (nil: none); see SASLMechanism.
	SASL sasl.Mechanism
	// MaxBytes bounds one fetch; records larger than this cannot be read (default 16 MiB).
	MaxBytes int
}

// Consumer reads a set of topics in a consumer group. It never commits by itself: the
// caller commits an offset only once everything derived from the records before it is
// durably written.
type Consumer struct {
	r   *kafka.Reader
	log *slog.Logger

	mu        sync.Mutex
	committed map[TopicPartition]int64
}

func dialer(o Options) *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: o.TLS, SASLMechanism: o.SASL}
}

// SASLMechanism returns the mechanism for a name: "" (none), PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512.
func SASLMechanism(name, username, password string) (sasl.Mechanism, error) {
	switch strings.ToUpper(name) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: username, Password: password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, username, password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, username, password)
	}
	return nil, fmt.Errorf("SASL mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", name)
}

// NewConsumer joins the group. Offsets start at the earliest record for a new group, so
// nothing produced before driftd first ran is skipped.
func NewConsumer(o Options, log *slog.Logger) (*Consumer, error) {
	if len(o.Brokers) == 0 || o.GroupID == "" || len(o.Topics) == 0 {
		return nil, errors.New("consumer: brokers, group id and topics are required")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        o.Brokers,
		GroupID:        o.GroupID,
		GroupTopics:    o.Topics,
		Dialer:         dialer(o),
		MinBytes:       1,
		MaxBytes:       o.MaxBytes,
		MaxWait:        250 * time.Millisecond,
		StartOffset:    kafka.FirstOffset,
		CommitInterval: 0, // commits are explicit (Commit), never automatic
		// A record that takes the partition's fetch past the limit is returned alone.
		ReadBackoffMin:        50 * time.Millisecond,
		ReadBackoffMax:        time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { log.Warn("kafka reader: " + fmt.Sprintf(msg, args...)) }),
	})
	return &Consumer{r: r, log: log, committed: map[TopicPartition]int64{}}, nil
}

// Fetch returns the next record; it blocks until one arrives or ctx ends.
func (c *Consumer) Fetch(ctx context.Context) (Record, error) {
	m, err := c.r.FetchMessage(ctx)
	if err != nil {
		return Record{}, err
	}
	return Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers,
		Time: m.Time, HighWaterMark: m.HighWaterMark}, nil
}

// Commit commits, per partition, the offset of the next record to read. Offsets at or
// below what was already committed are skipped, so a commit never rewinds.
func (c *Consumer) Commit(ctx context.Context, next map[TopicPartition]int64) error {
	c.mu.Lock()
	var msgs []kafka.Message
	for tp, off := range next {
		if off <= c.committed[tp] {
			continue
		}
		// kafka-go commits a message's offset + 1.
		msgs = append(msgs, kafka.Message{Topic: tp.Topic, Partition: tp.Partition, Offset: off - 1})
	}
	c.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	c.mu.Lock()
	for _, m := range msgs {
		c.committed[TopicPartition{m.Topic, m.Partition}] = m.Offset + 1
	}
	c.mu.Unlock()
	return nil
}

// Lag is the reader's estimate of records not yet fetched.
func (c *Consumer) Lag() int64 { return c.r.Stats().Lag }

// Close leaves the group.
func (c *Consumer) Close() error { return c.r.Close() }

// EnsureTopics creates the topics that do not exist yet (partitions each, replication
// factor 1 or the broker's default when 0 is not allowed).
func EnsureTopics(ctx context.Context, o Options, partitions int, topics ...string) error {
	d := dialer(o)
	conn, err := d.DialContext(ctx, "tcp", o.Brokers[0])
	if err != nil {
		return fmt.Errorf("create topics: dial %s: %w", o.Brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("create topics: find controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("create topics: dial controller: %w", err)
	}
	defer cc.Close()
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	if err := cc.CreateTopics(cfgs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	return nil
}
