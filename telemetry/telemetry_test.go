package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := NewMetrics()
	var ready error = errors.New("clickhouse not connected yet")
	addr, err := Serve(ctx, "127.0.0.1:0", m, func(context.Context) (string, error) { return "standby: another member reads", ready }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("bound to %s", addr)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "clickhouse not connected yet") {
		t.Errorf("/readyz before ready: %d %q", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	ready = nil
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 || body != "standby: another member reads\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	m.Consumed("ml.predictions")
	m.Consumed("ml.predictions")
	m.DecodeError("ml.predictions", "decode")
	m.Insert(time.Millisecond, "retryable")
	m.Lag("ml.predictions", 1, 99)
	m.Rebalanced() // partition 1 went to another member: its lag is no longer this one's
	m.Lag("ml.predictions", 2, 17)
	m.Lag("ml.predictions", 1, 5) // given back: reported again (not on a gauge dropped by the reset)
	m.State(4, 3, 6)
	m.GroupLagFrom(func() (int64, bool) { return 42, true })
	m.UnreadableFrom(func() (int64, bool) { return 1, true })
	m.PausedFrom(func() (int64, bool) { return 2, true })
	m.SupplementsFrom(func() (int64, bool) { return 3, true })
	if lag := m.ConsumerLag(); lag != 22 {
		t.Errorf("consumer lag %d after a rebalance, want 22 (partitions 2 and 1 as reported since)", lag)
	}
	var nilMetrics *Metrics
	nilMetrics.Consumed("x") // a nil *Metrics is a no-op
	_, body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`driftd_records_consumed_total{topic="ml.predictions"} 2`,
		`driftd_decode_errors_total{class="decode",topic="ml.predictions"} 1`,
		`driftd_clickhouse_insert_errors_total{class="retryable"} 1`,
		`driftd_consumer_lag{partition="2",topic="ml.predictions"} 17`,
		`driftd_consumer_lag{partition="1",topic="ml.predictions"} 5`,
		"driftd_consumer_group_lag 42", "driftd_open_windows 4", "driftd_series_tracked 3", "driftd_partitions_assigned 6", "driftd_rebalances_total 1",
		"driftd_partitions_unreadable 1", "driftd_partitions_paused 2", "driftd_supplement_windows_total 3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The group's lag is reported only once the consumer knows it.
func TestGroupLagOnlyWhenKnown(t *testing.T) {
	for _, c := range []struct {
		name  string
		set   bool
		known bool
		want  bool
	}{{"no consumer yet", false, false, false}, {"not checked yet", true, false, false}, {"known", true, true, true}} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMetrics()
			if c.set {
				m.GroupLagFrom(func() (int64, bool) { return 7, c.known })
			}
			families, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range families {
				if f.GetName() == "driftd_consumer_group_lag" {
					found = len(f.GetMetric()) == 1 && f.GetMetric()[0].GetGauge().GetValue() == 7
				}
			}
			if found != c.want {
				t.Errorf("reported %v, want %v", found, c.want)
			}
		})
	}
}
