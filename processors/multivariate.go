package processors

// CoMoments are the mergeable running mean and co-moment matrix of a vector (the
// multivariate Welford update and Chan's merge): enough to compute the covariance of a
// window's numeric features, and from it how well the reference's principal components
// reconstruct the window, without keeping any row.
type CoMoments struct {
	N    float64
	Mean []float64
	C    []float64 // d×d, row-major: Σ (x−mean)(x−mean)ᵀ
	tmp  []float64
}

// NewCoMoments returns empty co-moments of dimension d.
func NewCoMoments(d int) *CoMoments {
	return &CoMoments{Mean: make([]float64, d), C: make([]float64, d*d), tmp: make([]float64, d)}
}

// Add records one vector.
func (m *CoMoments) Add(x []float64) {
	d := len(m.Mean)
	m.N++
	for i := 0; i < d; i++ {
		m.tmp[i] = x[i] - m.Mean[i]
		m.Mean[i] += m.tmp[i] / m.N
	}
	for i := 0; i < d; i++ {
		di := x[i] - m.Mean[i] // uses the updated mean: C += (x−old)(x−new)ᵀ
		row := m.C[i*d : (i+1)*d]
		for j := 0; j < d; j++ {
			row[j] += m.tmp[j] * di
		}
	}
}

// Merge adds o into m (same dimension).
func (m *CoMoments) Merge(o *CoMoments) {
	if o == nil || o.N == 0 || len(o.Mean) != len(m.Mean) {
		return
	}
	if m.N == 0 {
		m.N = o.N
		copy(m.Mean, o.Mean)
		copy(m.C, o.C)
		return
	}
	d := len(m.Mean)
	n := m.N + o.N
	for i := 0; i < d; i++ {
		m.tmp[i] = o.Mean[i] - m.Mean[i]
	}
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			m.C[i*d+j] += o.C[i*d+j] + m.tmp[i]*m.tmp[j]*m.N*o.N/n
		}
	}
	for i := 0; i < d; i++ {
		m.Mean[i] += m.tmp[i] * o.N / n
	}
	m.N = n
}

// Cov returns the population covariance matrix (d×d, row-major).
func (m *CoMoments) Cov() []float64 {
	out := make([]float64, len(m.C))
	if m.N == 0 {
		return out
	}
	for i, c := range m.C {
		out[i] = c / m.N
	}
	return out
}

func (m *CoMoments) clone() *CoMoments {
	if m == nil {
		return nil
	}
	c := NewCoMoments(len(m.Mean))
	c.Merge(m)
	return c
}
