package detectors

import (
	"gonum.org/v1/gonum/mathext"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// The input, output and service signals are judged at per-window levels around 1e-5,
// where normal approximations of count statistics are off by orders of magnitude at the
// counts a small window holds. Their tests are therefore exact: tails of discrete
// distributions summed term by term (docs/detection.md).

// discrete is a distribution on the integers lo…hi, described by its log probability at
// a point and the ratios between neighbouring probabilities, which is how its tails are
// summed without a log-gamma per term.
type discrete struct {
	lo, hi int
	mean   float64
	logPmf func(k int) float64
	up     func(k int) float64 // pmf(k+1) / pmf(k)
	down   func(k int) float64 // pmf(k−1) / pmf(k)
}

// sf is P(X ≥ x).
func (d discrete) sf(x int) float64 {
	switch {
	case x <= d.lo:
		return 1
	case x > d.hi:
		return 0
	case float64(x) > d.mean:
		return d.sum(x, d.hi, 1)
	}
	return math.Max(0, 1-d.sum(x-1, d.lo, -1))
}

// cdf is P(X ≤ x).
func (d discrete) cdf(x int) float64 {
	switch {
	case x < d.lo:
		return 0
	case x >= d.hi:
		return 1
	case float64(x) < d.mean:
		return d.sum(x, d.lo, -1)
	}
	return math.Max(0, 1-d.sum(x+1, d.hi, 1))
}

// sum adds pmf(from), pmf(from+step), … up to pmf(to). It is called on the side of from
// away from the mean, where terms fall, and stops once they no longer move the sum.
func (d discrete) sum(from, to, step int) float64 {
	ratio := d.up
	if step < 0 {
		ratio = d.down
	}
	total, term := 1.0, 1.0
	for k := from; k != to; k += step {
		next := term * ratio(k)
		total += next
		if next <= term && next < 1e-17*total {
			break
		}
		term = next
	}
	return math.Min(1, math.Exp(d.logPmf(from)+math.Log(total)))
}

func lbeta(a, b float64) float64 {
	x, _ := math.Lgamma(a)
	y, _ := math.Lgamma(b)
	z, _ := math.Lgamma(a + b)
	return x + y - z
}

// hypergeometric is the number of successes among draws items taken from n items of
// which k are successes (scipy.stats.hypergeom(n, k, draws)).
func hypergeometric(n, k, draws int) discrete {
	return discrete{
		lo: max(0, draws-(n-k)), hi: min(k, draws), mean: float64(draws) * float64(k) / float64(n),
		logPmf: func(x int) float64 { return lchoose(k, x) + lchoose(n-k, draws-x) - lchoose(n, draws) },
		up: func(x int) float64 {
			return float64(k-x) * float64(draws-x) / (float64(x+1) * float64(n-k-draws+x+1))
		},
		down: func(x int) float64 {
			return float64(x) * float64(n-k-draws+x) / (float64(k-x+1) * float64(draws-x+1))
		},
	}
}

// FisherGreater is the one-sided p-value of Fisher's exact test that a window's rate
// (x of n) is higher than the reference's (xRef of nRef): P(X ≥ x) for X hypergeometric
// given both margins (scipy.stats.fisher_exact([[x, n−x], [xRef, nRef−xRef]],
// alternative="greater")). It is exact at any count, and conservative.
func FisherGreater(x, n, xRef, nRef uint64) float64 {
	if n == 0 || nRef == 0 || x > n || xRef > nRef {
		return 1
	}
	return hypergeometric(int(n+nRef), int(x+xRef), int(n)).sf(int(x))
}

// BetaBinomialSF is P(X ≥ x) for X beta-binomial with n trials and shapes a and b
// (scipy.stats.betabinom(n, a, b).sf(x − 1)).
func BetaBinomialSF(x, n int, a, b float64) float64 {
	if n <= 0 || a <= 0 || b <= 0 {
		return 1
	}
	d := discrete{
		lo: 0, hi: n, mean: float64(n) * a / (a + b),
		logPmf: func(k int) float64 { return lchoose(n, k) + lbeta(float64(k)+a, float64(n-k)+b) - lbeta(a, b) },
		up: func(k int) float64 {
			return float64(n-k) / float64(k+1) * (float64(k) + a) / (float64(n-k-1) + b)
		},
		down: func(k int) float64 {
			return float64(k) / float64(n-k+1) * (float64(n-k) + b) / (float64(k-1) + a)
		},
	}
	return d.sf(x)
}

// binomial is X ~ Binomial(n, p) for 0 < p < 1.
func binomial(n int, p float64) discrete {
	q := p / (1 - p)
	return discrete{
		lo: 0, hi: n, mean: float64(n) * p,
		logPmf: func(k int) float64 {
			return lchoose(n, k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
		},
		up:   func(k int) float64 { return float64(n-k) / float64(k+1) * q },
		down: func(k int) float64 { return float64(k) / float64(n-k+1) / q },
	}
}

// PoissonRateGreater is the one-sided p-value that a window's rate of counts (x per n
// of exposure) is higher than the reference's (xRef per nRef): given x + xRef, x is
// binomial with p = n / (n + nRef) when the rates are equal (the conditional test of
// two Poisson rates; scipy.stats.binomtest(x, x + xRef, n / (n + nRef),
// alternative="greater")). Counts may exceed their exposure.
func PoissonRateGreater(x, n, xRef, nRef uint64) float64 {
	if n == 0 || nRef == 0 {
		return 1
	}
	return BinomialSF(int(x), int(x+xRef), float64(n)/float64(n+nRef))
}

// BinomialSF is P(X ≥ x) and BinomialCDF P(X ≤ x) for X ~ Binomial(n, p)
// (scipy.stats.binom(n, p).sf(x − 1) and .cdf(x)).
func BinomialSF(x, n int, p float64) float64 {
	switch {
	case x <= 0:
		return 1
	case x > n || p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return binomial(n, p).sf(x)
}

// BinomialCDF is P(X ≤ x) for X ~ Binomial(n, p).
func BinomialCDF(x, n int, p float64) float64 {
	switch {
	case x < 0:
		return 0
	case x >= n || p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	return binomial(n, p).cdf(x)
}

// NegBinomialCDF is P(X ≤ x) for X negative binomial with mean mu and size r (variance
// mu + mu²/r; scipy.stats.nbinom(r, r/(r+mu)).cdf(x)): counts of traffic that varies
// more than Poisson. It is the regularized incomplete beta I_p(r, x+1), p = r/(r+mu).
func NegBinomialCDF(x int, mu, r float64) float64 {
	switch {
	case x < 0:
		return 0
	case mu <= 0:
		return 1
	}
	return mathext.RegIncBeta(r, float64(x)+1, r/(r+mu))
}

// WelchT is Welch's unequal-variances t-test of two means from their summaries (mean,
// sample standard deviation, count): the statistic, its Welch–Satterthwaite degrees of
// freedom and the two-sided p-value (scipy.stats.ttest_ind_from_stats(equal_var=False)).
func WelchT(mean1, std1, n1, mean2, std2, n2 float64) (t, df, p float64) {
	if n1 < 2 || n2 < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	v1, v2 := std1*std1/n1, std2*std2/n2
	se := math.Sqrt(v1 + v2)
	if se == 0 {
		if mean1 == mean2 {
			return 0, math.Inf(1), 1
		}
		return math.Copysign(math.Inf(1), mean1-mean2), math.Inf(1), 0
	}
	t = (mean1 - mean2) / se
	df = (v1 + v2) * (v1 + v2) / (v1*v1/(n1-1) + v2*v2/(n2-1))
	return t, df, math.Min(1, 2*distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t)))
}
