package detectors

import (
	"fmt"
	"math"
)

// ADWINParams are ADWIN's parameters (river.drift.ADWIN, River 0.26.1).
type ADWINParams struct {
	// Delta is the significance of the cut test (River: delta=0.002).
	Delta float64
	// Clock: the window is checked for a cut every Clock values (River: clock=32).
	Clock int
	// MaxBuckets: buckets of each size kept before two are merged (River: max_buckets=5).
	MaxBuckets int
	// MinWindowLength: sub-windows shorter than this are not tested (River: 5).
	MinWindowLength int
	// GracePeriod: no test until the window holds more values than this (River: 10).
	GracePeriod int
}

// DefaultADWINParams are River 0.26.1's defaults.
func DefaultADWINParams() ADWINParams {
	return ADWINParams{Delta: 0.002, Clock: 32, MaxBuckets: 5, MinWindowLength: 5, GracePeriod: 10}
}

// adwinMaxRows bounds the bucket rows: row i holds buckets of 2^i values, and 2^62
// values is beyond any stream; the bound keeps 1<<i exact and decoded states sane.
const (
	adwinMaxRows       = 62
	adwinMaxMaxBuckets = 1 << 12
)

func (p ADWINParams) validate() error {
	switch {
	case !(p.Delta > 0 && p.Delta < 1):
		return fmt.Errorf("adwin: delta %v outside (0, 1)", p.Delta)
	case p.Clock < 1:
		return fmt.Errorf("adwin: clock %d < 1", p.Clock)
	case p.MaxBuckets < 1 || p.MaxBuckets > adwinMaxMaxBuckets:
		return fmt.Errorf("adwin: max buckets %d outside [1, %d]", p.MaxBuckets, adwinMaxMaxBuckets)
	case p.MinWindowLength < 1:
		return fmt.Errorf("adwin: min window length %d < 1", p.MinWindowLength)
	case p.GracePeriod < 0:
		return fmt.Errorf("adwin: grace period %d < 0", p.GracePeriod)
	}
	return nil
}

// adwinRow holds the buckets of one size (2^row values each), oldest first: their sums
// and their sums of squared deviations from their own mean.
type adwinRow struct {
	n        int
	total    []float64
	variance []float64
}

func (r *adwinRow) drop(k int) {
	copy(r.total, r.total[k:r.n])
	copy(r.variance, r.variance[k:r.n])
	for i := r.n - k; i < r.n; i++ {
		r.total[i], r.variance[i] = 0, 0
	}
	r.n -= k
}

// ADWIN is Bifet and Gavaldà's adaptive window (ADWIN2 bucket compression), following
// River's implementation: values enter a row of single-value buckets; when a row holds
// MaxBuckets+1 buckets its two oldest merge into one bucket of the next row. Every Clock
// values (once the window is longer than GracePeriod) each split of the window into
// older and newer parts at a bucket boundary is tested, newest boundary last; on a cut
// the oldest bucket is dropped and the scan starts again. River's ADWIN wrapper starts a
// fresh window on the value after a drift, and so does this one.
type ADWIN struct {
	p                      ADWINParams
	total, variance, width float64
	tick                   int64
	// rows[:len(rows)] are live; the backing array keeps emptied rows' slices for reuse.
	rows  []adwinRow
	drift bool
}

// NewADWIN returns an ADWIN detector.
func NewADWIN(p ADWINParams) (*ADWIN, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	a := &ADWIN{p: p}
	a.Reset()
	return a, nil
}

// Kind is ChangeADWIN.
func (a *ADWIN) Kind() ChangeKind { return ChangeADWIN }

// Params returns the detector's parameters.
func (a *ADWIN) Params() ADWINParams { return a.p }

// Width is the number of values in the window.
func (a *ADWIN) Width() int { return int(a.width) }

// Estimation is the window's mean (0 when empty).
func (a *ADWIN) Estimation() float64 {
	if a.width == 0 {
		return 0
	}
	return a.total / a.width
}

// Reset empties the window.
func (a *ADWIN) Reset() {
	a.total, a.variance, a.width, a.tick, a.drift = 0, 0, 0, 0, false
	if cap(a.rows) == 0 {
		a.rows = make([]adwinRow, 0, 8)
	}
	a.rows = a.rows[:0]
	a.pushRow()
}

// pushRow appends an empty row, reusing a previously allocated one when there is one.
func (a *ADWIN) pushRow() {
	n := len(a.rows)
	if n < cap(a.rows) {
		a.rows = a.rows[:n+1]
		r := &a.rows[n]
		if len(r.total) == a.p.MaxBuckets+1 {
			r.drop(r.n)
			return
		}
	} else {
		a.rows = append(a.rows, adwinRow{})
	}
	a.rows[n] = adwinRow{total: make([]float64, a.p.MaxBuckets+1), variance: make([]float64, a.p.MaxBuckets+1)}
}

// Update adds x to the window and tests for a cut. Non-finite values are ignored (a
// NaN would poison the window's sums for good).
func (a *ADWIN) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if a.drift {
		a.Reset()
	}
	a.insert(x)
	a.drift = a.detect()
	if a.drift {
		return ChangeDrift
	}
	return ChangeNone
}

func (a *ADWIN) insert(x float64) {
	r := &a.rows[0]
	r.total[r.n], r.variance[r.n] = x, 0
	r.n++
	// Welford-style update of the window's sum of squared deviations, in River's
	// order of operations.
	a.width++
	inc := 0.0
	if a.width > 1 {
		d := x - a.total/(a.width-1)
		inc = (a.width - 1) * d * d / a.width
	}
	a.variance += inc
	a.total += x
	a.compress()
}

func (a *ADWIN) compress() {
	mb := a.p.MaxBuckets
	for i := 0; a.rows[i].n == mb+1; i++ {
		r := &a.rows[i]
		size := float64(uint64(1) << uint(i))
		t0, t1, v0, v1 := r.total[0], r.total[1], r.variance[0], r.variance[1]
		mu0, mu1 := t0/size, t1/size
		temp := float64(size*0.5*(mu0-mu1)) * (mu0 - mu1)
		v := float64(v0+v1) + temp
		if i+1 == len(a.rows) {
			if len(a.rows) == adwinMaxRows {
				// 2^62 values: unreachable in practice. Forget the oldest bucket
				// rather than grow past the bound.
				a.deleteOldest()
				return
			}
			a.pushRow()
			r = &a.rows[i]
		}
		next := &a.rows[i+1]
		next.total[next.n], next.variance[next.n] = t0+t1, v
		next.n++
		r.drop(2)
		if next.n <= mb {
			return
		}
	}
}

// deleteOldest drops the oldest bucket and takes it out of the window's statistics.
func (a *ADWIN) deleteOldest() {
	last := len(a.rows) - 1
	r := &a.rows[last]
	n := float64(uint64(1) << uint(last))
	u, v := r.total[0], r.variance[0]
	mu := u / n
	a.width -= n
	a.total -= u
	muW := a.total / a.width
	inc := v + float64(n*a.width*(mu-muW)*(mu-muW))/(n+a.width)
	a.variance -= inc
	r.drop(1)
	if r.n == 0 && last > 0 {
		a.rows = a.rows[:last]
	}
}

func (a *ADWIN) detect() bool {
	a.tick++
	if a.tick%int64(a.p.Clock) != 0 || !(a.width > float64(a.p.GracePeriod)) {
		return false
	}
	minW := float64(a.p.MinWindowLength)
	changed := false
	for reduce := true; reduce; {
		reduce = false
		n0, n1, u0, u1 := 0.0, a.width, 0.0, a.total
		// The cut threshold's terms that depend only on the window, hoisted out of the
		// scan (the window changes only when a bucket is dropped, which ends the scan).
		deltaPrime := math.Log(2 * math.Log(a.width) / a.p.Delta)
		varW := a.variance / a.width
	scan:
		for i := len(a.rows) - 1; i >= 0; i-- {
			r := &a.rows[i]
			size := float64(uint64(1) << uint(i))
			for k := 0; k < r.n; k++ {
				n0 += size
				n1 -= size
				u0 += r.total[k]
				u1 -= r.total[k]
				if i == 0 && k == r.n-1 {
					break scan
				}
				if n1 >= minW && n0 >= minW {
					m := 1/(n0-minW+1) + 1/(n1-minW+1)
					eps := math.Sqrt(float64(2*m*varW)*deltaPrime) + float64(2.0/3.0*deltaPrime)*m
					if math.Abs(u0/n0-u1/n1) > eps {
						reduce, changed = true, true
						if a.width > 0 {
							a.deleteOldest()
							break scan
						}
					}
				}
			}
		}
	}
	return changed
}

// MarshalBinary encodes parameters and window.
func (a *ADWIN) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangeADWIN, 100+len(a.rows)*(8+16*(a.p.MaxBuckets)))
	e.f64(a.p.Delta)
	e.int(a.p.Clock)
	e.int(a.p.MaxBuckets)
	e.int(a.p.MinWindowLength)
	e.int(a.p.GracePeriod)
	e.f64(a.total)
	e.f64(a.variance)
	e.f64(a.width)
	e.u64(uint64(a.tick))
	e.bool(a.drift)
	e.int(len(a.rows))
	for i := range a.rows {
		r := &a.rows[i]
		e.int(r.n)
		for k := 0; k < r.n; k++ {
			e.f64(r.total[k])
			e.f64(r.variance[k])
		}
	}
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (a *ADWIN) UnmarshalBinary(b []byte) error {
	d := newChangeDecoder(ChangeADWIN, b)
	var p ADWINParams
	p.Delta = d.f64()
	p.Clock = d.int("clock", 1, math.MaxInt32)
	p.MaxBuckets = d.int("max buckets", 1, adwinMaxMaxBuckets)
	p.MinWindowLength = d.int("min window length", 1, math.MaxInt32)
	p.GracePeriod = d.int("grace period", 0, math.MaxInt32)
	if d.err == nil {
		if err := p.validate(); err != nil {
			return fmt.Errorf("decode adwin state: %w", err)
		}
	}
	n := ADWIN{p: p}
	n.total, n.variance, n.width = d.f64(), d.f64(), d.f64()
	n.tick = int64(d.int("tick", 0, math.MaxInt64))
	n.drift = d.bool()
	rows := d.int("rows", 1, adwinMaxRows)
	if !d.need(8 * rows) {
		return d.err
	}
	n.rows = make([]adwinRow, 0, max(rows, 8))
	width := 0.0
	for i := 0; i < rows; i++ {
		n.pushRow()
		r := &n.rows[i]
		r.n = d.int("buckets", 0, p.MaxBuckets)
		if !d.need(16 * r.n) {
			return d.err
		}
		for k := 0; k < r.n; k++ {
			r.total[k], r.variance[k] = d.f64(), d.f64()
			if d.err == nil && !(finite(r.total[k]) && finite(r.variance[k])) {
				return fmt.Errorf("decode adwin state: non-finite bucket")
			}
		}
		width += float64(r.n) * float64(uint64(1)<<uint(i))
	}
	err := d.finish(func() error {
		if rows > 1 && n.rows[rows-1].n == 0 {
			return fmt.Errorf("oldest row empty")
		}
		if width != n.width {
			return fmt.Errorf("width %v but buckets hold %v values", n.width, width)
		}
		if !finite(n.total) || !finite(n.variance) {
			return fmt.Errorf("non-finite window sums")
		}
		return nil
	})
	if err != nil {
		return err
	}
	*a = n
	return nil
}
