package pipeline_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// A classifier that grows unsure from window 6 on, predicting its classes as often as
// before: output_quality fires for its confidence and the entropy of its scores on
// window 6, nothing fires before, and no prediction drift is claimed.
func TestScoreConfidenceDrop(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(5, 5))
	const windows, unsureFrom = 10, 6
	var msgs []kafka.Message
	for w := 0; w < windows; w++ {
		for i := 0; i < perWindow; i++ {
			top := 0.8 + 0.19*rng.Float64()
			if w >= unsureFrom {
				top = 0.5 + 0.2*rng.Float64()
			}
			class, other := "approve", "decline"
			if rng.IntN(2) == 1 {
				class, other = other, class
			}
			id := fmt.Sprintf("s-%d-%d", w, i)
			e := &schemas.PredictionEvent{EventID: id, Model: "classifier", ModelVersion: "1", Deployment: "primary",
				Timestamp: t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow), Status: "ok", LatencyMs: 10,
				Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}},
				Prediction: schemas.Value{Kind: schemas.String, Str: class}, Scores: map[string]float64{class: top, other: 1 - top}}
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: jsonOf(t, e)})
		}
	}
	h.produce(t, msgs...)
	waitFor, stop := h.start(t)
	waitFor("every window", func(s pipeline.Stats) bool { return s.WindowsClosed == windows })
	stop()

	ctx := testenv.Context(t, time.Minute)
	rows, err := h.store.Conn().Query(ctx, `SELECT kind, feature, state, toUnixTimestamp(window_start) FROM `+h.store.Database()+`.alerts FINAL
ORDER BY window_start, kind, feature`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var kind, feature, state string
		var start uint32
		if err := rows.Scan(&kind, &feature, &state, &start); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %d", kind, feature, state, (int64(start)-t0.Unix())/60))
	}
	want := fmt.Sprintf("[output_quality confidence firing %d output_quality entropy firing %d]", unsureFrom, unsureFrom)
	if fmt.Sprint(got) != want {
		t.Errorf("alerts %v, want %s", got, want)
	}
}
