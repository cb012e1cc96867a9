package pipeline_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// slotTraffic is one deployment slot's share of a model's traffic in the canary test.
type slotTraffic struct {
	version, slot string
	perWindow     int
	slower        float64 // latency factor (0: 1)
	predShift     float64
}

// Canaries judged against their primary on real Kafka and the engine, with the defaults
// but a promote after four healthy windows: a canary four times slower fires the
// critical rollback alert after two windows of regression; one whose predictions moved
// fires it too; a healthy canary yields the info-level promote recommendation after four
// windows and never a regression; a canary at 1% of traffic is inconclusive in every
// window and raises nothing. Every canary window has its row in canary_analysis.
func TestCanaryAnalysis(t *testing.T) {
	h := newHarness(t)
	h.tweak = func(s *pipeline.Settings) {
		s.Canary = detectors.DefaultCanarySettings
		s.Canary.PromoteWindows = 4
	}
	const windows = 8
	models := map[string][]slotTraffic{
		"slow":  {{"1", schemas.DeploymentPrimary, 400, 0, 0}, {"2", schemas.DeploymentCanary, 150, 4, 0}},
		"moved": {{"1", schemas.DeploymentPrimary, 400, 0, 0}, {"2", schemas.DeploymentCanary, 150, 0, 0.3}},
		"same":  {{"1", schemas.DeploymentPrimary, 400, 0, 0}, {"2", schemas.DeploymentCanary, 150, 0, 0}},
		"tiny":  {{"1", schemas.DeploymentPrimary, 990, 0, 0}, {"2", schemas.DeploymentCanary, 10, 0, 0}},
		"alone": {{"1", schemas.DeploymentPrimary, 100, 0, 0}},
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for _, model := range []string{"slow", "moved", "same", "tiny", "alone"} {
			for _, s := range models[model] {
				for i := 0; i < s.perWindow; i++ {
					at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(s.perWindow))
					amount := 100 + 15*rng.NormFloat64()
					id := fmt.Sprintf("%s-%s-%d-%d", model, s.slot, w, i)
					e := &schemas.PredictionEvent{EventID: id, RequestID: id, Model: model, ModelVersion: s.version, Deployment: s.slot,
						Timestamp: at, Status: "ok", LatencyMs: 40 * math.Exp(0.5*rng.NormFloat64()) * max(s.slower, 1),
						Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: amount}}},
						Prediction: schemas.Value{Kind: schemas.Number, Num: 1/(1+math.Exp(-(amount-100)/15)) + s.predShift}}
					msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
				}
			}
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	series := 9
	waitFor("every window judged", func(st pipeline.Stats) bool { return st.WindowsClosed >= uint64(series*windows) })
	stop()

	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT model, groupArray(verdict) FROM (SELECT model, verdict FROM `+h.store.Database()+`.canary_analysis FINAL
ORDER BY model, window_start) GROUP BY model ORDER BY model`)
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string][]string{}
	for rows.Next() {
		var model string
		var v []string
		if err := rows.Scan(&model, &v); err != nil {
			t.Fatal(err)
		}
		verdicts[model] = v
	}
	rows.Close()
	t.Logf("verdicts: %v", verdicts)
	all := func(model, want string) {
		t.Helper()
		if len(verdicts[model]) != windows {
			t.Errorf("%s: %d canary rows, want %d", model, len(verdicts[model]), windows)
		}
		for i, v := range verdicts[model] {
			if v != want {
				t.Errorf("%s window %d: %s, want %s", model, i, v, want)
			}
		}
	}
	all("slow", "regression")
	all("moved", "regression")
	all("same", "healthy")
	all("tiny", "inconclusive")
	if _, ok := verdicts["alone"]; ok {
		t.Errorf("a model without a canary has canary rows")
	}

	rows, err = h.store.Conn().Query(ctx, `SELECT model, metric, severity, toUnixTimestamp(window_end), summary FROM `+h.store.Database()+`.alerts FINAL
WHERE kind = 'canary' AND state = 'firing' ORDER BY model, metric`)
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for rows.Next() {
		var model, metric, severity, summary string
		var end uint32
		if err := rows.Scan(&model, &metric, &severity, &end, &summary); err != nil {
			t.Fatal(err)
		}
		w := (int64(end)-t0.Unix())/60 - 1
		fired = append(fired, fmt.Sprintf("%s %s %s %d", model, metric, severity, w))
		if metric == "canary_regression" && !strings.Contains(summary, "rollback") {
			t.Errorf("regression summary does not recommend rollback: %s", summary)
		}
		t.Logf("%s: %s", model, summary)
	}
	rows.Close()
	sort.Strings(fired)
	want := []string{"moved canary_regression critical 1", "same canary_promote info 3", "slow canary_regression critical 1"}
	if fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Errorf("canary alerts fired %v, want %v", fired, want)
	}
}

// Shadows joined to their primary by request id on real Kafka and the engine: a shadow
// that agrees with the primary on ~95% of requests and then flips half its answers fires
// shadow on the first window of the change (its first three windows are its reference),
// and one that keeps agreeing raises nothing. Every shadow window has its row.
func TestShadowAnalysis(t *testing.T) {
	h := newHarness(t)
	h.tweak = joinLabels(h) // the prediction keys the join runs on are kept with a label topic
	const windows, perWindow, flipFrom = 9, 200, 6
	rng := rand.New(rand.NewPCG(5, 5))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for _, model := range []string{"flip", "steady"} {
			for i := 0; i < perWindow; i++ {
				at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow)
				id := fmt.Sprintf("%s-%d-%d", model, w, i)
				p := rng.Float64()
				s := min(max(p+0.05*rng.NormFloat64(), 0), 1)
				if model == "flip" && w >= flipFrom && i%2 == 0 {
					s = 1 - s
				}
				for _, slot := range []struct {
					version, deployment string
					score               float64
				}{{"1", schemas.DeploymentPrimary, p}, {"2", schemas.DeploymentShadow, s}} {
					e := &schemas.PredictionEvent{EventID: id + "-" + slot.deployment, RequestID: id, Model: model, ModelVersion: slot.version,
						Deployment: slot.deployment, Timestamp: at, Status: "ok", LatencyMs: 20,
						Prediction: schemas.Value{Kind: schemas.Number, Num: slot.score}}
					msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
				}
			}
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("every window judged", func(st pipeline.Stats) bool { return st.WindowsClosed >= uint64(4*windows) })
	stop()

	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT model, groupArray(in_reference), groupArray(round(agreement, 2)) FROM (SELECT * FROM `+h.store.Database()+`.shadow_analysis FINAL
ORDER BY model, window_start) GROUP BY model ORDER BY model`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var model string
		var inRef []uint8
		var agreement []float64
		if err := rows.Scan(&model, &inRef, &agreement); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: in reference %v, agreement %v", model, inRef, agreement)
		if len(inRef) != windows || fmt.Sprint(inRef[:4]) != "[1 1 1 0]" {
			t.Errorf("%s: %d rows, in reference %v; want %d, the first three", model, len(inRef), inRef, windows)
		}
		for w, a := range agreement {
			if changed := model == "flip" && w >= flipFrom; (changed && a > 0.7) || (!changed && a < 0.85) {
				t.Errorf("%s window %d: agreement %v", model, w, a)
			}
		}
	}
	rows.Close()
	var fired []string
	rows, err = h.store.Conn().Query(ctx, `SELECT model, metric, state, toUnixTimestamp(window_end) FROM `+h.store.Database()+`.alerts FINAL
WHERE kind = 'shadow' ORDER BY window_end, model`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var model, metric, state string
		var end uint32
		if err := rows.Scan(&model, &metric, &state, &end); err != nil {
			t.Fatal(err)
		}
		fired = append(fired, fmt.Sprintf("%s %s %s %d", model, metric, state, (int64(end)-t0.Unix())/60-1))
	}
	rows.Close()
	if want := []string{fmt.Sprintf("flip disagreement_vs_reference firing %d", flipFrom)}; fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Errorf("shadow alerts %v, want %v", fired, want)
	}
}

// Blue/green on real Kafka and the engine: a model's traffic moves from blue to green at
// window 4. The switch is marked (an info alert, "switched at"); green's first windows are
// compared with blue's last one: as good, three healthy rows and nothing else; four
// times slower, a critical alert recommending a switch back on the switch's window, and
// the comparison goes on while it fires. Blue, silent after the switch, is not paged as
// stopped: the model's blue and green traffic together did not drop.
func TestBlueGreenSwitch(t *testing.T) {
	h := newHarness(t)
	const windows, perWindow, switchAt = 8, 300, 4
	rng := rand.New(rand.NewPCG(8, 8))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for _, model := range []string{"bg-same", "bg-slow"} {
			version, slot, slower := "1", schemas.DeploymentBlue, 1.0
			if w >= switchAt {
				version, slot = "2", schemas.DeploymentGreen
				if model == "bg-slow" {
					slower = 4
				}
			}
			for i := 0; i < perWindow; i++ {
				at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow)
				id := fmt.Sprintf("%s-%d-%d", model, w, i)
				e := &schemas.PredictionEvent{EventID: id, RequestID: id, Model: model, ModelVersion: version, Deployment: slot,
					Timestamp: at, Status: "ok", LatencyMs: 40 * math.Exp(0.5*rng.NormFloat64()) * slower,
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
			}
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	// Blue's empty windows after the switch count as closed too: wait for green's last.
	waitFor("every window judged", func(st pipeline.Stats) bool {
		return h.count(t, fmt.Sprintf("SELECT uniqExact(model) FROM %s.window_model_stats WHERE model_version = '2' AND window_start = toDateTime64(%d, 3, 'UTC')",
			h.store.Database(), t0.Add((windows-1)*time.Minute).Unix())) == 2
	})
	stop()

	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT model, groupArray(concat(toString(dateDiff('minute', toDateTime64(`+fmt.Sprint(t0.Unix())+`, 3, 'UTC'), window_start)), ' ', verdict))
FROM (SELECT * FROM `+h.store.Database()+`.canary_analysis FINAL ORDER BY model, window_start) GROUP BY model ORDER BY model`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var model string
		var v []string
		if err := rows.Scan(&model, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, model+": "+strings.Join(v, ", "))
	}
	rows.Close()
	want := []string{"bg-same: 4 healthy, 5 healthy, 6 healthy", "bg-slow: 4 regression, 5 regression, 6 regression, 7 regression"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("comparisons after the switch:\n%v\nwant\n%v", got, want)
	}
	rows, err = h.store.Conn().Query(ctx, `SELECT model, metric, severity, state, toUnixTimestamp(window_end), summary FROM `+h.store.Database()+`.alerts FINAL
ORDER BY model, metric, window_end, state`)
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for rows.Next() {
		var model, metric, severity, state, summary string
		var end uint32
		if err := rows.Scan(&model, &metric, &severity, &state, &end, &summary); err != nil {
			t.Fatal(err)
		}
		fired = append(fired, fmt.Sprintf("%s %s %s %s %d", model, metric, severity, state, (int64(end)-t0.Unix())/60-1))
		t.Logf("%s %s: %s", model, state, summary)
	}
	rows.Close()
	want = []string{
		"bg-same traffic_switch info firing 4", "bg-same traffic_switch info resolved 6",
		"bg-slow switch_regression critical firing 4",
		"bg-slow traffic_switch info firing 4", "bg-slow traffic_switch info resolved 6",
	}
	if fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Errorf("alerts:\n%v\nwant\n%v", fired, want)
	}
}

// A canary whose labelled predictions are worse than the primary's in the same windows
// (its labels flipped: wrong where the primary is right) fires canary_performance after
// two windows, recommending rollback, once the windows' labels settle; the primary
// compared with itself raises nothing.
func TestCanaryPerformance(t *testing.T) {
	h := newHarness(t)
	h.tweak = joinLabels(h)
	const windows = 5
	rng := rand.New(rand.NewPCG(9, 9))
	var preds, labels []kafka.Message
	for w := 0; w < windows; w++ {
		for _, slot := range []struct {
			version, deployment string
			n                   int
		}{{"1", schemas.DeploymentPrimary, 200}, {"2", schemas.DeploymentCanary, 150}} {
			for i := 0; i < slot.n; i++ {
				at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(slot.n))
				id := fmt.Sprintf("%s-%d-%d", slot.deployment, w, i)
				p := rng.Float64()
				preds = append(preds, kafka.Message{Key: []byte(id), Value: jsonOf(t, &schemas.PredictionEvent{EventID: id, RequestID: id, Model: labelModel,
					ModelVersion: slot.version, Deployment: slot.deployment, Timestamp: at, Status: "ok", LatencyMs: 10,
					Prediction: schemas.Value{Kind: schemas.Number, Num: p}})})
				y := 0.0
				if rng.Float64() < p {
					y = 1
				}
				if slot.deployment == schemas.DeploymentCanary {
					y = 1 - y
				}
				labels = append(labels, labelMessage(t, &schemas.LabelEvent{EventID: "l-" + id, RequestID: id, Model: labelModel,
					Timestamp: at.Add(10 * time.Second), Label: schemas.Value{Kind: schemas.Number, Num: y}}))
			}
		}
	}
	// Labels of no request after the stream: every label partition moves past the last
	// window.
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("later-%d", i)
		labels = append(labels, labelMessage(t, &schemas.LabelEvent{EventID: id, RequestID: id, Model: labelModel,
			Timestamp: t0.Add((windows + 5) * time.Minute), Label: schemas.Value{Kind: schemas.Number, Num: 1}}))
	}
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == 2*windows })
	stop()
	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT model_version, deployment, metric, state, toUnixTimestamp(window_end), summary FROM `+h.store.Database()+`.alerts FINAL
WHERE kind = 'canary' ORDER BY window_end, metric`)
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for rows.Next() {
		var version, deployment, metric, state, summary string
		var end uint32
		if err := rows.Scan(&version, &deployment, &metric, &state, &end, &summary); err != nil {
			t.Fatal(err)
		}
		if metric == "canary_performance" {
			fired = append(fired, fmt.Sprintf("%s %s %s %d", version, deployment, state, (int64(end)-t0.Unix())/60-1))
			t.Log(summary)
		}
	}
	rows.Close()
	if want := []string{"2 canary firing 1"}; fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Errorf("canary_performance alerts %v, want %v", fired, want)
	}
}

// A canary rollout that ends (the canary slot falls silent, its traffic back on the
// primary) is not an outage: no volume alert for the canary, while a model whose every
// slot falls silent still pages.
func TestCanaryRolloutEndIsNotAnOutage(t *testing.T) {
	h := newHarness(t)
	const windows, until = 12, 6
	rng := rand.New(rand.NewPCG(4, 4))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for _, slot := range []struct {
			model, version, deployment string
			n, until                   int
		}{{"rollout", "1", schemas.DeploymentPrimary, 300, windows}, {"rollout", "2", schemas.DeploymentCanary, 60, until},
			{"outage", "1", schemas.DeploymentPrimary, 300, until}, {"outage", "2", schemas.DeploymentCanary, 60, until}} {
			if w >= slot.until {
				continue
			}
			for i := 0; i < slot.n; i++ {
				at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(slot.n))
				id := fmt.Sprintf("%s-%s-%d-%d", slot.model, slot.deployment, w, i)
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, &schemas.PredictionEvent{EventID: id, RequestID: id, Model: slot.model,
					ModelVersion: slot.version, Deployment: slot.deployment, Timestamp: at, Status: "ok", LatencyMs: 10 + rng.Float64(),
					Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}})})
			}
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("the rollout model's last window", func(st pipeline.Stats) bool {
		return h.count(t, fmt.Sprintf("SELECT uniqExact(model_version) FROM %s.window_model_stats WHERE model = 'rollout' AND window_start = toDateTime64(%d, 3, 'UTC')",
			h.store.Database(), t0.Add((windows-1)*time.Minute).Unix())) >= 1
	})
	waitFor("the outage paged", func(st pipeline.Stats) bool {
		return h.count(t, "SELECT count() FROM "+h.store.Database()+".alerts FINAL WHERE kind = 'volume' AND model = 'outage'") > 0
	})
	stop()
	if n := h.count(t, "SELECT count() FROM "+h.store.Database()+".alerts FINAL WHERE kind = 'volume' AND model = 'rollout'"); n != 0 {
		t.Errorf("%d volume alerts for the rollout's end", n)
	}
}

// A gradual blue/green shift (a fifth of the traffic moved each window) pages nobody:
// blue's windows fall below what it sent, one by one and as a run, while the model's
// serving traffic holds.
func TestBlueGreenGradualShiftIsNotAnOutage(t *testing.T) {
	h := newHarness(t)
	const windows, perWindow = 14, 400
	rng := rand.New(rand.NewPCG(6, 6))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		green := min(max(w-4, 0)*perWindow/5, perWindow) // from window 5, a fifth more a window
		for i := 0; i < perWindow; i++ {
			version, slot := "1", schemas.DeploymentBlue
			if i < green {
				version, slot = "2", schemas.DeploymentGreen
			}
			at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow)
			id := fmt.Sprintf("shift-%d-%d", w, i)
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, &schemas.PredictionEvent{EventID: id, RequestID: id, Model: "shift",
				ModelVersion: version, Deployment: slot, Timestamp: at, Status: "ok", LatencyMs: 10 + rng.Float64(),
				Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}})})
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("green's last window", func(st pipeline.Stats) bool {
		return h.count(t, fmt.Sprintf("SELECT count() FROM %s.window_model_stats WHERE deployment = 'green' AND window_start = toDateTime64(%d, 3, 'UTC')",
			h.store.Database(), t0.Add((windows-1)*time.Minute).Unix())) > 0
	})
	stop()
	if n := h.count(t, "SELECT count() FROM "+h.store.Database()+".alerts FINAL WHERE kind = 'volume'"); n != 0 {
		t.Errorf("%d volume alerts for a gradual blue/green shift", n)
	}
}
