package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/storage"
)

// ClickHouse unreachable from the active member for longer than limits.max_outage: it
// exits non-zero (leaving the group), the standby — which reaches ClickHouse — takes
// over from the committed offsets, and every window is written once with every event.
// Before, the active member retried for ever while its heartbeats kept the standby out.
func TestActiveGivesUpWhenClickHouseStaysDown(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	name := testenv.UniqueName(t)
	ctx := testenv.Context(t, 6*time.Minute)
	addr, proto := testenv.ClickHouse(t)
	db := name + "_db"
	st, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: db}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		st.Close()
	})
	if _, err := st.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		out, _ := testenv.TSV(ctx, st.Conn(), q)
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	px := testenv.NewProxy(t, addr)
	msgs := crashStream()
	half := len(msgs) / 2
	produce := crashTopics(t, ctx, brokers, name)
	produce(msgs[:half]...)

	const maxOutage = 3 * time.Second
	ch := func(a string) []string {
		return []string{"DRIFTD_CLICKHOUSE_ADDR=" + a, "DRIFTD_CLICKHOUSE_PROTOCOL=" + proto, "DRIFTD_CLICKHOUSE_DATABASE=" + db,
			"DRIFTD_LIMITS_MAX_OUTAGE=" + maxOutage.String()}
	}
	active, _, activeDone := startRun(t, ctx, runEnv(brokers, name, name+".g", ch(px.Addr())...), regexp.MustCompile(`joined consumer group.* partitions="([^"]+)"`))
	standby, _, standbyDone := startRun(t, ctx, runEnv(brokers, name, name+".g", ch(addr)...), regexp.MustCompile(`(joined consumer group)`))
	defer func() { standby.Process.Signal(syscall.SIGINT); <-standbyDone; standby.Wait() }()
	defer func() { active.Process.Kill(); <-activeDone; active.Wait() }()
	for count("SELECT uniqExact(model, window_start) FROM "+db+".window_model_stats") < 4 {
		select {
		case <-ctx.Done():
			t.Fatal("the active member wrote no windows")
		case <-time.After(300 * time.Millisecond):
		}
	}

	px.SetDown(true)
	down := time.Now()
	produce(msgs[half:]...)
	exited := make(chan error, 1)
	go func() { <-activeDone; exited <- active.Wait() }()
	select {
	case err := <-exited:
		took := time.Since(down)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("the active member ended with %v, want a non-zero exit", err)
		}
		// retry.Do counts the bound from its first attempt, which may have begun before
		// the cut (a write in flight, or a restore of ten queries, when the proxy went
		// down): what is checked is that it waited, not that it waited all of it.
		if took < maxOutage-2*time.Second || took > maxOutage+time.Minute {
			t.Errorf("the active member exited %v after ClickHouse went, limits.max_outage is %v", took, maxOutage)
		}
		t.Logf("the active member exited with %v, %v after ClickHouse went", err, took.Round(100*time.Millisecond))
	case <-time.After(2 * time.Minute):
		t.Fatal("the active member did not give up on an unreachable ClickHouse")
	}
	activeDone = closed()

	want := fmt.Sprint(2 * crashWindows)
	for count("SELECT uniqExact(model, window_start) FROM "+db+".window_model_stats") < 2*crashWindows {
		select {
		case <-ctx.Done():
			t.Fatalf("the standby did not write every window (want %s)", want)
		case <-time.After(500 * time.Millisecond):
		}
	}
	pauseFor(ctx, 2*time.Second) // the last flush
	if n, events := count("SELECT count() FROM (SELECT model, window_start FROM "+db+".window_model_stats FINAL GROUP BY ALL)"),
		count("SELECT sum(events) FROM "+db+".window_model_stats FINAL"); n != 2*crashWindows || events != len(msgs) {
		t.Errorf("after the failover: %d windows, %d events; want %d, %d", n, events, 2*crashWindows, len(msgs))
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func pauseFor(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
