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
	// ReferenceID names the layout the partition's values were counted against ("" when
	// its window opened before any reference); Edges and Bins are its counts between the
	// layout's bin edges (empty without a layout).
	ReferenceID string
	Edges       []float64
	Bins        []uint64
	// Raw is the numeric values kept of a window that opened before its first-windows
	// reference existed (Partial.KeepRaw), empty otherwise.
	Raw []float64
}

// StoredService is one partition's stored service counts of one window (a row of
// window_model_stats).
type StoredService struct {
	Events, OK, Errors, Timeouts, NullPredictions, DroppedFeatures uint64
	LatencySketch                                                  []byte
	LatencyMax                                                     float64
	// InputSize holds count, mean, min and max; InputSizeStd the standard deviation.
	InputSize    Moments
	InputSizeStd float64
	// Joint holds the joint features' co-moments (N 0 when the layout had none).
	Joint struct {
		N       float64
		Mean, C []float64
	}
}

// AddService merges one partition's stored service counts into a rebuilt window.
func (w *WindowAgg) AddService(p StoredService) error {
	sk, err := DecodeSketch(p.LatencySketch)
	if err != nil {
		return fmt.Errorf("latency sketch: %w", err)
	}
	w.Events += p.Events
	w.OK += p.OK
	w.Errors += p.Errors
	w.Timeouts += p.Timeouts
	w.NullPredictions += p.NullPredictions
	w.DroppedFeatures += p.DroppedFeatures
	w.Latency.Merge(sk)
	w.LatencyMax = max(w.LatencyMax, p.LatencyMax)
	in := p.InputSize
	in.M2 = p.InputSizeStd * p.InputSizeStd * max(in.N-1, 0)
	w.InputSize.Merge(in)
	if d := len(p.Joint.Mean); p.Joint.N > 0 && d > 0 && len(p.Joint.C) == d*d {
		o := NewCoMoments(d)
		o.N = p.Joint.N
		copy(o.Mean, p.Joint.Mean)
		copy(o.C, p.Joint.C)
		if w.Joint == nil {
			w.Joint = o
		} else {
			w.Joint.Merge(o)
		}
	}
	return nil
}

// RebuildWindow merges stored feature summaries (one per partition and feature, in
// partition order) back into a window's feature aggregates: counts, moments, sketches,
// bins, kept raw values and categories. Service counts are added with AddService.
func RebuildWindow(series SeriesKey, start, end int64, parts []StoredFeature) (*WindowAgg, error) {
	w := newWindowAgg(series, start, end)
	for _, p := range parts {
		if w.ReferenceID == "" {
			w.ReferenceID = p.ReferenceID
		}
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
			// Kept values first: the partition was binned from them after it closed
			// (BinKept), and a window in memory merges its partitions' kept values (the
			// first MaxRawValues in partition order), not their bins.
			f.Raw = nil
			if len(p.Raw) > 0 {
				f.Raw = append([]float64(nil), p.Raw...)
			} else if len(p.Bins) > 0 && len(p.Bins) == len(p.Edges)+1 {
				f.Edges, f.Bins = p.Edges, append([]uint64(nil), p.Bins...)
			}
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
