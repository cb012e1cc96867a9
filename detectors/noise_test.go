package detectors

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

type noiseReference struct {
	Pearson3PPF []struct {
		Mean, SD, Skew, P, Q float64
	} `json:"pearson3_ppf"`
	PCA []struct {
		Name        string      `json:"name"`
		Rows        [][]float64 `json:"rows"`
		Window      [][]float64 `json:"window"`
		Components  int         `json:"components"`
		Mean        []float64   `json:"mean"`
		Scale       []float64   `json:"scale"`
		ErrMean     float64     `json:"error_mean"`
		ErrStd      float64     `json:"error_std"`
		ErrSkew     float64     `json:"error_skew"`
		ErrKurt     float64     `json:"error_kurtosis"`
		ErrRows     int         `json:"error_rows"`
		WindowError float64     `json:"window_error"`
	} `json:"pca"`
}

// The joint threshold's Pearson type III tail and the joint model's held-out row errors
// equal scipy's and numpy's (testdata/gen_noise.py).
func TestNoiseStatisticsMatchScipy(t *testing.T) {
	b, err := os.ReadFile("testdata/noise_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref noiseReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Pearson3PPF) == 0 || len(ref.PCA) == 0 {
		t.Fatal("empty reference")
	}
	for _, c := range ref.Pearson3PPF {
		if got := pearson3Quantile(c.Mean, c.SD, c.Skew, c.P); !close(got, c.Q, 1e-7) {
			t.Errorf("pearson3(%v, %v, %v).ppf(%v) = %v, scipy %v", c.Skew, c.Mean, c.SD, c.P, got, c.Q)
		}
	}
	for _, c := range ref.PCA {
		names := make([]string, len(c.Mean))
		for i := range names {
			names[i] = fmt.Sprintf("f%d", i)
		}
		m, err := FitPCA(names, c.Rows)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if len(m.Components) != c.Components || m.ErrRows != c.ErrRows || m.ChunkRows != 1 {
			t.Errorf("%s: %d components over %d held-out rows (chunks of %d), numpy %d over %d", c.Name, len(m.Components), m.ErrRows, m.ChunkRows, c.Components, c.ErrRows)
		}
		for i := range c.Mean {
			if !close(m.Mean[i], c.Mean[i], 1e-9) || !close(m.Scale[i], c.Scale[i], 1e-9) {
				t.Errorf("%s: feature %d standardized by %v/%v, numpy %v/%v", c.Name, i, m.Mean[i], m.Scale[i], c.Mean[i], c.Scale[i])
			}
		}
		for _, g := range []struct {
			what      string
			got, want float64
		}{{"mean", m.ErrMean, c.ErrMean}, {"std", m.ErrStd, c.ErrStd}, {"skewness", m.ErrSkew, c.ErrSkew}, {"kurtosis", m.ErrKurt, c.ErrKurt}} {
			if !close(g.got, g.want, 1e-7) {
				t.Errorf("%s: held-out error %s %v, numpy %v", c.Name, g.what, g.got, g.want)
			}
		}
		cm := processors.NewCoMoments(len(c.Mean))
		for _, r := range c.Window {
			cm.Add(r)
		}
		if got := m.ReconstructionError(cm); !close(got, c.WindowError, 1e-7) {
			t.Errorf("%s: window error %v, numpy's mean row error %v", c.Name, got, c.WindowError)
		}
	}
}

// Under no change the noise check's p-values (χ² over the cells the distances compare)
// are uniform: about 1% below 0.01 and 0.1% below 0.001, and none below NoiseAlpha, for
// a numeric feature over its ten groups, a zero-inflated one and a categorical one with
// rare categories (pooled), at the sizes where the check binds (1/s streams: 120 values
// against 180, 300 against 900). PSI scaled as χ² is heavier-tailed at small counts,
// which is why the check is on χ².
func TestNoiseCheckIsCalibrated(t *testing.T) {
	for _, c := range []struct {
		feature string
		n, N    int
	}{{"amount", 120, 180}, {"amount", 300, 900}, {"wait", 300, 900}, {"country", 120, 180}, {"country", 300, 900}} {
		t.Run(fmt.Sprintf("%s/%d", c.feature, c.n), func(t *testing.T) {
			g := newDriftGen(driftSpec{seed: uint64(c.n + len(c.feature))})
			const refs, windows = 20, 250
			var p01, p001, psiOver001, total int
			for r := 0; r < refs; r++ {
				s := NewSample()
				for i := 0; i < c.N; i++ {
					s.AddEvent(g.event(0))
				}
				ref := s.Build("m", "1", SourceFirstWindows, 3, t0)
				fp := ref.Features[c.feature]
				for w := 0; w < windows; w++ {
					agg := &processors.FeatureAgg{Name: c.feature, Kind: processors.Categorical, Categories: map[string]uint64{}}
					if fp.Kind == processors.Numeric.String() {
						agg = &processors.FeatureAgg{Name: c.feature, Kind: processors.Numeric, Edges: fp.Edges, Bins: make([]uint64, len(fp.Edges)+1)}
					}
					for i := 0; i < c.n; i++ {
						v := featureValue(g.event(0), c.feature)
						agg.Count++
						if agg.Kind == processors.Numeric {
							agg.Bins[processors.BinIndex(fp.Edges, v.Num)]++
						} else {
							agg.Categories[v.Category()]++
						}
					}
					sc, ok := score(agg, fp)
					if !ok {
						t.Fatal("not scored")
					}
					total++
					if sc.NoiseP < 0.01 {
						p01++
					}
					if sc.NoiseP < 0.001 {
						p001++
					}
					if sc.PSI*float64(c.n)*float64(c.N)/float64(c.n+c.N) > chi2Quantile(float64(sc.Cells-1), 0.999) {
						psiOver001++
					}
					if sc.beyondNoise() {
						t.Errorf("reference %d window %d: beyond noise (p = %.3g) without a change", r, w, sc.NoiseP)
					}
				}
			}
			r01, r001 := float64(p01)/float64(total), float64(p001)/float64(total)
			t.Logf("%s %d vs %d: p < 0.01 in %.2f%%, p < 0.001 in %.2f%% of windows (PSI scaled as χ² over its 0.999 quantile: %.2f%%)",
				c.feature, c.n, c.N, 100*r01, 100*r001, 100*float64(psiOver001)/float64(total))
			// Windows of one reference share its noise: allow for that spread.
			if r01 < 0.002 || r01 > 0.025 || r001 > 0.005 {
				t.Errorf("noise p-values not uniform: %.2f%% below 0.01, %.2f%% below 0.001", 100*r01, 100*r001)
			}
		})
	}
}

func chi2Quantile(dof, p float64) float64 { return distuv.ChiSquared{K: dof}.Quantile(p) }

func featureValue(e *schemas.PredictionEvent, name string) schemas.Value {
	for _, f := range e.Features {
		if f.Name == name {
			return f.Value
		}
	}
	return schemas.Value{}
}
