package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// idleSource delivers nothing and counts commits: these tests flush alerts raised between
// records (as freshness alerts are), so no record is read.
type idleSource struct{ commits atomic.Int64 }

func (*idleSource) Fetch(ctx context.Context) (consumers.Record, error) {
	<-ctx.Done()
	return consumers.Record{}, ctx.Err()
}
func (s *idleSource) Commit(context.Context, map[consumers.TopicPartition]int64) error {
	s.commits.Add(1)
	return nil
}
func (*idleSource) Assigned() int { return 1 }

// alertRunner is a runner over real Kafka topics (the alert topic refusing records over
// 200 kB) and a real store, publishing to brokers (which may be unreachable).
func alertRunner(t *testing.T, brokers string, set Settings) (*Runner, *storage.Store, string, string) {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	name := testenv.UniqueName(t)
	alerts, dlq := name+".alerts", name+".dlq"
	real := testenv.KafkaBrokers(t)
	conn, err := kafka.DialContext(ctx, "tcp", real)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: alerts, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "200000"}}}); err != nil {
		t.Fatal(err)
	}
	o := consumers.Options{Brokers: []string{real}}
	if err := consumers.EnsureTopics(ctx, o, 1, alerts, dlq); err != nil {
		t.Fatal(err)
	}
	addr, proto := testenv.ClickHouse(t)
	st, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: name}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		st.Close()
	})
	if _, err := st.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	dl := consumers.NewDeadLetter(o, dlq)
	aw := consumers.NewWriter(consumers.Options{Brokers: []string{brokers}}, alerts)
	t.Cleanup(func() { dl.Close(); aw.Close() })
	set.Backoff = storage.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	return New(set, &idleSource{}, dl, NewAlertPublisher(aw, nil, 0), st, testenv.Logger(t), time.Now), st, alerts, dlq
}

func readN(t *testing.T, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{testenv.KafkaBrokers(t)}, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx := testenv.Context(t, 30*time.Second)
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m, err := r.ReadMessage(short); err == nil {
		t.Fatalf("unexpected extra message on %s: %.200s", topic, m.Value)
	}
	return out
}

func alert(id string, value float64, summary string) *schemas.AlertEvent {
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	return &schemas.AlertEvent{AlertID: id, Fingerprint: "f-" + id, State: schemas.StateFiring, Severity: schemas.SeverityWarning,
		Kind: "pipeline_freshness", Pipeline: "orders", Stage: "join", Metric: "m", Value: value, Threshold: 1,
		WindowStart: at, WindowEnd: at.Add(time.Hour), EmittedAt: at.Add(time.Hour), Summary: summary}
}

// Alerts that cannot be published as they are do not stall the flush: a NaN value is
// stored and published as 0 with a marker (JSON has no NaN; before, the encoding failed
// and the publish was retried for ever), and an alert the alert topic refuses for good
// (too large) is set aside on the dead-letter topic while the others are published.
func TestUnpublishableAlertsDoNotStallTheFlush(t *testing.T) {
	r, st, alerts, dlq := alertRunner(t, testenv.KafkaBrokers(t), Settings{})
	nan, huge, fine := alert("nan", math.NaN(), "stale"), alert("huge", 3, strings.Repeat("x", 300_000)), alert("fine", 2, "stale")
	r.extraAlerts = []*schemas.AlertEvent{nan, huge, fine}
	if err := r.Flush(testenv.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	got := readN(t, alerts, 2)
	var ids []string
	for _, m := range got {
		var a schemas.AlertEvent
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.AlertID)
		if a.AlertID == "nan" && (a.Value != 0 || a.Details["non_finite_value"] != "NaN") {
			t.Errorf("NaN alert published as %s", m.Value)
		}
	}
	if strings.Join(ids, ",") != "nan,fine" {
		t.Errorf("published %v, want nan and fine", ids)
	}
	dead := readN(t, dlq, 1)
	var refused schemas.AlertEvent
	if err := json.Unmarshal(dead[0].Value, &refused); err != nil || refused.AlertID != "huge" || refused.Summary != huge.Summary ||
		testenv.Header(dead[0], consumers.HeaderErrorClass) != consumers.ClassAlertRefused {
		t.Errorf("dead letter %q (%v) of class %s", dead[0].Key, err, testenv.Header(dead[0], consumers.HeaderErrorClass))
	}
	// The stored NaN alert is what was published; every alert is recorded as handled, so
	// a restart publishes nothing again.
	unpublished, err := st.LoadUnpublishedAlerts(testenv.Context(t, time.Minute), 48*time.Hour)
	if err != nil || len(unpublished) != 0 {
		t.Errorf("unpublished after the flush: %v %v", unpublished, err)
	}
	var details map[string]string
	if err := st.Conn().QueryRow(testenv.Context(t, time.Minute), "SELECT details FROM "+st.Database()+".alerts FINAL WHERE alert_id = 'nan'").Scan(&details); err != nil ||
		details["non_finite_value"] != "NaN" {
		t.Errorf("stored NaN alert details %v %v", details, err)
	}
	if r.Stats().AlertsEmitted != 3 || r.Stats().DeadLettered != 1 {
		t.Errorf("stats %+v", r.Stats())
	}
}

// An alert topic that stays unreachable ends the flush after limits.max_outage (driftd
// exits, a standby takes over) with nothing committed; before, it was retried for ever
// while heartbeats kept the standby out.
func TestAlertTopicDownEndsTheFlush(t *testing.T) {
	const bound = 3 * time.Second
	r, _, _, _ := alertRunner(t, "127.0.0.1:1", Settings{MaxOutage: bound})
	r.extraAlerts = []*schemas.AlertEvent{alert("a", 1, "stale")}
	began := time.Now()
	err := r.Flush(testenv.Context(t, time.Minute))
	if took := time.Since(began); !errors.Is(err, retry.ErrOutage) || took < bound || took > bound+30*time.Second {
		t.Fatalf("Flush = %v after %v, want an outage after %v", err, took, bound)
	}
	if n := r.src.(*idleSource).commits.Load(); n != 0 {
		t.Errorf("%d commits", n)
	}
	if r.unwritten == nil || !r.unwritten.stored {
		t.Errorf("the stored batch was forgotten: %+v", r.unwritten)
	}
}
