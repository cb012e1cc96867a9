package pipeline_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// A partition whose reader has never seen a model does not hold the model's judging back
// (it has no progress row). Its first records of the model, for a window already judged,
// are late, as one member counts them (the window is closed whole), not a partial nobody
// judges: a reader learns how far the model is judged before a partition's first record
// of it, and at every flush.
func TestSpreadRecordOfAJudgedWindowIsLate(t *testing.T) { firstSeenAfterJudged(t, true) }

// The same with active/standby: the record is late, every row judged.
func TestOneMemberRecordOfAJudgedWindowIsLate(t *testing.T) { firstSeenAfterJudged(t, false) }

func firstSeenAfterJudged(t *testing.T, spread bool) {
	h := newHarnessN(t, 4)
	h.spread = spread
	// Flushes seconds apart: the other member reads the record long before its next
	// flush would tell it that the window is judged.
	h.tweak = func(s *pipeline.Settings) { s.FlushInterval = 3 * time.Second }
	waitA, stopA := h.start(t)
	defer stopA()
	// A in a generation of its own first, so that B's join takes partitions from it.
	waitA("a first flush", func(s pipeline.Stats) bool { return s.Flushes >= 1 })
	_, stopB := h.start(t)
	defer stopB()
	if spread {
		// B's join took partitions 2 and 3 from A (range: {0,1} and {2,3}): the record
		// below is read by the member that does not judge the model.
		waitA("a rebalance that gives the other member partitions", func(s pipeline.Stats) bool { return s.Rebalances >= 1 })
	}

	w := &kafka.Writer{Addr: kafka.TCP(h.brokers), Topic: h.predictions, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { p, _ := strconv.Atoi(string(m.Key[:1])); return p })}
	defer w.Close()
	msg := func(part, window, i int) kafka.Message {
		e := &schemas.PredictionEvent{EventID: fmt.Sprintf("m-%d-%d-%d", part, window, i), Model: "m", ModelVersion: "1", Deployment: "primary",
			Timestamp: t0.Add(time.Duration(window)*time.Minute + time.Duration(i)*time.Second), Status: "ok", LatencyMs: 10,
			Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: float64(100 + i)}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
		b, err := schemas.MarshalPredictionJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Key: []byte(strconv.Itoa(part) + "-" + e.EventID), Value: b}
	}
	var msgs []kafka.Message
	for win := 0; win < 6; win++ {
		for i := 0; i < 50; i++ {
			msgs = append(msgs, msg(0, win, i), msg(1, win, i))
		}
	}
	// The writer asks for the topic's partitions first and writes nothing while the broker
	// does not know them yet (the topic is seconds old): asked again until it does.
	wctx := testenv.Context(t, time.Minute)
	for err := w.WriteMessages(wctx, msgs...); err != nil; err = w.WriteMessages(wctx, msgs...) {
		if !errors.Is(err, kafka.UnknownTopicOrPartition) || wctx.Err() != nil {
			t.Fatal(err)
		}
		pause(t, 200*time.Millisecond)
	}
	db := h.store.Database()
	ctx := testenv.Context(t, 2*time.Minute)
	for { // window 1 judged
		out, _ := testenv.TSV(ctx, h.store.Conn(), "SELECT max(through) FROM "+db+".judge_progress WHERE model = 'm'")
		if strings.TrimSpace(out) >= t0.Add(2*time.Minute).Format("2006-01-02 15:04:05") && !strings.HasPrefix(strings.TrimSpace(out), "1970") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("window 1 never judged: %q", out)
		}
		pause(t, 300*time.Millisecond)
	}
	// A record of model m on partitions 2 and 3 (the other member's), in window 1.
	if err := w.WriteMessages(ctx, msg(2, 1, 55), msg(3, 1, 56)); err != nil {
		t.Fatal(err)
	}
	// Until both records are counted (late, or in partials of window 1), for at most 20 s.
	counted := testenv.Context(t, 20*time.Second)
	for {
		out, _ := testenv.TSV(counted, h.store.Conn(), "SELECT (SELECT count() FROM "+db+".late_events FINAL WHERE model = 'm') + "+
			"(SELECT count() FROM "+db+".window_model_stats FINAL WHERE model = 'm' AND partition IN (2, 3))")
		if strings.TrimSpace(out) == "2" || counted.Err() != nil {
			break
		}
		pause(t, 300*time.Millisecond)
	}
	out, err := testenv.TSV(ctx, h.store.Conn(), "SELECT partition, events, judgement != '' FROM "+db+".window_model_stats FINAL WHERE model = 'm' AND window_start = toDateTime64('"+t0.Add(time.Minute).Format("2006-01-02 15:04:05")+"', 3, 'UTC') ORDER BY partition")
	if err != nil {
		t.Fatal(err)
	}
	late, _ := testenv.TSV(ctx, h.store.Conn(), "SELECT count() FROM "+db+".late_events FINAL WHERE model = 'm'")
	t.Logf("window 1 rows (partition, events, judged):\n%slate events: %s", out, late)
	if out != "0\t50\t1\n1\t50\t1\n" {
		t.Errorf("window 1's rows: want partitions 0 and 1 judged with 50 events each, and no partial of partitions 2 and 3 " +
			"(written after the window was judged, it is never judged; one member counts the records late)")
	}
	if strings.TrimSpace(late) != "2" {
		t.Errorf("late events = %q, want 2 (both records, as one member counts them)", late)
	}
}

// Labels in a spread group: predictions and labels over four partitions, members
// joining and leaving while they flow. Each model's judge settles its windows by every
// label partition's mark, written by whichever member reads it, and only once it has
// judged them; every window's performance and every performance, concept and outcome
// alert equal one member's.
func TestSpreadLabelsGiveTheSingleMemberResult(t *testing.T) {
	// Stamped in the last hour, so that a label partition read to its end does not move
	// past the windows by the wall clock alone (labelIdle): only its labels move it.
	s := labelled{windows: 14, n: 150, flip: 8, seed: 7, redo: redoFrom(10, 0.1, 0.4), start: time.Now().Add(-40 * time.Minute).Truncate(time.Minute)}
	preds, labels := s.messages(t)

	single := newHarnessN(t, 4)
	single.tweak = joinLabels(single)
	single.produceTo(t, single.labels, labels...)
	single.produce(t, preds...)
	_, stop := single.start(t)
	waitSettled(t, single, s.windows)
	stop()
	want, wantAlerts := single.performance(t), single.labelAlerts(t)
	if !slices.ContainsFunc(wantAlerts, func(a string) bool { return strings.HasPrefix(a, "concept_drift firing") }) ||
		!slices.ContainsFunc(wantAlerts, func(a string) bool { return strings.HasPrefix(a, "output_quality firing") }) {
		t.Errorf("one member raised no concept drift or outcome alert: %q", wantAlerts)
	}

	for _, tc := range []struct {
		name string
		// labelsFirst: every label is produced before the predictions (the windows wait
		// for their judging, not for labels); else with them, label partition 3 falling
		// behind after the third piece and catching up at the end (the windows wait for it).
		labelsFirst bool
	}{{"labels behind", false}, {"labels ahead", true}} {
		t.Run(tc.name, func(t *testing.T) {
			multi := newHarnessN(t, 4)
			multi.tweak = joinLabels(multi)
			multi.spread = true
			if tc.labelsFirst {
				multi.produceTo(t, multi.labels, labels...)
			}
			_, stopA := multi.start(t)
			none := func() pipeline.Stats { return pipeline.Stats{} }
			stopB, stopC := none, none
			var behind []kafka.Message
			const pieces = 10
			for i := 0; i < pieces; i++ {
				multi.produce(t, preds[i*len(preds)/pieces:(i+1)*len(preds)/pieces]...)
				if !tc.labelsFirst {
					var now []kafka.Message
					for _, m := range labels[i*len(labels)/pieces : (i+1)*len(labels)/pieces] {
						if i >= 3 && labelPartition(m.Key, 4) == 3 {
							behind = append(behind, m)
						} else {
							now = append(now, m)
						}
					}
					multi.produceTo(t, multi.labels, now...)
				}
				switch i {
				case 2:
					_, stopB = multi.start(t)
				case 4:
					_, stopC = multi.start(t)
				case 6:
					stopB()
				case 8:
					stopA()
				}
				pause(t, 1500*time.Millisecond)
			}
			multi.produceTo(t, multi.labels, behind...)
			waitSettled(t, multi, s.windows)
			stopC()
			if got := multi.performance(t); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("performance rows differ from one member's:\none member:    %+v\nthree members: %+v", want, got)
			}
			if got := multi.labelAlerts(t); strings.Join(got, "\n") != strings.Join(wantAlerts, "\n") {
				t.Errorf("label alerts differ from one member's:\none member:    %q\nthree members: %q", wantAlerts, got)
			}
		})
	}
}

// waitSettled waits until windows windows have their performance written.
func waitSettled(t *testing.T, h *harness, windows int) {
	t.Helper()
	ctx := testenv.Context(t, 3*time.Minute)
	for {
		n, err := testenv.TSV(ctx, h.store.Conn(), "SELECT count() FROM "+h.store.Database()+".window_performance FINAL")
		if err == nil && strings.TrimSpace(n) == strconv.Itoa(windows) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for %d windows settled: %q (%v)", windows, n, err)
		}
		pause(t, 300*time.Millisecond)
	}
}

// labelPartition is the partition of a topic of n partitions that produceTo writes a
// record keyed key to (kafka-go's Hash balancer, Sarama's: FNV-1a as an int32).
func labelPartition(key []byte, n int) int {
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// A model that stops sending for two windows while the stream goes on, in a spread group:
// its judge gives its series the empty windows one member gives (by every partition's
// clock, once no partition holds an event of the model not judged), and they page the
// drop as one member's do; none is given early, so the model's events after the silence
// are not late. Ten-minute windows: six of them are the recent volume a drop is judged by.
func TestSpreadSilentModelGivesTheSingleMemberResult(t *testing.T) {
	const size, partitions = 10 * time.Minute, 4
	msgs := everyThreeSeconds(t, rand.New(rand.NewPCG(5, 5)), t0.Add(9*size), func(model string, at time.Time) bool {
		return model == "fraud-scorer" || at.Before(t0.Add(6*size)) || !at.Before(t0.Add(8*size)) // stable-model: silent in windows 6 and 7
	}, "fraud-scorer", "stable-model")
	// Compared: the windows before the last, whose end depends on when the models' idle
	// windows close, and the late events.
	cut := "toDateTime64('" + t0.Add(8*size).Format("2006-01-02 15:04:05") + "', 3, 'UTC')"
	run := func(spread bool) string {
		h := newHarnessN(t, partitions)
		h.spread = spread
		h.tweak = func(s *pipeline.Settings) {
			s.WindowSpec = func(string) processors.WindowSpec {
				return processors.WindowSpec{Size: size, Lateness: 5 * time.Second}
			}
		}
		_, stopA := h.start(t)
		stopB := func() pipeline.Stats { return pipeline.Stats{} }
		for i := 0; i < 4; i++ {
			h.produce(t, msgs[i*len(msgs)/4:(i+1)*len(msgs)/4]...)
			if i == 1 {
				_, stopB = h.start(t)
			}
			// The third piece ends with window 5: both models fall idle, then the stream
			// goes on without the silent model for two windows.
			pause(t, map[bool]time.Duration{true: 12 * time.Second, false: 1500 * time.Millisecond}[i == 2])
		}
		ctx := testenv.Context(t, 3*time.Minute)
		db := h.store.Database()
		for { // the silent model's two empty windows before the cut judged
			out, err := testenv.TSV(ctx, h.store.Conn(), "SELECT count() FROM "+db+".window_model_stats FINAL WHERE model = 'stable-model' AND events = 0 AND judgement != '' AND window_start < "+cut)
			if err == nil && strings.TrimSpace(out) == "2" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for the silent model's empty windows: %q (%v)", out, err)
			}
			pause(t, 300*time.Millisecond)
		}
		pause(t, 2*time.Second) // the flush after
		stopB()
		stopA()
		var b strings.Builder
		for _, q := range []string{
			`SELECT model, window_start, sum(events), any(judgement), any(round(expected_events, 6)), any(volume_low) FROM %[1]s.window_model_stats FINAL WHERE window_start < ` + cut + ` GROUP BY model, window_start ORDER BY model, window_start`,
			`SELECT state, severity, kind, model, window_start, summary FROM %[1]s.alerts FINAL WHERE window_start < ` + cut + ` ORDER BY window_start, alert_id`,
			`SELECT 'late events', count() FROM %[1]s.late_events FINAL`,
		} {
			rows, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(q, db))
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(rows)
		}
		return b.String()
	}
	want, got := run(false), run(true)
	if got != want {
		t.Errorf("a spread group's silent model differs from one member's:\none member:\n%s\ntwo members:\n%s", want, got)
	}
	if !strings.Contains(want, "\tvolume\tstable-model\t") {
		t.Errorf("one member paged no volume drop of the silent model:\n%s", want)
	}
}

// Canary and shadow comparisons in a spread group: a model's canary is compared with its
// primary, and its shadow joined to its primary by request id, by the model's judge from
// the windows and keys every member wrote, with members joining and leaving; every window
// row, comparison row and alert equals one member's.
func TestSpreadCanaryAndShadowGiveTheSingleMemberResult(t *testing.T) {
	const windows, flipFrom = 8, 5
	rng := rand.New(rand.NewPCG(11, 11))
	var msgs []kafka.Message
	add := func(model, version, slot, id string, at time.Time, latency, score float64) {
		e := &schemas.PredictionEvent{EventID: id + "-" + slot, RequestID: id, Model: model, ModelVersion: version, Deployment: slot,
			Timestamp: at, Status: "ok", LatencyMs: latency,
			Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 15*rng.NormFloat64()}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: score}}
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
	}
	for w := 0; w < windows; w++ {
		for i := 0; i < 200; i++ {
			at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/200)
			id := fmt.Sprintf("slow-%d-%d", w, i)
			add("slow", "1", schemas.DeploymentPrimary, id, at, 40*math.Exp(0.5*rng.NormFloat64()), rng.Float64())
			if i%3 != 0 { // 133 a window: enough to judge (DefaultCanarySettings.MinEvents)
				add("slow", "2", schemas.DeploymentCanary, id+"c", at, 160*math.Exp(0.5*rng.NormFloat64()), rng.Float64())
			}
			id = fmt.Sprintf("flip-%d-%d", w, i)
			p := rng.Float64()
			s := min(max(p+0.05*rng.NormFloat64(), 0), 1)
			if w >= flipFrom && i%2 == 0 {
				s = 1 - s
			}
			add("flip", "1", schemas.DeploymentPrimary, id, at, 20, p)
			add("flip", "2", schemas.DeploymentShadow, id, at, 20, s)
		}
	}
	compared := func(h *harness) string {
		ctx := testenv.Context(t, time.Minute)
		var b strings.Builder
		for _, q := range []string{
			`SELECT model, window_start, verdict FROM %[1]s.canary_analysis FINAL ORDER BY model, window_start`,
			`SELECT model, window_start, in_reference, round(agreement, 6) FROM %[1]s.shadow_analysis FINAL ORDER BY model, window_start`,
		} {
			rows, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(q, h.store.Database()))
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(rows)
		}
		return b.String()
	}
	run := func(spread bool) string {
		h := newHarnessN(t, 4)
		join := joinLabels(h) // the prediction keys the shadow join runs on are kept with a label topic
		h.tweak = func(s *pipeline.Settings) {
			join(s)
			s.Canary = detectors.DefaultCanarySettings
		}
		h.spread = spread
		_, stopA := h.start(t)
		none := func() pipeline.Stats { return pipeline.Stats{} }
		stopB := none
		for i := 0; i < 6; i++ {
			h.produce(t, msgs[i*len(msgs)/6:(i+1)*len(msgs)/6]...)
			switch i {
			case 1:
				_, stopB = h.start(t)
			case 3:
				stopA()
				stopA = none
			}
			pause(t, 1500*time.Millisecond)
		}
		// Bins left out: a first-windows reference's (waitWritten).
		rows := waitWritten(t, h, len(msgs), 2*windows, true, false)
		stopB()
		stopA()
		return rows + compared(h)
	}
	want, got := run(false), run(true)
	if got != want {
		t.Errorf("canary and shadow results differ from one member's:\n%s", lineDiff(want, got, "one member:  ", "two members: "))
	}
	for _, s := range []string{"\tregression\n", "\tcanary\tslow\t", "\tshadow\tflip\t"} {
		if !strings.Contains(want, s) {
			t.Errorf("one member's results lack %q:\n%s", s, want[max(0, len(want)-3000):])
		}
	}
}

// A spread judge's round cut off after its rows were written and before judge_progress
// (a SIGKILL, or ClickHouse down past max_outage): the next judge judges the windows
// again with the model's first-windows reference and its shadow's reference already
// stored. Each window is judged as at its own end: the references' own windows are judged
// without them again and stay in them (CI: a shadow's reference windows were written
// again as not in it, and the model's as judged against the reference they built).
func TestSpreadWindowsJudgedAgainAfterTheirReferences(t *testing.T) {
	const windows, flipFrom = 8, 5
	rng := rand.New(rand.NewPCG(12, 12))
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for i := 0; i < 200; i++ {
			at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/200)
			id := fmt.Sprintf("flip-%d-%d", w, i)
			p := rng.Float64()
			s := min(max(p+0.05*rng.NormFloat64(), 0), 1)
			if w >= flipFrom && i%2 == 0 {
				s = 1 - s
			}
			for _, slot := range []struct {
				version, deployment string
				score               float64
			}{{"1", schemas.DeploymentPrimary, p}, {"2", schemas.DeploymentShadow, s}} {
				e := &schemas.PredictionEvent{EventID: id + "-" + slot.deployment, RequestID: id, Model: "flip", ModelVersion: slot.version,
					Deployment: slot.deployment, Timestamp: at, Status: "ok", LatencyMs: 20 + rng.Float64(),
					Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 15*rng.NormFloat64()}}},
					Prediction: schemas.Value{Kind: schemas.Number, Num: slot.score}}
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
			}
		}
	}
	h := newHarnessN(t, 2)
	h.spread = true
	h.tweak = joinLabels(h) // the prediction keys the shadow join runs on are kept with a label topic
	db := h.store.Database()
	ctx := testenv.Context(t, 3*time.Minute)
	q := func(sql string) string {
		t.Helper()
		out, err := testenv.TSV(ctx, h.store.Conn(), strings.ReplaceAll(sql, "{db}", db))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	stored := func() string {
		t.Helper()
		return waitWritten(t, h, len(msgs), windows, true, false) +
			q("SELECT window_start, in_reference, round(agreement, 6) FROM {db}.shadow_analysis FINAL ORDER BY window_start")
	}
	h.produce(t, msgs...)
	_, stop := h.start(t)
	want := stored()
	stop()
	if !strings.Contains(want, "no reference yet") || !strings.Contains(want, "\tshadow\tflip\t") {
		t.Fatalf("want the reference's windows judged without one and the shadow's flip paged:\n%s", want)
	}
	through := strings.TrimSpace(q("SELECT max(through) FROM {db}.judge_progress WHERE model = 'flip'"))
	if err := h.store.Conn().Exec(ctx, "ALTER TABLE "+db+".judge_progress DELETE WHERE model = 'flip' SETTINGS mutations_sync = 2"); err != nil {
		t.Fatal(err)
	}
	_, stop = h.start(t)
	for strings.TrimSpace(q("SELECT max(through) FROM {db}.judge_progress WHERE model = 'flip'")) != through {
		if ctx.Err() != nil {
			t.Fatalf("flip never judged again up to %s", through)
		}
		pause(t, 300*time.Millisecond)
	}
	got := stored()
	stop()
	if got != want {
		t.Errorf("judged again:\n%s", lineDiff(want, got, "first:  ", "again:  "))
	}
}

// A spread judge's write of a silent series' empty windows cut off (a SIGKILL, or
// ClickHouse down past max_outage): with the rows written and judge_progress not (the
// write order), and with judge_progress written and the rows not (the order before it),
// the next judge gives the same windows and alerts, with no hole in the series.
func TestSpreadSilentWindowsSurviveACutOffWrite(t *testing.T) {
	const size = time.Minute
	msgs := everyThreeSeconds(t, rand.New(rand.NewPCG(3, 3)), t0.Add(10*size), func(model string, at time.Time) bool {
		return model == "other" || at.Before(t0.Add(6*size)) // m falls silent after six windows; the stream goes on
	}, "m", "other")
	cut := "toDateTime64('" + t0.Add(9*size).Format("2006-01-02 15:04:05") + "', 3, 'UTC')"
	for _, c := range []struct{ name, undo string }{
		{"judge progress not written", "ALTER TABLE %[1]s.judge_progress DELETE WHERE model = 'm' AND through = toDateTime64('%[2]s', 3, 'UTC')"},
		{"the empty windows' rows not written", "ALTER TABLE %[1]s.window_model_stats DELETE WHERE model = 'm' AND events = 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarnessN(t, 2)
			h.spread = true
			db := h.store.Database()
			ctx := testenv.Context(t, 3*time.Minute)
			q := func(sql string, args ...any) string {
				t.Helper()
				out, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(sql, append([]any{db}, args...)...))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(out)
			}
			// m's windows 6, 7 and 8 given empty and judged, and what is stored of m.
			settled := func() string {
				t.Helper()
				for {
					n := q("SELECT count() FROM %[1]s.window_model_stats FINAL WHERE model = 'm' AND events = 0 AND judgement != '' AND window_start < " + cut)
					through := q("SELECT max(through) FROM %[1]s.judge_progress WHERE model = 'm'")
					if n == "3" && through >= t0.Add(9*size).Format("2006-01-02 15:04:05") {
						break
					}
					if ctx.Err() != nil {
						t.Fatalf("m's empty windows: %s judged, judge progress %s", n, through)
					}
					pause(t, 300*time.Millisecond)
				}
				return q("SELECT window_start, sum(events), any(judgement), any(round(expected_events, 6)), any(volume_low) FROM %[1]s.window_model_stats FINAL WHERE model = 'm' AND window_start < "+cut+" GROUP BY window_start ORDER BY window_start") +
					"\n" + q("SELECT state, severity, kind, window_start, summary FROM %[1]s.alerts FINAL WHERE model = 'm' AND window_start < "+cut+" ORDER BY window_start, alert_id")
			}
			h.produce(t, msgs...)
			_, stop := h.start(t)
			want := settled()
			stop()
			through := q("SELECT max(through) FROM %[1]s.judge_progress WHERE model = 'm'")
			if err := h.store.Conn().Exec(ctx, fmt.Sprintf(c.undo, db, through)+" SETTINGS mutations_sync = 2"); err != nil {
				t.Fatal(err)
			}
			_, stop = h.start(t)
			got := settled()
			stop()
			if got != want {
				t.Errorf("after the cut-off write, m's windows and alerts differ:\nbefore:\n%s\nafter:\n%s", want, got)
			}
			if !strings.Contains(want, "no events") {
				t.Errorf("no empty window judged before the cut:\n%s", want)
			}
		})
	}
}

// everyThreeSeconds is a prediction of each of models every three seconds from t0 until
// until, where sends says the model sends, keyed by a random request id.
func everyThreeSeconds(t *testing.T, rng *rand.Rand, until time.Time, sends func(model string, at time.Time) bool, models ...string) []kafka.Message {
	t.Helper()
	var msgs []kafka.Message
	for at := t0; at.Before(until); at = at.Add(3 * time.Second) {
		for _, model := range models {
			if !sends(model, at) {
				continue
			}
			e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d", model, at.Unix()), RequestID: strconv.Itoa(rng.IntN(1 << 30)),
				Model: model, ModelVersion: "1", Deployment: "primary", Timestamp: at, Status: "ok", LatencyMs: 20,
				Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: 100 + 10*rng.NormFloat64()}}},
				Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
			msgs = append(msgs, kafka.Message{Key: []byte(e.RequestID), Value: jsonOf(t, e)})
		}
	}
	return msgs
}

// Pipeline stages in a spread group: a stage's runs on every partition of the pipeline
// topic (keyed by run), members joining and leaving while they flow. One member reads the
// whole pipeline topic (consumers' oneReader) and judges the stages; a model's judge,
// wherever it is, words a drift alert's upstream hint from the runs that member wrote, once
// the pipeline topic is read past the window. Every stage window and state, every model
// window and every alert (the hint in its summary) equal one member's.
func TestSpreadPipelineStagesGiveTheSingleMemberResult(t *testing.T) {
	const hours = 2*24 + 17 // day 3 up to 16:59: join's failures and load's drop
	// Two models fed by the stages, judged by the two members at the end (partitions 0 and
	// 3 of four: ownerPartition), one of them not the member reading the pipeline topic.
	preds, runs := pipelineStream(t, hours, []string{"fraud-scorer", "credit-scorer"}, func(stage string, hr int) string { return fmt.Sprintf("%s-%d", stage, hr) })
	perHour := len(preds) / hours
	// A run of stage tick after the stream on every partition: the pipeline watermark (the
	// slowest partition's) passes every window of the stream.
	var ticks []kafka.Message
	var balancer kafka.Hash
	for p, i := 0, 0; p < 4; i++ {
		key := []byte(fmt.Sprintf("tick-%d", i))
		if balancer.Balance(kafka.Message{Key: key}, 0, 1, 2, 3) != p {
			continue
		}
		b, _ := json.Marshal(map[string]any{"event_id": string(key), "pipeline": "orders", "stage": "tick", "run_id": string(key), "status": "succeeded",
			"timestamp": time.Date(2026, 3, 2, hours, 5, 0, 0, time.UTC).UnixMilli(), "duration_ms": 1, "records_in": 1, "records_out": 1})
		ticks = append(ticks, kafka.Message{Key: key, Value: b})
		p++
	}
	// stages waits for want stage windows (""): as many as the pipeline watermark closes,
	// which one member's run says (its count, unchanged for a second, once its model
	// windows are judged: they are held until the pipeline topic is read past them).
	var want string
	stages := func(h *harness) string {
		ctx := testenv.Context(t, 2*time.Minute)
		db := h.store.Database()
		last, same := "", 0
		for {
			out, err := testenv.TSV(ctx, h.store.Conn(), "SELECT uniqExact(pipeline, stage, window_start) FROM "+db+".pipeline_stage_stats FINAL")
			if err == nil && out == last {
				same++
			} else {
				same = 0
			}
			last = out
			if err == nil && (out == want || (want == "" && same == 5)) {
				want = out
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("stage windows: %q (%v), want %q", last, err, want)
			}
			pause(t, 200*time.Millisecond)
		}
		var b strings.Builder
		for _, q := range []string{
			`SELECT pipeline, stage, window_start, partition, first_offset, last_offset, runs, failures, records_out, last_success FROM %[1]s.pipeline_stage_stats FINAL ORDER BY pipeline, stage, window_start, partition`,
			`SELECT pipeline, stage, window_start, consecutive_failures, successes, failures FROM %[1]s.pipeline_stage_state FINAL ORDER BY pipeline, stage, window_start`,
			`SELECT alert_id, state, kind, model, feature, pipeline, stage, window_start, window_end, summary FROM %[1]s.alerts FINAL ORDER BY window_start, alert_id`,
		} {
			rows, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(q, db))
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(rows)
		}
		return b.String()
	}
	run := func(spread bool) string {
		h := newHarnessN(t, 4)
		h.tweak = func(s *pipeline.Settings) {
			// The default skew bound (ten windows): a member re-reading its new partitions
			// from their commits falls hours behind the others while they read on; its
			// partitions, read behind, still hold the windows back (WindowSpec.Holds).
			hourlyPipelines(s)
			// Judged two windows a round: the rounds give the rows and alerts of one.
			s.JudgeBatch = 2
		}
		h.spread = spread
		// The runs are a backlog: runs bursting into partitions read to their end may be
		// fetched after a later run of another partition has moved the stream's clock past
		// them (their stage overdue for a moment, for one member as for several).
		h.produceTo(t, h.pipeline, append(runs, ticks...)...)
		_, stopA := h.start(t)
		none := func() pipeline.Stats { return pipeline.Stats{} }
		stopB, stopC := none, none
		const chunks = 8
		for i := 0; i < chunks; i++ {
			from, to := i*hours/chunks, (i+1)*hours/chunks
			h.produce(t, preds[from*perHour:to*perHour]...)
			switch i {
			case 2:
				_, stopB = h.start(t)
			case 5:
				stopA()
				stopA = none
			case 6:
				_, stopC = h.start(t)
			}
			pause(t, 1500*time.Millisecond)
		}
		rows := waitWritten(t, h, (hours-1)*perHour, 2*(hours-1), true, false)
		rows += stages(h)
		stopC()
		stopB()
		stopA()
		return rows
	}
	one := run(false)
	if n, _ := strconv.Atoi(strings.TrimSpace(want)); n != 3*hours {
		t.Errorf("one member wrote %s stage windows, want %d", want, 3*hours)
	}
	if got := run(true); got != one {
		t.Errorf("pipeline stages differ from one member's:\n%s", lineDiff(one, got, "one member:  ", "two members: "))
	}
	for _, s := range []string{"; upstream: stage join of pipeline orders failed 1 times in this period\n",
		"\tdata_drift\tcredit-scorer\tamount\t", "\tpipeline_failure\t\t\torders\tjoin\t", "\tpipeline_volume\t\t\torders\tload\t"} {
		if !strings.Contains(one, s) {
			t.Errorf("one member's results lack %q:\n%s", s, one[max(0, len(one)-3000):])
		}
	}
}
