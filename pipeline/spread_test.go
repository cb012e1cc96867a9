package pipeline_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/schemas"
)

// A partition whose reader has never seen a model does not hold the model's judging back
// (it has no progress row). Its first records of the model, for a window already judged,
// are late, as one member counts them (the window is closed whole), not a partial nobody
// judges: readers learn how far each model is judged at every flush.
func TestSpreadRecordOfAJudgedWindowIsLate(t *testing.T) { firstSeenAfterJudged(t, true) }

// The same with active/standby: the record is late, every row judged.
func TestOneMemberRecordOfAJudgedWindowIsLate(t *testing.T) { firstSeenAfterJudged(t, false) }

func firstSeenAfterJudged(t *testing.T, spread bool) {
	h := newHarnessN(t, 4)
	h.spread = spread
	_, stopA := h.start(t)
	_, stopB := h.start(t)
	defer stopA()
	defer stopB()
	pause(t, 8*time.Second) // both members assigned (range: {0,1} and {2,3}), past their grace

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
	if err := w.WriteMessages(testenv.Context(t, time.Minute), msgs...); err != nil {
		t.Fatal(err)
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
	pause(t, 10*time.Second)
	out, err := testenv.TSV(ctx, h.store.Conn(), "SELECT partition, events, judgement != '' FROM "+db+".window_model_stats FINAL WHERE model = 'm' AND window_start = toDateTime64('"+t0.Add(time.Minute).Format("2006-01-02 15:04:05")+"', 3, 'UTC') ORDER BY partition")
	if err != nil {
		t.Fatal(err)
	}
	late, _ := testenv.TSV(ctx, h.store.Conn(), "SELECT count() FROM "+db+".late_events FINAL WHERE model = 'm'")
	t.Logf("window 1 rows (partition, events, judged):\n%slate events: %s", out, late)
	if strings.Contains(out, "\t0\n") || strings.Contains(out, "\tfalse\n") {
		t.Errorf("a partial of window 1 was written after the window was judged and is never judged (one member counts the record late)")
	}
}
