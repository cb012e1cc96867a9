// Package detectors compares closed windows with reference profiles (PSI, two-sample
// Kolmogorov–Smirnov, chi-square) and with service thresholds, and turns the verdicts
// into alerts with a per-condition state machine (firing after N bad windows, resolved
// after M clean ones). Evaluation time and data are passed in; nothing here reads a
// clock or a database.
package detectors

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// PSIEpsilon replaces an empty bin's share so that PSI stays finite (the smoothing most
// PSI implementations use; with 10 bins it caps one empty bin's term near 0.6).
const PSIEpsilon = 1e-4

// PSI is the population stability index of actual against expected bin counts:
// Σ (a − e) · ln(a / e) over bin shares, empty shares replaced by PSIEpsilon.
func PSI(expected, actual []float64) float64 {
	ne, na := sum(expected), sum(actual)
	if ne == 0 || na == 0 || len(expected) != len(actual) {
		return math.NaN()
	}
	var psi float64
	for i := range expected {
		e, a := math.Max(expected[i]/ne, PSIEpsilon), math.Max(actual[i]/na, PSIEpsilon)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// KSBinned is the two-sample Kolmogorov–Smirnov statistic D = max |F₁ − F₂| evaluated at
// bin edges. With edges at every distinct value it equals the exact statistic; with
// quantile edges it underestimates D by at most the largest bin share of either sample.
func KSBinned(a, b []float64) float64 {
	na, nb := sum(a), sum(b)
	if na == 0 || nb == 0 || len(a) != len(b) {
		return math.NaN()
	}
	var ca, cb, d float64
	for i := range a {
		ca += a[i]
		cb += b[i]
		d = math.Max(d, math.Abs(ca/na-cb/nb))
	}
	return d
}

// KSPValue is the asymptotic p-value of a two-sample KS statistic d with sample sizes n
// and m: the Kolmogorov limiting distribution's survival function at √(nm/(n+m))·d
// (scipy.stats.kstwobign.sf). scipy's ks_2samp(method="asymp") uses the one-sample
// finite-n distribution instead; at n, m in the hundreds the two p-values differ by a
// few percent of their value, which moves no decision at α = 0.05 materially.
func KSPValue(d float64, n, m float64) float64 {
	if n <= 0 || m <= 0 || math.IsNaN(d) {
		return math.NaN()
	}
	return KolmogorovSF(math.Sqrt(n*m/(n+m)) * d)
}

// KolmogorovSF is P(K > x) for the Kolmogorov distribution (scipy.stats.kstwobign.sf).
func KolmogorovSF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x < 1 {
		// The alternating series converges slowly for small x; use the theta-function
		// form of the CDF instead: √(2π)/x · Σ exp(−(2k−1)²π²/(8x²)).
		var s float64
		f := -math.Pi * math.Pi / (8 * x * x)
		for k := 1; k <= 20; k++ {
			t := float64(2*k - 1)
			s += math.Exp(f * t * t)
		}
		return 1 - math.Sqrt(2*math.Pi)/x*s
	}
	var s float64
	for k := 1; k <= 100; k++ {
		term := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 1 {
			s += term
		} else {
			s -= term
		}
		if term < 1e-17 {
			break
		}
	}
	return math.Min(1, math.Max(0, 2*s))
}

// ChiSquare is Pearson's chi-square test of homogeneity for two samples of counts over
// the same categories (scipy.stats.chi2_contingency without Yates' correction).
// Categories empty in both samples are ignored. It returns the statistic, the degrees of
// freedom and the p-value.
func ChiSquare(a, b []float64) (stat float64, dof int, p float64) {
	return homogeneity(a, b, func(o, e float64) float64 { return (o - e) * (o - e) / e })
}

// homogeneity is a test of homogeneity of two count vectors in the power-divergence
// family: cell gives one cell's contribution from its observed and expected counts, and
// the statistic follows χ² with (categories − 1) degrees of freedom.
func homogeneity(a, b []float64, cell func(observed, expected float64) float64) (stat float64, dof int, p float64) {
	na, nb := sum(a), sum(b)
	if na == 0 || nb == 0 || len(a) != len(b) {
		return math.NaN(), 0, math.NaN()
	}
	n := na + nb
	k := 0
	for i := range a {
		col := a[i] + b[i]
		if col == 0 {
			continue
		}
		k++
		stat += cell(a[i], na*col/n) + cell(b[i], nb*col/n)
	}
	dof = k - 1
	if dof < 1 {
		return 0, 0, 1
	}
	return stat, dof, distuv.ChiSquared{K: float64(dof)}.Survival(stat)
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
