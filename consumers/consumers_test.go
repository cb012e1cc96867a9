package consumers_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
)

// Records are fetched, committed only as told, never rewound, and re-read by the next
// member of the group from the committed offset.
func TestConsumerCommitsExplicitlyAndNeverRewinds(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t)
	o := consumers.Options{Brokers: []string{brokers}, GroupID: topic + ".g", Topics: []string{topic}}
	ctx := testenv.Context(t, 2*time.Minute)
	if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
		t.Fatal(err)
	}
	w := consumers.NewWriter(o, topic)
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	c, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		r, err := c.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: %q at %d", i, r.Value, r.Offset)
		}
	}
	tp := consumers.TopicPartition{Topic: topic}
	if err := c.Commit(ctx, map[consumers.TopicPartition]int64{tp: 6}); err != nil {
		t.Fatal(err)
	}
	// A smaller offset later (a slow, stale commit) must not rewind the group.
	if err := c.Commit(ctx, map[consumers.TopicPartition]int64{tp: 2}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c2, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r, err := c2.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 6 {
		t.Fatalf("the next member starts at %d, want 6", r.Offset)
	}
}

func TestDeadLetterCarriesProvenance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t)
	o := consumers.Options{Brokers: []string{brokers}}
	ctx := testenv.Context(t, time.Minute)
	if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
		t.Fatal(err)
	}
	d := consumers.NewDeadLetter(o, topic)
	defer d.Close()
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	rec := consumers.Record{Topic: "ml.predictions", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte{0xff, 0x00},
		Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}}
	if err := d.Send(ctx, rec, consumers.ClassDecode, errors.New("record is neither JSON nor Avro"), at); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		consumers.HeaderSourceTopic: "ml.predictions", consumers.HeaderSourcePartition: "2", consumers.HeaderSourceOffset: "41",
		consumers.HeaderErrorClass: "decode", consumers.HeaderErrorMessage: "record is neither JSON nor Avro",
		consumers.HeaderFailedAt: "2026-03-04T10:00:00Z", "trace": "abc",
	} {
		if got := testenv.Header(m, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if string(m.Key) != "k" || string(m.Value) != "\xff\x00" {
		t.Errorf("record changed: %q %q", m.Key, m.Value)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// SASL: each mechanism the broker offers carries records both ways; a wrong password is
// refused with a clear error.
func TestSASL(t *testing.T) {
	brokers := os.Getenv("KAFKA_SASL_BROKERS")
	if brokers == "" {
		t.Fatal("KAFKA_SASL_BROKERS is not set: make test starts a SASL listener and sets it")
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			m, err := consumers.SASLMechanism(mech, "driftd", "driftd-secret")
			if err != nil {
				t.Fatal(err)
			}
			topic := testenv.UniqueName(t)
			o := consumers.Options{Brokers: []string{brokers}, GroupID: topic + ".g", Topics: []string{topic}, SASL: m}
			ctx := testenv.Context(t, time.Minute)
			if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
				t.Fatal(err)
			}
			w := consumers.NewWriter(o, topic)
			defer w.Close()
			if err := w.Write(ctx, kafka.Message{Value: []byte("over " + mech)}); err != nil {
				t.Fatal(err)
			}
			c, err := consumers.NewConsumer(o, testenv.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.Fetch(ctx)
			if err != nil || string(r.Value) != "over "+mech {
				t.Fatalf("fetch: %q %v", r.Value, err)
			}
			bad, _ := consumers.SASLMechanism(mech, "driftd", "wrong")
			short, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err = consumers.EnsureTopics(short, consumers.Options{Brokers: []string{brokers}, SASL: bad}, 1, topic)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl") {
				t.Fatalf("a wrong password: %v", err)
			}
		})
	}
	if _, err := consumers.SASLMechanism("GSSAPI", "u", "p"); err == nil {
		t.Error("an unsupported mechanism was accepted")
	}
}
