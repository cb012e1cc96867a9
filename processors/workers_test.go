package processors_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Windows updated by workers are those updated inline, bit for bit: several series over
// several partitions, windows closing as the watermark moves, scores and a reference
// arriving mid-stream, and the caller's event decoded into again after every Add (as the
// pipeline's decoder does), so that a worker reading the caller's event would be seen.
func TestWorkersGiveTheInlineWindows(t *testing.T) {
	evs := events20(6000)
	layout := layoutFor(evs[:2000])
	run := func(workers int) []processors.Closed {
		t.Helper()
		p := processors.NewProcessor(func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: time.Second, Lateness: 100 * time.Millisecond}
		}, processors.Limits{})
		if workers > 0 {
			w := processors.NewWorkers(workers)
			t.Cleanup(w.Stop)
			p.SetWorkers(w)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
		var reused schemas.PredictionEvent
		var out []processors.Closed
		for i, e := range evs {
			if i == 3000 {
				p.SetLayout("fraud-scorer", "3.2.0", layout)
			}
			// Decode into the same event: reuse its features' array and scores map.
			features, scores := reused.Features[:0], reused.Scores
			reused = *e
			reused.Features = append(features, e.Features...)
			reused.Model = fmt.Sprintf("fraud-scorer-%d", i%3)
			if i%3 == 0 {
				reused.Model = "fraud-scorer"
			}
			reused.Deployment = [...]string{"primary", "canary"}[i%2]
			clear(scores)
			if i%5 == 0 {
				if scores == nil {
					scores = map[string]float64{}
				}
				scores["a"], scores["b"] = rng.Float64(), rng.Float64()
			}
			reused.Scores = scores
			p.Add(&reused, processors.Source{Topic: "in", Partition: i % 4, Offset: int64(i)}, now)
			for j := range reused.Features { // what the next decode would leave behind
				reused.Features[j].Value.Num = -1
			}
			out = append(out, p.Ready()...)
		}
		return append(out, p.CloseAll()...)
	}
	want := run(0)
	if len(want) < 20 {
		t.Fatalf("%d windows closed inline, want a stream with many", len(want))
	}
	for _, n := range []int{1, 3} {
		got := run(n)
		if len(got) != len(want) {
			t.Fatalf("%d workers: %d windows, inline %d", n, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i].Merged, want[i].Merged) {
				t.Fatalf("%d workers: window %d (%v at %d) differs from inline", n, i, want[i].Merged.Series, want[i].Merged.Start)
			}
			if len(got[i].Partials) != len(want[i].Partials) {
				t.Fatalf("%d workers: window %d has %d partials, inline %d", n, i, len(got[i].Partials), len(want[i].Partials))
			}
			for k := range want[i].Partials {
				if !reflect.DeepEqual(got[i].Partials[k].WindowAgg, want[i].Partials[k].WindowAgg) {
					t.Fatalf("%d workers: window %d partial %d differs from inline", n, i, k)
				}
			}
		}
	}
}

// BenchmarkWindowUpdateWorkers is BenchmarkWindowUpdate20Features over eight series
// with the updates on workers: the time per event is what the processor's owner spends (deciding the window,
// copying the event for the worker), plus the wait for the workers when windows close
// (each iteration ends with one close, as a flush does).
func BenchmarkWindowUpdateWorkers(b *testing.B) {
	evs := events20(4096)
	l := layoutFor(evs)
	for i, e := range evs { // eight series: a partial window has one worker
		e.ModelVersion = fmt.Sprintf("v%d", i%8)
	}
	for _, n := range []int{0, 1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			p := newProc(l)
			for v := range 8 {
				p.SetLayout("fraud-scorer", fmt.Sprintf("v%d", v), l)
			}
			w := processors.NewWorkers(n)
			b.Cleanup(w.Stop)
			p.SetWorkers(w)
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := range 1024 {
					p.Add(evs[k%len(evs)], processors.Source{Topic: "in", Offset: int64(i)}, now)
					i++
				}
				p.Ready() // nothing due: the barrier comes with CloseAll below
			}
			p.CloseAll()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
		})
	}
}

// The joint model's ranks are each joint value's bin over the reference's edges, whether
// the window takes the bin its feature just counted or searches the edges itself: the
// features in their usual order, in another order, and past limits.max_features (a
// feature dropped at a position where the last event had another one).
func TestJointRanksAreTheValuesBins(t *testing.T) {
	edges := [][]float64{{-1, 0, 1}, {10, 20, 30, 40}, {0.5}}
	names := []string{"a", "b", "c"}
	l := &processors.Layout{ReferenceID: "ref", Features: map[string]processors.FeatureLayout{}, Joint: names, JointEdges: edges}
	for i, n := range names {
		l.Features[n] = processors.FeatureLayout{Kind: processors.Numeric, Edges: edges[i]}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		maxFeatures int
		order       func(i int) []string
	}{
		{name: "usual order", order: func(int) []string { return names }},
		{name: "order changing", order: func(i int) []string {
			return [][]string{{"a", "b", "c"}, {"c", "a", "b"}, {"b", "x", "c", "a"}}[i%3]
		}},
		{name: "a joint feature dropped", maxFeatures: 2, order: func(i int) []string {
			return [][]string{{"a", "b", "c"}, {"c", "a", "b"}}[i%2]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Hour} },
				processors.Limits{MaxFeatures: c.maxFeatures})
			p.SetLayout("m", "1", l)
			want := processors.NewCoMoments(len(names))
			for i := range 500 {
				e := &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(time.Duration(i) * time.Second), Status: "ok"}
				vals := map[string]float64{"a": rng.NormFloat64(), "b": rng.Float64() * 50, "c": rng.Float64(), "x": rng.Float64(), "y": rng.Float64()}
				for _, n := range c.order(i) {
					e.Features = append(e.Features, schemas.Feature{Name: n, Value: schemas.Value{Kind: schemas.Number, Num: vals[n]}})
				}
				ranks := make([]float64, len(names))
				for k, n := range names {
					ranks[k] = float64(processors.BinIndex(edges[k], vals[n]))
				}
				want.Add(ranks)
				p.Add(e, processors.Source{Topic: "in", Offset: int64(i)}, t0)
			}
			got := p.CloseAll()
			if len(got) != 1 || got[0].Merged.Joint == nil {
				t.Fatalf("closed %d windows, want one with joint co-moments", len(got))
			}
			if j := got[0].Merged.Joint; j.N != want.N || !reflect.DeepEqual(j.Mean, want.Mean) || !reflect.DeepEqual(j.C, want.C) {
				t.Errorf("joint co-moments n=%v mean %v, want n=%v mean %v", j.N, j.Mean, want.N, want.Mean)
			}
		})
	}
}

// A window's joint model counts its events only when it opened with its reference's
// layout: one that opened before counts none, wherever in it the layout arrived (live,
// in a backlog or after a restart it arrives at other events), and so does a window
// that starts before the layout's From (the windows open when the reference was built).
func TestJointOnlyInWindowsOpenedWithTheLayout(t *testing.T) {
	names := []string{"a", "b"}
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		arrives int   // the event before which the layout is set
		from    int64 // the layout's From
		wantN   float64
	}{
		{"set before the first event", 0, 0, 100},
		{"set at the 30th event", 30, 0, 0},
		{"set after the last event", 100, 0, 0},
		{"set before the first event, the window before From", 0, t0.Add(time.Hour).UnixMilli(), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &processors.Layout{ReferenceID: "ref", From: c.from, Joint: names, Features: map[string]processors.FeatureLayout{
				"a": {Kind: processors.Numeric, Edges: []float64{0}}, "b": {Kind: processors.Numeric, Edges: []float64{0}}}}
			p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Hour} }, processors.Limits{})
			rng := rand.New(rand.NewPCG(7, 8))
			for i := range 100 {
				if i == c.arrives {
					p.SetLayout("m", "1", l)
				}
				e := &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(time.Duration(i) * time.Second), Status: "ok",
					Features: []schemas.Feature{{Name: "a", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}},
						{Name: "b", Value: schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}}}}
				p.Add(e, processors.Source{Topic: "in", Offset: int64(i)}, t0)
			}
			got := p.CloseAll()
			if len(got) != 1 {
				t.Fatalf("closed %d windows, want 1", len(got))
			}
			n := 0.0
			if j := got[0].Merged.Joint; j != nil {
				n = j.N
			}
			if n != c.wantN {
				t.Errorf("joint n = %v, want %v", n, c.wantN)
			}
		})
	}
}
