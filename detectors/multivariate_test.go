package detectors

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

func correlated(rng *rand.Rand, rho float64, at time.Duration) *schemas.PredictionEvent {
	x := rng.NormFloat64()
	y := rho*x + math.Sqrt(1-rho*rho)*rng.NormFloat64()
	z := rng.NormFloat64()
	return &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(at), Status: "ok",
		Features: []schemas.Feature{
			{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: 50 + 10*x}},
			{Name: "y", Value: schemas.Value{Kind: schemas.Number, Num: 3 * y}},
			{Name: "z", Value: schemas.Value{Kind: schemas.Number, Num: z}},
		}, Prediction: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}}
}

// A broken correlation, with every marginal unchanged: no single-feature test sees it,
// the PCA reconstruction error does.
func TestPCACatchesABrokenCorrelation(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	sample := NewSample()
	for i := 0; i < 20000; i++ {
		sample.AddEvent(correlated(rng, 0.9, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	if ref.PCA == nil || len(ref.PCA.Features) != 3 || len(ref.PCA.Components) == 0 {
		t.Fatalf("no joint model: %+v", ref.PCA)
	}
	judge := func(rho float64) Verdict {
		p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})
		p.SetLayout("m", "1", ref.Layout())
		for i := 0; i < 3000; i++ {
			p.Add(correlated(rng, rho, time.Duration(i)*time.Millisecond), processors.Source{Offset: int64(i)}, t0)
		}
		return Evaluate(p.CloseAll()[0].Merged, ref, func(string) Thresholds { return DefaultThresholds })
	}
	for i := 0; i < 20; i++ {
		v := judge(0.9)
		if v.Multivariate == nil || v.Multivariate.Drifted {
			t.Fatalf("stationary window %d: %+v (threshold from the reference: %v ± %v)", i, v.Multivariate, ref.PCA.ErrMean, ref.PCA.ErrStd)
		}
	}
	v := judge(-0.9)
	for _, s := range v.Scores {
		if s.Drifted {
			t.Errorf("feature %s drifted on its own: PSI %.3f p %.3g", s.Feature, s.PSI, s.PValue)
		}
	}
	if v.Multivariate == nil || !v.Multivariate.Drifted {
		t.Fatalf("broken correlation not seen: %+v", v.Multivariate)
	}
	var cond *Condition
	for i, c := range v.Conditions {
		if c.Metric == "pca_reconstruction_error" {
			cond = &v.Conditions[i]
		}
	}
	if cond == nil || !cond.Breached || cond.Kind != schemas.KindDataDrift {
		t.Fatalf("condition %+v", cond)
	}
}

// Merged co-moments equal the co-moments of all rows.
func TestCoMomentsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 3))
	all, a, b := processors.NewCoMoments(3), processors.NewCoMoments(3), processors.NewCoMoments(3)
	for i := 0; i < 1000; i++ {
		x := []float64{rng.NormFloat64() * 100, rng.NormFloat64() + 7, rng.Float64()}
		all.Add(x)
		if i%3 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Merge(b)
	for i, c := range all.Cov() {
		if !close(c, a.Cov()[i], 1e-9) {
			t.Fatalf("cov[%d] %v vs %v", i, c, a.Cov()[i])
		}
	}
}

// The joint threshold: the material rise binds for large windows, noise for small ones,
// and it tightens as windows grow; the model works on ranks and tells windows so; a
// profile stored before (raw values, 20 chunks, no row moments) still loads and gets a
// threshold of the same kind.
func TestPCAThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	sample := NewSample()
	for i := 0; i < 3000; i++ {
		sample.AddEvent(correlated(rng, 0.9, 0))
	}
	ref := sample.Build("m", "1", SourceFirstWindows, 3, t0)
	m := ref.PCA
	if m == nil || !m.Binned || m.ChunkRows != 1 || m.ErrRows != 1500 || m.ErrSkew <= 0 || m.ErrKurt <= 1 {
		t.Fatalf("joint model %+v", m)
	}
	l := ref.Layout()
	if len(l.JointEdges) != len(m.Features) || len(l.JointEdges[0]) != len(ref.Features[m.Features[0]].Edges) {
		t.Fatalf("layout joint edges %v for %v", len(l.JointEdges), m.Features)
	}
	material := m.ErrMean * (1 + PCAMinRise)
	prev := math.Inf(1)
	for _, n := range []float64{100, 300, 1000, 3000, 1e5} {
		th := m.Threshold(n)
		if th > prev || th < material {
			t.Errorf("threshold %v at %v rows (previous %v, material %v)", th, n, prev, material)
		}
		prev = th
	}
	if m.Threshold(100) <= material || m.Threshold(1e6) != material {
		t.Errorf("noise should bind at 100 rows (%v) and the material rise at a million (%v), material %v", m.Threshold(100), m.Threshold(1e6), material)
	}
	stored := []byte(`{"features":["x","y","z"],"mean":[50,0,0],"scale":[10,3,1],"components":[[0.7071,0.7071,0],[0,0,1]],` +
		`"error_mean":0.1,"error_std":0.02,"chunk_rows":1000}`)
	var old PCAModel
	if err := json.Unmarshal(stored, &old); err != nil {
		t.Fatal(err)
	}
	if old.Binned || old.ErrRows != 0 {
		t.Fatalf("stored model read as %+v", old)
	}
	if th := old.Threshold(3000); math.IsNaN(th) || th < 0.12 || th > 0.2 {
		t.Errorf("stored model's threshold at 3,000 rows: %v", th)
	}
	if l := (&Profile{PCA: &old, Features: map[string]*FeatureProfile{}}).Layout(); l.JointEdges != nil {
		t.Errorf("a stored raw-value model's windows must keep raw values: %v", l.JointEdges)
	}
}
