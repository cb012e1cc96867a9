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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// runProcess starts `driftd run` as its own process with the embedded engine under dir
// and returns it with the address of its ClickHouse endpoint once it serves.
func runProcess(t *testing.T, ctx context.Context, env []string) (*exec.Cmd, string, <-chan struct{}) {
	t.Helper()
	return startRun(t, ctx, env, regexp.MustCompile(`embedded ClickHouse serving" http=https?://(\S+)`))
}

// startRun starts `driftd run` as its own process and returns it, once a line of its log
// matches ready, with the match's first group and a channel closed when its log ends.
func startRun(t *testing.T, ctx context.Context, env []string, ready *regexp.Regexp) (*exec.Cmd, string, <-chan struct{}) {
	t.Helper()
	cmd := driftdProcess(t, ctx, "run", env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	matched := make(chan string, 1)
	done := make(chan struct{})
	var lines []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if len(lines) < 50 {
				lines = append(lines, sc.Text())
			}
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case matched <- m[len(m)-1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-matched:
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

// The known stream of the crash and failover tests: models a and b, crashWindows
// one-minute windows of crashPer events each, a shifted in the last four.
const crashWindows, crashPer = 10, 300

func crashStream() []kafka.Message {
	rng := rand.New(rand.NewPCG(77, 1))
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for w := 0; w < crashWindows; w++ {
		for i := 0; i < crashPer; i++ {
			for _, model := range []string{"a", "b"} {
				shift := 0.0
				if model == "a" && w >= 6 {
					shift = 3
				}
				e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d-%d", model, w, i), Model: model, ModelVersion: "1", Deployment: "primary",
					Timestamp: t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/crashPer), Status: "ok", LatencyMs: rng.ExpFloat64() * 10,
					Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64() + shift}},
						{Name: "c", Value: schemas.Value{Kind: schemas.String, Str: []string{"p", "q", "r"}[rng.IntN(3)]}}},
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
				b, _ := schemas.MarshalPredictionJSON(e)
				msgs = append(msgs, kafka.Message{Key: []byte(e.EventID), Value: b})
			}
		}
	}
	return msgs
}

// crashTopics creates the topics of a run named name and returns a func that produces
// messages to its prediction topic.
func crashTopics(t *testing.T, ctx context.Context, brokers, name string) func(msgs ...kafka.Message) {
	t.Helper()
	o := consumers.Options{Brokers: []string{brokers}}
	if err := consumers.EnsureTopics(ctx, o, 3, name+".predictions", name+".alerts", name+".dlq", name+".pipeline"); err != nil {
		t.Fatal(err)
	}
	return func(msgs ...kafka.Message) {
		t.Helper()
		w := consumers.NewWriter(o, name+".predictions")
		defer w.Close()
		if err := w.Write(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// runEnv is the environment of a `driftd run` of the topics named name in group group;
// the ClickHouse settings are the caller's.
func runEnv(brokers, name, group string, clickhouse ...string) []string {
	return append([]string{
		"DRIFTD_KAFKA_BROKERS=" + brokers, "DRIFTD_KAFKA_GROUP_ID=" + group,
		"DRIFTD_KAFKA_TOPICS_PREDICTIONS=" + name + ".predictions", "DRIFTD_KAFKA_TOPICS_ALERTS=" + name + ".alerts",
		"DRIFTD_KAFKA_TOPICS_DLQ=" + name + ".dlq", "DRIFTD_KAFKA_TOPICS_PIPELINE=" + name + ".pipeline", "DRIFTD_KAFKA_TOPICS_LABELS=" + name + ".labels",
		"DRIFTD_KAFKA_FLUSH_INTERVAL=200ms", "DRIFTD_WINDOWS_SIZE=1m", "DRIFTD_WINDOWS_LATENESS=5s", "DRIFTD_WINDOWS_IDLE_CLOSE=3s",
		"DRIFTD_CLICKHOUSE_RETENTION_DAYS=3650", "DRIFTD_LIMITS_MAX_FUTURE=0s",
	}, clickhouse...)
}

// windowResults is what a run wrote to database db: per window the counts, feature
// statistics, drift scores, the late events, and the alerts. run runs one query and returns its rows.
func windowResults(run func(q string) (string, error), db string) (string, error) {
	var b strings.Builder
	for _, q := range []string{
		`SELECT model, window_start, sum(events), sum(errors), round(sum(latency_max), 6) FROM {db}.window_model_stats FINAL
GROUP BY model, window_start ORDER BY model, window_start`,
		`SELECT model, window_start, feature, sum(count), sum(missing), round(sum(mean * count), 6), arrayStringConcat(arrayMap(x -> toString(x), sumForEach(bin_counts)), ','),
toString(sumMap(categories)) FROM {db}.window_feature_stats FINAL GROUP BY model, window_start, feature ORDER BY model, window_start, feature`,
		`SELECT model, feature, window_start, round(psi, 9), drifted FROM {db}.drift_scores FINAL ORDER BY model, feature, window_start`,
		`SELECT count() FROM {db}.late_events FINAL`,
		// The alerts: what fired and resolved, about what, for which window (not when).
		`SELECT state, kind, model, feature, metric, window_start, window_end FROM {db}.alerts FINAL
ORDER BY window_end, kind, model, feature, metric, state`,
	} {
		out, err := run(strings.ReplaceAll(q, "{db}", db))
		if err != nil {
			return "", err
		}
		b.WriteString(out)
	}
	return b.String(), nil
}

// waitWindows waits until database db holds every window of the crash stream, then a
// little longer for the last flush, and returns its results.
func waitWindows(t *testing.T, ctx context.Context, run func(q string) (string, error), db string) string {
	t.Helper()
	for {
		// Before the migrations have run, errors mean "not yet". A window is judged once
		// written (one member), or after it (a spread group): judge_progress says when
		// each model's last window is.
		n, _ := run("SELECT uniqExact(model, window_start) FROM " + db + ".window_model_stats")
		judged, _ := run("SELECT count() FROM (SELECT model, max(through) AS t FROM " + db + ".judge_progress GROUP BY model) AS j " +
			"INNER JOIN (SELECT model, max(window_end) AS e FROM " + db + ".window_model_stats GROUP BY model) AS w USING model WHERE t >= e")
		if strings.TrimSpace(n) == fmt.Sprint(2*crashWindows) && strings.TrimSpace(judged) == "2" {
			break
		}
		select {
		case <-ctx.Done():
			got, _ := run("SELECT model, window_start, sum(events) FROM " + db + ".window_model_stats FINAL GROUP BY ALL ORDER BY ALL")
			t.Fatalf("windows not all written: %s", got)
		case <-time.After(500 * time.Millisecond):
		}
	}
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	out, err := windowResults(run, db)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// httpRunner runs queries on a ClickHouse HTTP endpoint, as TSV.
func httpRunner(addr string) func(q string) (string, error) {
	return func(q string) (string, error) { return tryQuery(addr, q+" FORMAT TSV") }
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
	ctx := testenv.Context(t, 6*time.Minute)
	crashTopics(t, ctx, brokers, name)(crashStream()...)
	embedded := func(dir string) []string {
		return []string{"DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true", "DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR=" + dir, "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN=127.0.0.1:0"}
	}
	finish := func(env []string) string {
		cmd, addr, done := runProcess(t, ctx, env)
		defer func() { cmd.Process.Signal(syscall.SIGINT); <-done; cmd.Wait() }()
		return waitWindows(t, ctx, httpRunner(addr), "driftd")
	}

	clean := finish(runEnv(brokers, name, name+".clean", embedded(t.TempDir())...))

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(77, 2))
	kills := rng.Perm(8)[:4]
	for _, k := range kills {
		cmd, _, done := runProcess(t, ctx, runEnv(brokers, name, name+".crashy", embedded(dir)...))
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
	crashy := finish(runEnv(brokers, name, name+".crashy", embedded(dir)...))
	if crashy != clean {
		t.Errorf("after %d kills the results differ from a clean run.\nclean:\n%s\nafter kills:\n%s", len(kills), clean, crashy)
	}
	if !strings.Contains(clean, "firing\tdata_drift\ta\tx\tpsi\t2026-03-04 10:06:00.000") {
		t.Errorf("the clean run did not alert on the shift of a's x at 10:06:\n%s", clean[max(0, len(clean)-2000):])
	}
	if !strings.Contains(clean, "a\t2026-03-04 10:06:00.000\tx\t300") {
		t.Errorf("clean results look wrong:\n%s", clean[:min(len(clean), 2000)])
	}
}

// Failover: two `driftd run` processes in one group, writing to one ClickHouse; the
// active one is killed with SIGKILL mid-stream and the standby takes over. The results
// equal one clean run's.
func TestStandbyTakesOverAfterSIGKILL(t *testing.T) {
	memberKilled(t, false)
}

// The same in a spread group: both members read partitions and each model is judged by
// the reader of one partition; the first member is killed with SIGKILL mid-stream, the
// other takes its partitions and the judging of its models, and the window rows, drift
// scores and alerts equal one clean (active/standby) run's.
func TestSpreadMemberKilledGivesTheCleanResult(t *testing.T) {
	memberKilled(t, true)
}

func memberKilled(t *testing.T, spread bool) {
	brokers := testenv.KafkaBrokers(t)
	name := testenv.UniqueName(t)
	ctx := testenv.Context(t, 6*time.Minute)
	addr, proto := testenv.ClickHouse(t)
	st, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: "default"}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run := func(q string) (string, error) { return testenv.TSV(ctx, st.Conn(), q) }
	msgs := crashStream()
	// Both runs start with the same reference (the stream's first three windows), so
	// that when each window opens relative to a reference build cannot differ.
	samples := map[string]*detectors.Sample{}
	for _, m := range msgs[:len(msgs)*3/crashWindows] {
		var e schemas.PredictionEvent
		if err := schemas.DecodePredictionJSON(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if samples[e.Model] == nil {
			samples[e.Model] = detectors.NewSample()
		}
		samples[e.Model].AddEvent(&e)
	}
	chEnv := func(db string) []string {
		t.Cleanup(func() { st.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
		s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: db}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx, 3650); err != nil {
			t.Fatal(err)
		}
		for model, sample := range samples {
			if err := s.SaveReference(ctx, sample.Build(model, "1", detectors.SourceFile, 3, time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC))); err != nil {
				t.Fatal(err)
			}
		}
		return []string{"DRIFTD_CLICKHOUSE_ADDR=" + addr, "DRIFTD_CLICKHOUSE_PROTOCOL=" + proto, "DRIFTD_CLICKHOUSE_DATABASE=" + db}
	}
	half := len(msgs) / 2 // windows 0-4
	produce := crashTopics(t, ctx, brokers, name)
	produce(msgs[:half]...)

	reading := regexp.MustCompile(`joined consumer group.* partitions="([^"]+)"`)
	joined := regexp.MustCompile(`(joined consumer group)`)
	failover := name + "_failover"
	env := runEnv(brokers, name, name+".failover", chEnv(failover)...)
	if spread {
		env = append(env, "DRIFTD_KAFKA_GROUP_MODE=spread")
	}
	active, _, activeDone := startRun(t, ctx, env, reading)
	standby, _, standbyDone := startRun(t, ctx, env, joined)
	defer func() { standby.Process.Signal(syscall.SIGINT); <-standbyDone; standby.Wait() }()
	for {
		n, _ := run("SELECT uniqExact(model, window_start) FROM " + failover + ".window_model_stats")
		if v, _ := strconv.Atoi(strings.TrimSpace(n)); v >= 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the active member wrote no windows")
		case <-time.After(300 * time.Millisecond):
		}
	}
	active.Process.Signal(syscall.SIGKILL)
	active.Wait()
	<-activeDone
	killed := time.Now()
	produce(msgs[half:]...)
	got := waitWindows(t, ctx, run, failover)
	t.Logf("the standby finished the stream %v after the active member was killed", time.Since(killed).Round(time.Second))

	clean := name + "_clean"
	c, _, cleanDone := startRun(t, ctx, runEnv(brokers, name, name+".clean", chEnv(clean)...), reading)
	want := waitWindows(t, ctx, run, clean)
	c.Process.Signal(syscall.SIGINT)
	<-cleanDone
	c.Wait()
	if got != want {
		t.Errorf("after the failover the results differ from a clean run.\nclean:\n%s\nfailover:\n%s", want, got)
	}
	if !strings.Contains(want, "a\t2026-03-04 10:06:00.000\tx\t300") {
		t.Errorf("clean results look wrong:\n%s", want[:min(len(want), 2000)])
	}
}
