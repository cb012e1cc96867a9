package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
	"github.com/driftd/driftd/storage"
)

// Dev mode end to end: the in-process broker, the pipeline and the simulator, against the
// real ClickHouse engine. Each scenario's model raises exactly the alerts the backbone's
// detectors support, and the stationary model raises none.
func TestDevModeScenarios(t *testing.T) {
	chAddr, proto := testenv.ClickHouse(t)
	if proto != "http" {
		chAddr = "" // against a ClickHouse server, dev mode's embedded engine is not used
	}
	db := testenv.UniqueName(t)
	type key struct{ model, kind, feature, deployment, stage, state string }
	var (
		mu           sync.Mutex
		alerts       = map[key]int{}
		byName       = map[string][]string{}
		upstreamHint string
	)
	ctx, cancel := context.WithCancel(testenv.Context(t, 3*time.Minute))
	defer cancel()
	var kafkaAddr, healthAddr string
	ready := make(chan struct{})
	o := devOptions{
		KafkaAddr: "127.0.0.1:0", ClickHouseAddr: chAddr, DataDir: t.TempDir(), Database: db, Simulate: true,
		Sim: simOptions{Seed: 7, Speed: 120, PerWindow: 600, Scenarios: "all", Format: "json", Windows: 22},
		onAlert: func(a *schemas.AlertEvent) {
			mu.Lock()
			defer mu.Unlock()
			alerts[key{a.Model, a.Kind, a.Feature, a.Deployment, a.Stage, a.State}]++
			byName[a.Model] = append(byName[a.Model], a.State+" "+a.Summary)
			if a.Kind == "data_drift" && a.Model == simulate.ModelOf(simulate.PipelineFailure) && a.State == "firing" {
				upstreamHint = a.Summary
			}
		},
		ready:    func(k, _ string) { kafkaAddr = k; close(ready) },
		onHealth: func(addr string) { healthAddr = addr },
	}
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	errc := make(chan error, 1)
	go func() { errc <- dev(ctx, cfg, testenv.Logger(t), o) }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("dev did not start: %v", err)
	}
	if !strings.HasPrefix(kafkaAddr, "127.0.0.1:") {
		t.Fatalf("broker address %q", kafkaAddr)
	}

	type want struct {
		kind, feature, deployment, stage string
		states                           []string
	}
	scenarios := []struct {
		scenario string
		want     []want
		// later names the alerts this scenario is built for whose detectors arrive with
		// later issues; until then the model must stay silent.
		later string
	}{
		{simulate.Stationary, nil, ""},
		{simulate.AbruptShift, []want{
			{"data_drift", "amount", "primary", "", []string{"firing", "resolved"}},
			{"prediction_drift", "", "primary", "", []string{"firing", "resolved"}}}, ""},
		{simulate.GradualDrift, []want{
			{"data_drift", "amount", "primary", "", []string{"firing"}},
			{"prediction_drift", "", "primary", "", []string{"firing"}}}, ""},
		{simulate.NewCategory, []want{{"data_drift", "country", "primary", "", []string{"firing"}},
			{"input_quality", "country", "primary", "", []string{"firing"}}}, ""},
		{simulate.PredictionDrift, []want{{"prediction_drift", "", "primary", "", []string{"firing"}}}, ""},
		// The canary is four times slower than the primary from its first request: its
		// own reference is as slow, the comparison with the primary is not.
		{simulate.CanaryLatency, []want{{"canary", "", "canary", "", []string{"firing"}}}, ""},
		{simulate.MissingSpike, []want{{"input_quality", "age", "primary", "", []string{"firing"}}}, ""},
		// The mapping from inputs to labels flips for large amounts: the labelled
		// predictions go wrong (performance) and the loss stream changes (concept_drift).
		{simulate.ConceptDrift, []want{{"performance", "", "primary", "", []string{"firing"}},
			{"concept_drift", "", "primary", "", []string{"firing"}}}, ""},
		// The shadow answers the primary's requests; after the change it flips a third
		// of them: its agreement with the primary falls below its own reference's.
		{simulate.ShadowDisagree, []want{{"shadow", "", "shadow", "", []string{"firing"}}}, ""},
		// The join stage fails for two windows, the model's amount drifts meanwhile (and
		// its alert points upstream), then the whole pipeline goes silent.
		{simulate.PipelineFailure, []want{
			{"data_drift", "amount", "primary", "", []string{"firing", "resolved"}},
			{"pipeline_failure", "", "", "join_orders", []string{"firing"}},
			{"pipeline_freshness", "", "", "extract_orders", []string{"firing"}}}, ""},
	}
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range scenarios {
			for _, w := range s.want {
				for _, st := range w.states {
					model := simulate.ModelOf(s.scenario)
					if w.stage != "" {
						model = "" // pipeline alerts name the pipeline and stage, not a model
					}
					if alerts[key{model, w.kind, w.feature, w.deployment, w.stage, st}] == 0 {
						return false
					}
				}
			}
		}
		return true
	}
	deadline := testenv.Context(t, 2*time.Minute)
	for !complete() {
		select {
		case <-deadline.Done():
			t.Fatalf("expected alerts did not all arrive; got %v", alerts)
		case err := <-errc:
			t.Fatalf("dev stopped: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The results are in ClickHouse, readable with plain HTTP as curl would.
	if chAddr != "" {
		q := "SELECT model, count() AS windows, sum(events) FROM " + db + ".window_model_stats FINAL GROUP BY model ORDER BY model FORMAT TSV"
		resp, err := http.Get("http://" + chAddr + "/?query=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if resp.StatusCode != 200 || len(lines) != len(simulate.All) || !strings.HasPrefix(lines[0], "sim-abrupt-shift\t") {
			t.Fatalf("HTTP query: %d %q", resp.StatusCode, body)
		}
	}
	// driftd's own health: ready, and its metrics count what happened.
	for path, want := range map[string][]string{
		"/readyz":  {"ready"},
		"/healthz": {"ok"},
		"/metrics": {`driftd_records_consumed_total{topic="ml.predictions"}`, `driftd_alerts_total{kind="data_drift",state="firing"}`,
			`driftd_consumer_lag{partition="0",topic="ml.predictions"}`, "driftd_clickhouse_insert_seconds_count", "driftd_window_close_seconds_count",
			"driftd_partitions_assigned 9"},
	} {
		resp, err := http.Get("http://" + healthAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode != 200 || !strings.Contains(string(body), w) {
				t.Errorf("%s: %d, want %q in it", path, resp.StatusCode, w)
			}
		}
	}
	// The pages: the overview lists the models, and the abruptly shifted model's page has
	// the shifted feature as its heat map's first (most drifted) row and its alert in the
	// timeline.
	for path, want := range map[string][]string{
		"/":                            {`href="model?name=sim-abrupt-shift"`, `href="model?name=sim-canary-latency"`, `class="critical">critical`},
		"/model?name=sim-abrupt-shift": {"driftd report: sim-abrupt-shift", `data-peak`, "feature amount of sim-abrupt-shift 1.0.0 drifted"},
	} {
		resp, err := http.Get("http://" + healthAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode != 200 || !strings.Contains(string(body), w) {
				t.Errorf("%s: %d, want %q in it", path, resp.StatusCode, w)
			}
		}
		if path != "/" {
			if first := regexp.MustCompile(`<svg class="heat"[^>]*><text[^>]*>([^<]*)</text>`).FindStringSubmatch(string(body)); first == nil || first[1] != "amount" {
				t.Errorf("%s: the heat map's first row is %v, want amount", path, first)
			}
		}
	}
	pagesInABrowser(t, "http://"+healthAddr)
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("dev returned %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, s := range scenarios {
		model := simulate.ModelOf(s.scenario)
		expected := map[key]bool{}
		for _, w := range s.want {
			for _, st := range w.states {
				if w.stage == "" {
					expected[key{model, w.kind, w.feature, w.deployment, "", st}] = true
				}
			}
		}
		for k, n := range alerts {
			if k.model == model && !expected[k] {
				t.Errorf("%s raised an unexpected alert %+v (%d times): %v", s.scenario, k, n, byName[model])
			}
			if k.model == model && n > 1 && k.state == "firing" {
				// Resolve-then-fire again is allowed only for a condition that really
				// came back; none of these scenarios does that.
				t.Errorf("%s fired %+v %d times: %v", s.scenario, k, n, byName[model])
			}
		}
		if s.later != "" {
			t.Logf("%s: detectors for %s arrive with later issues", s.scenario, s.later)
		}
	}
	if !strings.Contains(upstreamHint, "; upstream: stage join_orders of pipeline orders failed") {
		t.Errorf("the pipeline-failure model's drift alert does not point upstream: %q", upstreamHint)
	}
	var models []string
	for m := range byName {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		t.Logf("%s: %v", m, byName[m])
	}
}

// The live view shows each labelled model's latest settled accuracy and label coverage.
func TestDevViewShowsPerformance(t *testing.T) {
	var b strings.Builder
	v := newDevView(&b)
	pairs := []detectors.PerfPair{
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.9}, Label: schemas.Value{Kind: schemas.Number, Num: 1}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.9}, Label: schemas.Value{Kind: schemas.Number, Num: 0}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.1}},
		{Prediction: schemas.Value{Kind: schemas.Number, Num: 0.1}, Label: schemas.Value{Kind: schemas.Number, Num: 0}},
	}
	c, _, _ := detectors.ScorePairs(pairs)
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	series := processors.SeriesKey{Model: "churn", Version: "1", Deployment: schemas.DeploymentPrimary}
	v.performance([]storage.PerformanceRow{{Window: detectors.PerfWindow{Series: series, Start: at, End: at.Add(time.Minute)}, Counts: c}})
	v.table()
	if out := b.String(); !strings.Contains(out, "acc 0.67") || !strings.Contains(out, "75%") {
		t.Errorf("view:\n%s\nwant accuracy 0.67 and coverage 75%%", out)
	}
}

// On a terminal the view redraws one screen in place: the banner with the pages' address,
// the table and the latest alerts, each time; to a file it appends every line once.
func TestDevViewRedrawsInPlace(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	alert := func(i int) *schemas.AlertEvent {
		return &schemas.AlertEvent{State: schemas.StateFiring, Severity: "critical", Kind: schemas.KindDataDrift, Summary: fmt.Sprintf("alert %d", i)}
	}
	series := processors.SeriesKey{Model: "churn", Version: "1", Deployment: schemas.DeploymentPrimary}
	for _, redraw := range []bool{true, false} {
		var b strings.Builder
		v := newDevView(&b)
		v.redraw = redraw
		v.banner("127.0.0.1:9464", "127.0.0.1:9092", "127.0.0.1:8123", "driftd", true)
		v.verdict(detectors.Verdict{Window: processors.EmptyWindow(series, at.UnixMilli(), at.Add(time.Minute).UnixMilli())}, nil)
		for i := range 20 {
			v.alert(alert(i))
		}
		v.table()
		v.table()
		out := b.String()
		screens := strings.Split(out, "\x1b[H\x1b[2J")
		if !strings.Contains(out, "pages on http://127.0.0.1:9464/") {
			t.Errorf("redraw %v: the pages' address is not shown:\n%s", redraw, out)
		}
		if !redraw {
			if len(screens) != 1 || strings.Count(out, "alert 0\n") != 1 || strings.Count(out, "churn") != 2 {
				t.Errorf("appending view:\n%q", out)
			}
			continue
		}
		// Two screens after what the banner printed, each whole: header, table, the
		// latest 15 alerts (the first five dropped).
		if len(screens) != 3 {
			t.Fatalf("%d screens, want 2:\n%q", len(screens)-1, out)
		}
		for _, s := range screens[1:] {
			if !strings.Contains(s, "pages on http://") || !strings.Contains(s, "churn") || !strings.Contains(s, "alert 19\n") ||
				!strings.Contains(s, "alert 5\n") || strings.Contains(s, "alert 4\n") {
				t.Errorf("screen:\n%s", s)
			}
		}
	}
}

// pagesInABrowser loads the overview and the abruptly shifted model's page of a dev run
// at base in headless Chromium, as a person would see them: the overview's first row is
// a critical model, the model page's hottest heat-map cell is in the shifted feature's
// row (the first), its alert is in the timeline, and its distribution is drawn. The
// screenshots go to the test's folder (testenv.ScreenshotDir).
func pagesInABrowser(t *testing.T, base string) {
	t.Helper()
	ctx := testenv.Browser(t, testenv.Context(t, 2*time.Minute))
	dir := testenv.ScreenshotDir(t)
	// The feature of the row holding the hottest cell: rows are cellH (14) units apart.
	const hottestRow = `(() => {
  let best = null;
  for (const r of document.querySelectorAll('svg.heat rect')) {
    const c = Number(r.getAttribute('class').slice(1));
    if (best === null || c > best.c) best = {c, y: Number(r.getAttribute('y'))};
  }
  const labels = document.querySelectorAll('svg.heat text');
  return best === null ? '' : labels[Math.round(best.y / 14)].textContent;
})()`
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s in Chromium: %v", what, err)
		}
	}
	must("overview", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#models`))))
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#models tr:nth-child(2) td:first-child`)))
	must("overview's first row", err)
	overview, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must("overview screenshot", err)
	must("model page", chromedp.Do(ctx, chromedp.Navigate(base+"/model?name=sim-abrupt-shift"), chromedp.WaitVisible(chromedp.CSS(`svg.heat`))))
	hottest, err := chromedp.Run(ctx, chromedp.Evaluate[string](hottestRow))
	must("hottest cell", err)
	heatWidth, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('svg.heat').getBoundingClientRect().width`))
	must("heat map's width", err)
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	must("model page's text", err)
	page, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must("model page screenshot", err)
	for name, png := range map[string][]byte{"overview.png": overview, "model-sim-abrupt-shift.png": page} {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	if status != "critical" {
		t.Errorf("the overview's first model is %q, want a critical one first", status)
	}
	if hottest != "amount" || heatWidth < 400 {
		t.Errorf("the hottest heat-map cell is in %q's row (heat map %v px wide), want amount", hottest, heatWidth)
	}
	for _, want := range []string{"feature amount of sim-abrupt-shift 1.0.0 drifted", "Distribution of amount"} {
		if !strings.Contains(text, want) {
			t.Errorf("the model page does not show %q", want)
		}
	}
}
