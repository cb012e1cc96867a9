package detectors

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// PCA multivariate drift. The reference's numeric features are standardized and their
// principal components kept up to PCAVarianceShare of the variance; a window drifts
// jointly when the mean error of reconstructing its rows from those components rises
// both beyond what sampling noise explains for a window of its size and by at least
// PCAMinRise over the reference's own error. It catches a change in how features move
// together (a broken correlation) that no single-feature test sees. The error is
// computed from the window's mean and covariance, so no row is kept:
// E‖(I−VVᵀ)z‖² = tr((I−VVᵀ)Σz) + ‖(I−VVᵀ)μz‖² for standardized rows z — which is the
// mean over the window's rows of each row's own error ‖(I−VVᵀ)(z − μref)‖². A window's
// error is therefore a mean of n row errors, and its noise is known from the reference's
// rows: their mean, spread and skewness (PCAModel.Threshold).
const (
	PCAVarianceShare = 0.65
	// MinJointRows: below this many complete reference rows there is no joint model.
	MinJointRows = 500
	// MaxJointRows bounds the reference rows kept for the joint model.
	MaxJointRows = 20000
	// PCAAlpha is how often, per window, sampling noise alone may reach the threshold.
	PCAAlpha = 1e-6
	// PCAMinRise is the smallest rise of the error over the reference's that counts as
	// a change: at high volume the noise term vanishes, and a real but immaterial change
	// (a mean shift of a fifth of a std in one feature raises the error of independent
	// features by about 4%) must not page anyone. A flipped correlation raises it
	// several-fold.
	PCAMinRise = 0.2
)

// PCAModel is the reference's joint model of its numeric features.
type PCAModel struct {
	Features []string `json:"features"`
	// Binned: rows are each feature's bin index over the reference's edges (its rank at
	// the reference's 50 quantiles), not its value. Ranks keep the model's row errors
	// bounded: with raw values one heavy-tailed feature (a log-normal income) makes the
	// errors of small windows so skewed that no threshold estimated from a three-window
	// reference holds (0.01–0.1% of stationary windows crossed the 10⁻⁶ one, none of
	// 200,000 with ranks: docs/detection.md). Profiles stored before model raw values.
	Binned     bool        `json:"binned,omitempty"`
	Mean       []float64   `json:"mean"`
	Scale      []float64   `json:"scale"`
	Components [][]float64 `json:"components"` // k × d, orthonormal rows
	// ErrMean, ErrStd, ErrSkew and ErrKurt are the mean, standard deviation, skewness and
	// kurtosis of the reconstruction error over chunks of ChunkRows reference rows that
	// the components were not fitted on, ErrRows rows in all: single rows (ChunkRows 1)
	// in models fitted now; profiles stored before measured 20 chunks of the fitted rows
	// (no skewness, kurtosis or ErrRows).
	ErrMean   float64 `json:"error_mean"`
	ErrStd    float64 `json:"error_std"`
	ErrSkew   float64 `json:"error_skew,omitempty"`
	ErrKurt   float64 `json:"error_kurtosis,omitempty"`
	ChunkRows int     `json:"chunk_rows"`
	ErrRows   int     `json:"error_rows,omitempty"`
}

// Threshold is the reconstruction error above which a window of n rows drifts jointly:
// the larger of the material rise, ErrMean·(1 + PCAMinRise), and noiseQuantile at
// PCAAlpha.
func (m *PCAModel) Threshold(n float64) float64 {
	return math.Max(m.ErrMean*(1+PCAMinRise), m.noiseQuantile(n, PCAAlpha))
}

// refBound is how many standard errors the reference's own estimates are allowed to be
// off: every window of a model version is compared with the same reference, so an
// unlucky one would make a whole day of windows false alarms. Its mean error and spread
// are taken at the upper end of their one-sided 99.9% confidence intervals.
const refBound = 3

// noiseQuantile is the error that a window of n unchanged rows exceeds with probability
// alpha. A window's error is the mean of its n row errors: its spread is σ/√n and its
// skewness γ/√n, and its tail that of the Pearson type III (shifted gamma) distribution
// with those moments — row errors are sums of squares, right-skewed, and a normal tail
// is far too thin for small windows. μ and σ come from ErrRows held-out reference rows,
// a sample as small as a window or two: their upper confidence bounds are used (σ's from
// the rows' kurtosis). Profiles stored before row moments were kept give the spread of
// 20 chunks and no skewness: σ is then scaled back from the chunks and the tail is a
// gamma distribution's (skewness 2·CV).
func (m *PCAModel) noiseQuantile(n, alpha float64) float64 {
	chunk := float64(max(m.ChunkRows, 1))
	rows := float64(m.ErrRows)
	if rows <= 0 {
		rows = 20 * chunk
	}
	if n <= 0 || m.ErrStd <= 0 || m.ErrMean <= 0 {
		return m.ErrMean
	}
	sigma := m.ErrStd * math.Sqrt(chunk)
	if m.ErrKurt > 1 {
		sigma *= 1 + refBound*math.Sqrt((m.ErrKurt-1)/rows)/2
	}
	mean := m.ErrMean + refBound*sigma/math.Sqrt(rows)
	sd := sigma / math.Sqrt(n)
	skew := 2 * sd / mean
	if m.ErrSkew != 0 {
		skew = m.ErrSkew / math.Sqrt(n)
	}
	return pearson3Quantile(mean, sd, skew, 1-alpha)
}

// pearson3Quantile is the p-quantile of the Pearson type III distribution with the given
// mean, standard deviation and skewness (scipy.stats.pearson3(skew, loc=mean,
// scale=sd).ppf(p)): a gamma distribution shifted and scaled to those moments, normal at
// skewness 0.
func pearson3Quantile(mean, sd, skew, p float64) float64 {
	if math.Abs(skew) < 1e-6 {
		return mean + distuv.UnitNormal.Quantile(p)*sd
	}
	shape := 4 / (skew * skew)
	scale := sd * math.Abs(skew) / 2
	if skew < 0 {
		return mean + shape*scale - scale*distuv.Gamma{Alpha: shape, Beta: 1}.Quantile(1-p)
	}
	return mean - shape*scale + scale*distuv.Gamma{Alpha: shape, Beta: 1}.Quantile(p)
}

// FitPCA fits the model on complete rows (one value per feature, in order).
func FitPCA(features []string, rows [][]float64) (*PCAModel, error) {
	d := len(features)
	if d < 2 || len(rows) < MinJointRows {
		return nil, fmt.Errorf("pca: needs at least two numeric features and %d complete rows", MinJointRows)
	}
	// Fit on every other row and measure the error on the rest: errors of the rows a
	// model was fitted on are optimistic (its components chase their noise: with a few
	// features of similar variance or a heavy-tailed one, 5–10% low at 1,800 rows), and
	// later windows are never part of the fit.
	all := processors.NewCoMoments(d)
	held := make([][]float64, 0, len(rows)/2)
	for i, r := range rows {
		if i%2 == 0 {
			all.Add(r)
		} else {
			held = append(held, r)
		}
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
	// The reference's own variability: the error of each held-out row.
	var mo processors.Moments
	errs := make([]float64, len(held))
	res, z := m.residual(), make([]float64, d)
	for i, r := range held {
		for j := range z {
			z[j] = (r[j] - m.Mean[j]) / m.Scale[j]
		}
		for j := 0; j < d; j++ {
			var rz float64
			for k := 0; k < d; k++ {
				rz += res[j*d+k] * z[k]
			}
			errs[i] += rz * rz
		}
		mo.Add(errs[i])
	}
	m.ErrMean, m.ErrStd, m.ChunkRows, m.ErrRows = mo.Mean, mo.Std(), 1, len(held)
	// Skewness and kurtosis from the central moments (scipy.stats.skew and kurtosis with
	// fisher=False, bias=True).
	var m2, m3, m4 float64
	for _, e := range errs {
		dev := e - mo.Mean
		m2 += dev * dev
		m3 += dev * dev * dev
		m4 += dev * dev * dev * dev
	}
	if m2 > 0 {
		k := float64(len(errs))
		m2, m3, m4 = m2/k, m3/k, m4/k
		m.ErrSkew, m.ErrKurt = m3/math.Pow(m2, 1.5), m4/(m2*m2)
	}
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
	r := m.residual()
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

// residual is R = I − VᵀV over standardized coordinates (d×d, row-major): the part of a
// row its components do not reconstruct.
func (m *PCAModel) residual() []float64 {
	d := len(m.Mean)
	r := make([]float64, d*d)
	for i := 0; i < d; i++ {
		r[i*d+i] = 1
		for _, c := range m.Components {
			for j := 0; j < d; j++ {
				r[i*d+j] -= c[i] * c[j]
			}
		}
	}
	return r
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
