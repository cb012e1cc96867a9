package main

import (
	"context"
	"crypto/tls"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
)

// TLS to Kafka, configured as a user would (kafka.tls.enabled, kafka.tls.ca_file): records
// go both ways over the broker's SSL listener; a client that does not trust the broker's CA
// is refused with a certificate error.
func TestKafkaTLS(t *testing.T) {
	brokers, ca := os.Getenv("KAFKA_TLS_BROKERS"), os.Getenv("KAFKA_TLS_CA")
	if brokers == "" || ca == "" {
		t.Fatal("KAFKA_TLS_BROKERS and KAFKA_TLS_CA are not set: make test starts an SSL listener and sets them")
	}
	var cfg config.Config
	cfg.Kafka.Brokers = []string{brokers}
	cfg.Kafka.TLS = config.TLS{Enabled: true, CAFile: ca}
	o, err := kafkaOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.UniqueName(t)
	o.GroupID, o.Topics = topic+".g", []string{topic}
	ctx := testenv.Context(t, time.Minute)
	if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
		t.Fatal(err)
	}
	w := consumers.NewWriter(o, topic)
	defer w.Close()
	if err := w.Write(ctx, kafka.Message{Value: []byte("over TLS")}); err != nil {
		t.Fatal(err)
	}
	c, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, err := c.Fetch(ctx); err != nil || string(r.Value) != "over TLS" {
		t.Fatalf("fetch over TLS: %q %v", r.Value, err)
	}

	// Without the CA file the system roots are used, and they do not know this broker.
	cfg.Kafka.TLS.CAFile = ""
	untrusting, err := kafkaOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = consumers.EnsureTopics(short, untrusting, 1, topic)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the broker's CA: %v", err)
	}
	// A CA file that is not a certificate is named in the error.
	bad := t.TempDir() + "/ca.pem"
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	cfg.Kafka.TLS.CAFile = bad
	if _, err := kafkaOptions(cfg); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

// ClickHouse's TLS settings go through the same client TLS as Kafka's; errors name the
// clickhouse field.
func TestClickHouseTLSSettings(t *testing.T) {
	cfg := config.Default()
	cfg.ClickHouse.TLS, cfg.ClickHouse.TLSCAFile = true, t.TempDir()+"/missing.pem"
	_, _, err := openStore(testenv.Context(t, time.Minute), cfg, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "clickhouse.tls_ca_file") {
		t.Fatalf("a missing CA file: %v", err)
	}
	c, err := clientTLS(os.Getenv("KAFKA_TLS_CA"), "clickhouse.tls_ca_file", false)
	if err != nil || c.RootCAs == nil || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("client TLS %+v %v", c, err)
	}
}
