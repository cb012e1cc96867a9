package report

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var day = time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)

// dayOfWindows is a day of five-minute windows of two slots and twenty features, the
// feature "amount" drifting from 16:40, with an alert firing and resolving, and a
// feature whose name is markup.
func dayOfWindows() Data {
	d := Data{Model: "fraud", From: day, To: day.Add(24 * time.Hour), Generated: day.Add(25 * time.Hour)}
	for w := 0; w < 288; w++ {
		start := day.Add(time.Duration(w) * 5 * time.Minute)
		for _, slot := range []string{"1 primary", "2 canary"} {
			d.Traffic = append(d.Traffic, Traffic{Start: start, End: start.Add(5 * time.Minute), Slot: slot, Events: 3000, Failed: uint64(w % 7), P99: 40 + float64(w%13)})
		}
		for f := 0; f < 20; f++ {
			name := fmt.Sprintf("feature_%02d", f)
			psi := 0.01 + 0.001*float64((w*7+f)%9)
			switch {
			case f == 0:
				name = "amount"
				if w >= 200 {
					psi = 0.6
				}
			case f == 1:
				name = "<script>alert(1)</script>"
			}
			d.Drift = append(d.Drift, Drift{Start: start, Feature: name, PSI: psi, Drifted: psi > 0.25})
		}
	}
	d.Alerts = []Alert{
		{Emitted: day.Add(16*time.Hour + 46*time.Minute), Start: day.Add(16*time.Hour + 40*time.Minute), End: day.Add(16*time.Hour + 45*time.Minute),
			State: "firing", Severity: "critical", Kind: "data_drift", Version: "1", Slot: "primary", Feature: "amount", Summary: "feature amount of fraud 1 drifted: PSI 0.60"},
	}
	return d
}

// A day of five-minute windows and twenty features is one HTML page of kilobytes: the
// drifted feature is the heat map's first row and has the hottest cells, the alert is
// in the timeline, and names are escaped.
func TestReportOfADay(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, dayOfWindows()); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	t.Logf("a day of 5-minute windows, 20 features, 2 slots: %d bytes", b.Len())
	if b.Len() > 120_000 {
		t.Errorf("report is %d bytes, want at most 120 KB", b.Len())
	}
	first := regexp.MustCompile(`<svg class="heat"[^>]*><text[^>]*>([^<]*)</text>`).FindStringSubmatch(html)
	if first == nil || first[1] != "amount" {
		t.Errorf("the heat map's first row is %v, want amount", first)
	}
	if !strings.Contains(html, `class="h5"`) {
		t.Error("no cell in the hottest class")
	}
	if strings.Contains(html, "<script>alert(1)</script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Error("a feature name is not escaped")
	}
	for _, want := range []string{"feature amount of fraud 1 drifted: PSI 0.60", "288 windows", "1728000 requests", "1 primary", "2 canary"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// Load reads a model's windows, drift scores and alerts in the period from the engine
// (the queries in sql/queries), and nothing of other models or outside the period.
func TestLoad(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s := migratedStore(ctx, t)
	db := s.Database()
	for _, q := range []string{
		// two partitions of one window, one window outside the period, another model
		`INSERT INTO ` + db + `.window_model_stats (model, model_version, deployment, window_start, window_end, topic, partition, events, errors, timeouts, latency_p99, written_at) VALUES
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 0, 100, 1, 1, 50, now64(3)),
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 1, 200, 2, 0, 80, now64(3)),
('fraud', '1', 'primary', '2026-03-05 10:00:00', '2026-03-05 10:05:00', 'p', 0, 100, 0, 0, 50, now64(3)),
('other', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'p', 0, 100, 0, 0, 50, now64(3))`,
		`INSERT INTO ` + db + `.drift_scores (model, model_version, deployment, window_start, window_end, feature, psi, drifted, written_at) VALUES
('fraud', '1', 'primary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'amount', 0.3, 1, now64(3)),
('fraud', '1', 'canary', '2026-03-04 10:00:00', '2026-03-04 10:05:00', 'amount', 0.1, 0, now64(3))`,
		`INSERT INTO ` + db + `.alerts (alert_id, fingerprint, state, severity, kind, model, window_start, window_end, emitted_at, summary) VALUES
('a', 'f', 'firing', 'critical', 'data_drift', 'fraud', '2026-03-04 10:00:00', '2026-03-04 10:05:00', '2026-03-04 10:06:00', 'amount drifted')`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Load(ctx, s.Conn(), db, "fraud", day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Traffic) != 1 || d.Traffic[0].Events != 300 || d.Traffic[0].Failed != 4 || d.Traffic[0].P99 != 80 || d.Traffic[0].Slot != "1 primary" {
		t.Errorf("traffic %+v", d.Traffic)
	}
	if len(d.Drift) != 1 || d.Drift[0].PSI != 0.3 || !d.Drift[0].Drifted {
		t.Errorf("drift %+v", d.Drift)
	}
	if len(d.Alerts) != 1 || d.Alerts[0].Summary != "amount drifted" {
		t.Errorf("alerts %+v", d.Alerts)
	}
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
}

// migratedStore is a store on a migrated database of the test's own, dropped after it.
func migratedStore(ctx context.Context, t *testing.T) *storage.Store {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	return s
}
