package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/schemas"
)

// runProcess starts `driftd run` as its own process with the embedded engine under dir
// and returns it with the address of its ClickHouse endpoint once it serves.
func runProcess(t *testing.T, ctx context.Context, env []string) (*exec.Cmd, string, <-chan struct{}) {
	t.Helper()
	cmd := driftdProcess(t, ctx, "run", env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	done := make(chan struct{})
	var lines []string
	re := regexp.MustCompile(`embedded ClickHouse serving" http=https?://(\S+)`)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if len(lines) < 50 {
				lines = append(lines, sc.Text())
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a, done
	case <-done:
		t.Fatalf("driftd run exited: %s", strings.Join(lines, "\n"))
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("driftd run did not start within a minute: %s", strings.Join(lines, "\n"))
	}
	return nil, "", nil
}

func query(t *testing.T, addr, q string) string {
	t.Helper()
	out, err := tryQuery(addr, q)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryQuery(addr, q string) (string, error) {
	resp, err := http.Get("http://" + addr + "/?query=" + url.QueryEscape(q))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %d %s", q, resp.StatusCode, b)
	}
	return string(b), nil
}

// Exactly-once window results: a known stream, driftd killed with SIGKILL at random
// points several times and restarted on the same state, ends with window counts and
// statistics equal to one clean run's.
func TestSIGKILLGivesTheCleanResult(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: make test sets it")
	}
	brokers := testenv.KafkaBrokers(t)
	name := testenv.UniqueName(t)
	topic := name + ".predictions"
	ctx := testenv.Context(t, 6*time.Minute)
	o := consumers.Options{Brokers: []string{brokers}}
	if err := consumers.EnsureTopics(ctx, o, 3, topic, name+".alerts", name+".dlq", name+".pipeline"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(77, 1))
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	const windows, per = 10, 300
	for w := 0; w < windows; w++ {
		for i := 0; i < per; i++ {
			for _, model := range []string{"a", "b"} {
				shift := 0.0
				if model == "a" && w >= 6 {
					shift = 3
				}
				e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d-%d", model, w, i), Model: model, ModelVersion: "1", Deployment: "primary",
					Timestamp: t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/per), Status: "ok", LatencyMs: rng.ExpFloat64() * 10,
					Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64() + shift}},
						{Name: "c", Value: schemas.Value{Kind: schemas.String, Str: []string{"p", "q", "r"}[rng.IntN(3)]}}},
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
				b, _ := schemas.MarshalPredictionJSON(e)
				msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: b})
			}
		}
	}
	w := consumers.NewWriter(o, topic)
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	env := func(group, dir string) []string {
		return []string{
			"DRIFTD_KAFKA_BROKERS=" + brokers, "DRIFTD_KAFKA_GROUP_ID=" + group,
			"DRIFTD_KAFKA_TOPICS_PREDICTIONS=" + topic, "DRIFTD_KAFKA_TOPICS_ALERTS=" + name + ".alerts",
			"DRIFTD_KAFKA_TOPICS_DLQ=" + name + ".dlq", "DRIFTD_KAFKA_TOPICS_PIPELINE=" + name + ".pipeline",
			"DRIFTD_KAFKA_FLUSH_INTERVAL=200ms", "DRIFTD_WINDOWS_SIZE=1m", "DRIFTD_WINDOWS_LATENESS=5s", "DRIFTD_WINDOWS_IDLE_CLOSE=3s",
			"DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true", "DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR=" + dir,
			"DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN=127.0.0.1:0", "DRIFTD_CLICKHOUSE_RETENTION_DAYS=3650", "DRIFTD_LIMITS_MAX_FUTURE=0s",
		}
	}
	results := func(addr string) string {
		return query(t, addr, `SELECT model, window_start, sum(events), sum(errors), round(sum(latency_max), 6) FROM driftd.window_model_stats FINAL
GROUP BY model, window_start ORDER BY model, window_start FORMAT TSV`) +
			query(t, addr, `SELECT model, window_start, feature, sum(count), sum(missing), round(sum(mean * count), 6), arrayStringConcat(arrayMap(x -> toString(x), sumForEach(bin_counts)), ','),
toString(sumMap(categories)) FROM driftd.window_feature_stats FINAL GROUP BY model, window_start, feature ORDER BY model, window_start, feature FORMAT TSV`) +
			query(t, addr, `SELECT model, feature, window_start, round(psi, 9), drifted FROM driftd.drift_scores FINAL ORDER BY model, feature, window_start FORMAT TSV`) +
			query(t, addr, `SELECT count() FROM driftd.late_events FINAL FORMAT TSV`)
	}
	finish := func(env []string) string {
		cmd, addr, done := runProcess(t, ctx, env)
		defer func() { cmd.Process.Signal(syscall.SIGINT); <-done; cmd.Wait() }()
		// Every window written (the last close when the stream falls idle), then a second
		// more for the last flush.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			// The endpoint serves before the migrations have run: errors mean "not yet".
			n, _ := tryQuery(addr, "SELECT uniqExact(model, window_start) FROM driftd.window_model_stats FORMAT TSV")
			if strings.TrimSpace(n) == fmt.Sprint(2*windows) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("windows not all written: %s", query(t, addr, "SELECT model, window_start, sum(events) FROM driftd.window_model_stats FINAL GROUP BY ALL ORDER BY ALL FORMAT TSV"))
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
		return results(addr)
	}

	clean := finish(env(name+".clean", t.TempDir()))

	dir := t.TempDir()
	kills := rng.Perm(8)[:4]
	for _, k := range kills {
		cmd, _, done := runProcess(t, ctx, env(name+".crashy", dir))
		// Kill somewhere in the run: during the start-up grace, the first flushes or later.
		select {
		case <-time.After(time.Duration(4500+k*500) * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		<-done
	}
	crashy := finish(env(name+".crashy", dir))
	if crashy != clean {
		t.Errorf("after %d kills the results differ from a clean run.\nclean:\n%s\nafter kills:\n%s", len(kills), clean, crashy)
	}
	if !strings.Contains(clean, "a\t2026-03-04 10:06:00.000\tx\t300") {
		t.Errorf("clean results look wrong:\n%s", clean[:min(len(clean), 2000)])
	}
}
