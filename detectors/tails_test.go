package detectors

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

type signalsReference struct {
	NBinomCDF []struct {
		X   int     `json:"x"`
		Mu  float64 `json:"mu"`
		R   float64 `json:"r"`
		CDF float64 `json:"cdf"`
	} `json:"nbinom_cdf"`
	FisherGreater []struct {
		X    uint64  `json:"x"`
		N    uint64  `json:"n"`
		XRef uint64  `json:"x_ref"`
		NRef uint64  `json:"n_ref"`
		P    float64 `json:"p"`
	} `json:"fisher_greater"`
	BetaBinomSF []struct {
		X  int     `json:"x"`
		N  int     `json:"n"`
		A  float64 `json:"a"`
		B  float64 `json:"b"`
		SF float64 `json:"sf"`
	} `json:"betabinom_sf"`
	Binom []struct {
		X   int     `json:"x"`
		N   int     `json:"n"`
		P   float64 `json:"p"`
		SF  float64 `json:"sf"`
		CDF float64 `json:"cdf"`
	} `json:"binom"`
	Welch []struct {
		Mean1 float64 `json:"mean1"`
		Std1  float64 `json:"std1"`
		N1    float64 `json:"n1"`
		Mean2 float64 `json:"mean2"`
		Std2  float64 `json:"std2"`
		N2    float64 `json:"n2"`
		T     float64 `json:"t"`
		DF    float64 `json:"df"`
		P     float64 `json:"p"`
	} `json:"welch"`
	PoissonRateGreater []struct {
		X    uint64  `json:"x"`
		N    uint64  `json:"n"`
		XRef uint64  `json:"x_ref"`
		NRef uint64  `json:"n_ref"`
		P    float64 `json:"p"`
	} `json:"poisson_rate_greater"`
	StageDuration []struct {
		Name       string    `json:"name"`
		WindowMs   []float64 `json:"window_ms"`
		BaselineMs []float64 `json:"baseline_ms"`
		T          float64   `json:"t"`
		DF         float64   `json:"df"`
		P          float64   `json:"p"`
		Ratio      float64   `json:"ratio"`
	} `json:"stage_duration"`
	StageDurationGrouped []struct {
		Name    string `json:"name"`
		History []struct {
			Hour int       `json:"hour"`
			Ms   []float64 `json:"ms"`
		} `json:"history"`
		At       int       `json:"at"`
		WindowMs []float64 `json:"window_ms"`
		T        float64   `json:"t"`
		DF       float64   `json:"df"`
		P        float64   `json:"p"`
		Ratio    float64   `json:"ratio"`
	} `json:"stage_duration_grouped"`
}

func loadSignalsReference(t *testing.T) signalsReference {
	t.Helper()
	b, err := os.ReadFile("testdata/signals_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref signalsReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.FisherGreater) == 0 || len(ref.BetaBinomSF) == 0 || len(ref.Binom) == 0 || len(ref.Welch) == 0 || len(ref.NBinomCDF) == 0 ||
		len(ref.PoissonRateGreater) == 0 || len(ref.StageDuration) == 0 || len(ref.StageDurationGrouped) == 0 {
		t.Fatal("reference file is incomplete")
	}
	return ref
}

// relClose compares p-values relatively, down to the smallest normal float (scipy's own
// tails underflow to 0 there).
func relClose(got, want, tol float64) bool {
	if want < 1e-300 {
		return got < 1e-300
	}
	return math.Abs(got-want) <= tol*want
}

func TestExactTailsMatchScipy(t *testing.T) {
	ref := loadSignalsReference(t)
	for _, c := range ref.PoissonRateGreater {
		if got := PoissonRateGreater(c.X, c.N, c.XRef, c.NRef); !relClose(got, c.P, 1e-9) {
			t.Errorf("PoissonRateGreater(%d per %d vs %d per %d) = %v, scipy %v", c.X, c.N, c.XRef, c.NRef, got, c.P)
		}
	}
	for _, c := range ref.FisherGreater {
		if got := FisherGreater(c.X, c.N, c.XRef, c.NRef); !relClose(got, c.P, 1e-9) {
			t.Errorf("FisherGreater(%d of %d vs %d of %d) = %v, scipy %v", c.X, c.N, c.XRef, c.NRef, got, c.P)
		}
	}
	for _, c := range ref.BetaBinomSF {
		if got := BetaBinomialSF(c.X, c.N, c.A, c.B); !relClose(got, c.SF, 1e-9) {
			t.Errorf("BetaBinomialSF(%d; %d, %v, %v) = %v, scipy %v", c.X, c.N, c.A, c.B, got, c.SF)
		}
	}
	for _, c := range ref.Binom {
		if got := BinomialSF(c.X, c.N, c.P); !relClose(got, c.SF, 1e-9) {
			t.Errorf("BinomialSF(%d; %d, %v) = %v, scipy %v", c.X, c.N, c.P, got, c.SF)
		}
		if got := BinomialCDF(c.X, c.N, c.P); !relClose(got, c.CDF, 1e-9) {
			t.Errorf("BinomialCDF(%d; %d, %v) = %v, scipy %v", c.X, c.N, c.P, got, c.CDF)
		}
	}
	for _, c := range ref.NBinomCDF {
		if got := NegBinomialCDF(c.X, c.Mu, c.R); !relClose(got, c.CDF, 1e-9) {
			t.Errorf("NegBinomialCDF(%d; mean %v, size %v) = %v, scipy %v", c.X, c.Mu, c.R, got, c.CDF)
		}
	}
	for _, c := range ref.Welch {
		tt, df, p := WelchT(c.Mean1, c.Std1, c.N1, c.Mean2, c.Std2, c.N2)
		if !close(tt, c.T, 1e-9) || !close(df, c.DF, 1e-9) || !relClose(p, c.P, 1e-6) {
			t.Errorf("WelchT(%v) = %v %v %v, scipy %v %v %v", c, tt, df, p, c.T, c.DF, c.P)
		}
	}
}

// Tails are probabilities: within [0, 1], P(X ≥ x) + P(X ≤ x − 1) = 1, monotone in x.
func TestExactTailProperties(t *testing.T) {
	for _, c := range []struct {
		n int
		p float64
	}{{10, 0.5}, {200, 0.01}, {5000, 0.3}} {
		prev := 1.0
		for x := 0; x <= c.n+1; x += max(1, c.n/50) {
			sf, cdf := BinomialSF(x, c.n, c.p), BinomialCDF(x-1, c.n, c.p)
			if sf < 0 || sf > 1 || math.Abs(sf+cdf-1) > 1e-9 || sf > prev+1e-12 {
				t.Fatalf("binomial(%d, %v) at %d: sf %v cdf %v (previous sf %v)", c.n, c.p, x, sf, cdf, prev)
			}
			prev = sf
		}
	}
	if p := FisherGreater(5, 100, 5, 100); p < 0.5 || p > 1 {
		t.Errorf("equal rates: one-sided p = %v", p)
	}
	if p := FisherGreater(0, 0, 5, 100); p != 1 {
		t.Errorf("an empty window: p = %v", p)
	}
}
