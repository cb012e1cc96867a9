package processors

import "fmt"

// StoredFeature is one partition's stored summary of one feature (a row of
// window_feature_stats).
type StoredFeature struct {
	Name, Kind                 string
	Count, Missing, Mismatched uint64
	Mean, Std, Min, Max        float64
	Sketch                     []byte
	Categories                 map[string]uint64
	Unseen                     uint64
}

// RebuildWindow merges stored feature summaries (one per partition and feature) back into
// a window's feature aggregates: counts, moments, sketches and categories. Service counts
// are not restored; the result serves as a reference.
func RebuildWindow(series SeriesKey, start, end int64, parts []StoredFeature) (*WindowAgg, error) {
	w := newWindowAgg(series, start, end)
	for _, p := range parts {
		kind := Categorical
		if p.Kind == Numeric.String() {
			kind = Numeric
		}
		f := newFeatureAgg(p.Name, kind, nil)
		f.Count, f.Missing, f.Mismatched, f.Unseen = p.Count, p.Missing, p.Mismatched, p.Unseen
		if kind == Numeric {
			n := float64(p.Count)
			f.Moments = Moments{N: n, Mean: p.Mean, M2: p.Std * p.Std * max(n-1, 0), Min: p.Min, Max: p.Max}
			sk, err := DecodeSketch(p.Sketch)
			if err != nil {
				return nil, fmt.Errorf("rebuild %s: %w", p.Name, err)
			}
			f.Sketch = sk
			f.Raw = nil
		} else {
			for c, k := range p.Categories {
				f.Categories[c] = k
			}
		}
		dst := &w.Features
		if p.Name == PredictionFeature {
			if w.Prediction == nil {
				w.Prediction = f
			} else {
				w.Prediction.merge(f)
			}
			continue
		}
		if cur, ok := (*dst)[p.Name]; ok {
			cur.merge(f)
		} else {
			(*dst)[p.Name] = f
		}
	}
	return w, nil
}
