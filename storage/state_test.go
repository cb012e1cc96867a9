package storage_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// Detection state (migration 0006) comes back as written: the alerter's hysteresis (the
// newest per fingerprint), stage states, the samples of references not built yet, and the
// last late offset per window and partition.
func TestDetectionStateRoundTrips(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	sample := detectors.NewSample()
	body, err := sample.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	late := func(tp processors.TopicPartition, off int64, start time.Time) storage.LateEvent {
		return storage.LateEvent{Source: processors.Source{Topic: tp.Topic, Partition: tp.Partition, Offset: off},
			Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}, Start: start.UnixMilli(), End: start.Add(time.Minute).UnixMilli(), EventTime: start}
	}
	p2 := processors.TopicPartition{Topic: "in", Partition: 2}
	batches := []*storage.Batch{{
		WrittenAt: t0,
		AlertStates: []detectors.FingerprintState{
			{Fingerprint: "a", AlertState: detectors.AlertState{Bad: 1, Last: t0.Add(time.Minute)}},
			{Fingerprint: "b", AlertState: detectors.AlertState{Firing: true, Severity: "critical", Bad: 3, Last: t0.Add(time.Minute), Told: true}},
		},
		StageStates: []storage.StageState{{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), ConsecutiveFailures: 4,
			Successes: []time.Time{t0.Add(-time.Hour), t0.Add(5 * time.Minute)}, Failures: []time.Time{t0.Add(10 * time.Minute), t0.Add(15 * time.Minute)}}},
		ReferenceSamples: []storage.ReferenceSample{{Model: "m", Version: "1", Start: t0, Sample: body}, {Model: "built", Version: "1", Start: t0, Sample: body}},
		Late:             []storage.LateEvent{late(p2, 40, t0), late(p2, 44, t0), late(p2, 41, t0.Add(time.Minute))},
	}, {
		WrittenAt: t0.Add(time.Second),
		// A later state of a, and b as it was (a window judged again): the newest wins.
		AlertStates: []detectors.FingerprintState{
			{Fingerprint: "a", AlertState: detectors.AlertState{Firing: true, Severity: "warning", Bad: 2, Last: t0.Add(2 * time.Minute)}},
			{Fingerprint: "b", AlertState: detectors.AlertState{Firing: true, Severity: "critical", Bad: 3, Last: t0.Add(time.Minute), Told: true}},
		},
	}}
	for _, b := range batches {
		if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(2, 2))
	ref := detectors.NewSample()
	for i := 0; i < 10; i++ {
		ref.AddEvent(event(rng, 0, 0))
	}
	p := ref.Build("built", "1", detectors.SourceFirstWindows, 1, t0)
	if err := s.SaveReference(ctx, p); err != nil {
		t.Fatal(err)
	}

	states, err := s.LoadAlertStates(ctx, time.Hour)
	if err != nil || len(states) != 2 {
		t.Fatalf("alert states %+v %v", states, err)
	}
	if a := states[0]; a.Fingerprint != "a" || !a.Firing || a.Bad != 2 || a.Severity != "warning" || !a.Last.Equal(t0.Add(2*time.Minute)) || a.Told {
		t.Errorf("state a %+v", a)
	}
	if b := states[1]; b.Fingerprint != "b" || !b.Firing || b.Bad != 3 || !b.Last.Equal(t0.Add(time.Minute)) || !b.Told {
		t.Errorf("state b %+v", b)
	}
	// b fires silently: stored as told, not firing, so that a driftd that does not know
	// the told column never resolves it.
	var firing, told uint8
	if err := s.Conn().QueryRow(ctx, "SELECT firing, told FROM "+s.Database()+".alert_state FINAL WHERE fingerprint = 'b'").Scan(&firing, &told); err != nil || firing != 0 || told != 1 {
		t.Errorf("b stored with firing %d told %d (%v), want 0 and 1", firing, told, err)
	}
	stages, err := s.LoadStageStates(ctx, time.Hour)
	if err != nil || len(stages) != 1 {
		t.Fatalf("stage states %+v %v", stages, err)
	}
	if st := stages[0]; st.ConsecutiveFailures != 4 || len(st.Successes) != 2 || !st.Successes[1].Equal(t0.Add(5*time.Minute)) ||
		len(st.Failures) != 2 || !st.Failures[0].Equal(t0.Add(10*time.Minute)) || !st.End.Equal(t0.Add(time.Hour)) {
		t.Errorf("stage state %+v", st)
	}
	samples, err := s.LoadReferenceSamples(ctx)
	if err != nil || len(samples) != 1 || samples[0].Model != "m" || !samples[0].Start.Equal(t0) || string(samples[0].Sample) != string(body) {
		t.Fatalf("reference samples %+v %v", samples, err)
	}
	lw, err := s.LoadLateWindows(ctx, time.Hour)
	if err != nil || len(lw) != 2 {
		t.Fatalf("late windows %+v %v", lw, err)
	}
	for _, w := range lw {
		want := int64(44)
		if w.Start != t0.UnixMilli() {
			want = 41
		}
		if w.Model != "m" || w.TP.Partition != 2 || w.LastOffset != want {
			t.Errorf("late window %+v, want last offset %d", w, want)
		}
	}
}
