package detectors

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
)

type reference struct {
	KS []struct {
		Name       string    `json:"name"`
		A          []float64 `json:"a"`
		B          []float64 `json:"b"`
		D          float64   `json:"d"`
		PKstwobign float64   `json:"p_kstwobign"`
	} `json:"ks"`
	KolmogorovSF []struct{ X, SF float64 } `json:"kolmogorov_sf"`
	Chi2         []struct {
		Name string    `json:"name"`
		A    []float64 `json:"a"`
		B    []float64 `json:"b"`
		Stat float64   `json:"stat"`
		Dof  int       `json:"dof"`
		P    float64   `json:"p"`
	} `json:"chi2"`
	PSI []struct {
		Name     string    `json:"name"`
		Expected []float64 `json:"expected"`
		Actual   []float64 `json:"actual"`
		PSI      float64   `json:"psi"`
	} `json:"psi"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/stats_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// binsAtEveryValue counts both samples over edges at every distinct value: the binned KS
// statistic is then the exact one.
func binsAtEveryValue(a, b []float64) ([]float64, []float64) {
	ca, cb, _ := binnedAtEveryValue(a, b)
	return ca, cb
}

// binnedAtEveryValue is binsAtEveryValue that also returns the edges.
func binnedAtEveryValue(a, b []float64) ([]float64, []float64, []float64) {
	edges := append(append([]float64{}, a...), b...)
	sort.Float64s(edges)
	uniq := edges[:0]
	for i, e := range edges {
		if i == 0 || e != edges[i-1] {
			uniq = append(uniq, e)
		}
	}
	count := func(xs []float64) []float64 {
		c := make([]float64, len(uniq)+1)
		for _, x := range xs {
			c[sort.SearchFloat64s(uniq, x)]++
		}
		return c
	}
	return count(a), count(b), uniq
}

func TestStatisticsMatchScipy(t *testing.T) {
	ref := loadReference(t)
	if len(ref.KS) == 0 || len(ref.Chi2) == 0 || len(ref.PSI) == 0 || len(ref.KolmogorovSF) == 0 {
		t.Fatal("reference file is incomplete")
	}
	for _, c := range ref.KS {
		ca, cb := binsAtEveryValue(c.A, c.B)
		d := KSBinned(ca, cb)
		p := KSPValue(d, float64(len(c.A)), float64(len(c.B)))
		if !close(d, c.D, 1e-12) || !close(p, c.PKstwobign, 1e-9) {
			t.Errorf("KS %s: D=%v p=%v, scipy D=%v p=%v", c.Name, d, p, c.D, c.PKstwobign)
		}
	}
	for _, c := range ref.KolmogorovSF {
		if got := KolmogorovSF(c.X); !close(got, c.SF, 1e-9) {
			t.Errorf("KolmogorovSF(%v) = %v, scipy %v", c.X, got, c.SF)
		}
	}
	for _, c := range ref.Chi2 {
		stat, dof, p := ChiSquare(c.A, c.B)
		if !close(stat, c.Stat, 1e-9) || dof != c.Dof || !close(p, c.P, 1e-9) {
			t.Errorf("chi2 %s: %v %d %v, scipy %v %d %v", c.Name, stat, dof, p, c.Stat, c.Dof, c.P)
		}
	}
	for _, c := range ref.PSI {
		if got := PSI(c.Expected, c.Actual); !close(got, c.PSI, 1e-12) {
			t.Errorf("PSI %s = %v, reference %v", c.Name, got, c.PSI)
		}
	}
}

func TestStatisticProperties(t *testing.T) {
	p := []float64{3, 9, 27, 1, 0, 5}
	q := []float64{1, 1, 2, 30, 4, 2}
	if PSI(p, p) != 0 || KSBinned(p, p) != 0 {
		t.Error("distance of a distribution to itself is not 0")
	}
	if s, _, pv := ChiSquare(p, p); s != 0 || pv != 1 {
		t.Errorf("chi2(p, p) = %v, p-value %v", s, pv)
	}
	if !close(PSI(p, q), PSI(q, p), 1e-12) || !close(KSBinned(p, q), KSBinned(q, p), 1e-12) {
		t.Error("PSI and KS are symmetric")
	}
	if s1, _, p1 := ChiSquare(p, q); true {
		s2, _, p2 := ChiSquare(q, p)
		if !close(s1, s2, 1e-12) || !close(p1, p2, 1e-12) {
			t.Error("chi2 is symmetric in its samples")
		}
	}
}

// Under the null hypothesis p-values are uniform: over many seeds about 5% fall below
// 0.05 and about half below 0.5.
func TestPValuesUniformUnderNull(t *testing.T) {
	const runs = 2000
	var ksBelow05, ksBelow50, chiBelow05, chiBelow50, adBelow05, cvmBelow05, cvmBelow50, gBelow05 int
	for seed := uint64(0); seed < runs; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		a, b := make([]float64, 400), make([]float64, 300)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		for i := range b {
			b[i] = rng.NormFloat64()
		}
		ca, cb := binsAtEveryValue(a, b)
		pk := KSPValue(KSBinned(ca, cb), 400, 300)
		_, pad := AndersonDarling(ca, cb)
		_, pcvm := CramerVonMises(ca, cb)
		if pad < 0.05 {
			adBelow05++
		}
		if pcvm < 0.05 {
			cvmBelow05++
		}
		if pcvm < 0.5 {
			cvmBelow50++
		}
		cats := func(n int) []float64 {
			c := make([]float64, 5)
			for i := 0; i < n; i++ {
				c[rng.IntN(5)]++
			}
			return c
		}
		ra, rb := cats(400), cats(300)
		_, _, pc := ChiSquare(ra, rb)
		if _, _, pg := GTest(ra, rb); pg < 0.05 {
			gBelow05++
		}
		for _, x := range []float64{pk, pc} {
			if x < 0 || x > 1 || math.IsNaN(x) {
				t.Fatalf("p-value %v outside [0, 1]", x)
			}
		}
		if pk < 0.05 {
			ksBelow05++
		}
		if pk < 0.5 {
			ksBelow50++
		}
		if pc < 0.05 {
			chiBelow05++
		}
		if pc < 0.5 {
			chiBelow50++
		}
	}
	// Binomial(2000, 0.05): sd ≈ 9.7, so ±40 is about 4 sd. The asymptotic KS test is
	// slightly conservative at these sizes, hence its lower bound.
	for _, c := range []struct {
		name   string
		got    int
		lo, hi int
	}{
		{"KS < 0.05", ksBelow05, 40, 140}, {"KS < 0.5", ksBelow50, 880, 1100},
		{"chi2 < 0.05", chiBelow05, 60, 140}, {"chi2 < 0.5", chiBelow50, 900, 1100},
		{"AD < 0.05", adBelow05, 60, 140}, {"CvM < 0.05", cvmBelow05, 60, 140}, {"CvM < 0.5", cvmBelow50, 900, 1100},
		{"G < 0.05", gBelow05, 60, 140},
	} {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s in %d of %d runs, want %d..%d", c.name, c.got, runs, c.lo, c.hi)
		}
	}
}
