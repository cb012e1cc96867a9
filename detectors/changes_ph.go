package detectors

import (
	"fmt"
	"math"
)

// PageHinkleyMode says which direction of change Page-Hinkley reports.
type PageHinkleyMode uint8

const (
	// PageHinkleyBoth reports increases and decreases of the mean (River: mode="both").
	PageHinkleyBoth PageHinkleyMode = iota
	// PageHinkleyUp reports increases only (mode="up"): for a loss stream, the model
	// getting worse.
	PageHinkleyUp
	// PageHinkleyDown reports decreases only (mode="down").
	PageHinkleyDown
)

func (m PageHinkleyMode) String() string {
	switch m {
	case PageHinkleyBoth:
		return "both"
	case PageHinkleyUp:
		return "up"
	case PageHinkleyDown:
		return "down"
	}
	return fmt.Sprintf("PageHinkleyMode(%d)", uint8(m))
}

// ParsePageHinkleyMode reads "both", "up" or "down".
func ParsePageHinkleyMode(s string) (PageHinkleyMode, error) {
	for _, m := range [...]PageHinkleyMode{PageHinkleyBoth, PageHinkleyUp, PageHinkleyDown} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("page-hinkley: unknown mode %q (want both, up or down)", s)
}

// PageHinkleyParams are Page-Hinkley's parameters (river.drift.PageHinkley, River 0.26.1).
type PageHinkleyParams struct {
	// MinInstances: values seen before any drift (River: min_instances=30).
	MinInstances int
	// Delta: the change magnitude tolerated (River: delta=0.005).
	Delta float64
	// Threshold: the cumulative deviation that is a drift (River: threshold=50).
	Threshold float64
	// Alpha: the forgetting factor of the cumulative sums (River: 1 - 0.0001).
	Alpha float64
	// Mode: which direction is reported (River: "both").
	Mode PageHinkleyMode
}

// DefaultPageHinkleyParams are River 0.26.1's defaults.
func DefaultPageHinkleyParams() PageHinkleyParams {
	// 1 - float64(0.0001), not the constant 0.9999: Python computes 1 - 0.0001 in
	// floating point, and the same rounding keeps the indices identical.
	return PageHinkleyParams{MinInstances: 30, Delta: 0.005, Threshold: 50, Alpha: 1 - float64(0.0001), Mode: PageHinkleyBoth}
}

func (p PageHinkleyParams) validate() error {
	switch {
	case p.MinInstances < 0:
		return fmt.Errorf("page-hinkley: min instances %d < 0", p.MinInstances)
	case !finite(p.Delta) || p.Delta < 0:
		return fmt.Errorf("page-hinkley: delta %v not a finite value >= 0", p.Delta)
	case !finite(p.Threshold) || p.Threshold <= 0:
		return fmt.Errorf("page-hinkley: threshold %v not a finite value > 0", p.Threshold)
	case !(p.Alpha > 0 && p.Alpha <= 1):
		return fmt.Errorf("page-hinkley: alpha %v outside (0, 1]", p.Alpha)
	case p.Mode > PageHinkleyDown:
		return fmt.Errorf("page-hinkley: unknown mode %d", p.Mode)
	}
	return nil
}

// PageHinkley is Page's cumulative-sum test with Hinkley's stopping rule: the faded
// cumulative deviation of each value from the running mean, less (plus) Delta, and a
// drift when it climbs Threshold above its minimum (falls below its maximum).
type PageHinkley struct {
	p                PageHinkleyParams
	mean             runningMean
	sumIncr, sumDecr float64
	minIncr, maxDecr float64
	drift            bool
}

// NewPageHinkley returns a Page-Hinkley detector.
func NewPageHinkley(p PageHinkleyParams) (*PageHinkley, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &PageHinkley{p: p}
	d.Reset()
	return d, nil
}

// Kind is ChangePageHinkley.
func (d *PageHinkley) Kind() ChangeKind { return ChangePageHinkley }

// Reset forgets the stream. The maximum starts at -1, as River's does.
func (d *PageHinkley) Reset() { *d = PageHinkley{p: d.p, minIncr: math.Inf(1), maxDecr: -1} }

// Update takes the next value; non-finite values are ignored.
func (d *PageHinkley) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	d.mean.update(x)
	dev := x - d.mean.mean
	d.sumIncr = float64(d.p.Alpha*d.sumIncr) + dev - d.p.Delta
	d.sumDecr = float64(d.p.Alpha*d.sumDecr) + dev + d.p.Delta
	if d.sumIncr < d.minIncr {
		d.minIncr = d.sumIncr
	}
	if d.sumDecr > d.maxDecr {
		d.maxDecr = d.sumDecr
	}
	if d.mean.n >= float64(d.p.MinInstances) {
		up := d.sumIncr-d.minIncr > d.p.Threshold
		down := d.maxDecr-d.sumDecr > d.p.Threshold
		switch d.p.Mode {
		case PageHinkleyUp:
			d.drift = up
		case PageHinkleyDown:
			d.drift = down
		default:
			d.drift = up || down
		}
	}
	if d.drift {
		return ChangeDrift
	}
	return ChangeNone
}

// MarshalBinary encodes parameters and state.
func (d *PageHinkley) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangePageHinkley, 90)
	e.int(d.p.MinInstances)
	e.f64(d.p.Delta)
	e.f64(d.p.Threshold)
	e.f64(d.p.Alpha)
	e.int(int(d.p.Mode))
	e.f64(d.mean.n)
	e.f64(d.mean.mean)
	e.f64(d.sumIncr)
	e.f64(d.sumDecr)
	e.f64(d.minIncr)
	e.f64(d.maxDecr)
	e.bool(d.drift)
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *PageHinkley) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangePageHinkley, b)
	var n PageHinkley
	n.p.MinInstances = dec.int("min instances", 0, math.MaxInt32)
	n.p.Delta, n.p.Threshold, n.p.Alpha = dec.f64(), dec.f64(), dec.f64()
	n.p.Mode = PageHinkleyMode(dec.int("mode", 0, int(PageHinkleyDown)))
	n.mean.n, n.mean.mean = dec.f64(), dec.f64()
	n.sumIncr, n.sumDecr, n.minIncr, n.maxDecr = dec.f64(), dec.f64(), dec.f64(), dec.f64()
	n.drift = dec.bool()
	if err := dec.finish(n.p.validate); err != nil {
		return err
	}
	*d = n
	return nil
}
