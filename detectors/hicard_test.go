package detectors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// hiCard draws a categorical feature with about 2,000 distinct values: "zipf" (rank r of
// 2,000 with probability ∝ 1/r; the top ten hold 36%) or "exp" (the traffic scenario's
// "m-%d" % int(ExpFloat64()*300)). top moves mass to the ten most frequent categories (with
// probability top a value is drawn from them alone); fresh draws a new category.
type hiCard struct {
	rng        *rand.Rand
	kind       string
	cum        []float64 // zipf: cumulative probabilities
	top, fresh float64
}

func newHiCard(seed uint64, kind string) *hiCard {
	g := &hiCard{rng: rand.New(rand.NewPCG(seed, 7)), kind: kind}
	if kind == "zipf" {
		g.cum = make([]float64, 2000)
		var s float64
		for r := range g.cum {
			s += 1 / float64(r+1)
			g.cum[r] = s
		}
		for r := range g.cum {
			g.cum[r] /= s
		}
	}
	return g
}

func (g *hiCard) value() string {
	if g.fresh > 0 && g.rng.Float64() < g.fresh {
		return "new"
	}
	u := g.rng.Float64()
	if g.top > 0 && g.rng.Float64() < g.top {
		if g.kind != "zipf" {
			return fmt.Sprintf("m-%d", g.rng.IntN(10))
		}
		u *= g.cum[9]
	}
	if g.kind == "zipf" {
		lo, hi := 0, len(g.cum)-1
		for lo < hi {
			if m := (lo + hi) / 2; g.cum[m] < u {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return fmt.Sprintf("m-%d", lo)
	}
	return fmt.Sprintf("m-%d", int(g.rng.ExpFloat64()*300))
}

// hiCardWindow counts n values as a window with the reference's layout does
// (processors.FeatureAgg.add): a category the reference kept always counts under its name,
// others while the window holds fewer than DefaultLimits.MaxCategories, the rest under
// OtherCategory.
func hiCardWindow(g *hiCard, fp *FeatureProfile, n int) *processors.FeatureAgg {
	agg := &processors.FeatureAgg{Name: "merchant", Kind: processors.Categorical, Categories: map[string]uint64{}}
	for i := 0; i < n; i++ {
		c := g.value()
		agg.Count++
		if _, known := fp.Categories[c]; known || agg.Categories[c] > 0 || len(agg.Categories) < processors.DefaultLimits.MaxCategories {
			agg.Categories[c]++
		} else {
			agg.Categories[processors.OtherCategory]++
		}
	}
	return agg
}

func hiCardReference(g *hiCard, n int) *FeatureProfile {
	s := NewSample()
	for i := 0; i < n; i++ {
		s.Add("merchant", schemas.Value{Kind: schemas.String, Str: g.value()})
	}
	return s.Build("m", "1", SourceFirstWindows, 3, t0).Features["merchant"]
}

// hiCardDrifts is the per-feature rule with the defaults for one feature in a family of
// four (three features and the prediction, Bonferroni): significant, beyond noise, PSI ≥ 0.1.
func hiCardDrifts(s FeatureScore) bool {
	return s.PValue < 0.05/4 && s.beyondNoise() && s.PSI >= 0.1
}

// A stationary feature with about 2,000 categories, most of them rare, must not drift:
// the reference keeps its 200 most frequent and counts the rest as OtherCategory, and the
// window's categories it did not keep are compared as that tail (categoryCells). Before,
// the exponential feature drifted in 7 of 48 windows of 1,500 values (PSI 0.11–0.12).
// The noise check's p-values must not fall below their level more often than uniform ones
// (as in TestNoiseCheckIsCalibrated), and no window may be beyond noise or drift.
func TestHighCardinalityCategoricalNoiseIsCalibrated(t *testing.T) {
	for _, c := range []struct {
		kind          string
		n, N          int
		refs, windows int
	}{{"zipf", 300, 900, 40, 1000}, {"zipf", 1500, 4500, 20, 500}, {"exp", 300, 900, 40, 1000}, {"exp", 1500, 4500, 20, 500}} {
		t.Run(fmt.Sprintf("%s/%d", c.kind, c.n), func(t *testing.T) {
			g := newHiCard(uint64(c.n)+uint64(len(c.kind)), c.kind)
			var p01, p001, beyond, drifts, psiOver, total int
			maxPSI := 0.0
			for r := 0; r < c.refs; r++ {
				fp := hiCardReference(g, c.N)
				for w := 0; w < c.windows; w++ {
					s, ok := score(hiCardWindow(g, fp, c.n), fp)
					if !ok {
						t.Fatal("not scored")
					}
					total++
					if s.NoiseP < 0.01 {
						p01++
					}
					if s.NoiseP < 0.001 {
						p001++
					}
					if s.beyondNoise() {
						beyond++
					}
					if hiCardDrifts(s) {
						drifts++
					}
					if s.PSI >= 0.1 {
						psiOver++
					}
					maxPSI = math.Max(maxPSI, s.PSI)
				}
			}
			r01, r001 := float64(p01)/float64(total), float64(p001)/float64(total)
			t.Logf("%s %d vs %d, %d windows: noise p < 0.01 in %.2f%%, < 0.001 in %.3f%%; beyond noise %d, drifted %d; PSI ≥ 0.1 in %.2f%% (max %.3f)",
				c.kind, c.n, c.N, total, 100*r01, 100*r001, beyond, drifts, 100*float64(psiOver)/float64(total), maxPSI)
			if beyond > 0 || drifts > 0 {
				t.Errorf("%d windows beyond noise, %d drifted, of %d unchanged ones", beyond, drifts, total)
			}
			// Windows of one reference share its noise: allow for that spread. The check
			// may be conservative (exp at 300 against 900: every category is rare, nothing
			// is pooled and χ² over the sparse cells stays far from its tail), never liberal.
			if r01 > 0.025 || r001 > 0.005 {
				t.Errorf("noise p-values too small: %.2f%% below 0.01, %.3f%% below 0.001", 100*r01, 100*r001)
			}
		})
	}
}

// The pooling must keep changes: a new category at 15% of the window, and mass moved to the
// ten most frequent categories (their share 36% → 60%, PSI ≈ 0.24), drift in most windows.
func TestHighCardinalityCategoricalChangesAreFound(t *testing.T) {
	for _, c := range []struct {
		name       string
		kind       string
		top, fresh float64
		n, N       int
		want       float64 // least share of windows that drift
	}{
		{"new category 15%", "zipf", 0, 0.15, 300, 900, 0.9},
		{"new category 15%", "zipf", 0, 0.15, 1500, 4500, 0.99},
		{"new category 15%", "exp", 0, 0.15, 300, 900, 0.9},
		{"new category 15%", "exp", 0, 0.15, 1500, 4500, 0.99},
		// 36% → 50% is PSI ≈ 0.08, below psi_warning: found in 7% and 83% of windows.
		{"top ten 36% to 60%", "zipf", 0.375, 0, 300, 900, 0.5},
		{"top ten 36% to 60%", "zipf", 0.375, 0, 1500, 4500, 0.99},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", c.name, c.kind, c.n), func(t *testing.T) {
			g := newHiCard(uint64(c.n)+uint64(len(c.name)), c.kind)
			const refs, windows = 20, 50
			found := 0
			for r := 0; r < refs; r++ {
				g.top, g.fresh = 0, 0
				fp := hiCardReference(g, c.N)
				g.top, g.fresh = c.top, c.fresh
				for w := 0; w < windows; w++ {
					s, ok := score(hiCardWindow(g, fp, c.n), fp)
					if !ok {
						t.Fatal("not scored")
					}
					if hiCardDrifts(s) {
						found++
					}
				}
			}
			rate := float64(found) / float64(refs*windows)
			t.Logf("%s, %s %d vs %d: drifted in %.1f%% of windows", c.name, c.kind, c.n, c.N, 100*rate)
			if rate < c.want {
				t.Errorf("drifted in %.1f%% of windows, want ≥ %.0f%%", 100*rate, 100*c.want)
			}
		})
	}
}
