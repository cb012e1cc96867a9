package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// Rebalance, active/standby (the default): three members join and leave one consumer
// group while a stream flows, each model's events spread over six partitions; every
// window, partition by partition, and every drift score and alert, ends exactly as one
// member alone writes it.
func TestRebalanceGivesTheSingleMemberResult(t *testing.T) {
	rebalanceMatchesOneMember(t, false, true)
}

// Rebalance with partitions spread over the members: each member reads its share, each
// model is judged by one member from the partials every member wrote, and every window,
// partition by partition, every drift score and every alert end exactly as one member
// alone writes them.
func TestSpreadRebalanceGivesTheSingleMemberResult(t *testing.T) {
	rebalanceMatchesOneMember(t, true, true)
}

// The same with the default reference, built from each model's first windows: the
// members' shares of the samples make the reference one member builds, and the windows
// that opened before it (their values kept) are judged as one member judges them.
func TestSpreadRebalanceBuildsTheSingleMemberReference(t *testing.T) {
	rebalanceMatchesOneMember(t, true, false)
}

// fileRefs: each model is judged against a fixed reference saved beforehand (else one
// built from its first windows).
func rebalanceMatchesOneMember(t *testing.T, spread, fileRefs bool) {
	const windows, partitions = 8, 6
	msgs := stream(rand.New(rand.NewPCG(5, 5)), windows, map[int]bool{6: true, 7: true})
	total := len(msgs)

	single := newHarnessN(t, partitions)
	multi := newHarnessN(t, partitions)
	multi.spread = spread
	if fileRefs {
		refs := referenceProfiles(t, stream(rand.New(rand.NewPCG(9, 9)), 3, nil))
		for _, h := range []*harness{single, multi} {
			for _, p := range refs {
				if err := h.store.SaveReference(testenv.Context(t, time.Minute), p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	const judged = true

	single.produce(t, msgs...)
	_, stop := single.start(t)
	want := waitWritten(t, single, total, 2*windows, judged, fileRefs)
	stop()

	// The same records, produced in 16 pieces; members join and leave between pieces.
	_, stopA := multi.start(t)
	none := func() pipeline.Stats { return pipeline.Stats{} }
	stopB, stopC := none, none
	piece := total / 16
	for i := 0; i < 16; i++ {
		end := min((i+1)*piece, total)
		if i == 15 {
			end = total
		}
		multi.produce(t, msgs[i*piece:end]...)
		switch i {
		case 3:
			_, stopB = multi.start(t)
		case 6:
			_, stopC = multi.start(t)
		case 9:
			stopB()
		case 12:
			stopA()
		}
		pause(t, 1200*time.Millisecond)
	}
	got := waitWritten(t, multi, total, 2*windows, judged, fileRefs)
	stopC()
	if got != want {
		t.Errorf("with members joining and leaving, the results differ from one member's:\n%s", lineDiff(want, got, "one member:    ", "three members: "))
	}
	if !strings.Contains(want, "fraud-scorer") || strings.Count(want, "\n") < 2*windows*partitions/2 {
		t.Errorf("the single member's results look wrong:\n%s", want)
	}
	if judged && !strings.Contains(want, "\tfiring\tcritical\tdata_drift\tfraud-scorer\t") {
		t.Errorf("no drift alert in the single member's results:\n%s", want[max(0, len(want)-2000):])
	}
}

// lineDiff shows the first 10 lines in which got differs from want, each as want's line
// and got's, after their labels, with both line counts.
func lineDiff(want, got, wantLabel, gotLabel string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	diff := []string{fmt.Sprintf("(%d and %d lines)", len(wl), len(gl))}
	for i := 0; i < max(len(wl), len(gl)) && len(diff) < 21; i++ {
		w, g := "", ""
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			diff = append(diff, wantLabel+w, gotLabel+g)
		}
	}
	return strings.Join(diff, "\n")
}

// referenceProfiles builds a file reference per model from messages.
func referenceProfiles(t *testing.T, msgs []kafka.Message) []*detectors.Profile {
	t.Helper()
	samples := map[string]*detectors.Sample{}
	dec := schemas.Decoder{Format: schemas.FormatJSON}
	for _, m := range msgs {
		var e schemas.PredictionEvent
		if err := dec.Prediction(context.Background(), m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if samples[e.Model] == nil {
			samples[e.Model] = detectors.NewSample()
		}
		samples[e.Model].AddEvent(&e)
	}
	var out []*detectors.Profile
	for model, s := range samples {
		out = append(out, s.Build(model, "3.2.0", detectors.SourceFile, 0, t0))
	}
	return out
}

func pause(t *testing.T, d time.Duration) {
	t.Helper()
	ctx := testenv.Context(t, d)
	<-ctx.Done()
}

// waitWritten waits until windows windows hold events events, then returns every written
// row that is a result: per window and partition, the counts, offsets and each feature's
// statistics; the late events; and, if judged, the windows' judgement, the drift scores
// and alerts. Without binned, each feature's bins and reference id are left out: a window
// that opened before its first-windows reference is stored binned or with its values
// kept, depending on when its writer learned the reference, and reads back the same
// either way (storage TestStoredWindowIsJudgedAsWritten).
func waitWritten(t *testing.T, h *harness, events, windows int, judged, binned bool) string {
	t.Helper()
	ctx := testenv.Context(t, 3*time.Minute)
	db := h.store.Database()
	for {
		var n, w uint64
		err := h.store.Conn().QueryRow(ctx, "SELECT sum(events), uniqExact(model, window_start) FROM "+db+".window_model_stats FINAL").Scan(&n, &w)
		var models, judgedModels uint64
		if err == nil && judged {
			// A spread group judges a window after every partition has written it.
			err = h.store.Conn().QueryRow(ctx, "SELECT (SELECT uniqExact(model) FROM "+db+".window_model_stats), "+
				"(SELECT count() FROM (SELECT model, max(through) AS t FROM "+db+".judge_progress GROUP BY model) AS j "+
				"INNER JOIN (SELECT model, max(window_end) AS e FROM "+db+".window_model_stats GROUP BY model) AS w USING model WHERE t >= e)").Scan(&models, &judgedModels)
		}
		if err == nil && n == uint64(events) && w == uint64(windows) && (!judged || judgedModels == models) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for %d events in %d windows: %d in %d (%v)", events, windows, n, w, err)
		}
		pause(t, 200*time.Millisecond)
	}
	var b strings.Builder
	judgement, bins := "", "reference_id, bin_counts,"
	if judged {
		judgement = ", judgement, judged_from, round(expected_events, 6), volume_low"
	}
	if !binned {
		bins = ""
	}
	queries := []string{
		`SELECT model, model_version, deployment, window_start, partition, first_offset, last_offset, events, errors, latency_max` + judgement + ` FROM %[1]s.window_model_stats FINAL ORDER BY model, window_start, partition`,
		`SELECT model, window_start, partition, feature, kind, count, missing, round(mean, 9), min, max, ` + bins + ` arraySort(arrayZip(mapKeys(categories), mapValues(categories))), unseen FROM %[1]s.window_feature_stats FINAL ORDER BY model, window_start, partition, feature`,
		`SELECT count() FROM %[1]s.late_events FINAL`,
	}
	if judged {
		queries = append(queries,
			`SELECT model, window_start, feature, reference_id, n, round(psi, 9), test, round(statistic, 9), round(p_value, 9), drifted, severity FROM %[1]s.drift_scores FINAL ORDER BY model, window_start, feature`,
			`SELECT alert_id, state, severity, kind, model, feature, window_start, summary FROM %[1]s.alerts FINAL ORDER BY window_start, alert_id`)
	}
	for _, q := range queries {
		rows, err := testenv.TSV(ctx, h.store.Conn(), fmt.Sprintf(q, db))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(rows)
	}
	return b.String()
}

// A Kafka broker restart in the middle of a stream: driftd reconnects, rejoins its group,
// and the windows end exactly as without the restart.
func TestBrokerRestartReconnectsAndContinues(t *testing.T) {
	broker := testenv.OwnKafka(t)
	h := newHarnessOn(t, broker.Addr, 3)
	const windows = 6
	msgs := stream(rand.New(rand.NewPCG(3, 1)), windows, nil)
	half := len(msgs) / 2 // a window boundary: the first three windows
	h.produce(t, msgs[:half]...)
	waitFor, stop := h.start(t)
	waitFor("the first half", func(s pipeline.Stats) bool { return s.Records >= uint64(half) && s.WindowsClosed >= 4 })
	broker.Restart(t)
	h.produce(t, msgs[half:]...)
	got := waitWritten(t, h, len(msgs), 2*windows, false, true)
	stop()
	if !strings.HasSuffix(got, "\n0\n") {
		t.Errorf("late events after the restart:\n%s", got[max(0, len(got)-200):])
	}
	var perWindowOK uint64
	ctx := testenv.Context(t, time.Minute)
	if err := h.store.Conn().QueryRow(ctx, "SELECT countIf(n = "+fmt.Sprint(perWindow)+") FROM (SELECT sum(events) AS n FROM "+h.store.Database()+".window_model_stats FINAL GROUP BY model, window_start)").Scan(&perWindowOK); err != nil {
		t.Fatal(err)
	}
	if perWindowOK != 2*windows {
		t.Errorf("%d of %d windows hold exactly %d events", perWindowOK, 2*windows, perWindow)
	}
}
