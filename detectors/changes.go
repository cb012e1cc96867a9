package detectors

// Change detectors on a model's per-prediction loss stream (0/1 for classification,
// absolute error for regression): ADWIN, DDM, EDDM, HDDM_A, HDDM_W, Page-Hinkley and
// KSWIN, as River 0.26.1 implements them (river.drift, river.drift.binary).
//
// Why by hand: there is no maintained Go library with these detectors, and the point is
// to report the same indices River does on the same stream (detectors/testdata/
// gen_changes.py, changes_test.go), which takes following River's arithmetic step by
// step: the order of floating-point operations, its warm-ups, ADWIN's clock and bucket
// compression, and River's habit of resetting a detector on the update after the one
// that reported a drift. Products that feed a sum are wrapped in float64(...) where the
// order matters: the Go spec lets a compiler fuse x*y+z into one rounding (arm64 does),
// an explicit conversion forbids it, so the indices are the same on every platform.
//
// Everything is pure logic: no clock, no globals, no allocation per value after warm-up.
// Each detector's whole state (parameters included) marshals to bytes and back, so a
// restarted driftd continues a stream exactly where it stopped.

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ChangeState is what a detector reports after one value.
type ChangeState uint8

const (
	// ChangeNone: nothing to report.
	ChangeNone ChangeState = iota
	// ChangeWarning: the stream may be changing (DDM, EDDM, HDDM_A and HDDM_W only).
	ChangeWarning
	// ChangeDrift: a change was detected at this value. The detector starts afresh on
	// the next value, as River's do.
	ChangeDrift
)

func (s ChangeState) String() string {
	switch s {
	case ChangeNone:
		return "none"
	case ChangeWarning:
		return "warning"
	case ChangeDrift:
		return "drift"
	}
	return fmt.Sprintf("ChangeState(%d)", uint8(s))
}

// ChangeKind names a change detector.
type ChangeKind uint8

const (
	ChangeADWIN ChangeKind = iota + 1
	ChangeDDM
	ChangeEDDM
	ChangeHDDMA
	ChangeHDDMW
	ChangePageHinkley
	ChangeKSWIN
)

// ChangeKinds lists every detector kind, in a fixed order (an array value, so no
// caller can change the list another sees).
func ChangeKinds() [7]ChangeKind {
	return [...]ChangeKind{ChangeADWIN, ChangeDDM, ChangeEDDM, ChangeHDDMA, ChangeHDDMW, ChangePageHinkley, ChangeKSWIN}
}

func (k ChangeKind) name() string {
	switch k {
	case ChangeADWIN:
		return "adwin"
	case ChangeDDM:
		return "ddm"
	case ChangeEDDM:
		return "eddm"
	case ChangeHDDMA:
		return "hddm-a"
	case ChangeHDDMW:
		return "hddm-w"
	case ChangePageHinkley:
		return "page-hinkley"
	case ChangeKSWIN:
		return "kswin"
	}
	return ""
}

func (k ChangeKind) valid() bool { return k >= ChangeADWIN && k <= ChangeKSWIN }

// BinaryOnly reports whether the detector reads a 0/1 stream only (River's
// river.drift.binary): not a regression model's absolute errors.
func (k ChangeKind) BinaryOnly() bool {
	return k == ChangeDDM || k == ChangeEDDM || k == ChangeHDDMA || k == ChangeHDDMW
}

// String is the name ParseChangeKind reads ("adwin", "ddm", "eddm", "hddm-a", "hddm-w",
// "page-hinkley", "kswin").
func (k ChangeKind) String() string {
	if k.valid() {
		return k.name()
	}
	return fmt.Sprintf("ChangeKind(%d)", uint8(k))
}

// ParseChangeKind reads a detector name, case-insensitively; "_" and "-" are the same,
// so River's class names (ADWIN, HDDM_A, PageHinkley) are accepted too.
func ParseChangeKind(s string) (ChangeKind, error) {
	n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	if n == "pagehinkley" || n == "ph" {
		n = "page-hinkley"
	}
	if n == "hddma" {
		n = "hddm-a"
	}
	if n == "hddmw" {
		n = "hddm-w"
	}
	for _, k := range ChangeKinds() {
		if k.name() == n {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown change detector %q (want one of adwin, ddm, eddm, hddm-a, hddm-w, page-hinkley, kswin)", s)
}

// MarshalText lets a ChangeKind be a config value.
func (k ChangeKind) MarshalText() ([]byte, error) {
	if !k.valid() {
		return nil, fmt.Errorf("marshal change kind: invalid %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a config value.
func (k *ChangeKind) UnmarshalText(b []byte) error {
	v, err := ParseChangeKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ChangeDetector watches one loss stream.
type ChangeDetector interface {
	// Update takes the next value in event-time order.
	Update(x float64) ChangeState
	// Kind says which detector this is.
	Kind() ChangeKind
	// Reset forgets the stream (parameters are kept).
	Reset()
	// MarshalBinary encodes the whole state, parameters included.
	MarshalBinary() ([]byte, error)
	// UnmarshalBinary restores a state MarshalBinary wrote for the same kind.
	UnmarshalBinary([]byte) error
}

// ChangeParams holds the parameters of every kind; NewChangeDetector uses the one its
// kind needs. DefaultChangeParams gives River 0.26.1's defaults.
type ChangeParams struct {
	ADWIN       ADWINParams
	DDM         DDMParams
	EDDM        EDDMParams
	HDDMA       HDDMAParams
	HDDMW       HDDMWParams
	PageHinkley PageHinkleyParams
	KSWIN       KSWINParams
}

// DefaultChangeParams are River 0.26.1's defaults for every detector.
func DefaultChangeParams() ChangeParams {
	return ChangeParams{
		ADWIN:       DefaultADWINParams(),
		DDM:         DefaultDDMParams(),
		EDDM:        DefaultEDDMParams(),
		HDDMA:       DefaultHDDMAParams(),
		HDDMW:       DefaultHDDMWParams(),
		PageHinkley: DefaultPageHinkleyParams(),
		KSWIN:       DefaultKSWINParams(),
	}
}

// NewChangeDetector builds a detector of the given kind from its parameters in p.
func NewChangeDetector(kind ChangeKind, p ChangeParams) (ChangeDetector, error) {
	switch kind {
	case ChangeADWIN:
		return NewADWIN(p.ADWIN)
	case ChangeDDM:
		return NewDDM(p.DDM)
	case ChangeEDDM:
		return NewEDDM(p.EDDM)
	case ChangeHDDMA:
		return NewHDDMA(p.HDDMA)
	case ChangeHDDMW:
		return NewHDDMW(p.HDDMW)
	case ChangePageHinkley:
		return NewPageHinkley(p.PageHinkley)
	case ChangeKSWIN:
		return NewKSWIN(p.KSWIN)
	}
	return nil, fmt.Errorf("new change detector: unknown kind %d", uint8(kind))
}

// DecodeChangeDetector restores a detector of any kind from MarshalBinary's bytes (the
// kind is in the header).
func DecodeChangeDetector(b []byte) (ChangeDetector, error) {
	if len(b) < 2 {
		return nil, errors.New("decode change detector: too short")
	}
	kind := ChangeKind(b[1])
	var d ChangeDetector
	switch kind {
	case ChangeADWIN:
		d = &ADWIN{}
	case ChangeDDM:
		d = &DDM{}
	case ChangeEDDM:
		d = &EDDM{}
	case ChangeHDDMA:
		d = &HDDMA{}
	case ChangeHDDMW:
		d = &HDDMW{}
	case ChangePageHinkley:
		d = &PageHinkley{}
	case ChangeKSWIN:
		d = &KSWIN{}
	default:
		return nil, fmt.Errorf("decode change detector: unknown kind %d", b[1])
	}
	if err := d.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return d, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// runningMean is River's stats.Mean with unit weights: mean += (1/n)·(x − mean).
type runningMean struct {
	n, mean float64
}

func (m *runningMean) update(x float64) {
	m.n++
	m.mean += float64(float64(1/m.n) * (x - m.mean))
}
