package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// driftd run started before any producer created the topics, on a broker that does not
// create them on first use: /readyz says 503 and which topics are missing; once the
// topics exist the active member reads them within seconds, /readyz says 200 and what it
// reads, driftd_partitions_assigned counts them, and a second member says it stands by.
func TestStartBeforeTheTopicsExist(t *testing.T) {
	broker := testenv.OwnKafka(t, "KAFKA_AUTO_CREATE_TOPICS=false")
	name := testenv.UniqueName(t)
	addr, proto := testenv.ClickHouse(t)
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.GroupID = []string{broker.Addr}, name
	cfg.Kafka.Topics = config.Topics{Predictions: name + ".predictions", Labels: name + ".labels", Pipeline: name + ".pipeline",
		Alerts: name + ".alerts", DLQ: name + ".dlq"}
	cfg.ClickHouse.Addr, cfg.ClickHouse.Protocol, cfg.ClickHouse.Database = addr, storage.Protocol(proto), name
	cfg.HTTP.Listen = "127.0.0.1:0"
	ctx := testenv.Context(t, 3*time.Minute)
	start := func() string {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		health, errc := make(chan string, 1), make(chan error, 1)
		go func() { errc <- run(rctx, cfg, testenv.Logger(t), hooks{health: func(a string) { health <- a }}) }()
		t.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		})
		select {
		case a := <-health:
			return "http://" + a
		case err := <-errc:
			t.Fatalf("run: %v", err)
		case <-ctx.Done():
			t.Fatal("no health endpoint")
		}
		return ""
	}
	st, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: name}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		st.Close()
	})
	active := start()
	missing := waitHTTP(t, ctx, active+"/readyz", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "do not exist yet")
	})
	t.Logf("/readyz before the topics exist: 503 %q", missing)
	for _, topic := range []string{cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline} {
		if !strings.Contains(missing, topic) {
			t.Errorf("/readyz %q does not name the missing topic %s", missing, topic)
		}
	}

	o := consumers.Options{Brokers: []string{broker.Addr}}
	if err := consumers.EnsureTopics(ctx, o, 2, cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Alerts, cfg.Kafka.Topics.DLQ); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		e := &schemas.PredictionEvent{EventID: fmt.Sprint(i), Model: "m", ModelVersion: "1", Timestamp: time.Now().UTC(), LatencyMs: 1,
			Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(i)}}}}
		b, err := schemas.MarshalPredictionJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: b})
	}
	w := consumers.NewWriter(o, cfg.Kafka.Topics.Predictions)
	defer w.Close()
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, ctx, active+"/metrics", func(code int, body string) bool {
		return strings.Contains(body, `driftd_records_consumed_total{topic="`+cfg.Kafka.Topics.Predictions+`"} 20`) &&
			strings.Contains(body, "driftd_partitions_assigned 2")
	})
	t.Logf("records of topics created after the start read %v after their creation", time.Since(created).Round(time.Millisecond))
	if d := time.Since(created); d > 30*time.Second {
		t.Errorf("read %v after the topics were created, want within seconds", d)
	}
	ready := waitHTTP(t, ctx, active+"/readyz", func(code int, body string) bool { return code == 200 })
	t.Logf("/readyz of the active member: 200 %q", ready)
	if !strings.HasPrefix(ready, "ready: reading 2 partitions") || !strings.Contains(ready, cfg.Kafka.Topics.Pipeline) {
		t.Errorf("/readyz of the active member: %q; want it reading 2 partitions, naming the missing pipeline topic", ready)
	}

	standby := start()
	body := waitHTTP(t, ctx, standby+"/readyz", func(code int, body string) bool { return code == 200 })
	t.Logf("/readyz of the second member: 200 %q", body)
	if !strings.HasPrefix(body, "standby: ") {
		t.Errorf("/readyz of the second member: %q, want it standing by", body)
	}
	waitHTTP(t, ctx, standby+"/metrics", func(code int, body string) bool { return strings.Contains(body, "driftd_partitions_assigned 0") })
}

// waitHTTP gets url until cond holds for its status and body (bounded by ctx) and returns
// the body.
func waitHTTP(t *testing.T, ctx context.Context, url string, cond func(code int, body string) bool) string {
	t.Helper()
	var code int
	var body string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if cond(code, body) {
				return body
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: last answer %d %q", url, code, body)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
