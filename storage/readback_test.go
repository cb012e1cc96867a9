package storage_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// jointEvent has three correlated numeric features (a joint model), a categorical one,
// class scores and a numeric prediction: every part of a window a verdict reads.
func jointEvent(rng *rand.Rand, at time.Duration, shift float64) *schemas.PredictionEvent {
	x := rng.NormFloat64()
	p := 1 / (1 + math.Exp(-x))
	return &schemas.PredictionEvent{EventID: "e", Model: "joint", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at),
		Status: "ok", LatencyMs: 5 + rng.Float64()*10, InputSize: 100 + rng.Float64(), HasInputSize: true, Features: []schemas.Feature{
			{Name: "a", Value: schemas.Value{Kind: schemas.Number, Num: 1000 + 15*x}},
			{Name: "b", Value: schemas.Value{Kind: schemas.Number, Num: x + shift*rng.NormFloat64() + 0.3*rng.NormFloat64()}},
			{Name: "c", Value: schemas.Value{Kind: schemas.Number, Num: -x + 0.5*rng.NormFloat64()}},
			{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: []string{"DE", "FR", "IT"}[rng.IntN(3)]}},
		}, Prediction: schemas.Value{Kind: schemas.Number, Num: p}, Scores: map[string]float64{"yes": p, "no": 1 - p}}
}

// A window written over several partitions and read back is judged exactly as the window
// the processor closed: the same scores (bins against the reference's edges, not an
// estimate from the sketch), the same joint score, the same service conditions. A
// low-volume merge or a rolling reference after a restart reads windows back, so anything
// lost here would make a restarted run judge differently from an uninterrupted one.
func TestStoredWindowIsJudgedAsWritten(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	sample := detectors.NewSample()
	for i := 0; i < 3000; i++ {
		sample.AddEvent(jointEvent(rng, 0, 0))
	}
	ref := sample.Build("joint", "1", detectors.SourceFirstWindows, 3, t0)
	if ref.PCA == nil {
		t.Fatal("the reference has no joint model")
	}
	th := func(string) detectors.Thresholds { return detectors.DefaultThresholds }
	for _, tc := range []struct {
		name string
		// layoutAtOpen: the windows opened with the reference's layout. Otherwise they
		// opened before it existed (the live first windows, or a backlog's) and are
		// stored with their kept values, as the pipeline stores them; binAtFlush: the
		// reference existed by the time they were written, and they were also binned by
		// it (WindowAgg.BinKept).
		layoutAtOpen, binAtFlush bool
		perWindow                int // events per window, over three partitions
	}{
		{"counted against the reference", true, false, 600},
		{"written before the reference", false, false, 600},
		{"binned by a reference built in the same flush", false, true, 600},
		// 15,000 a partition: the window in memory keeps the first MaxRawValues (20,000)
		// of its partitions' values, and so must the window read back.
		{"beyond the kept values", false, true, 45000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := *ref
			ref.Version = strings.ReplaceAll(tc.name, " ", "-")
			judgedAsWritten(t, s, &ref, tc.layoutAtOpen, tc.binAtFlush, tc.perWindow, th, rng)
		})
	}
}

func judgedAsWritten(t *testing.T, s *storage.Store, ref *detectors.Profile, layoutAtOpen, binAtFlush bool, perWindow int, th func(string) detectors.Thresholds, rng *rand.Rand) {
	t.Helper()
	ctx := testenv.Context(t, 2*time.Minute)
	spec := func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }
	p := processors.NewProcessor(spec, processors.Limits{})
	if layoutAtOpen {
		p.SetLayout(ref.Model, ref.Version, ref.Layout())
	}
	step := time.Minute / time.Duration(perWindow)
	for i := 0; i < 2*perWindow; i++ { // two windows over three partitions, the second one shifted
		shift := 0.0
		if i >= perWindow {
			shift = 1
		}
		e := jointEvent(rng, time.Duration(i)*step, shift)
		e.ModelVersion = ref.Version
		p.Add(e, processors.Source{Topic: "in", Partition: i % 3, Offset: int64(i / 3)}, t0)
	}
	closed := p.CloseAll()
	if len(closed) != 2 {
		t.Fatalf("%d windows", len(closed))
	}
	for _, c := range closed { // as the pipeline writes them
		if binAtFlush {
			c.PrepareKept(ref.Layout(), false)
		} else {
			c.PrepareKept(nil, false)
		}
	}
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// The window a low-volume merge adds them to: a later one, counted against the
	// reference.
	later := processors.NewProcessor(spec, processors.Limits{})
	later.SetLayout(ref.Model, ref.Version, ref.Layout())
	for i := 0; i < 60; i++ {
		e := jointEvent(rng, 5*time.Minute+time.Duration(i)*time.Second, 0)
		e.ModelVersion = ref.Version
		later.Add(e, processors.Source{Topic: "in", Partition: i % 3, Offset: int64(10_000_000 + i)}, t0)
	}
	current := later.CloseAll()[0].Merged
	merged, mergedBack := current.Clone(), current.Clone()
	for _, c := range closed {
		want := c.Merged
		got, err := s.LoadWindow(ctx, want.Series, time.UnixMilli(want.Start))
		if err != nil || got == nil {
			t.Fatalf("load window: %v %v", got, err)
		}
		if got.ReferenceID != want.ReferenceID {
			t.Errorf("reference id %q, wrote %q", got.ReferenceID, want.ReferenceID)
		}
		sameVerdict(t, fmt.Sprint("window ", want.Start), detectors.Evaluate(want, ref, th), detectors.Evaluate(got, ref, th))
		merged.Merge(want)
		mergedBack.Merge(got)
	}
	sameVerdict(t, "the windows merged into a later one", detectors.Evaluate(merged, ref, th), detectors.Evaluate(mergedBack, ref, th))
}

// sameVerdict fails t where a verdict of a window read back differs from the window's
// verdict in memory.
func sameVerdict(t *testing.T, what string, wv, gv detectors.Verdict) {
	t.Helper()
	if len(gv.Scores) != len(wv.Scores) {
		t.Fatalf("%d scores read back, %d written", len(gv.Scores), len(wv.Scores))
	}
	for i, w := range wv.Scores {
		g := gv.Scores[i]
		if g.Feature != w.Feature || g.N != w.N || g.Drifted != w.Drifted || g.Estimated != w.Estimated ||
			!close(g.PSI, w.PSI) || !close(g.Statistic, w.Statistic) || !close(g.PValue, w.PValue) || !close(g.JS, w.JS) {
			t.Errorf("%s %s: read back %+v\nwritten %+v", what, w.Feature, g, w)
		}
	}
	if (wv.Multivariate == nil) != (gv.Multivariate == nil) {
		t.Fatalf("joint score read back %v, written %v", gv.Multivariate, wv.Multivariate)
	}
	if wv.Multivariate != nil && (gv.Multivariate.N != wv.Multivariate.N || !close(gv.Multivariate.Error, wv.Multivariate.Error)) {
		t.Errorf("joint score read back %+v, written %+v", *gv.Multivariate, *wv.Multivariate)
	}
	if len(gv.Conditions) != len(wv.Conditions) {
		t.Fatalf("%d conditions read back, %d written", len(gv.Conditions), len(wv.Conditions))
	}
	for i, w := range wv.Conditions {
		if g := gv.Conditions[i]; g.Kind != w.Kind || g.Feature != w.Feature || g.Metric != w.Metric || g.Breached != w.Breached || !close(g.Value, w.Value) {
			t.Errorf("condition %s %s %s: read back %v %v, written %v %v", w.Kind, w.Feature, w.Metric, g.Breached, g.Value, w.Breached, w.Value)
		}
	}
}

// close says whether two computed values agree to 1e-9 relative: a standard deviation
// stored and read back is squared again, which may move its last bit.
func close(a, b float64) bool {
	if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// A window whose stored latency sketch does not decode (written by a newer driftd, or
// damaged) reads back as ErrUnreadable, which ClassifyRead does not retry: a run that
// needs it ends at once naming the window, instead of waiting out limits.max_outage as
// if ClickHouse were down.
func TestUnreadableStoredWindowIsNotAnOutage(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	spec := processors.WindowSpec{Size: 5 * time.Minute}
	p := processors.NewProcessor(func(string) processors.WindowSpec { return spec }, processors.Limits{})
	rng := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 50; i++ {
		p.Add(jointEvent(rng, time.Duration(i)*time.Second, 0), processors.Source{Topic: "in", Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	w := closed[0].Merged
	if got, err := s.LoadWindow(ctx, w.Series, time.UnixMilli(w.Start)); err != nil || got == nil {
		t.Fatalf("the window as written: %v, %v", got, err)
	}
	db := s.Database()
	if err := s.Conn().Exec(ctx, "INSERT INTO "+db+".window_model_stats SELECT * REPLACE ('not a sketch' AS latency_sketch, written_at + INTERVAL 1 SECOND AS written_at) FROM "+db+".window_model_stats"); err != nil {
		t.Fatal(err)
	}
	_, err := s.LoadWindow(ctx, w.Series, time.UnixMilli(w.Start))
	if !errors.Is(err, storage.ErrUnreadable) || storage.ClassifyRead(err) != storage.Fatal || !strings.Contains(err.Error(), w.Series.Model) {
		t.Fatalf("a window with a damaged sketch read back with %v (class %v); want ErrUnreadable naming the window, not retried", err, storage.ClassifyRead(err))
	}
}
