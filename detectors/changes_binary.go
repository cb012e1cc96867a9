package detectors

import (
	"fmt"
	"math"
)

// The detectors River files under river.drift.binary. They expect a 0/1 error stream
// (1 = the prediction was wrong); DDM, HDDM_A and HDDM_W average whatever they are
// given, EDDM counts a value of at least 0.5 as an error.

// stateOf maps River's two flags to one ChangeState; a drift outranks a warning.
func stateOf(warning, drift bool) ChangeState {
	switch {
	case drift:
		return ChangeDrift
	case warning:
		return ChangeWarning
	}
	return ChangeNone
}

// ---------------------------------------------------------------- DDM

// DDMParams are DDM's parameters (river.drift.binary.DDM, River 0.26.1).
type DDMParams struct {
	// WarmStart: values seen before any warning or drift (River: warm_start=30).
	WarmStart int
	// WarningThreshold: warning when p+s > p_min + WarningThreshold·s_min (River: 2.0).
	WarningThreshold float64
	// DriftThreshold: drift when p+s > p_min + DriftThreshold·s_min (River: 3.0).
	DriftThreshold float64
}

// DefaultDDMParams are River 0.26.1's defaults.
func DefaultDDMParams() DDMParams {
	return DDMParams{WarmStart: 30, WarningThreshold: 2, DriftThreshold: 3}
}

func (p DDMParams) validate() error {
	switch {
	case p.WarmStart < 0:
		return fmt.Errorf("ddm: warm start %d < 0", p.WarmStart)
	case !finite(p.WarningThreshold) || p.WarningThreshold < 0:
		return fmt.Errorf("ddm: warning threshold %v not a finite value >= 0", p.WarningThreshold)
	case !finite(p.DriftThreshold) || p.DriftThreshold < p.WarningThreshold:
		return fmt.Errorf("ddm: drift threshold %v not finite or below the warning threshold", p.DriftThreshold)
	}
	return nil
}

// DDM is Gama et al.'s Drift Detection Method: the error rate p and its binomial
// standard deviation s = √(p(1−p)/n); the minimum of p+s is remembered after the warm-up,
// and p+s rising DriftThreshold (WarningThreshold) of those minimum deviations above
// the minimum p is a drift (warning).
type DDM struct {
	p                 DDMParams
	mean              runningMean
	pMin, sMin, psMin float64
	warning, drift    bool
}

// NewDDM returns a DDM detector.
func NewDDM(p DDMParams) (*DDM, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &DDM{p: p}
	d.Reset()
	return d, nil
}

// Kind is ChangeDDM.
func (d *DDM) Kind() ChangeKind { return ChangeDDM }

// Reset forgets the stream.
func (d *DDM) Reset() {
	*d = DDM{p: d.p, psMin: math.Inf(1)}
}

// Update takes the next 0/1 error; non-finite values are ignored.
func (d *DDM) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	d.mean.update(x)
	p, n := d.mean.mean, d.mean.n
	s := math.Sqrt(float64(p*(1-p)) / n)
	if n > float64(d.p.WarmStart) {
		if p+s <= d.psMin {
			d.pMin, d.sMin = p, s
			d.psMin = d.pMin + d.sMin
		}
		d.warning = p+s > d.pMin+float64(d.p.WarningThreshold*d.sMin)
		if p+s > d.pMin+float64(d.p.DriftThreshold*d.sMin) {
			d.drift, d.warning = true, false
		}
	}
	return stateOf(d.warning, d.drift)
}

// MarshalBinary encodes parameters and state.
func (d *DDM) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangeDDM, 64)
	e.int(d.p.WarmStart)
	e.f64(d.p.WarningThreshold)
	e.f64(d.p.DriftThreshold)
	e.f64(d.mean.n)
	e.f64(d.mean.mean)
	e.f64(d.pMin)
	e.f64(d.sMin)
	e.f64(d.psMin)
	e.bool(d.warning)
	e.bool(d.drift)
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *DDM) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangeDDM, b)
	var n DDM
	n.p.WarmStart = dec.int("warm start", 0, math.MaxInt32)
	n.p.WarningThreshold, n.p.DriftThreshold = dec.f64(), dec.f64()
	n.mean.n, n.mean.mean = dec.f64(), dec.f64()
	n.pMin, n.sMin, n.psMin = dec.f64(), dec.f64(), dec.f64()
	n.warning, n.drift = dec.bool(), dec.bool()
	if err := dec.finish(n.p.validate); err != nil {
		return err
	}
	*d = n
	return nil
}

// ---------------------------------------------------------------- EDDM

// EDDMParams are EDDM's parameters (river.drift.binary.EDDM, River 0.26.1).
type EDDMParams struct {
	// WarmStart: errors (and values) seen before any warning or drift (River: 30).
	WarmStart int
	// Alpha: warning when (p'+2s')/max(p'+2s') < Alpha (River: 0.95).
	Alpha float64
	// Beta: drift when (p'+2s')/max(p'+2s') < Beta (River: 0.9).
	Beta float64
}

// DefaultEDDMParams are River 0.26.1's defaults.
func DefaultEDDMParams() EDDMParams { return EDDMParams{WarmStart: 30, Alpha: 0.95, Beta: 0.9} }

func (p EDDMParams) validate() error {
	switch {
	case p.WarmStart < 0:
		return fmt.Errorf("eddm: warm start %d < 0", p.WarmStart)
	case !(p.Beta > 0 && p.Beta <= p.Alpha && p.Alpha <= 1):
		return fmt.Errorf("eddm: want 0 < beta (%v) <= alpha (%v) <= 1", p.Beta, p.Alpha)
	}
	return nil
}

// EDDM is Baena-García et al.'s Early Drift Detection Method: the mean p' and standard
// deviation s' of the distance between consecutive errors; when p'+2s' falls to a
// fraction Beta (Alpha) of its maximum, errors are coming closer together: drift
// (warning). River keeps a warning raised until the next error says otherwise.
type EDDM struct {
	p EDDMParams
	// Welford mean and sum of squared deviations of the distances (River's stats.Var).
	distN, distMean, distS float64
	n, lastError, nErrors  int64
	p2sMax                 float64
	warning, drift         bool
}

// NewEDDM returns an EDDM detector.
func NewEDDM(p EDDMParams) (*EDDM, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &EDDM{p: p}
	d.Reset()
	return d, nil
}

// Kind is ChangeEDDM.
func (d *EDDM) Kind() ChangeKind { return ChangeEDDM }

// Reset forgets the stream.
func (d *EDDM) Reset() { *d = EDDM{p: d.p, p2sMax: -1} }

// Update takes the next 0/1 error; non-finite values are ignored.
func (d *EDDM) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	d.n++
	if x >= 0.5 {
		d.nErrors++
		dist := float64(d.n - d.lastError)
		old := d.distMean
		d.distN++
		d.distMean += float64(float64(1/d.distN) * (dist - old))
		d.distS += float64((dist - old) * (dist - d.distMean))
		if d.n > int64(d.p.WarmStart) {
			v := 0.0
			if d.distN > 1 {
				v = d.distS / (d.distN - 1)
			}
			p2s := d.distMean + 2*math.Sqrt(v)
			if p2s > d.p2sMax {
				d.p2sMax = p2s
			} else if d.nErrors > int64(d.p.WarmStart) {
				level := p2s / d.p2sMax
				switch {
				case level < d.p.Beta:
					d.drift = true
				case level < d.p.Alpha:
					d.warning = true
				default:
					d.warning = false
				}
			}
		}
		d.lastError = d.n
	}
	return stateOf(d.warning, d.drift)
}

// MarshalBinary encodes parameters and state.
func (d *EDDM) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangeEDDM, 96)
	e.int(d.p.WarmStart)
	e.f64(d.p.Alpha)
	e.f64(d.p.Beta)
	e.f64(d.distN)
	e.f64(d.distMean)
	e.f64(d.distS)
	e.u64(uint64(d.n))
	e.u64(uint64(d.lastError))
	e.u64(uint64(d.nErrors))
	e.f64(d.p2sMax)
	e.bool(d.warning)
	e.bool(d.drift)
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *EDDM) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangeEDDM, b)
	var n EDDM
	n.p.WarmStart = dec.int("warm start", 0, math.MaxInt32)
	n.p.Alpha, n.p.Beta = dec.f64(), dec.f64()
	n.distN, n.distMean, n.distS = dec.f64(), dec.f64(), dec.f64()
	n.n = int64(dec.int("count", 0, math.MaxInt64))
	n.lastError = int64(dec.int("last error", 0, math.MaxInt64))
	n.nErrors = int64(dec.int("errors", 0, math.MaxInt64))
	n.p2sMax = dec.f64()
	n.warning, n.drift = dec.bool(), dec.bool()
	if err := dec.finish(n.p.validate); err != nil {
		return err
	}
	*d = n
	return nil
}

// ---------------------------------------------------------------- HDDM_A

// HDDMAParams are HDDM_A's parameters (river.drift.binary.HDDM_A, River 0.26.1).
type HDDMAParams struct {
	// DriftConfidence: the Hoeffding test's level for a drift (River: 0.001).
	DriftConfidence float64
	// WarningConfidence: the level for a warning (River: 0.005).
	WarningConfidence float64
	// TwoSidedTest also reports the error rate falling (River: false).
	TwoSidedTest bool
}

// DefaultHDDMAParams are River 0.26.1's defaults.
func DefaultHDDMAParams() HDDMAParams {
	return HDDMAParams{DriftConfidence: 0.001, WarningConfidence: 0.005}
}

func validConfidences(name string, drift, warning float64) error {
	if !(drift > 0 && drift < 1) || !(warning > 0 && warning < 1) {
		return fmt.Errorf("%s: confidences %v, %v outside (0, 1)", name, drift, warning)
	}
	return nil
}

func (p HDDMAParams) validate() error {
	return validConfidences("hddm-a", p.DriftConfidence, p.WarningConfidence)
}

// HDDMA is Frías-Blanco et al.'s HDDM with Hoeffding's bound on moving averages (the
// A-test): it keeps the whole stream's mean and the means up to the cut points where
// mean+bound was lowest (highest), and reports the mean since rising significantly.
type HDDMA struct {
	p              HDDMAParams
	z, xMin, xMax  runningMean
	warning, drift bool
	// Logarithms of the confidences, derived from p (not state): River takes them on
	// every value, and they are the same numbers computed once.
	logInvDrift, log2Drift, log2Warning float64
}

func (d *HDDMA) derive() {
	d.logInvDrift = math.Log(1.0 / d.p.DriftConfidence)
	d.log2Drift = math.Log(2.0 / d.p.DriftConfidence)
	d.log2Warning = math.Log(2.0 / d.p.WarningConfidence)
}

// NewHDDMA returns an HDDM_A detector.
func NewHDDMA(p HDDMAParams) (*HDDMA, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &HDDMA{p: p}
	d.derive()
	return d, nil
}

// Kind is ChangeHDDMA.
func (d *HDDMA) Kind() ChangeKind { return ChangeHDDMA }

// Reset forgets the stream.
func (d *HDDMA) Reset() {
	*d = HDDMA{p: d.p}
	d.derive()
}

func (d *HDDMA) hoeffding(n float64) float64 {
	return math.Sqrt(1.0 / (2 * n) * d.logInvDrift)
}

// meanShiftBound is the A-test's bound on the difference between the mean since the cut
// and the mean up to it; ok is false while no value has come since the cut.
// log2Conf is log(2/confidence) (River's _mean_incr/_mean_decr argument).
func meanShiftBound(cut, all runningMean, log2Conf float64) (eps float64, ok bool) {
	if cut.n == all.n {
		return 0, false
	}
	m := (all.n - cut.n) / cut.n * (1.0 / all.n)
	return math.Sqrt(m / 2 * log2Conf), true
}

func (d *HDDMA) meanIncr(log2Conf float64) bool {
	eps, ok := meanShiftBound(d.xMin, d.z, log2Conf)
	return ok && d.z.mean-d.xMin.mean >= eps
}

func (d *HDDMA) meanDecr(log2Conf float64) bool {
	eps, ok := meanShiftBound(d.xMax, d.z, log2Conf)
	return ok && d.xMax.mean-d.z.mean >= eps
}

// Update takes the next 0/1 error; non-finite values are ignored.
func (d *HDDMA) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	d.z.update(x)
	if d.xMin.n == 0 {
		d.xMin = d.z
	}
	if d.xMax.n == 0 {
		d.xMax = d.z
	}
	epsZ := d.hoeffding(d.z.n)
	if d.xMin.mean+d.hoeffding(d.xMin.n) >= d.z.mean+epsZ {
		d.xMin = d.z
	}
	if d.xMax.mean-d.hoeffding(d.xMax.n) <= d.z.mean-epsZ {
		d.xMax = d.z
	}
	switch {
	case d.meanIncr(d.log2Drift):
		d.warning, d.drift = false, true
	case d.meanIncr(d.log2Warning):
		d.warning, d.drift = true, false
	default:
		d.warning, d.drift = false, false
	}
	if d.p.TwoSidedTest {
		if d.meanDecr(d.log2Drift) {
			d.drift = true
		} else if d.meanDecr(d.log2Warning) {
			d.warning = true
		}
	}
	return stateOf(d.warning, d.drift)
}

// MarshalBinary encodes parameters and state.
func (d *HDDMA) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangeHDDMA, 80)
	e.f64(d.p.DriftConfidence)
	e.f64(d.p.WarningConfidence)
	e.bool(d.p.TwoSidedTest)
	for _, m := range [...]runningMean{d.z, d.xMin, d.xMax} {
		e.f64(m.n)
		e.f64(m.mean)
	}
	e.bool(d.warning)
	e.bool(d.drift)
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *HDDMA) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangeHDDMA, b)
	var n HDDMA
	n.p.DriftConfidence, n.p.WarningConfidence = dec.f64(), dec.f64()
	n.p.TwoSidedTest = dec.bool()
	for _, m := range [...]*runningMean{&n.z, &n.xMin, &n.xMax} {
		m.n, m.mean = dec.f64(), dec.f64()
	}
	n.warning, n.drift = dec.bool(), dec.bool()
	if err := dec.finish(n.p.validate); err != nil {
		return err
	}
	n.derive()
	*d = n
	return nil
}

// ---------------------------------------------------------------- HDDM_W

// HDDMWParams are HDDM_W's parameters (river.drift.binary.HDDM_W, River 0.26.1).
type HDDMWParams struct {
	// DriftConfidence: the McDiarmid test's level for a drift (River: 0.001).
	DriftConfidence float64
	// WarningConfidence: the level for a warning (River: 0.005).
	WarningConfidence float64
	// Lambda: the EWMA's weight of the newest value (River: lambda_val=0.05).
	Lambda float64
	// TwoSidedTest also reports the error rate falling (River: false).
	TwoSidedTest bool
}

// DefaultHDDMWParams are River 0.26.1's defaults.
func DefaultHDDMWParams() HDDMWParams {
	return HDDMWParams{DriftConfidence: 0.001, WarningConfidence: 0.005, Lambda: 0.05}
}

func (p HDDMWParams) validate() error {
	if err := validConfidences("hddm-w", p.DriftConfidence, p.WarningConfidence); err != nil {
		return err
	}
	if !(p.Lambda > 0 && p.Lambda <= 1) {
		return fmt.Errorf("hddm-w: lambda %v outside (0, 1]", p.Lambda)
	}
	return nil
}

// ewmaSample is River's HDDM_W SampleInfo: an exponentially weighted mean (the first
// value taken as is) and its independent bounded condition Σ weights².
type ewmaSample struct {
	ewma, ibc float64
	init      bool
}

func newEWMASample() ewmaSample { return ewmaSample{ibc: 1} }

func (s *ewmaSample) update(x, lambda float64) {
	if !s.init {
		s.ewma = x
	} else {
		s.ewma = float64(lambda*x) + float64((1-lambda)*s.ewma)
	}
	s.init = true
	c := 1 - lambda
	s.ibc = float64(lambda*lambda) + float64(float64(c*c)*s.ibc)
}

// HDDMW is Frías-Blanco et al.'s HDDM with McDiarmid's bound on weighted moving
// averages (the W-test).
type HDDMW struct {
	p                     HDDMWParams
	total, s1Decr, s1Incr ewmaSample
	s2Decr, s2Incr        ewmaSample
	incrCut, decrCut      float64
	warning, drift        bool
	// log(1/confidence) for both levels, derived from p (not state): River takes them
	// on every value, and they are the same numbers computed once.
	logInvDrift, logInvWarning float64
}

// NewHDDMW returns an HDDM_W detector.
func NewHDDMW(p HDDMWParams) (*HDDMW, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &HDDMW{p: p}
	d.Reset()
	return d, nil
}

// Kind is ChangeHDDMW.
func (d *HDDMW) Kind() ChangeKind { return ChangeHDDMW }

// Reset forgets the stream.
func (d *HDDMW) Reset() {
	s := newEWMASample()
	*d = HDDMW{p: d.p, total: s, s1Decr: s, s1Incr: s, s2Decr: s, s2Incr: s,
		incrCut: math.Inf(1), decrCut: math.Inf(-1)}
	d.derive()
}

func (d *HDDMW) derive() {
	d.logInvDrift = math.Log(1 / d.p.DriftConfidence)
	d.logInvWarning = math.Log(1 / d.p.WarningConfidence)
}

// mcDiarmid is McDiarmid's bound √(ibc·log(1/confidence)/2), given log(1/confidence).
func mcDiarmid(ibc, logInvConf float64) float64 {
	return math.Sqrt(ibc * logInvConf / 2)
}

func hasMeanChanged(s1, s2 ewmaSample, logInvConf float64) bool {
	if !(s1.init && s2.init) {
		return false
	}
	return s2.ewma-s1.ewma > mcDiarmid(s1.ibc+s2.ibc, logInvConf)
}

// Update takes the next 0/1 error; non-finite values are ignored.
func (d *HDDMW) Update(x float64) ChangeState {
	if !finite(x) {
		return ChangeNone
	}
	if d.drift {
		d.Reset()
	}
	l := d.p.Lambda
	d.total.update(x, l)
	eps := mcDiarmid(d.total.ibc, d.logInvDrift)
	if d.total.ewma+eps < d.incrCut {
		d.incrCut = d.total.ewma + eps
		d.s1Incr, d.s2Incr = d.total, newEWMASample()
	} else {
		d.s2Incr.update(x, l)
	}
	switch {
	case hasMeanChanged(d.s1Incr, d.s2Incr, d.logInvDrift):
		d.warning, d.drift = false, true
	case hasMeanChanged(d.s1Incr, d.s2Incr, d.logInvWarning):
		d.warning, d.drift = true, false
	default:
		d.warning, d.drift = false, false
	}
	// The decrease side is tracked whether or not it is tested, as River does, so
	// that switching TwoSidedTest on in a saved state finds it up to date.
	if d.total.ewma-eps > d.decrCut {
		d.decrCut = d.total.ewma - eps
		d.s1Decr, d.s2Decr = d.total, newEWMASample()
	} else {
		d.s2Decr.update(x, l)
	}
	if d.p.TwoSidedTest {
		if hasMeanChanged(d.s2Decr, d.s1Decr, d.logInvDrift) {
			d.drift = true
		} else if hasMeanChanged(d.s2Decr, d.s1Decr, d.logInvWarning) {
			d.warning = true
		}
	}
	return stateOf(d.warning, d.drift)
}

// MarshalBinary encodes parameters and state.
func (d *HDDMW) MarshalBinary() ([]byte, error) {
	e := newChangeEncoder(ChangeHDDMW, 140)
	e.f64(d.p.DriftConfidence)
	e.f64(d.p.WarningConfidence)
	e.f64(d.p.Lambda)
	e.bool(d.p.TwoSidedTest)
	for _, s := range [...]ewmaSample{d.total, d.s1Decr, d.s1Incr, d.s2Decr, d.s2Incr} {
		e.f64(s.ewma)
		e.f64(s.ibc)
		e.bool(s.init)
	}
	e.f64(d.incrCut)
	e.f64(d.decrCut)
	e.bool(d.warning)
	e.bool(d.drift)
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (d *HDDMW) UnmarshalBinary(b []byte) error {
	dec := newChangeDecoder(ChangeHDDMW, b)
	var n HDDMW
	n.p.DriftConfidence, n.p.WarningConfidence, n.p.Lambda = dec.f64(), dec.f64(), dec.f64()
	n.p.TwoSidedTest = dec.bool()
	for _, s := range [...]*ewmaSample{&n.total, &n.s1Decr, &n.s1Incr, &n.s2Decr, &n.s2Incr} {
		s.ewma, s.ibc = dec.f64(), dec.f64()
		s.init = dec.bool()
	}
	n.incrCut, n.decrCut = dec.f64(), dec.f64()
	n.warning, n.drift = dec.bool(), dec.bool()
	if err := dec.finish(n.p.validate); err != nil {
		return err
	}
	n.derive()
	*d = n
	return nil
}
