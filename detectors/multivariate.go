package detectors

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// PCA multivariate drift. The reference's numeric features are standardized and their
// principal components kept up to PCAVarianceShare of the variance; a window drifts
// jointly when the mean error of reconstructing its rows from those components rises
// above what the reference's own chunks show (mean + 3σ). It catches a change in how
// features move together (a broken correlation) that no single-feature test sees. The
// error is computed from the window's mean and covariance, so no row is kept:
// E‖(I−VVᵀ)z‖² = tr((I−VVᵀ)Σz) + ‖(I−VVᵀ)μz‖² for standardized rows z.
const (
	PCAVarianceShare = 0.65
	pcaChunks        = 20
	// MinJointRows: below this many complete reference rows the chunks' spread is too
	// uncertain to set a threshold from (seen: false alarms at 600 rows), so no model.
	MinJointRows = 2000
	// MaxJointRows bounds the reference rows kept for the joint model.
	MaxJointRows = 20000
)

// PCAModel is the reference's joint model of its numeric features.
type PCAModel struct {
	Features   []string    `json:"features"`
	Mean       []float64   `json:"mean"`
	Scale      []float64   `json:"scale"`
	Components [][]float64 `json:"components"` // k × d, orthonormal rows
	ErrMean    float64     `json:"error_mean"`
	ErrStd     float64     `json:"error_std"`
	ChunkRows  int         `json:"chunk_rows"`
}

// Threshold is the reconstruction error above which a window of n rows drifts jointly:
// the reference chunks' mean + 3σ, σ scaled to the window's size (it shrinks as 1/√n).
func (m *PCAModel) Threshold(n float64) float64 {
	if n <= 0 || m.ChunkRows <= 0 {
		return m.ErrMean + 3*m.ErrStd
	}
	return m.ErrMean + 3*m.ErrStd*math.Sqrt(float64(m.ChunkRows)/n)
}

// FitPCA fits the model on complete rows (one value per feature, in order).
func FitPCA(features []string, rows [][]float64) (*PCAModel, error) {
	d := len(features)
	if d < 2 || len(rows) < MinJointRows {
		return nil, fmt.Errorf("pca: needs at least two numeric features and %d complete rows", MinJointRows)
	}
	all := processors.NewCoMoments(d)
	for _, r := range rows {
		all.Add(r)
	}
	m := &PCAModel{Features: features, Mean: append([]float64(nil), all.Mean...), Scale: make([]float64, d)}
	cov := all.Cov()
	for i := 0; i < d; i++ {
		m.Scale[i] = math.Sqrt(cov[i*d+i])
		if m.Scale[i] == 0 {
			return nil, fmt.Errorf("pca: feature %s is constant", features[i])
		}
	}
	corr := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			corr.SetSym(i, j, cov[i*d+j]/(m.Scale[i]*m.Scale[j]))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(corr, true) {
		return nil, errors.New("pca: eigendecomposition failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	var total, acc float64
	for _, v := range vals {
		total += v
	}
	for _, idx := range order {
		if len(m.Components) == d-1 || (len(m.Components) > 0 && acc >= PCAVarianceShare*total) {
			break
		}
		comp := make([]float64, d)
		for i := 0; i < d; i++ {
			comp[i] = vecs.At(i, idx)
		}
		m.Components = append(m.Components, comp)
		acc += vals[idx]
	}
	// The reference's own variability: the error of each of its chunks.
	errs := make([]float64, 0, pcaChunks)
	size := len(rows) / pcaChunks
	for c := 0; c < pcaChunks; c++ {
		cm := processors.NewCoMoments(d)
		for _, r := range rows[c*size : (c+1)*size] {
			cm.Add(r)
		}
		errs = append(errs, m.ReconstructionError(cm))
	}
	var mo processors.Moments
	for _, e := range errs {
		mo.Add(e)
	}
	m.ErrMean, m.ErrStd, m.ChunkRows = mo.Mean, mo.Std(), size
	return m, nil
}

// ReconstructionError is the mean squared error of reconstructing the rows summarized by
// cm (standardized with the reference) from the model's components.
func (m *PCAModel) ReconstructionError(cm *processors.CoMoments) float64 {
	d := len(m.Mean)
	if cm == nil || cm.N == 0 || len(cm.Mean) != d {
		return math.NaN()
	}
	cov := cm.Cov()
	// R = I − VᵀV over standardized coordinates.
	r := make([]float64, d*d)
	for i := 0; i < d; i++ {
		r[i*d+i] = 1
		for _, c := range m.Components {
			for j := 0; j < d; j++ {
				r[i*d+j] -= c[i] * c[j]
			}
		}
	}
	var trace, norm float64
	mu := make([]float64, d)
	for i := 0; i < d; i++ {
		mu[i] = (cm.Mean[i] - m.Mean[i]) / m.Scale[i]
	}
	for i := 0; i < d; i++ {
		var rmu float64
		for j := 0; j < d; j++ {
			// tr(R Σz) = Σ_ij R_ij Σz_ji
			trace += r[i*d+j] * cov[j*d+i] / (m.Scale[i] * m.Scale[j])
			rmu += r[i*d+j] * mu[j]
		}
		norm += rmu * rmu
	}
	return trace + norm
}

// MultivariateScore is a window's joint drift score.
type MultivariateScore struct {
	N         float64
	Error     float64
	Threshold float64
	Drifted   bool
}

func multivariateCondition(w *processors.WindowAgg, s MultivariateScore) Condition {
	start, end := span(w)
	subject := fmt.Sprintf("%s %s", w.Series.Model, w.Series.Version)
	if w.Series.Deployment != schemas.DeploymentPrimary {
		subject += " (" + w.Series.Deployment + ")"
	}
	return Condition{Kind: schemas.KindDataDrift, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
		Metric: "pca_reconstruction_error", Value: s.Error, Threshold: s.Threshold, Breached: s.Drifted, Severity: schemas.SeverityWarning,
		WindowStart: start, WindowEnd: end,
		FiringSummary:   fmt.Sprintf("the joint distribution of the numeric features of %s changed: PCA reconstruction error %.3f > %.3f over %s", subject, s.Error, s.Threshold, spanText(w)),
		ResolvedSummary: fmt.Sprintf("the joint distribution of the numeric features of %s is back: PCA reconstruction error %.3f ≤ %.3f over %s", subject, s.Error, s.Threshold, spanText(w)),
		Details:         map[string]string{"rows": fmt.Sprintf("%.0f", s.N)}}
}
