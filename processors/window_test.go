package processors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/driftd/driftd/schemas"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func ev(model string, at time.Duration, amount float64) *schemas.PredictionEvent {
	return &schemas.PredictionEvent{
		Model: model, ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at), Status: "ok", LatencyMs: 10,
		Features:   []schemas.Feature{{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: amount}}},
		Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5},
	}
}

func spec(time.Duration, time.Duration) func(string) WindowSpec {
	return func(string) WindowSpec { return WindowSpec{Size: time.Minute, Lateness: 10 * time.Second} }
}

func TestWindowOfBoundaries(t *testing.T) {
	for _, c := range []struct {
		at    time.Time
		size  time.Duration
		start time.Time
	}{
		{t0, time.Minute, t0},
		{t0.Add(59999 * time.Millisecond), time.Minute, t0},
		{t0.Add(time.Minute), time.Minute, t0.Add(time.Minute)},
		{t0.Add(-time.Millisecond), time.Minute, t0.Add(-time.Minute)},
		{time.UnixMilli(-1).UTC(), time.Hour, time.UnixMilli(-3600000).UTC()},
		{t0.Add(7 * time.Minute), 5 * time.Minute, t0.Add(5 * time.Minute)},
	} {
		s, e := WindowOf(c.at, c.size)
		if s != c.start.UnixMilli() || e != c.start.Add(c.size).UnixMilli() {
			t.Errorf("WindowOf(%v, %v) = [%d, %d), want start %v", c.at, c.size, s, e, c.start)
		}
	}
}

func TestWatermarkClosesAndLateEventsAreCounted(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	now := t0
	add := func(at time.Duration, off int64) Outcome {
		o, _, _ := p.Add(ev("m", at, 1), Source{Topic: "in", Partition: 0, Offset: off}, now)
		return o
	}
	steps := []struct {
		at     time.Duration
		want   Outcome
		closed int
	}{
		{5 * time.Second, Added, 0},
		{59 * time.Second, Added, 0},
		{65 * time.Second, Added, 0},  // watermark 55s: window [0,60) still open
		{50 * time.Second, Added, 0},  // out of order but within lateness
		{70 * time.Second, Added, 1},  // watermark 60s: [0,60) closes
		{30 * time.Second, Late, 0},   // its window closed
		{125 * time.Second, Added, 0}, // watermark 115s
		{61 * time.Second, Added, 0},  // [60,120) open until watermark 120s
		{131 * time.Second, Added, 1},
	}
	for i, s := range steps {
		if got := add(s.at, int64(i)); got != s.want {
			t.Fatalf("step %d (%v): outcome %d, want %d", i, s.at, got, s.want)
		}
		closed := p.Ready()
		if len(closed) != s.closed {
			t.Fatalf("step %d: %d windows closed, want %d", i, len(closed), s.closed)
		}
		for _, c := range closed {
			switch c.Merged.Start {
			case t0.UnixMilli():
				if c.Merged.Events != 3 {
					t.Errorf("window 0 has %d events, want 3", c.Merged.Events)
				}
			case t0.Add(time.Minute).UnixMilli():
				if c.Merged.Events != 3 {
					t.Errorf("window 1 has %d events, want 3", c.Merged.Events)
				}
			}
		}
	}
	if got := p.CommitOffsets(); got[TopicPartition{"in", 0}] != 6 {
		t.Errorf("commit offsets %v: want 6, the first record of the open window [120,180)", got)
	}
	// A record of window 0 re-read after a restart is recognised as already written.
	if o, _, _ := p.Add(ev("m", 5*time.Second, 1), Source{Topic: "in", Partition: 0, Offset: 0}, now); o != Replayed {
		t.Errorf("re-read of offset 0: outcome %d, want Replayed", o)
	}
	// Idle close: nothing arrives for a minute of wall time, but the stream's clock has
	// not passed the open window [120,180) s: it stays open.
	if closed := p.Idle(now.Add(time.Minute), 30*time.Second, t0.Add(170*time.Second)); len(closed) != 0 {
		t.Fatalf("idle close before the stream passed the window's end = %+v", closed)
	}
	// Once it has (its end plus the lateness), the window closes.
	if closed := p.Idle(now.Add(time.Minute), 30*time.Second, t0.Add(10*time.Minute)); len(closed) != 1 || closed[0].Merged.Events != 2 {
		t.Fatalf("idle close = %+v", closed)
	}
	if p.OpenWindows() != 0 {
		t.Fatal("windows left open")
	}
}

func TestRestoreMarksReplays(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	tp := TopicPartition{"in", 3}
	p.Restore("m", t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), tp, 41)
	for _, c := range []struct {
		off  int64
		at   time.Duration
		want Outcome
	}{{40, 10 * time.Second, Replayed}, {41, 20 * time.Second, Replayed}, {42, 30 * time.Second, Late}, {43, 61 * time.Second, Added}} {
		if o, _, _ := p.Add(ev("m", c.at, 1), Source{Topic: "in", Partition: 3, Offset: c.off}, t0); o != c.want {
			t.Errorf("offset %d: outcome %d, want %d", c.off, o, c.want)
		}
	}
}

// A window known from storage for one partition (written by another group member before
// a rebalance) is completed by another partition's records, as a supplement that is not
// judged; once this processor closed it, every partition's later records are late.
func TestRestoredWindowIsCompletedByOtherPartitions(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	mine, theirs, third := TopicPartition{"in", 0}, TopicPartition{"in", 1}, TopicPartition{"in", 2}
	p.Restore("m", t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), theirs, 7)
	for _, c := range []struct {
		tp   TopicPartition
		off  int64
		at   time.Duration
		want Outcome
	}{
		{theirs, 7, 10 * time.Second, Replayed},
		{theirs, 8, 11 * time.Second, Late},
		{mine, 3, 12 * time.Second, Added},
		{mine, 4, 13 * time.Second, Added},
		{mine, 5, 95 * time.Second, Added}, // the next window
		// A replayed record says where its partition stands: the first window closes
		// once theirs is past it too.
		{theirs, 9, 80 * time.Second, Added},
	} {
		if o, _, _ := p.Add(ev("m", c.at, 1), Source{Topic: c.tp.Topic, Partition: c.tp.Partition, Offset: c.off}, t0); o != c.want {
			t.Errorf("%v offset %d: outcome %d, want %d", c.tp, c.off, o, c.want)
		}
	}
	closed := p.Ready()
	if len(closed) != 1 || !closed[0].Supplement || closed[0].Merged.Events != 2 || len(closed[0].Partials) != 1 || closed[0].Partials[0].TopicPartition != mine {
		t.Fatalf("closed %+v", closed)
	}
	if o, _, _ := p.Add(ev("m", 14*time.Second, 1), Source{Topic: third.Topic, Partition: third.Partition, Offset: 1}, t0); o != Late {
		t.Errorf("a third partition's record after the supplement closed: outcome %d, want late", o)
	}
	if o, _, _ := p.Add(ev("m", 15*time.Second, 1), Source{Topic: mine.Topic, Partition: mine.Partition, Offset: 4}, t0); o != Replayed {
		t.Errorf("a re-read record of the supplement: outcome %d, want replayed", o)
	}
	// A window this processor closes itself is whole, not a supplement.
	p.Add(ev("m", 200*time.Second, 1), Source{Topic: mine.Topic, Partition: mine.Partition, Offset: 6}, t0)
	p.Add(ev("m", 190*time.Second, 1), Source{Topic: theirs.Topic, Partition: theirs.Partition, Offset: 10}, t0)
	p.Add(ev("m", 191*time.Second, 1), Source{Topic: third.Topic, Partition: third.Partition, Offset: 2}, t0)
	if closed := p.Ready(); len(closed) != 1 || closed[0].Supplement {
		t.Fatalf("closed %+v", closed)
	}
}

// Splitting a stream over partitions and merging the partials gives the same window as
// aggregating it in one place.
func TestPartialsMergeToTheSingleResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	layout := &Layout{Features: map[string]FeatureLayout{
		"amount":  {Kind: Numeric, Edges: []float64{-1, 0, 1}},
		"country": {Kind: Categorical, Categories: map[string]struct{}{"DE": {}, "FR": {}}},
	}}
	one := NewProcessor(spec(time.Minute, 0), Limits{})
	many := NewProcessor(spec(time.Minute, 0), Limits{})
	for _, p := range []*Processor{one, many} {
		p.SetLayout("m", "1", layout)
	}
	countries := []string{"DE", "FR", "US", "NL"}
	for i := 0; i < 5000; i++ {
		e := ev("m", time.Duration(rng.IntN(60000))*time.Millisecond, rng.NormFloat64())
		e.Features = append(e.Features, schemas.Feature{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: countries[rng.IntN(4)]}})
		e.LatencyMs = rng.ExpFloat64() * 20
		if i%17 == 0 {
			e.Status = "error"
		}
		one.Add(e, Source{Topic: "in", Partition: 0, Offset: int64(i)}, t0)
		many.Add(e, Source{Topic: "in", Partition: i % 4, Offset: int64(i)}, t0)
	}
	a, b := one.CloseAll(), many.CloseAll()
	if len(a) != 1 || len(b) != 1 || len(b[0].Partials) != 4 {
		t.Fatalf("closed %d and %d windows, %d partials", len(a), len(b), len(b[0].Partials))
	}
	x, y := a[0].Merged, b[0].Merged
	if x.Events != y.Events || x.Errors != y.Errors || x.LatencyMax != y.LatencyMax {
		t.Fatalf("counts differ: %+v vs %+v", x, y)
	}
	fx, fy := x.Features["amount"], y.Features["amount"]
	if fmt.Sprint(fx.Bins) != fmt.Sprint(fy.Bins) || math.Abs(fx.Moments.Mean-fy.Moments.Mean) > 1e-12 || math.Abs(fx.Moments.Std()-fy.Moments.Std()) > 1e-12 {
		t.Errorf("amount: %v %v %v vs %v %v %v", fx.Bins, fx.Moments.Mean, fx.Moments.Std(), fy.Bins, fy.Moments.Mean, fy.Moments.Std())
	}
	for _, q := range Quantiles {
		if fx.Sketch.Quantile(q) != fy.Sketch.Quantile(q) || x.Latency.Quantile(q) != y.Latency.Quantile(q) {
			t.Errorf("q%.2f differs after merge", q)
		}
	}
	cx, cy := x.Features["country"], y.Features["country"]
	if fmt.Sprint(cx.Categories) != fmt.Sprint(cy.Categories) || cx.Unseen != cy.Unseen || cx.Unseen == 0 {
		t.Errorf("country: %v unseen %d vs %v unseen %d", cx.Categories, cx.Unseen, cy.Categories, cy.Unseen)
	}
}

func TestLimitsBoundState(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 0), Limits{MaxFeatures: 3, MaxCategories: 2})
	e := ev("m", 0, 1)
	e.Features = nil
	for i := 0; i < 10; i++ {
		e.Features = append(e.Features, schemas.Feature{Name: fmt.Sprintf("f%d", i), Value: schemas.Value{Kind: schemas.String, Str: fmt.Sprint(i)}})
	}
	p.Add(e, Source{Topic: "in", Partition: 0, Offset: 0}, t0)
	e2 := ev("m", 0, 1)
	e2.Features = []schemas.Feature{{Name: "f0", Value: schemas.Value{Kind: schemas.String, Str: "x"}}, {Name: "f0", Value: schemas.Value{Kind: schemas.String, Str: "y"}}}
	p.Add(e2, Source{Topic: "in", Partition: 0, Offset: 1}, t0)
	// At the cap, a category counted already is still counted as itself.
	e3 := ev("m", 0, 1)
	e3.Features = []schemas.Feature{{Name: "f0", Value: schemas.Value{Kind: schemas.String, Str: "x"}}}
	p.Add(e3, Source{Topic: "in", Partition: 0, Offset: 2}, t0)
	w := p.CloseAll()[0].Merged
	if len(w.Features) != 3 || w.DroppedFeatures != 7 {
		t.Fatalf("%d features, %d dropped", len(w.Features), w.DroppedFeatures)
	}
	if c := w.Features["f0"].Categories; len(c) != 3 || c[OtherCategory] != 1 || c["x"] != 2 || c["0"] != 1 {
		t.Fatalf("f0 categories %v: want 0 once, x twice, and y under other", c)
	}
}

// Series beyond MaxSeries are rejected, not tracked; once a series falls idle (and has no
// open window) its slot is given to a new one.
func TestSeriesLimit(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 0), Limits{MaxSeries: 2, SeriesIdle: time.Hour})
	add := func(model string, off int64, now time.Time) Outcome {
		o, _, _ := p.Add(ev(model, time.Duration(off)*time.Second, 1), Source{Topic: "in", Partition: 0, Offset: off}, now)
		return o
	}
	if add("a", 1, t0) != Added || add("b", 2, t0) != Added {
		t.Fatal("the first two series were not added")
	}
	if o := add("c", 3, t0); o != Rejected {
		t.Fatalf("a third series: outcome %d, want rejected", o)
	}
	if add("a", 4, t0) != Added {
		t.Fatal("a known series was refused at the limit")
	}
	// Two hours on, a and b are idle but their windows are still open: nothing is freed.
	later := t0.Add(2 * time.Hour)
	if o := add("c", 5, later); o != Rejected {
		t.Fatalf("with open windows: outcome %d, want rejected", o)
	}
	p.CloseAll()
	// The sweep runs at most once a minute.
	if o := add("c", 6, later.Add(30*time.Second)); o != Rejected {
		t.Fatalf("within a minute of the last sweep: outcome %d, want rejected", o)
	}
	if o := add("c", 7, later.Add(2*time.Minute)); o != Added || p.Series() != 1 {
		t.Fatalf("after a and b fell idle: outcome %d with %d series, want added and 1", o, p.Series())
	}
}

// State is per series, not per event: ten times more events through the same series and
// windows leave the processor's memory where it was, up to the sketches' fixed bound.
func TestMemoryIsFlatInEvents(t *testing.T) {
	measure := func(perWindow int) uint64 {
		layout := &Layout{ReferenceID: "r", Features: map[string]FeatureLayout{
			"x": {Kind: Numeric, Edges: []float64{-2, -1, 0, 1, 2}}, "c": {Kind: Categorical, Categories: map[string]struct{}{"a": {}, "b": {}}}}}
		p := NewProcessor(spec(time.Minute, 0), Limits{})
		models := []string{"m1", "m2", "m3", "m4"}
		for _, m := range models {
			p.SetLayout(m, "1", layout)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		e := &schemas.PredictionEvent{ModelVersion: "1", Deployment: "primary", Status: "ok",
			Features: []schemas.Feature{{Name: "x"}, {Name: "c"}}}
		var off int64
		for w := 0; w < 10; w++ {
			for i := 0; i < perWindow; i++ {
				e.Model = models[i%len(models)]
				e.Timestamp = t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(perWindow))
				e.LatencyMs = rng.ExpFloat64() * 10
				e.Features[0].Value = schemas.Value{Kind: schemas.Number, Num: rng.NormFloat64()}
				e.Features[1].Value = schemas.Value{Kind: schemas.String, Str: fmt.Sprint(rng.IntN(1000))} // high cardinality
				e.Prediction = schemas.Value{Kind: schemas.Number, Num: rng.Float64()}
				off++
				p.Add(e, Source{Topic: "in", Partition: int(off % 3), Offset: off}, t0)
			}
			p.Ready()
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		runtime.KeepAlive(p)
		return ms.HeapAlloc
	}
	small := measure(2000)
	large := measure(20000)
	t.Logf("heap with the processor: %d KiB after 20k events, %d KiB after 200k", small>>10, large>>10)
	// What may grow is the sketches' bins, with the logarithm of the values' range (more
	// events reach further into the tails) and never beyond sketchMaxBins per store: 12
	// open partials (4 models × 3 partitions) × 3 sketches (latency, x, prediction) × two
	// stores (positive, negative) × 8 bytes per bin.
	bound := uint64(12 * 3 * 2 * sketchMaxBins * 8)
	if large > small+bound {
		t.Errorf("heap grew from %d KiB to %d KiB with ten times the events (bound %d KiB)", small>>10, large>>10, bound>>10)
	}
}

func TestSketchAccuracyAgainstExactQuantiles(t *testing.T) {
	for _, dist := range []struct {
		name string
		draw func(r *rand.Rand) float64
	}{
		{"lognormal", func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()) * 100 }},
		{"exponential", func(r *rand.Rand) float64 { return r.ExpFloat64() * 30 }},
		{"normal-with-negatives", func(r *rand.Rand) float64 { return r.NormFloat64() * 50 }},
	} {
		t.Run(dist.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 9))
			a, b := NewSketch(), NewSketch()
			vals := make([]float64, 100000)
			for i := range vals {
				vals[i] = dist.draw(rng)
				if i%2 == 0 {
					a.Add(vals[i])
				} else {
					b.Add(vals[i])
				}
			}
			sort.Float64s(vals)
			a.Merge(b) // the merged sketch keeps the single-sketch bound
			for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999} {
				// DDSketch's guarantee: within 1% of the value at rank q(n−1); rounding of
				// that rank may land on a neighbour, which matters only near zero.
				r := int(q * float64(len(vals)-1))
				lo, hi := vals[max(r-1, 0)], vals[min(r+1, len(vals)-1)]
				got := a.Quantile(q)
				if got < lo-SketchRelativeAccuracy*math.Abs(lo) || got > hi+SketchRelativeAccuracy*math.Abs(hi) {
					t.Errorf("q%.3f = %v, exact %v: relative error %.4f > %.2f", q, got, vals[r], math.Abs(got-vals[r])/math.Abs(vals[r]), SketchRelativeAccuracy)
				}
			}
			round, err := DecodeSketch(a.Encode())
			if err != nil || round.Quantile(0.5) != a.Quantile(0.5) || round.Count() != a.Count() {
				t.Errorf("encode/decode: %v, %v vs %v", err, round.Quantile(0.5), a.Quantile(0.5))
			}
		})
	}
}

func FuzzWindowUpdate(f *testing.F) {
	f.Add(int64(0), 1.5, "a", uint8(0))
	f.Add(int64(-5), math.MaxFloat64, "", uint8(3))
	f.Fuzz(func(t *testing.T, at int64, x float64, cat string, status uint8) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return // the decoders reject non-finite values before windows see them
		}
		p := NewProcessor(spec(time.Minute, 0), Limits{})
		p.SetLayout("m", "1", &Layout{Features: map[string]FeatureLayout{"amount": {Kind: Numeric, Edges: []float64{0, 1}}}})
		e := ev("m", time.Duration(at)*time.Millisecond, x)
		e.Status = []string{"ok", "error", "timeout"}[status%3]
		e.Features = append(e.Features, schemas.Feature{Name: cat, Value: schemas.Value{Kind: schemas.String, Str: cat}})
		if o, _, _ := p.Add(e, Source{Topic: "in", Partition: 0, Offset: 0}, t0); o != Added {
			t.Fatalf("outcome %d", o)
		}
		w := p.CloseAll()[0].Merged
		if w.Events != 1 || w.Features["amount"].Count != 1 {
			t.Fatalf("window %+v", w)
		}
		var n uint64
		for _, b := range w.Features["amount"].Bins {
			n += b
		}
		if n != 1 {
			t.Fatalf("bins %v", w.Features["amount"].Bins)
		}
	})
}

// The watermark follows the slowest partition: a partition delivered ahead of another
// does not make the other's records late.
func TestWatermarkFollowsTheSlowestPartition(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	p.Add(ev("m", 0, 1), Source{Topic: "in", Partition: 1, Offset: 0}, t0)
	for i := 0; i < 10; i++ { // then partition 0 runs five minutes ahead
		p.Add(ev("m", time.Duration(i)*30*time.Second, 1), Source{Topic: "in", Partition: 0, Offset: int64(i)}, t0)
	}
	if o, _, _ := p.Add(ev("m", 5*time.Second, 1), Source{Topic: "in", Partition: 1, Offset: 1}, t0); o != Added {
		t.Fatalf("partition 1's second record: outcome %d, want Added", o)
	}
	if closed := p.Ready(); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1 is at 5s", len(closed))
	}
	p.Add(ev("m", 75*time.Second, 1), Source{Topic: "in", Partition: 1, Offset: 2}, t0) // watermark 65s: [0,60) closes
	closed := p.Ready()
	if len(closed) != 1 || closed[0].Merged.Events != 4 || len(closed[0].Partials) != 2 {
		t.Fatalf("closed %+v", closed)
	}
	// A partition more than MaxSkew behind stops holding the watermark back.
	q := NewProcessor(func(string) WindowSpec { return WindowSpec{Size: time.Minute, MaxSkew: 2 * time.Minute} }, Limits{})
	q.Add(ev("m", 0, 1), Source{Topic: "in", Partition: 1, Offset: 0}, t0)
	q.Add(ev("m", 10*time.Minute, 1), Source{Topic: "in", Partition: 0, Offset: 0}, t0)
	if closed := q.Ready(); len(closed) != 1 {
		t.Fatalf("a stalled partition held %d windows", q.OpenWindows())
	}
	// One read behind the others (records after its last one not read yet) is not
	// stalled: it holds the watermark back up to ten skew bounds.
	l := NewProcessor(func(string) WindowSpec { return WindowSpec{Size: time.Minute, MaxSkew: 2 * time.Minute} }, Limits{})
	l.Read(TopicPartition{"in", 1}, true)
	l.Add(ev("m", 0, 1), Source{Topic: "in", Partition: 1, Offset: 0}, t0)
	l.Add(ev("m", 10*time.Minute, 1), Source{Topic: "in", Partition: 0, Offset: 0}, t0)
	if closed := l.Ready(); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1, read behind, is at 0s", len(closed))
	}
	l.Add(ev("m", 20*time.Minute, 1), Source{Topic: "in", Partition: 0, Offset: 1}, t0)
	if closed := l.Ready(); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1 is read behind by ten skew bounds", len(closed))
	}
	if p := l.Progress(); len(p) != 1 || !p[0].Lagging[TopicPartition{"in", 1}] || p[0].Lagging[TopicPartition{"in", 0}] {
		t.Fatalf("progress %+v: partition 1 (only) is read behind", p)
	}
	l.Add(ev("m", 21*time.Minute, 1), Source{Topic: "in", Partition: 0, Offset: 2}, t0)
	if closed := l.Ready(); len(closed) != 3 { // [0,1m), [10m,11m), [20m,21m)
		t.Fatalf("beyond ten skew bounds closed %d windows, want 3", len(closed))
	}
	// Read to its end, the same partition is idle: the skew bound applies again.
	c := NewProcessor(func(string) WindowSpec { return WindowSpec{Size: time.Minute, MaxSkew: 2 * time.Minute} }, Limits{})
	c.Read(TopicPartition{"in", 1}, true)
	c.Add(ev("m", 0, 1), Source{Topic: "in", Partition: 1, Offset: 0}, t0)
	c.Read(TopicPartition{"in", 1}, false) // the partition's last record: another model's, late, or set aside
	c.Add(ev("m", 10*time.Minute, 1), Source{Topic: "in", Partition: 0, Offset: 0}, t0)
	if closed := c.Ready(); len(closed) != 1 {
		t.Fatalf("closed %d windows once partition 1 was read to its end, want 1", len(closed))
	}
}

// Before windows are closed (the pipeline waits a start-up grace), a partition seen late
// pulls the watermark back and its records join their still-open windows.
func TestLateSeenPartitionJoinsOpenWindows(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{ClosedRetention: 2})
	for i := 0; i < 10; i++ {
		p.Add(ev("m", time.Duration(i)*30*time.Second, 1), Source{Topic: "in", Partition: 0, Offset: int64(i)}, t0)
	}
	if o, _, _ := p.Add(ev("m", 5*time.Second, 1), Source{Topic: "in", Partition: 1, Offset: 0}, t0); o != Added {
		t.Fatalf("outcome %d, want Added", o)
	}
	if closed := p.Ready(); len(closed) != 0 {
		t.Fatalf("closed %d windows while partition 1 is at 5s", len(closed))
	}
	p.Add(ev("m", 5*time.Minute, 1), Source{Topic: "in", Partition: 1, Offset: 1}, t0)
	if closed := p.Ready(); len(closed) != 4 || closed[0].Merged.Events != 3 {
		t.Fatalf("closed %d windows", len(closed))
	}
	// Only two closed windows are remembered: an event of the oldest is late, not a
	// new window that would overwrite the written one.
	if o, _, _ := p.Add(ev("m", 10*time.Second, 1), Source{Topic: "in", Partition: 2, Offset: 0}, t0); o != Late {
		t.Fatalf("event behind the horizon: outcome %d, want Late", o)
	}
}

// A window whose partitions opened on both sides of the reference's arrival merges into
// bins that cover every value.
func TestMergeAcrossTheReferenceArrival(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 0), Limits{})
	p.Add(ev("m", 0, -5), Source{Topic: "in", Partition: 0, Offset: 0}, t0)
	p.Add(ev("m", time.Second, 0.5), Source{Topic: "in", Partition: 0, Offset: 1}, t0)
	p.SetLayout("m", "1", &Layout{Features: map[string]FeatureLayout{"amount": {Kind: Numeric, Edges: []float64{0, 1}}}})
	p.Add(ev("m", 2*time.Second, 7), Source{Topic: "in", Partition: 1, Offset: 0}, t0)
	p.Add(ev("m", 3*time.Second, 0.7), Source{Topic: "in", Partition: 2, Offset: 0}, t0)
	f := p.CloseAll()[0].Merged.Features["amount"]
	if fmt.Sprint(f.Bins) != "[1 2 1]" || f.Raw != nil {
		t.Fatalf("bins %v raw %v", f.Bins, f.Raw)
	}
}

// FuzzSketch: any finite values, split over two sketches and merged, give quantiles
// within the single-sketch bound of the exact ones, and the histogram counts them all.
func FuzzSketch(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 7}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		if len(data) == 0 {
			return
		}
		a, b := NewSketch(), NewSketch()
		vals := make([]float64, len(data))
		for i, d := range data {
			vals[i] = (float64(d) - 100) * 3.7
			if i%int(split%5+1) == 0 {
				a.Add(vals[i])
			} else {
				b.Add(vals[i])
			}
		}
		a.Merge(b)
		if int(a.Count()) != len(vals) {
			t.Fatalf("count %v of %d", a.Count(), len(vals))
		}
		sort.Float64s(vals)
		lo, hi := vals[0], vals[len(vals)-1]
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			v := a.Quantile(q)
			if v < lo-SketchRelativeAccuracy*math.Abs(lo)-1e-9 || v > hi+SketchRelativeAccuracy*math.Abs(hi)+1e-9 {
				t.Fatalf("q%v = %v outside [%v, %v]", q, v, lo, hi)
			}
		}
		var total float64
		for _, c := range a.Histogram([]float64{-100, 0, 100}) {
			total += c
		}
		if int(total) != len(vals) {
			t.Fatalf("histogram holds %v of %d", total, len(vals))
		}
	})
}

// One event stamped 23 h ahead (within limits.max_future) followed by 1,000 on-time
// events, on one partition and on two: with the clock bound none of the 1,000 is late,
// the on-time windows close as the clock passes them, and the future event waits in its
// own window. A replay a week later (the wall clock far ahead, the records' Kafka
// timestamps as produced) gives the same. Without the bound (simulated time) the one
// event carries the watermark 23 h ahead and the on-time events after it are late.
func TestEventAheadOfTheClockDoesNotMoveTheWatermark(t *testing.T) {
	for _, c := range []struct {
		name       string
		bound      bool
		partitions int
		replay     time.Duration // how long after production the records are read
		wantLate   int
	}{
		{"bound, one partition", true, 1, 0, 0},
		{"bound, two partitions", true, 2, 0, 0},
		{"bound, replayed a week later", true, 1, 7 * 24 * time.Hour, 0},
		{"bound, no Kafka timestamp", true, 1, -1, 0},
		// Each on-time window opens with its first event and closes at once: the rest are late.
		{"unbounded", false, 1, 0, 998},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{ClockBound: c.bound})
			closed := map[int64]uint64{}
			ready := func() {
				for _, w := range p.Ready() {
					closed[w.Merged.Start] += w.Merged.Events
				}
			}
			add := func(i int, at, produced time.Time) Outcome {
				src := Source{Topic: "in", Partition: i % c.partitions, Offset: int64(i), Time: produced}
				now := produced.Add(c.replay)
				if c.replay < 0 {
					src.Time, now = time.Time{}, produced
				}
				e := ev("m", at.Sub(t0), 1)
				o, _, _ := p.Add(e, src, now)
				return o
			}
			if o := add(0, t0.Add(23*time.Hour), t0); o != Added {
				t.Fatalf("the event 23 h ahead: outcome %d, want added", o)
			}
			ready()
			late := 0
			for i := 1; i <= 1000; i++ {
				at := t0.Add(time.Duration(i) * 100 * time.Millisecond) // 100 s of events
				if add(i, at, at) == Late {
					late++
				}
				ready()
			}
			if late != c.wantLate {
				t.Fatalf("%d of 1,000 on-time events late, want %d", late, c.wantLate)
			}
			if !c.bound {
				return
			}
			// The watermark is at 100 s − 10 s: [0, 60) closed with its 599 events.
			if len(closed) != 1 || closed[t0.UnixMilli()] != 599 {
				t.Errorf("closed windows %v: want only [0, 60) with 599 events", closed)
			}
			var future uint64
			for _, w := range p.CloseAll() {
				if w.Merged.Start == t0.Add(23*time.Hour).UnixMilli() {
					future += w.Merged.Events
				}
			}
			if future != 1 {
				t.Errorf("the event 23 h ahead: %d events in its window, want 1", future)
			}
		})
	}
}

// Ready and Idle skip their scan of the open windows until a bound says something may
// close (readyDue, idleSkip): on random streams of several models, partitions, bursts,
// pauses and out-of-order events, they close exactly what a full scan at every call closes.
func TestReadyAndIdleSkipNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		seed  uint64
		pause float64 // probability of a wall-clock pause after an event
	}{{"steady", 1, 0}, {"bursty", 2, 0.02}, {"quiet", 3, 0.2}} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(c.seed, 9))
			spec := func(m string) WindowSpec {
				if m == "hourly" {
					return WindowSpec{Size: time.Hour, Lateness: 5 * time.Minute}
				}
				return WindowSpec{Size: time.Minute, Lateness: 10 * time.Second}
			}
			skip, scan := NewProcessor(spec, Limits{}), NewProcessor(spec, Limits{})
			describe := func(cs []Closed) string {
				var s string
				for _, c := range cs {
					s += fmt.Sprintf("%v@%d:%d ", c.Merged.Series, c.Merged.Start, c.Merged.Events)
				}
				return s
			}
			wall, event := t0, t0
			models := []string{"a", "b", "hourly"}
			closed := 0
			for i := 0; i < 20000; i++ {
				event = event.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
				wall = wall.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
				if rng.Float64() < c.pause {
					wall = wall.Add(time.Duration(rng.IntN(300)) * time.Second)
					event = event.Add(time.Duration(rng.IntN(300)) * time.Second)
				}
				m := models[rng.IntN(len(models))]
				if m == "b" && (i/2000)%2 == 1 {
					m = "a" // b pauses for stretches
				}
				at := event.Sub(t0) - time.Duration(rng.IntN(20))*time.Second // some out of order
				e := ev(m, at, rng.Float64())
				src := Source{Topic: "p", Partition: rng.IntN(3), Offset: int64(i)}
				o1, _, _ := skip.Add(e, src, wall)
				o2, _, _ := scan.Add(e, src, wall)
				if o1 != o2 {
					t.Fatalf("event %d: %v vs %v", i, o1, o2)
				}
				clock := event.Add(-time.Duration(rng.IntN(5)) * time.Second)
				scan.readyDue, scan.idle.valid = true, false
				if a, b := describe(skip.Ready()), describe(scan.Ready()); a != b {
					t.Fatalf("event %d: Ready closed %q, a full scan %q", i, a, b)
				}
				scan.idle.valid = false
				got, want := skip.Idle(wall, time.Minute, clock), scan.Idle(wall, time.Minute, clock)
				if a, b := describe(got), describe(want); a != b {
					t.Fatalf("event %d: Idle closed %q, a full scan %q", i, a, b)
				}
				closed += len(want)
			}
			if closed == 0 && c.pause > 0 {
				t.Error("no window closed as idle: the stream does not test Idle")
			}
		})
	}
}

// A window that opened before its reference keeps its values; BinKept counts them between
// the reference's edges, as a judgement of the window would, but only where every value
// was kept and the layout names the feature as numeric.
func TestBinKept(t *testing.T) {
	edges := []float64{990, 1000, 1010}
	layout := &Layout{ReferenceID: "r", Features: map[string]FeatureLayout{
		"amount": {Kind: Numeric, Edges: edges}, "country": {Kind: Categorical}, PredictionFeature: {Kind: Numeric, Edges: []float64{0.5}}}}
	for _, c := range []struct {
		name     string
		values   []float64
		truncate bool
		layout   *Layout
		want     []uint64 // amount's bins, nil when left unbinned
	}{
		{"every value kept", []float64{985, 995, 1000, 1005, 1020, 1020}, false, layout, []uint64{1, 2, 1, 2}}, // an edge belongs to the bin below it
		{"values beyond the kept ones: the kept ones, as a merge in memory bins them", []float64{985, 995}, true, layout, []uint64{1, 1, 0, 0}},
		{"no reference yet", []float64{985}, false, nil, nil},
		{"a feature the reference lacks", []float64{985}, false, &Layout{Features: map[string]FeatureLayout{}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewProcessor(spec(0, 0), Limits{})
			for i, v := range c.values {
				p.Add(ev("m", time.Duration(i)*time.Second, v), Source{Topic: "t", Offset: int64(i)}, t0)
			}
			w := p.CloseAll()[0].Partials[0].WindowAgg
			f := w.Features["amount"]
			if c.truncate {
				f.Count += 5 // as if more values came than MaxRawValues keeps
			}
			w.BinKept(c.layout)
			if fmt.Sprint(f.Bins) != fmt.Sprint(c.want) {
				t.Errorf("bins %v, want %v", f.Bins, c.want)
			}
			if c.want != nil && (len(f.Edges) != len(edges) || w.Prediction.Bins == nil || w.Prediction.Bins[0] != uint64(len(c.values))) {
				t.Errorf("edges %v, prediction bins %v", f.Edges, w.Prediction.Bins)
			}
			if w.ReferenceID != "" {
				t.Errorf("the window's layout became %q: its categories were not counted against one", w.ReferenceID)
			}
		})
	}
}

// Progress says how far each model's windows are final here: the watermark, never past
// an open window, and past it the end of a window closed on the idle rule; with the
// newest event time per partition.
func TestProgress(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	add := func(model string, at time.Duration, part int, now time.Time) {
		t.Helper()
		if o, _, _ := p.Add(ev(model, at, 1), Source{Topic: "in", Partition: part, Offset: int64(at)}, now); o != Added {
			t.Fatalf("event at %v: %v", at, o)
		}
	}
	progress := func() map[string]ModelProgress {
		out := map[string]ModelProgress{}
		for _, mp := range p.Progress() {
			out[mp.Model] = mp
		}
		return out
	}
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	if len(p.Progress()) != 0 {
		t.Fatal("progress before any event")
	}
	add("m", 5*time.Second, 0, t0)
	add("m", 30*time.Second, 1, t0)
	add("m", 75*time.Second, 0, t0) // partition 1 holds the watermark at 30 s - 10 s
	got := progress()["m"]
	if got.Through != ms(0) { // the watermark (20 s) is inside the open window [0, 60 s)
		t.Errorf("through %v while the first window is open, want its start", time.UnixMilli(got.Through).UTC())
	}
	if got.EventMax[TopicPartition{"in", 0}] != ms(75*time.Second) || got.EventMax[TopicPartition{"in", 1}] != ms(30*time.Second) {
		t.Errorf("event max %v", got.EventMax)
	}
	add("m", 80*time.Second, 1, t0) // the watermark moves to 70 s: [0, 60 s) closes
	if n := len(p.Ready()); n != 1 {
		t.Fatalf("%d windows ready, want 1", n)
	}
	if got := progress()["m"].Through; got != ms(60*time.Second) {
		t.Errorf("through %v after the first window closed, want its end (the open window's start)", time.UnixMilli(got).UTC())
	}
	// Idle: the open window [60 s, 120 s) closes once the stream clock passes its end
	// plus the lateness; through is then its end, past the watermark.
	closed := p.Idle(t0.Add(time.Hour), time.Minute, t0.Add(131*time.Second))
	if len(closed) != 1 {
		t.Fatalf("%d windows closed idle, want 1", len(closed))
	}
	if got := progress()["m"].Through; got != ms(120*time.Second) {
		t.Errorf("through %v after the idle close, want the closed window's end", time.UnixMilli(got).UTC())
	}
	// A model seen on one partition only has a row for that one.
	add("n", 5*time.Second, 2, t0.Add(time.Hour))
	if got := progress()["n"].EventMax; len(got) != 1 {
		t.Errorf("model n's partitions: %v", got)
	}
}

// A new series of a model whose other series were forgotten to make room for it keeps the
// model's state: its record for a window already closed, or judged by a spread group's
// judge, is late, not a window opened again.
func TestNewSeriesKeepsItsModelsClosedWindows(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 0), Limits{MaxSeries: 1, SeriesIdle: time.Hour})
	e := ev("a", time.Second, 1)
	if o, _, _ := p.Add(e, Source{Topic: "in", Partition: 0, Offset: 1}, t0); o != Added {
		t.Fatalf("first event: outcome %d", o)
	}
	p.CloseAll()
	p.Judged("a", t0.Add(10*time.Minute).UnixMilli())
	e = ev("a", 2*time.Second, 1) // the closed window
	e.ModelVersion = "2"          // a new series: the first is forgotten to make room
	if o, _, _ := p.Add(e, Source{Topic: "in", Partition: 0, Offset: 2}, t0.Add(2*time.Hour)); o != Late {
		t.Fatalf("a new series' event for a closed window: outcome %d, want late", o)
	}
	if p.Series() != 1 {
		t.Fatalf("%d series, want the new one alone", p.Series())
	}
}

// A partition re-reading windows it had written before a restart holds the model's open
// windows until it is past them: the windows another partition's records reach first
// stay open for its new records (review of session 16: they came back late, so the
// result depended on how the partitions' reads interleaved).
func TestReplayedRecordsHoldTheWatermark(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	p0, p1 := TopicPartition{"in", 0}, TopicPartition{"in", 1}
	for i := range 60 { // the hour partition 1 had written before the restart
		start := t0.Add(time.Duration(i) * time.Minute)
		p.Restore("m", start.UnixMilli(), start.Add(time.Minute).UnixMilli(), p1, int64(i))
	}
	var closed []Closed
	add := func(tp TopicPartition, off int64, at time.Duration, want Outcome) {
		t.Helper()
		p.Read(tp, tp == p1 && off < 61) // partition 1 has records after these: read behind
		if o, _, _ := p.Add(ev("m", at, 1), Source{Topic: tp.Topic, Partition: tp.Partition, Offset: off}, t0); o != want {
			t.Fatalf("%v offset %d at %v: outcome %d, want %d", tp, off, at, o, want)
		}
		closed = append(closed, p.Ready()...)
	}
	add(p1, 0, 30*time.Second, Replayed) // re-reading from its committed offset
	add(p0, 500, 60*time.Minute+5*time.Second, Added)
	add(p0, 501, 61*time.Minute+30*time.Second, Added)
	for i := int64(1); i < 60; i++ {
		add(p1, i, time.Duration(i)*time.Minute+30*time.Second, Replayed)
	}
	// Replays hold the watermark only: a spread group's judges read the progress rows its
	// last reader wrote until this member has added something of the partition's.
	for _, mp := range p.Progress() {
		if _, ok := mp.EventMax[p1]; ok {
			t.Fatalf("progress %+v: partition 1 counted from replayed records", mp)
		}
	}
	add(p1, 60, 60*time.Minute+20*time.Second, Added) // its first new record, in the open window
	add(p1, 61, 62*time.Minute, Added)
	if len(closed) != 1 || closed[0].Merged.Events != 2 || len(closed[0].Partials) != 2 {
		t.Fatalf("closed %+v, want the 60th minute with both partitions' records", closed)
	}
}

// A record recorded as late before a restart is replayed after it without holding the
// watermark: its partition may not carry the model otherwise, and holding the model's
// windows for it would make records that were late live count after a restart.
func TestReplayedLateRecordDoesNotHold(t *testing.T) {
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{})
	p0, p1 := TopicPartition{"in", 0}, TopicPartition{"in", 1}
	p.RestoreLate("m", t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), p1, 5)
	p.Read(p1, true)
	if o, _, _ := p.Add(ev("m", 30*time.Second, 1), Source{Topic: p1.Topic, Partition: p1.Partition, Offset: 5}, t0); o != Replayed {
		t.Fatalf("the late record re-read: outcome %d, want replayed", o)
	}
	for i, at := range []time.Duration{51 * time.Minute, 51*time.Minute + 30*time.Second, 53 * time.Minute} {
		p.Read(p0, false)
		if o, _, _ := p.Add(ev("m", at, 1), Source{Topic: p0.Topic, Partition: p0.Partition, Offset: int64(i)}, t0); o != Added {
			t.Fatalf("record %d: outcome %d", i, o)
		}
	}
	if closed := p.Ready(); len(closed) != 1 || closed[0].Merged.Start != t0.Add(51*time.Minute).UnixMilli() {
		t.Fatalf("closed %+v, want the 51st minute (partition 1's straggler holds nothing)", closed)
	}
}

// While a start-up lasts (HoldUnseen), a partition read behind holds the models it has
// not delivered yet at its own newest event time less the skew bound: in a backlog keyed
// by model, another partition's records must not close a model's windows that the
// partition still feeds further on, whatever the order in which the partitions' first
// fetches came. One read to its end, or not placed by any record, holds nothing; one
// further behind than ten skew bounds neither; and none once the start-up is over.
func TestReadBehindPartitionHoldsModelsItHasNotDelivered(t *testing.T) {
	p0, p1 := TopicPartition{"in", 0}, TopicPartition{"in", 1}
	now := t0.Add(time.Hour)
	at := func(tp TopicPartition, off int64) Source {
		return Source{Topic: tp.Topic, Partition: tp.Partition, Offset: off}
	}
	minutes := func(closed []Closed) []int64 {
		var out []int64
		for _, c := range closed {
			out = append(out, (c.Merged.Start-t0.UnixMilli())/time.Minute.Milliseconds())
		}
		slices.Sort(out)
		return out
	}
	// A skew bound of 2 minutes: partition 1 at 10 minutes holds the models it has not
	// delivered at 8, so windows up to minute 7 (ending 8, less the 10 s lateness) stay open.
	spec := func(string) WindowSpec {
		return WindowSpec{Size: time.Minute, Lateness: 10 * time.Second, MaxSkew: 2 * time.Minute}
	}
	for _, c := range []struct {
		name      string
		p1Lagging bool
		p1At      time.Duration // partition 1's newest event, of model b
		startUp   bool
		want      []int64 // the windows of model a closed by partition 0 reaching 30 minutes
	}{
		{"read behind", true, 10 * time.Minute, true, seq(0, 6)},
		{"read behind, start-up over", true, 10 * time.Minute, false, seq(0, 28)},
		{"read to its end", false, 10 * time.Minute, true, seq(0, 28)},
		{"beyond ten skew bounds", true, -11 * time.Minute, true, seq(0, 28)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewProcessor(spec, Limits{})
			p.HoldUnseen(c.startUp)
			p.Read(p1, c.p1Lagging)
			if o, _, _ := p.Add(ev("b", c.p1At, 1), at(p1, 0), now); o != Added {
				t.Fatalf("partition 1's record: outcome %d", o)
			}
			var closed []Closed
			for i := range 31 {
				p.Read(p0, true)
				p.Add(ev("a", time.Duration(i)*time.Minute, 1), at(p0, int64(i)), now)
				closed = append(closed, p.Ready()...)
			}
			if got := minutes(closed); !slices.Equal(got, c.want) {
				t.Fatalf("closed minutes %v, want %v", got, c.want)
			}
			if c.name != "read behind" {
				return
			}
			// Partition 1 then delivers model a where it stands: on time, and from then on
			// it holds model a at its own record of it (read behind: ten skew bounds).
			if o, _, _ := p.Add(ev("a", 10*time.Minute+30*time.Second, 1), at(p1, 1), now); o != Added {
				t.Fatalf("partition 1's record of model a at 10m30s: outcome %d, want Added", o)
			}
			if got := minutes(p.Ready()); !slices.Equal(got, seq(7, 9)) {
				t.Fatalf("after partition 1 delivered model a at 10m30s, closed %v, want 7 to 9", got)
			}
			p.Read(p1, false)
			p.Add(ev("a", 40*time.Minute, 1), at(p1, 2), now)
			p.Read(p0, false)
			p.Add(ev("a", 40*time.Minute, 1), at(p0, 31), now)
			closed = p.Ready()
			if got := minutes(closed); !slices.Equal(got, seq(10, 30)) {
				t.Fatalf("closed %v, want 10 to 30 (31 to 39 have no events)", got)
			}
			if w := closed[0]; w.Merged.Events != 2 || len(w.Partials) != 2 {
				t.Fatalf("minute 10: %d events from %d partitions, want 2 from 2", w.Merged.Events, len(w.Partials))
			}
		})
	}
	// Read to its end, or once the start-up is over, the partition lets go of the models
	// it held: their last windows close without waiting for another event of theirs (or
	// for the idle close).
	for _, release := range []string{"read to its end", "start-up over"} {
		t.Run("released: "+release, func(t *testing.T) {
			p := NewProcessor(spec, Limits{})
			p.HoldUnseen(true)
			p.Read(p1, true)
			p.Add(ev("b", 10*time.Minute, 1), at(p1, 0), now)
			p.Read(p0, false)
			for i := range 31 {
				p.Add(ev("a", time.Duration(i)*time.Minute, 1), at(p0, int64(i)), now)
			}
			if got := minutes(p.Ready()); !slices.Equal(got, seq(0, 6)) {
				t.Fatalf("closed %v while partition 1 is read behind at 10 minutes, want 0 to 6", got)
			}
			p.Read(p1, true) // another record of partition 1 read behind: nothing changes
			if got := p.Ready(); len(got) != 0 {
				t.Fatalf("closed %d windows while partition 1 is still read behind", len(got))
			}
			if release == "read to its end" {
				p.Read(p1, false)
			} else {
				p.HoldUnseen(false)
			}
			if got := minutes(p.Ready()); !slices.Equal(got, seq(7, 28)) {
				t.Fatalf("closed %v once released, want 7 to 28", got)
			}
		})
	}
}

// A model whose events on a partition trail that partition's other models (by less than
// the skew bound) is held for them while the start-up lasts: the partition's first
// record of it, read after another partition carried the model on, is on time (review of
// session 17: holding at the partition's newest time made every one of them late).
func TestUnseenHoldCoversAModelTrailingItsPartition(t *testing.T) {
	p0, p1 := TopicPartition{"in", 0}, TopicPartition{"in", 1}
	now := t0.Add(2 * time.Hour)
	p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{}) // skew bound 1 h
	p.HoldUnseen(true)
	p.Read(p1, true)
	p.Add(ev("a", 30*time.Minute, 1), Source{Topic: p1.Topic, Partition: p1.Partition, Offset: 0}, now)
	p.Read(p0, true)
	for i := range 31 {
		p.Add(ev("b", time.Duration(i)*time.Minute, 1), Source{Topic: p0.Topic, Partition: p0.Partition, Offset: int64(i)}, now)
	}
	if closed := p.Ready(); len(closed) != 0 {
		t.Fatalf("closed %d windows of model b while partition 1, read behind at 30 minutes, has not delivered it", len(closed))
	}
	if o, _, _ := p.Add(ev("b", 10*time.Minute, 1), Source{Topic: p1.Topic, Partition: p1.Partition, Offset: 1}, now); o != Added {
		t.Fatalf("partition 1's first record of model b, 20 minutes behind its model a: outcome %d, want Added", o)
	}
}

// seq returns from, from+1, ..., to.
func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// A partition placed for the first time while read behind holds the models that
// advanced before it (review of session 17: their watermark, worked out without it,
// closed windows its records still fed), as does one read behind again.
func TestPartitionPlacedLaterHoldsModelsThatAdvancedBefore(t *testing.T) {
	p0, p1 := TopicPartition{"in", 0}, TopicPartition{"in", 1}
	now := t0.Add(time.Hour)
	for _, c := range []string{"placed later", "read behind again"} {
		t.Run(c, func(t *testing.T) {
			p := NewProcessor(spec(time.Minute, 10*time.Second), Limits{}) // skew bound 1 h
			p.HoldUnseen(true)
			if c == "read behind again" {
				p.Read(p1, false)
				p.Add(ev("b", 0, 1), Source{Topic: p1.Topic, Partition: p1.Partition, Offset: 0}, now)
			}
			for i := range 31 { // model a, partition 0 read to its end
				p.Read(p0, i < 30)
				p.Add(ev("a", time.Duration(i)*time.Minute, 1), Source{Topic: p0.Topic, Partition: p0.Partition, Offset: int64(i)}, now)
			}
			if c == "placed later" {
				p.Read(p1, true)
				p.Add(ev("b", 0, 1), Source{Topic: p1.Topic, Partition: p1.Partition, Offset: 0}, now)
			} else {
				p.Ready() // closed while partition 1 was read to its end
				p.Read(p0, true)
				p.Add(ev("a", 31*time.Minute, 1), Source{Topic: p0.Topic, Partition: p0.Partition, Offset: 31}, now)
				p.Read(p1, true)
			}
			if closed := p.Ready(); len(closed) != 0 {
				t.Fatalf("closed %d windows of model a while partition 1, read behind at 0, has not delivered it", len(closed))
			}
		})
	}
}
