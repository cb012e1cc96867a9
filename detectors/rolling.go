package detectors

import (
	"time"

	"github.com/driftd/driftd/processors"
)

// ProfileFromWindow makes a reference of a closed window's aggregates. Numeric features
// are cut at the window's sketch quantiles and compared sketch against sketch
// (FeatureProfile.FromSketch): both sides then share the sketch's bucketing, so its 1%
// resolution blurs them alike instead of biasing the comparison.
func ProfileFromWindow(w *processors.WindowAgg, source ReferenceSource, createdAt time.Time) *Profile {
	p := &Profile{Model: w.Series.Model, Version: w.Series.Version, Source: source.String(), CreatedAt: createdAt.UTC(),
		Windows: 1, WindowMs: w.End - w.Start, Events: w.Events, Features: map[string]*FeatureProfile{}}
	add := func(f *processors.FeatureAgg) {
		if f == nil || f.Count == 0 {
			return
		}
		fp := &FeatureProfile{Kind: f.Kind.String(), Count: f.Count, Missing: f.Missing, Present: f.Count + f.Mismatched}
		if f.Kind == processors.Numeric {
			fp.Mean, fp.Std, fp.FromSketch = f.Moments.Mean, f.Moments.Std(), true
			if f.Count >= 2 {
				fp.Range, fp.RangeN = []float64{f.Moments.Min, f.Moments.Max}, f.Count
			}
			for k := 1; k < ReferenceBins; k++ {
				v := f.Sketch.Quantile(float64(k) / ReferenceBins)
				if len(fp.Edges) == 0 || v > fp.Edges[len(fp.Edges)-1] {
					fp.Edges = append(fp.Edges, v)
				}
			}
			for _, c := range f.Sketch.Histogram(fp.Edges) {
				fp.Bins = append(fp.Bins, uint64(c+0.5))
			}
		} else {
			fp.Categories = make(map[string]uint64, len(f.Categories))
			for c, n := range f.Categories {
				fp.Categories[c] = n
			}
			fp.Novel = novel(fp.Categories, fp.Categories)
		}
		p.Features[f.Name] = fp
	}
	for _, name := range w.FeatureNames() {
		add(w.Features[name])
	}
	add(w.Prediction)
	if w.Events > 0 {
		p.Service = serviceProfile(w.Events, w.Errors, w.Timeouts, w.NullPredictions, w.Latency, w.InputSize, []uint64{w.Events})
	}
	p.ID = profileID(p)
	return p
}
