package detectors

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// besselK and the Cramér–von Mises limiting distribution against scipy (testdata/
// gen_bessel.py): K_{1/4} to 10⁻¹² relative over x in [10⁻⁶, 10⁴], the distribution to
// the series' own tolerance (its terms stop below 10⁻⁷).
func TestBesselKAndCvMDistributionMatchScipy(t *testing.T) {
	b, err := os.ReadFile("testdata/bessel_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Bessel []struct{ Nu, X, K float64 }
		CvM    []struct{ X, CDF float64 }
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Bessel) == 0 || len(ref.CvM) == 0 {
		t.Fatal("reference file is incomplete: run testdata/gen_bessel.py")
	}
	for _, c := range ref.Bessel {
		got := besselK(c.Nu, c.X)
		if c.K == 0 {
			if got != 0 {
				t.Errorf("K_%g(%g) = %g, scipy 0", c.Nu, c.X, got)
			}
			continue
		}
		if rel := math.Abs(got-c.K) / c.K; rel > 1e-12 {
			t.Errorf("K_%g(%g) = %.17g, scipy %.17g (relative difference %.2g)", c.Nu, c.X, got, c.K, rel)
		}
	}
	for _, c := range ref.CvM {
		if got := cvmCDFInf(c.X); math.Abs(got-c.CDF) > 1e-7 {
			t.Errorf("CvM limiting distribution at %g = %.12g, scipy %.12g", c.X, got, c.CDF)
		}
	}
}
