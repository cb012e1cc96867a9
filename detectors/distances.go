package detectors

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Distances and tests over two count vectors on the same bins or categories. Counts are
// turned into shares; a and b are the reference and the window.

func shares(xs []float64) []float64 {
	n := sum(xs)
	out := make([]float64, len(xs))
	if n == 0 {
		return out
	}
	for i, x := range xs {
		out[i] = x / n
	}
	return out
}

// KL is the Kullback–Leibler divergence of the window from the reference,
// Σ q·ln(q/p) over shares, empty shares replaced by PSIEpsilon (as for PSI) so that it
// stays finite; equal to scipy.stats.entropy(q, p) when no share is empty.
func KL(ref, win []float64) float64 {
	if len(ref) != len(win) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var d float64
	for i := range p {
		if q[i] == 0 {
			continue
		}
		d += q[i] * math.Log(q[i]/math.Max(p[i], PSIEpsilon))
	}
	return d
}

// JensenShannon is the Jensen–Shannon distance with base-2 logarithms, in [0, 1]
// (scipy.spatial.distance.jensenshannon(p, q, base=2)); empty bins need no smoothing.
func JensenShannon(ref, win []float64) float64 {
	if len(ref) != len(win) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var js float64
	for i := range p {
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			js += p[i] * math.Log2(p[i]/m) / 2
		}
		if q[i] > 0 {
			js += q[i] * math.Log2(q[i]/m) / 2
		}
	}
	return math.Sqrt(math.Max(js, 0))
}

// Hellinger is the Hellinger distance √(1 − Σ √(p·q)), in [0, 1].
func Hellinger(ref, win []float64) float64 {
	if len(ref) != len(win) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var bc float64
	for i := range p {
		bc += math.Sqrt(p[i] * q[i])
	}
	return math.Sqrt(math.Max(0, 1-bc))
}

// TotalVariation is ½ Σ |p − q|, in [0, 1].
func TotalVariation(ref, win []float64) float64 {
	if len(ref) != len(win) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var d float64
	for i := range p {
		d += math.Abs(p[i] - q[i])
	}
	return d / 2
}

// LInfinity is max |p − q| over categories.
func LInfinity(ref, win []float64) float64 {
	if len(ref) != len(win) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var d float64
	for i := range p {
		d = math.Max(d, math.Abs(p[i]-q[i]))
	}
	return d
}

// Wasserstein is the 1-Wasserstein (earth mover's) distance between two binned numeric
// distributions, ∫|F₁ − F₂| over the span of the edges: bin i holds edges[i-1] < x ≤
// edges[i], and the CDFs are known at the edges. It equals scipy.stats.wasserstein_distance
// when every value lies on an edge; otherwise the error is at most the bin width times the
// CDF difference within each bin, and mass outside [edges[0], edges[last]] is not counted.
func Wasserstein(edges, ref, win []float64) float64 {
	if len(ref) != len(edges)+1 || len(win) != len(ref) || sum(ref) == 0 || sum(win) == 0 {
		return math.NaN()
	}
	p, q := shares(ref), shares(win)
	var fp, fq, w float64
	for i := 0; i+1 < len(edges); i++ {
		fp += p[i]
		fq += q[i]
		w += math.Abs(fp-fq) * (edges[i+1] - edges[i])
	}
	return w
}

// GTest is the log-likelihood ratio (G) test of homogeneity of two count vectors
// (scipy.stats.chi2_contingency(lambda_="log-likelihood", correction=False)).
func GTest(a, b []float64) (g float64, dof int, p float64) {
	return homogeneity(a, b, func(o, e float64) float64 {
		if o == 0 {
			return 0
		}
		return 2 * o * math.Log(o/e)
	})
}

// TwoProportionZ is the two-sided z-test that a category has the same share in both
// samples (x successes of n), with the pooled standard error.
func TwoProportionZ(x1, n1, x2, n2 float64) (z, p float64) {
	if n1 <= 0 || n2 <= 0 {
		return math.NaN(), math.NaN()
	}
	pool := (x1 + x2) / (n1 + n2)
	se := math.Sqrt(pool * (1 - pool) * (1/n1 + 1/n2))
	if se == 0 {
		return 0, 1
	}
	z = (x1/n1 - x2/n2) / se
	return z, 2 * distuv.UnitNormal.Survival(math.Abs(z))
}

// FisherExact is the two-sided p-value of Fisher's exact test on the 2×2 table
// [[a, b], [c, d]] (scipy.stats.fisher_exact): the probability, under the hypergeometric
// distribution with the table's margins, of tables no more likely than the observed one.
func FisherExact(a, b, c, d int) float64 {
	if a < 0 || b < 0 || c < 0 || d < 0 {
		return math.NaN()
	}
	r1, c1, n := a+b, a+c, a+b+c+d
	lo, hi := max(0, r1+c1-n), min(r1, c1)
	logP := func(x int) float64 {
		return lchoose(c1, x) + lchoose(n-c1, r1-x) - lchoose(n, r1)
	}
	obs := logP(a)
	var p float64
	for x := lo; x <= hi; x++ {
		// scipy's relative tolerance: tables as likely as the observed one, up to rounding.
		if lp := logP(x); lp <= obs+1e-7 {
			p += math.Exp(lp)
		}
	}
	return math.Min(1, p)
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// BenjaminiHochberg returns the adjusted p-values (q-values) of the Benjamini–Hochberg
// procedure (scipy.stats.false_discovery_control(method="bh")): a feature drifts at false
// discovery rate α when its adjusted p-value is at most α.
func BenjaminiHochberg(ps []float64) []float64 {
	m := len(ps)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return ps[idx[i]] < ps[idx[j]] })
	out := make([]float64, m)
	prev := 1.0
	for r := m - 1; r >= 0; r-- {
		i := idx[r]
		adj := math.Min(prev, ps[i]*float64(m)/float64(r+1))
		out[i] = math.Min(adj, 1)
		prev = adj
	}
	return out
}
