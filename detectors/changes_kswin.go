package detectors

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// KSWINParams are KSWIN's parameters (river.drift.KSWIN, River 0.26.1).
type KSWINParams struct {
	// Alpha: the KS test's level (River: alpha=0.005).
	Alpha float64
	// WindowSize: values kept (River: window_size=100).
	WindowSize int
	// StatSize: the newest StatSize values are compared with as many drawn from the
	// older WindowSize−StatSize (River: stat_size=30); at most 10,000, where scipy's
	// ks_2samp stops computing the exact p-value.
	StatSize int
	// Seed of the draws. River's default is no seed (a fresh random one); driftd must
	// replay identically, so the seed is always fixed.
	Seed uint64
}

// DefaultKSWINParams are River 0.26.1's defaults, with seed 42.
func DefaultKSWINParams() KSWINParams {
	return KSWINParams{Alpha: 0.005, WindowSize: 100, StatSize: 30, Seed: 42}
}

// Bounds on the sizes: each value costs O(WindowSize), so larger windows are no use,
// and a decoded state cannot ask for more than half a megabyte.
const (
	kswinMaxStat   = 10000
	kswinMaxWindow = 1 << 16
)

func (p KSWINParams) validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fmt.Errorf("kswin: alpha %v outside (0, 1)", p.Alpha)
	case p.StatSize < 1 || p.StatSize > kswinMaxStat:
		return fmt.Errorf("kswin: stat size %d outside [1, %d]", p.StatSize, kswinMaxStat)
	case p.WindowSize > kswinMaxWindow:
		return fmt.Errorf("kswin: window size %d above %d", p.WindowSize, kswinMaxWindow)
	case p.WindowSize-p.StatSize < p.StatSize:
		// River draws stat_size values without replacement from the older
		// window_size − stat_size; fewer than that and Python's random.sample fails.
		return fmt.Errorf("kswin: window size %d < 2 × stat size %d", p.WindowSize, p.StatSize)
	}
	return nil
}

// KSWIN is Raab et al.'s Kolmogorov–Smirnov windowing: once the window is full, every
// value compares the newest StatSize values with StatSize values drawn at random from
// the rest by a two-sample KS test (exact p-value, as scipy's ks_2samp computes it for
// these sizes); p ≤ Alpha with a statistic above 0.1 is a drift. As in River, the
// detector starts afresh on the value after a drift, the draws re-seeded. River draws
// with Python's Mersenne Twister, this with PCG, so the draws and hence the exact
// detections differ; the test's statistic and p-value on the same draws are scipy's.
type KSWIN struct {
	p KSWINParams
	// window is a ring of the last min(n, WindowSize) values; head is the oldest.
	window  []float64
	head, n int
	pValue  float64
	rng     rand.PCG
	drift   bool
	// Scratch space, not state: the population of indices and the two sorted samples.
	idx  []int
	a, b []float64
}

// NewKSWIN returns a KSWIN detector.
func NewKSWIN(p KSWINParams) (*KSWIN, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &KSWIN{p: p}
	d.alloc()
	d.Reset()
	return d, nil
}

func (d *KSWIN) alloc() {
	d.window = make([]float64, d.p.WindowSize)
	d.idx = make([]int, d.p.WindowSize-d.p.StatSize)
	d.a = make([]float64, d.p.StatSize)
	d.b = make([]float64, d.p.StatSize)
}

// Kind is ChangeKSWIN.
func (d *KSWIN) Kind() ChangeKind { return ChangeKSWIN }

// PValue is the last test's p-value (0 before the window first fills, as in River).
func (d *KSWIN) PValue() float64 { return d.pValue }

// Reset empties the window and re-seeds the draws.
func (d *KSWIN) Reset() {
	d.head, d.n, d.pValue, d.drift = 0, 0, 0, false
	clear(d.window)
	d.rng.Seed(d.p.Seed, d.p.Seed^0x9e3779b97f4a7c15)
}

// intn is a uniform draw from [0, n) (Lemire's multiply-and-reject), written out so
// that the generator's state stays a plain value inside the detector.
func (d *KSWIN) intn(n int) int {
	hi, lo := bits.Mul64(d.rng.Uint64(), uint64(n))
	if lo < uint64(n) {
		thresh := -uint64(n) % uint64(n)
		for lo < thresh {
			hi, lo = bits.Mul64(d.rng.Uint64(), uint64(n))
		}
	}
	return int(hi)
}

// Update takes the next value; non-finite values are ignored.
func (d *KSWIN) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	w, s := d.p.WindowSize, d.p.StatSize
	if d.n < w {
		d.window[(d.head+d.n)%w] = x
		d.n++
	} else {
		d.window[d.head] = x
		d.head = (d.head + 1) % w
	}
	if d.n < w {
		return ChangeNone
	}
	// StatSize distinct positions among the older WindowSize−StatSize (a partial
	// Fisher–Yates shuffle of a fresh population, so the draws depend on the
	// generator's state alone).
	pop := w - s
	for i := range d.idx {
		d.idx[i] = i
	}
	for i := 0; i < s; i++ {
		j := i + d.intn(pop-i)
		d.idx[i], d.idx[j] = d.idx[j], d.idx[i]
		d.a[i] = d.window[(d.head+d.idx[i])%w]
		d.b[i] = d.window[(d.head+pop+i)%w]
	}
	h := ksEqualSizeCount(d.a, d.b)
	d.pValue = ksEqualSizePValue(s, h)
	stat := float64(h) * 1.0 / float64(s)
	d.drift = d.pValue <= d.p.Alpha && stat > 0.1
	if d.drift {
		return ChangeDrift
	}
	return ChangeNone
}

// ksEqualSizeCount is n·D for two samples of the same size n: the largest difference
// between their counts of values ≤ t over every t in either sample (ties included, as
// scipy's ks_2samp evaluates both ECDFs at every pooled value). It sorts a and b.
func ksEqualSizeCount(a, b []float64) int {
	slices.Sort(a)
	slices.Sort(b)
	n := len(a)
	i, j, h := 0, 0, 0
	for i < n && j < n {
		t := min(a[i], b[j])
		i0, j0 := i, j
		for i < n && a[i] <= t {
			i++
		}
		for j < n && b[j] <= t {
			j++
		}
		if i == i0 && j == j0 {
			// Only a NaN compares false both ways; Update keeps them out, and this
			// keeps a bug elsewhere from becoming an endless loop.
			break
		}
		if d := i - j; d > h {
			h = d
		} else if -d > h {
			h = -d
		}
	}
	return h
}

// ksEqualSizePValue is P(D_{n,n} ≥ h/n), the exact two-sided p-value scipy's ks_2samp
// computes for equal sample sizes (_compute_prob_outside_square): the alternating sum of
// lattice paths crossing the lines x−y = ±h, each term divided by C(2n, n) and nested
// Horner-style to avoid cancellation, in scipy's order of operations.
func ksEqualSizePValue(n, h int) float64 {
	if h <= 0 {
		return 1
	}
	p := 0.0
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1 - p)
	}
	return math.Min(1, math.Max(0, 2*p))
}

// MarshalBinary encodes parameters, window, generator and last p-value.
func (d *KSWIN) MarshalBinary() ([]byte, error) {
	rng, err := d.rng.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal kswin state: %w", err)
	}
	e := newChangeEncoder(ChangeKSWIN, 80+len(rng)+8*d.n)
	e.f64(d.p.Alpha)
	e.int(d.p.WindowSize)
	e.int(d.p.StatSize)
	e.u64(d.p.Seed)
	e.f64(d.pValue)
	e.bool(d.drift)
	e.int(len(rng))
	e.b = append(e.b, rng...)
	// The window oldest first, so the ring's rotation is not part of the encoding.
	e.int(d.n)
	for i := 0; i < d.n; i++ {
		e.f64(d.window[(d.head+i)%d.p.WindowSize])
	}
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *KSWIN) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangeKSWIN, b)
	var n KSWIN
	n.p.Alpha = dec.f64()
	n.p.WindowSize = dec.int("window size", 2, kswinMaxWindow)
	n.p.StatSize = dec.int("stat size", 1, kswinMaxStat)
	n.p.Seed = dec.u64()
	n.pValue = dec.f64()
	n.drift = dec.bool()
	rl := dec.int("generator length", 0, 64)
	if !dec.need(rl) {
		return dec.err
	}
	if err := n.rng.UnmarshalBinary(dec.b[:rl]); err != nil {
		return fmt.Errorf("decode kswin state: generator: %w", err)
	}
	dec.b = dec.b[rl:]
	if err := n.p.validate(); err != nil {
		return fmt.Errorf("decode kswin state: %w", err)
	}
	n.n = dec.int("window length", 0, n.p.WindowSize)
	if !dec.need(8 * n.n) {
		return dec.err
	}
	n.alloc()
	for i := 0; i < n.n; i++ {
		n.window[i] = dec.f64()
		if dec.err == nil && !finite(n.window[i]) {
			// Update never stores one, and a NaN has no place in a sorted sample.
			return fmt.Errorf("decode kswin state: non-finite window value")
		}
	}
	if err := dec.finish(nil); err != nil {
		return err
	}
	*d = n
	return nil
}
