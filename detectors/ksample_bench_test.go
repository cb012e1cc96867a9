package detectors

import (
	"math"
	"testing"
)

// binnedNormal returns counts of n normal values (mean shift, unit sd) over 50 bins of
// [-5, 5], computed from the distribution (no randomness).
func binnedNormal(n, shift float64) []float64 {
	out := make([]float64, 50)
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-(x-shift)/math.Sqrt2) }
	for i := range out {
		lo, hi := -5+float64(i)*0.2, -5+float64(i+1)*0.2
		out[i] = math.Round(n * (cdf(hi) - cdf(lo)))
	}
	return out
}

// BenchmarkCramerVonMises measures the test of one numeric feature of one window against
// its reference (50 bins): alike (a p-value near 1), slightly shifted, and shifted by half
// a standard deviation in a large window (a statistic far in the tail: the p-value's
// series needs its most terms).
func BenchmarkCramerVonMises(b *testing.B) {
	ref := binnedNormal(10000, 0)
	for _, c := range []struct {
		name  string
		n, sh float64
	}{{"alike", 5000, 0}, {"shift0.05", 5000, 0.05}, {"shift0.5", 50000, 0.5}} {
		win := binnedNormal(c.n, c.sh)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				CramerVonMises(ref, win)
			}
		})
	}
}
