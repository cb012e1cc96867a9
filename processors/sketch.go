package processors

import (
	"fmt"

	"github.com/DataDog/sketches-go/ddsketch"
)

// SketchRelativeAccuracy is the documented relative error of every quantile driftd reports:
// a reported q-quantile x̂ satisfies |x̂ − x| ≤ 1% · |x| for the true q-quantile x.
const SketchRelativeAccuracy = 0.01

// sketchMaxBins bounds a sketch's memory (about 16 KiB). With 1% accuracy, 2048 bins span
// more than 17 orders of magnitude before the lowest bins collapse.
const sketchMaxBins = 2048

// Quantiles reported for latency and numeric features.
var Quantiles = []float64{0.5, 0.9, 0.95, 0.99}

// Sketch is a mergeable quantile sketch (DDSketch): merging sketches of two partitions
// keeps the same relative-error guarantee as one sketch of all values.
type Sketch struct{ s *ddsketch.DDSketch }

// NewSketch returns an empty sketch.
func NewSketch() Sketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(SketchRelativeAccuracy, sketchMaxBins)
	if err != nil {
		// Only an accuracy outside (0, 1) fails, and the constant is inside.
		panic(fmt.Sprintf("ddsketch: %v", err))
	}
	return Sketch{s: s}
}

// Add records one value.
func (k Sketch) Add(v float64) { _ = k.s.Add(v) }

// Count returns how many values were added.
func (k Sketch) Count() float64 { return k.s.GetCount() }

// Quantile returns the q-quantile, or 0 for an empty sketch.
func (k Sketch) Quantile(q float64) float64 {
	if k.s.IsEmpty() {
		return 0
	}
	v, err := k.s.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return v
}

// Merge adds other's values into k.
func (k Sketch) Merge(other Sketch) { _ = k.s.MergeWith(other.s) }

// Encode serializes the sketch (DDSketch's own binary encoding) for storage.
func (k Sketch) Encode() []byte {
	var b []byte
	k.s.Encode(&b, false)
	return b
}

// DecodeSketch restores a sketch from Encode's output.
func DecodeSketch(b []byte) (Sketch, error) {
	k := NewSketch()
	if len(b) == 0 {
		return k, nil
	}
	if err := k.s.DecodeAndMergeWith(b); err != nil {
		return Sketch{}, fmt.Errorf("decode sketch: %w", err)
	}
	return k, nil
}

// Histogram estimates how many values fall in each bin over edges (BinIndex's bins),
// placing each sketch bucket at its representative value. A value within the sketch's
// relative accuracy of an edge may land in the neighbouring bin.
func (k Sketch) Histogram(edges []float64) []float64 {
	out := make([]float64, len(edges)+1)
	k.s.ForEach(func(v, c float64) bool {
		out[BinIndex(edges, v)] += c
		return false
	})
	return out
}
