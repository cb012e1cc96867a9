package pipeline_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// labelled is a labelled stream of one model: per one-minute window, n predictions (a
// probability of class 1) and their labels ten seconds later, drawn from the prediction
// until the concept flips (from window flip on, -1: never) and from its complement
// after. cover gives the share of a window's predictions labelled; every fifth label is
// sent twice. redo gives the share of a window's predictions for which the user outcome
// "redo_search" is reported, twenty seconds after (an outcome-only label; nil: none).
type labelled struct {
	windows, n, flip int
	cover, redo      func(w int) float64
	seed             uint64
	// start is the first window's (zero: t0).
	start time.Time
}

const labelModel = "churn"

// labelMessage is a label record keyed by request id, sent at its stamp (its Kafka time,
// as a label stream produced live has: driftd cuts off labels appended long after their
// window).
func labelMessage(t *testing.T, e *schemas.LabelEvent) kafka.Message {
	t.Helper()
	b, err := schemas.MarshalLabelJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(e.RequestID), Value: b, Time: e.Timestamp}
}

func (l labelled) messages(t *testing.T) (preds, labels []kafka.Message) {
	t.Helper()
	rng := rand.New(rand.NewPCG(l.seed, 13))
	start := l.start
	if start.IsZero() {
		start = t0
	}
	for w := 0; w < l.windows; w++ {
		for i := 0; i < l.n; i++ {
			at := start.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(l.n))
			p := rng.Float64()
			id := fmt.Sprintf("req-%d-%d", w, i)
			e := &schemas.PredictionEvent{EventID: id, RequestID: id, Model: labelModel, ModelVersion: "1", Timestamp: at, Status: "ok",
				LatencyMs: 10, Prediction: schemas.Value{Kind: schemas.Number, Num: p},
				Features: []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}}}
			preds = append(preds, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
			y := 0.0
			if rng.Float64() < p {
				y = 1
			}
			if l.flip >= 0 && w >= l.flip {
				y = 1 - y
			}
			if l.redo != nil && rng.Float64() < l.redo(w) {
				labels = append(labels, labelMessage(t, &schemas.LabelEvent{EventID: "o-" + id, RequestID: id, Model: labelModel,
					Timestamp: at.Add(20 * time.Second), Outcome: "redo_search"}))
			}
			if l.cover != nil && rng.Float64() >= l.cover(w) {
				continue
			}
			m := labelMessage(t, &schemas.LabelEvent{EventID: "l-" + id, RequestID: id, Model: labelModel, Timestamp: at.Add(10 * time.Second),
				Label: schemas.Value{Kind: schemas.Number, Num: y}})
			labels = append(labels, m)
			if i%5 == 0 {
				labels = append(labels, m)
			}
		}
	}
	// Labels of requests never predicted, after the stream: every label partition moves
	// past the last window, which then settles.
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("unknown-%d", i)
		labels = append(labels, labelMessage(t, &schemas.LabelEvent{EventID: "l-" + id, RequestID: id, Model: labelModel,
			Timestamp: start.Add(time.Duration(l.windows+5) * time.Minute), Label: schemas.Value{Kind: schemas.Number, Num: 1}}))
	}
	return preds, labels
}

// joinLabels makes the harness join h.labels, with the defaults but for a settle time
// and horizon sized for one-minute windows.
func joinLabels(h *harness) func(*pipeline.Settings) {
	return func(s *pipeline.Settings) {
		s.LabelTopic, s.LabelDecoder = h.labels, schemas.Decoder{Format: schemas.FormatAuto}
		s.Labels = pipeline.LabelSettings{Horizon: time.Hour, Settle: 30 * time.Second, Lateness: 5 * time.Second,
			Detector: detectors.ChangeADWIN, Thresholds: detectors.DefaultPerformanceThresholds}
	}
}

// perfRow is one stored window_performance row, as compared across runs.
type perfRow struct {
	start                          int64
	inRef                          uint8
	predictions, labelled, correct uint64
	coverage, accuracy, auc        float64
	outcomes                       string
}

func (h *harness) performance(t *testing.T) []perfRow {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT toUnixTimestamp(window_start), in_reference, predictions, labelled, correct, coverage, accuracy, roc_auc,
  toString(outcomes)
FROM `+h.store.Database()+`.window_performance FINAL ORDER BY window_start`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []perfRow
	for rows.Next() {
		var r perfRow
		var start uint32
		if err := rows.Scan(&start, &r.inRef, &r.predictions, &r.labelled, &r.correct, &r.coverage, &r.accuracy, &r.auc, &r.outcomes); err != nil {
			t.Fatal(err)
		}
		r.start = (int64(start) - t0.Unix()) / 60
		out = append(out, r)
	}
	return out
}

// labelAlerts are the performance, concept_drift and output_quality alerts stored, as
// "kind state window", the window judged (by its end: a low-volume window's alert spans
// the windows it was judged with).
func (h *harness) labelAlerts(t *testing.T) []string {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT kind, state, toUnixTimestamp(window_end) FROM `+h.store.Database()+`.alerts
WHERE kind IN ('performance', 'concept_drift', 'output_quality') ORDER BY window_end, kind, state`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, state string
		var end uint32
		if err := rows.Scan(&kind, &state, &end); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %d", kind, state, (int64(end)-t0.Unix())/60-1))
	}
	return out
}

// A concept flip, labels read before their predictions: every window's performance is
// stored with its coverage, duplicates count once, and the flip raises performance and
// concept_drift within two windows of it (and nothing before), whichever change detector
// watches the loss stream.
func TestLabelsConceptFlip(t *testing.T) {
	for _, kind := range []detectors.ChangeKind{detectors.ChangeADWIN, detectors.ChangeDDM, detectors.ChangeKSWIN} {
		t.Run(kind.String(), func(t *testing.T) { conceptFlip(t, kind) })
	}
}

func conceptFlip(t *testing.T, kind detectors.ChangeKind) {
	h := newHarness(t)
	join := joinLabels(h)
	h.tweak = func(s *pipeline.Settings) {
		join(s)
		s.Labels.Detector = kind
	}
	s := labelled{windows: 16, n: 200, flip: 10, seed: 1}
	preds, labels := s.messages(t)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("labels", func(st pipeline.Stats) bool { return st.Labels == uint64(len(labels)) })
	h.produce(t, preds...)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	stop()

	rows := h.performance(t)
	if len(rows) != s.windows {
		t.Fatalf("%d performance rows, want %d: %+v", len(rows), s.windows, rows)
	}
	for _, r := range rows {
		if r.predictions != uint64(s.n) || r.labelled != uint64(s.n) || r.coverage != 1 {
			t.Errorf("window %d: %d predictions, %d labelled, coverage %v; want %d, all labelled once", r.start, r.predictions, r.labelled, r.coverage, s.n)
		}
		if want := uint8(0); r.start < 3 {
			if r.inRef != 1 {
				t.Errorf("window %d is not in the reference", r.start)
			}
		} else if r.inRef != want {
			t.Errorf("window %d is in the reference", r.start)
		}
		before := r.start < int64(s.flip)
		if (before && (r.accuracy < 0.6 || r.auc < 0.65)) || (!before && (r.accuracy > 0.4 || r.auc > 0.35)) {
			t.Errorf("window %d: accuracy %.3f, AUC %.3f", r.start, r.accuracy, r.auc)
		}
	}
	alerts := h.labelAlerts(t)
	t.Logf("alerts: %v", alerts)
	first := map[string]int64{}
	for _, a := range alerts {
		var kind, state string
		var w int64
		fmt.Sscanf(a, "%s %s %d", &kind, &state, &w)
		if w < int64(s.flip) {
			t.Errorf("alert before the flip: %s", a)
		}
		if _, ok := first[kind]; !ok && state == schemas.StateFiring {
			first[kind] = w
		}
	}
	for _, kind := range []string{schemas.KindPerformance, schemas.KindConceptDrift} {
		w, ok := first[kind]
		if !ok || w > int64(s.flip)+1 {
			t.Errorf("%s fired at window %d (found %v), want within two windows of the flip at %d", kind, w, ok, s.flip)
		}
	}
}

// A stationary labelled stream whose labels thin out for a while (coverage 15%): no
// performance or concept_drift alert, and the thin windows say their coverage.
func TestLabelsCoverageDropIsNotAPerformanceChange(t *testing.T) {
	h := newHarness(t)
	h.tweak = joinLabels(h)
	s := labelled{windows: 16, n: 200, flip: -1, seed: 2, cover: func(w int) float64 {
		if w >= 8 && w < 12 {
			return 0.15
		}
		return 1
	}}
	preds, labels := s.messages(t)
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	stop()
	for _, r := range h.performance(t) {
		thin := r.start >= 8 && r.start < 12
		if thin && (r.coverage > 0.3 || r.coverage < 0.05) || !thin && r.coverage != 1 {
			t.Errorf("window %d: coverage %v", r.start, r.coverage)
		}
	}
	if a := h.labelAlerts(t); len(a) > 0 {
		t.Errorf("alerts on a stationary stream: %v", a)
	}
}

// The same labelled stream read in one run and across restarts, predictions first: the
// same rows and the same alerts.
func TestLabelsRestartGivesTheSameResults(t *testing.T) {
	s := labelled{windows: 16, n: 200, flip: 9, seed: 3, redo: redoFrom(11, 0.1, 0.4)}
	rowsA, alertsA := s.run(t, false)
	rowsB, alertsB := s.run(t, true)
	if fmt.Sprint(rowsA) != fmt.Sprint(rowsB) {
		t.Errorf("rows differ:\none run:  %v\nrestarts: %v", rowsA, rowsB)
	}
	if strings.Join(alertsA, ",") != strings.Join(alertsB, ",") {
		t.Errorf("alerts differ:\none run:  %v\nrestarts: %v", alertsA, alertsB)
	}
	kinds := map[string]bool{}
	for _, a := range alertsA {
		kinds[strings.Fields(a)[0]] = true
	}
	for _, kind := range []string{schemas.KindPerformance, schemas.KindConceptDrift, schemas.KindOutputQuality} {
		if !kinds[kind] {
			t.Errorf("no %s alert: the comparison proves little for it (%v)", kind, alertsA)
		}
	}
}

// At 10 labels a window (no single window has the evidence: 8 wrong of 10 against the
// reference's 20% is p ~ 1e-4) a window is judged together with the ones before it, up
// to 100 labels: the flip raises performance within four windows, with an alert that
// spans the windows judged, nothing fires before it, and a run with restarts gives the
// same rows and alerts (the windows merged with come back from ClickHouse).
func TestLabelsLowVolumeMergesWindows(t *testing.T) {
	s := labelled{windows: 32, n: 10, flip: 24, seed: 9}
	rowsA, alertsA := s.run(t, false)
	rowsB, alertsB := s.run(t, true)
	if fmt.Sprint(rowsA) != fmt.Sprint(rowsB) || strings.Join(alertsA, ",") != strings.Join(alertsB, ",") {
		t.Errorf("one run and restarts differ:\n%v\n%v\n%v\n%v", rowsA, rowsB, alertsA, alertsB)
	}
	t.Logf("alerts: %v", alertsA)
	first := -1
	for _, a := range alertsA {
		var kind, state string
		var w int
		fmt.Sscanf(a, "%s %s %d", &kind, &state, &w)
		if w < s.flip {
			t.Errorf("alert before the flip: %s", a)
		}
		if kind == schemas.KindPerformance && state == schemas.StateFiring && first < 0 {
			first = w
		}
	}
	if first < s.flip || first > s.flip+3 {
		t.Errorf("performance first fired at window %d, want within four windows of the flip at %d", first, s.flip)
	}
}

// run reads the stream once (restarts false) or with a restart after each third of the
// predictions (whole windows; the labels are all in their topic from the start, as
// they are in a backlog read across restarts: a live topic never shows a label appended
// long ago for the first time), and returns the performance rows and label alerts
// stored.
func (s labelled) run(t *testing.T, restarts bool) ([]perfRow, []string) {
	t.Helper()
	h := newHarness(t)
	h.tweak = joinLabels(h)
	h.shutdown = true
	preds, labels := s.messages(t)
	h.produceTo(t, h.labels, labels...)
	if !restarts {
		h.produce(t, preds...)
		waitFor, stop := h.start(t)
		waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
		stop()
		return h.performance(t), h.labelAlerts(t)
	}
	settled, from := uint64(0), 0
	for i, until := range []int{s.windows / 3, 2 * s.windows / 3, s.windows} {
		h.produce(t, preds[from*s.n:until*s.n]...)
		waitFor, stop := h.start(t)
		waitFor(fmt.Sprintf("part %d", i), func(st pipeline.Stats) bool { return settled+st.PerformanceWindows == uint64(until) })
		st := stop()
		settled += st.PerformanceWindows
		from = until
	}
	if settled != uint64(s.windows) {
		t.Errorf("%d windows settled over the runs, want %d (each once)", settled, s.windows)
	}
	return h.performance(t), h.labelAlerts(t)
}

// redoFrom is a redo_search rate: before until window w, after from it on.
func redoFrom(w int, before, after float64) func(int) float64 {
	return func(x int) float64 {
		if x >= w {
			return after
		}
		return before
	}
}

// User outcomes on a stationary labelled stream: each window stores how many of its
// predictions had each outcome, and the redo_search rate going from 10% to 30% raises
// output_quality on the window it changed, and nothing else fires.
func TestLabelsOutcomeRateChange(t *testing.T) {
	h := newHarness(t)
	h.tweak = joinLabels(h)
	s := labelled{windows: 16, n: 300, flip: -1, seed: 4, redo: redoFrom(10, 0.1, 0.3)}
	preds, labels := s.messages(t)
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	stop()
	for _, r := range h.performance(t) {
		var redo uint64
		if _, err := fmt.Sscanf(r.outcomes, "{'redo_search':%d}", &redo); err != nil {
			t.Errorf("window %d: outcomes %s (%v)", r.start, r.outcomes, err)
		}
		if rate := float64(redo) / float64(r.predictions); (r.start < 10 && (rate < 0.05 || rate > 0.16)) || (r.start >= 10 && (rate < 0.22 || rate > 0.38)) {
			t.Errorf("window %d: redo_search on %d of %d predictions", r.start, redo, r.predictions)
		}
	}
	alerts := h.labelAlerts(t)
	t.Logf("alerts: %v", alerts)
	if len(alerts) == 0 || alerts[0] != "output_quality firing 10" {
		t.Errorf("alerts %v, want output_quality firing at window 10 first", alerts)
	}
	for _, a := range alerts {
		if !strings.HasPrefix(a, schemas.KindOutputQuality+" ") {
			t.Errorf("alert on a stationary labelled stream: %s", a)
		}
	}
}

// A label stamped ahead of driftd's clock is broken input (ground truth follows its
// prediction): it goes to the dead-letter topic and moves nothing; the labels after it on
// its partition still join.
func TestLabelStampedAheadIsSetAside(t *testing.T) {
	h := newHarnessN(t, 1)
	h.tweak = joinLabels(h)
	s := labelled{windows: 6, n: 50, flip: -1, seed: 4}
	preds, labels := s.messages(t)
	ahead, err := schemas.MarshalLabelJSON(&schemas.LabelEvent{EventID: "ahead", RequestID: "req-0-0", Model: labelModel,
		Timestamp: time.Now().Add(2 * time.Hour), Label: schemas.Value{Kind: schemas.Number, Num: 1}})
	if err != nil {
		t.Fatal(err)
	}
	labels = append([]kafka.Message{{Key: []byte("ahead"), Value: ahead}}, labels...)
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	st := stop()
	if st.DeadLettered != 1 || st.Labels != uint64(len(labels)-1) {
		t.Errorf("dead-lettered %d, labels %d; want 1 and %d", st.DeadLettered, st.Labels, len(labels)-1)
	}
	if dl := readAll(t, h.brokers, h.dlq, 1); !strings.Contains(string(dl[0].Value), `"ahead"`) {
		t.Errorf("dead letter %s", dl[0].Value)
	}
	for _, r := range h.performance(t) {
		if r.labelled != uint64(s.n) {
			t.Errorf("window %d: %d of %d labelled", r.start, r.labelled, s.n)
		}
	}
}

// A model whose labels come two minutes after its predictions, with its own settle time
// (models.<m>.labels.settle), is judged with all of them; a model beside it with the
// section's settle time settles as before.
func TestLabelsSettlePerModel(t *testing.T) {
	h := newHarness(t)
	join := joinLabels(h)
	h.tweak = func(s *pipeline.Settings) {
		join(s)
		section := s.Labels
		s.Labels.ForModel = func(model string) pipeline.LabelSettings {
			l := section
			if model == "slow" {
				l.Settle = 3 * time.Minute
			}
			return l
		}
		s.Labels.MinSettle = section.Settle
	}
	fast := labelled{windows: 8, n: 100, flip: -1, seed: 6}
	preds, labels := fast.messages(t)
	rng := rand.New(rand.NewPCG(6, 6))
	const slowN = 100
	for w := 0; w < fast.windows; w++ {
		for i := 0; i < slowN; i++ {
			at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/slowN)
			id := fmt.Sprintf("slow-%d-%d", w, i)
			p := rng.Float64()
			preds = append(preds, kafka.Message{Key: []byte(id), Value: jsonOf(t, &schemas.PredictionEvent{EventID: id, RequestID: id, Model: "slow",
				ModelVersion: "1", Timestamp: at, Status: "ok", LatencyMs: 10, Prediction: schemas.Value{Kind: schemas.Number, Num: p}})})
			labels = append(labels, labelMessage(t, &schemas.LabelEvent{EventID: "l-" + id, RequestID: id, Model: "slow", Timestamp: at.Add(2 * time.Minute),
				Label: schemas.Value{Kind: schemas.Number, Num: float64(rng.IntN(2))}}))
		}
	}
	// Each label partition in event-time order, as a live label stream is: the slow
	// model's labels among the others' by their time.
	stamp := func(m kafka.Message) time.Time {
		var v struct{ Timestamp time.Time }
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatal(err)
		}
		return v.Timestamp
	}
	sort.SliceStable(labels, func(i, j int) bool { return stamp(labels[i]).Before(stamp(labels[j])) })
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(2*fast.windows) })
	stop()
	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT model, count(), min(coverage), max(toInt64(dateDiff('second', window_end, labels_until))) FROM `+h.store.Database()+`.window_performance FINAL
GROUP BY model ORDER BY model`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var model string
		var n uint64
		var coverage float64
		var settle int64
		if err := rows.Scan(&model, &n, &coverage, &settle); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s: %d windows, coverage ≥ %.2f, settled %ds after the end", model, n, coverage, settle))
	}
	want := []string{"churn: 8 windows, coverage ≥ 1.00, settled 30s after the end", "slow: 8 windows, coverage ≥ 1.00, settled 180s after the end"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// Prediction keys and labels ClickHouse refuses for good (here: constraints the engine
// enforces) are set aside one by one, each with its record's place; everything else is
// written and every window settles.
func TestRefusedLabelDataIsSetAsideOneByOne(t *testing.T) {
	h := newHarness(t)
	h.tweak = joinLabels(h)
	db := h.store.Database()
	ctx := testenv.Context(t, 3*time.Minute)
	for _, q := range []string{
		"ALTER TABLE " + db + ".prediction_key_batches ADD CONSTRAINT no_key CHECK NOT hasAny(request_ids, ['req-2-7', 'req-5-3'])",
		"ALTER TABLE " + db + ".label_events ADD CONSTRAINT no_label CHECK request_id != 'req-4-5'",
	} {
		if err := h.store.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := labelled{windows: 8, n: 100, flip: -1, seed: 8}
	preds, labels := s.messages(t)
	h.produce(t, preds...)
	h.produceTo(t, h.labels, labels...)
	waitFor, stop := h.start(t)
	waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
	st := stop()
	// req-4-5's label is sent twice (every fifth is): both copies are refused.
	const refused = 4
	if st.DeadLettered != refused {
		t.Errorf("%d set aside, want %d", st.DeadLettered, refused)
	}
	var got []string
	for _, m := range readAll(t, h.brokers, h.dlq, refused) {
		var rows map[string][]map[string]any
		if err := json.Unmarshal(m.Value, &rows); err != nil {
			t.Fatalf("dead letter %q: %v", m.Value, err)
		}
		for table, rs := range rows {
			if len(rs) != 1 || testenv.Header(m, consumers.HeaderErrorClass) != consumers.ClassWriteFatal {
				t.Errorf("dead letter %s: %d rows of %s", m.Value, len(rs), table)
			}
			topic, offset := testenv.Header(m, consumers.HeaderSourceTopic), testenv.Header(m, consumers.HeaderSourceOffset)
			if (table == "label_events" && topic != h.labels) || (table != "label_events" && topic != h.predictions) || offset == "" || offset == "-1" {
				t.Errorf("dead letter of %s from %s at %s", table, topic, offset)
			}
			id := rs[0]["request_id"]
			if table == "prediction_key_batches" {
				id = rs[0]["request_ids"] // a row of the one key
			}
			got = append(got, fmt.Sprintf("%s %v", table, id))
		}
	}
	sort.Strings(got)
	if want := "[label_events req-4-5 label_events req-4-5 prediction_key_batches [req-2-7] prediction_key_batches [req-5-3]]"; fmt.Sprint(got) != want {
		t.Errorf("set aside %v, want %s", got, want)
	}
	if n := h.count(t, "SELECT uniqExact(model, model_version, deployment, window_start, request_id, event_time) FROM "+db+
		".prediction_key_batches ARRAY JOIN request_ids AS request_id, event_times AS event_time"); n != uint64(s.windows*s.n-2) {
		t.Errorf("%d keys written, want all but two", n)
	}
}

// A label partition that goes quiet and, long after, delivers labels stamped in the past
// (a backfill) gives them to no window that could settle before them, whether the stream
// is read live or as a backlog: the windows' rows are the same both ways. Two label
// partitions: both carry the first two windows' labels; then the first carries the rest
// (and, last, a label stamped two hours on), the second nothing; the third window's
// labels come to the second partition only, appended after every window settled live.
// Before record times were kept, the quiet partition was left out live (an hour behind
// the other) and waited for from a backlog, which joined the backfill.
func TestLabelsBackfillOnAQuietPartition(t *testing.T) {
	s := labelled{windows: 6, n: 100, flip: -1, seed: 5}
	run := func(live bool) []perfRow {
		h := newHarnessN(t, 2)
		h.tweak = joinLabels(h)
		preds, labels := s.messages(t)
		on := [2][]byte{keyOn(t, 0, 2), keyOn(t, 1, 2)}
		var onTime, backfill []kafka.Message
		for _, m := range labels {
			var v struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatal(err)
			}
			w := -1
			fmt.Sscanf(v.RequestID, "req-%d-", &w)
			switch {
			case w == 3:
				m.Key, m.Time = on[1], time.Time{} // appended now: long after its window
				backfill = append(backfill, m)
			case w >= 2 || w < 0:
				m.Key = on[0]
				onTime = append(onTime, m)
			default:
				onTime = append(onTime, m)
			}
		}
		onTime = append(onTime, labelMessage(t, &schemas.LabelEvent{EventID: "later", RequestID: "later", Model: labelModel,
			Timestamp: t0.Add(2 * time.Hour), Label: schemas.Value{Kind: schemas.Number, Num: 1}}))
		onTime[len(onTime)-1].Key = on[0]
		h.produce(t, preds...)
		h.produceTo(t, h.labels, onTime...)
		if !live {
			h.produceTo(t, h.labels, backfill...)
		}
		waitFor, stop := h.start(t)
		waitFor("every window settled", func(st pipeline.Stats) bool { return st.PerformanceWindows == uint64(s.windows) })
		if live {
			h.produceTo(t, h.labels, backfill...)
		}
		all := uint64(len(onTime) + len(backfill))
		waitFor("every label read", func(st pipeline.Stats) bool { return st.Labels == all })
		stop()
		return h.performance(t)
	}
	live, backlog := run(true), run(false)
	if fmt.Sprint(live) != fmt.Sprint(backlog) {
		t.Errorf("rows differ:\nlive:    %v\nbacklog: %v", live, backlog)
	}
	if len(live) != s.windows {
		t.Fatalf("%d rows, want %d", len(live), s.windows)
	}
	for _, r := range live {
		if want := uint64(s.n); r.start == 3 {
			if r.labelled != 0 {
				t.Errorf("window 3: %d labelled, want none (its labels were appended long after it)", r.labelled)
			}
		} else if r.labelled != want {
			t.Errorf("window %d: %d labelled, want %d", r.start, r.labelled, want)
		}
	}
}

// keyOn returns a key the harness's writer (kafka.Hash) sends to partition p of n.
func keyOn(t *testing.T, p, n int) []byte {
	t.Helper()
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	for i := 0; i < 1000; i++ {
		k := []byte(fmt.Sprintf("key-%d", i))
		if (&kafka.Hash{}).Balance(kafka.Message{Key: k}, parts...) == p {
			return k
		}
	}
	t.Fatalf("no key for partition %d of %d", p, n)
	return nil
}
