package detectors

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/driftd/driftd/processors"
)

type distanceReference struct {
	Distances []struct {
		Name                     string
		A, B                     []float64
		JS, Hellinger, TVD, LInf float64
		KL                       *float64
	} `json:"distances"`
	Wasserstein []struct {
		Name   string
		A, B   []float64
		W1     float64 `json:"w1"`
		RefStd float64 `json:"ref_std"`
	} `json:"wasserstein"`
	GTest []struct {
		Name string
		A, B []float64
		G    float64
		Dof  int
		P    float64
	} `json:"gtest"`
	ZTest []struct {
		X1, N1, X2, N2, Z, P float64
	} `json:"ztest"`
	Fisher []struct {
		Table [2][2]int
		P     float64
	} `json:"fisher"`
	BH []struct {
		P        []float64
		Adjusted []float64
	} `json:"bh"`
}

func TestDistancesAndTestsMatchScipy(t *testing.T) {
	b, err := os.ReadFile("testdata/stats_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref distanceReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Distances) == 0 || len(ref.Wasserstein) == 0 || len(ref.GTest) == 0 || len(ref.ZTest) == 0 || len(ref.Fisher) == 0 || len(ref.BH) == 0 {
		t.Fatal("reference file is incomplete: run testdata/gen_stats.py")
	}
	for _, c := range ref.Distances {
		for _, m := range []struct {
			name      string
			got, want float64
		}{
			{"JS", JensenShannon(c.A, c.B), c.JS}, {"Hellinger", Hellinger(c.A, c.B), c.Hellinger},
			{"TVD", TotalVariation(c.A, c.B), c.TVD}, {"L∞", LInfinity(c.A, c.B), c.LInf},
		} {
			if !close(m.got, m.want, 1e-9) {
				t.Errorf("%s %s = %v, scipy %v", m.name, c.Name, m.got, m.want)
			}
		}
		if c.KL != nil && !close(KL(c.A, c.B), *c.KL, 1e-12) {
			t.Errorf("KL %s = %v, scipy %v", c.Name, KL(c.A, c.B), *c.KL)
		}
	}
	for _, c := range ref.Wasserstein {
		ca, cb, edges := binnedAtEveryValue(c.A, c.B)
		if got := Wasserstein(edges, ca, cb); !close(got, c.W1, 1e-9) {
			t.Errorf("Wasserstein %s = %v, scipy %v", c.Name, got, c.W1)
		}
	}
	for _, c := range ref.GTest {
		g, dof, p := GTest(c.A, c.B)
		if !close(g, c.G, 1e-9) || dof != c.Dof || !close(p, c.P, 1e-9) {
			t.Errorf("G-test %s: %v %d %v, scipy %v %d %v", c.Name, g, dof, p, c.G, c.Dof, c.P)
		}
	}
	for _, c := range ref.ZTest {
		z, p := TwoProportionZ(c.X1, c.N1, c.X2, c.N2)
		if !close(z, c.Z, 1e-12) || !close(p, c.P, 1e-12) {
			t.Errorf("z-test %+v: %v %v", c, z, p)
		}
	}
	for _, c := range ref.Fisher {
		if got := FisherExact(c.Table[0][0], c.Table[0][1], c.Table[1][0], c.Table[1][1]); !close(got, c.P, 1e-9) {
			t.Errorf("Fisher %v = %v, scipy %v", c.Table, got, c.P)
		}
	}
	for _, c := range ref.BH {
		got := BenjaminiHochberg(c.P)
		for i := range got {
			if !close(got[i], c.Adjusted[i], 1e-12) {
				t.Errorf("BH %v = %v, scipy %v", c.P, got, c.Adjusted)
				break
			}
		}
	}
}

func TestDistanceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 200; i++ {
		p, q := make([]float64, 6), make([]float64, 6)
		for j := range p {
			p[j], q[j] = float64(rng.IntN(20)), float64(rng.IntN(20))
		}
		p[0]++
		q[1]++
		for _, d := range []struct {
			name string
			f    func(a, b []float64) float64
			max  float64
		}{{"JS", JensenShannon, 1}, {"Hellinger", Hellinger, 1}, {"TVD", TotalVariation, 1}, {"L∞", LInfinity, 1}} {
			pq, qp, pp := d.f(p, q), d.f(q, p), d.f(p, p)
			if math.Abs(pp) > 1e-7 || !close(pq, qp, 1e-12) || pq < 0 || pq > d.max+1e-12 {
				t.Fatalf("%s: d(p,p)=%v d(p,q)=%v d(q,p)=%v for %v %v", d.name, pp, pq, qp, p, q)
			}
		}
		if KL(p, p) != 0 || KL(p, q) < -1e-12 {
			t.Fatalf("KL(p,p)=%v KL(p,q)=%v", KL(p, p), KL(p, q))
		}
		if _, _, pv := GTest(p, q); pv < 0 || pv > 1 {
			t.Fatalf("G-test p-value %v", pv)
		}
	}
}

// FuzzHistogramStatistics feeds arbitrary counts to every statistic: no panic, results in
// their ranges, and binned values landing in exactly one bin.
func FuzzHistogramStatistics(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, []byte{4, 3, 2, 1}, 0.5)
	f.Add([]byte{0, 0, 9}, []byte{9, 0, 0}, -3.0)
	f.Fuzz(func(t *testing.T, a, b []byte, x float64) {
		n := min(len(a), len(b), 64)
		if n < 2 {
			return
		}
		ra, rb := make([]float64, n), make([]float64, n)
		for i := 0; i < n; i++ {
			ra[i], rb[i] = float64(a[i]), float64(b[i])
		}
		for name, v := range map[string]float64{"JS": JensenShannon(ra, rb), "Hellinger": Hellinger(ra, rb), "TVD": TotalVariation(ra, rb), "L∞": LInfinity(ra, rb), "KS": KSBinned(ra, rb)} {
			if !math.IsNaN(v) && (v < -1e-12 || v > 1+1e-12) {
				t.Fatalf("%s = %v outside [0, 1] for %v %v", name, v, ra, rb)
			}
		}
		if v := PSI(ra, rb); !math.IsNaN(v) && (v < -1e-12 || math.IsInf(v, 0)) {
			t.Fatalf("PSI = %v", v)
		}
		for _, p := range []float64{KSPValue(KSBinned(ra, rb), sum(ra), sum(rb)), func() float64 { _, _, p := ChiSquare(ra, rb); return p }(), func() float64 { _, _, p := GTest(ra, rb); return p }()} {
			if !math.IsNaN(p) && (p < 0 || p > 1) {
				t.Fatalf("p-value %v", p)
			}
		}
		edges := make([]float64, n-1)
		for i := range edges {
			edges[i] = float64(i) * 1.5
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		if i := processors.BinIndex(edges, x); i < 0 || i > len(edges) {
			t.Fatalf("BinIndex(%v) = %d", x, i)
		}
		if w := Wasserstein(edges, ra, rb); !math.IsNaN(w) && w < 0 {
			t.Fatalf("Wasserstein %v", w)
		}
	})
}

func TestKSampleTestsMatchScipy(t *testing.T) {
	b, err := os.ReadFile("testdata/stats_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		AD, CvM []struct {
			Name    string
			A, B    []float64
			Stat, P float64
		}
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.AD) == 0 || len(ref.CvM) == 0 {
		t.Fatal("reference file is incomplete: run testdata/gen_stats.py")
	}
	for _, c := range ref.AD {
		ca, cb := binsAtEveryValue(c.A, c.B)
		stat, p := AndersonDarling(ca, cb)
		if !close(stat, c.Stat, 1e-9) || !close(p, c.P, 1e-9) {
			t.Errorf("Anderson–Darling %s: %v p=%v, scipy %v p=%v", c.Name, stat, p, c.Stat, c.P)
		}
	}
	for _, c := range ref.CvM {
		ca, cb := binsAtEveryValue(c.A, c.B)
		stat, p := CramerVonMises(ca, cb)
		if !close(stat, c.Stat, 1e-9) || !close(p, c.P, 1e-6) {
			t.Errorf("Cramér–von Mises %s: %v p=%v, scipy %v p=%v", c.Name, stat, p, c.Stat, c.P)
		}
	}
}
