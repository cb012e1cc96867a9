package detectors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The change detectors' state encoding: byte 0 is the format version, byte 1 the
// ChangeKind, then the detector's parameters and state as fixed-width little-endian
// fields in the order its marshal method writes them. Small and explicit rather than
// encoding/gob or JSON: gob allocates a type registry per stream and JSON cannot carry
// ±Inf (Page-Hinkley's and HDDM_W's initial bounds), and a restart must give back
// bit-identical floats.
const changeCodecVersion = 1

type changeEncoder struct{ b []byte }

func newChangeEncoder(kind ChangeKind, sizeHint int) *changeEncoder {
	e := &changeEncoder{b: make([]byte, 0, 2+sizeHint)}
	e.b = append(e.b, changeCodecVersion, byte(kind))
	return e
}

func (e *changeEncoder) f64(v float64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}
func (e *changeEncoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *changeEncoder) int(v int)    { e.u64(uint64(int64(v))) }
func (e *changeEncoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// changeDecoder reads fields and remembers the first error, so a marshal method reads
// straight through and checks once at the end.
type changeDecoder struct {
	b    []byte
	err  error
	kind ChangeKind
}

func newChangeDecoder(kind ChangeKind, b []byte) *changeDecoder {
	d := &changeDecoder{b: b, kind: kind}
	if len(b) < 2 {
		d.err = fmt.Errorf("decode %s state: %d bytes, too short", kind, len(b))
		return d
	}
	if b[0] != changeCodecVersion {
		d.err = fmt.Errorf("decode %s state: unknown format version %d", kind, b[0])
		return d
	}
	if ChangeKind(b[1]) != kind {
		d.err = fmt.Errorf("decode %s state: bytes hold a %s state", kind, ChangeKind(b[1]))
		return d
	}
	d.b = b[2:]
	return d
}

var errChangeShort = errors.New("truncated")

func (d *changeDecoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = fmt.Errorf("decode %s state: %w", d.kind, errChangeShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// f64 reads a float; no detector's state holds a NaN (±Inf are initial bounds), so one
// is an error.
func (d *changeDecoder) f64() float64 {
	v := math.Float64frombits(d.u64())
	if d.err == nil && math.IsNaN(v) {
		d.err = fmt.Errorf("decode %s state: NaN", d.kind)
		return 0
	}
	return v
}

// int reads a count that must lie in [lo, hi].
func (d *changeDecoder) int(name string, lo, hi int) int {
	v := int64(d.u64())
	if d.err == nil && (v < int64(lo) || v > int64(hi)) {
		d.err = fmt.Errorf("decode %s state: %s %d outside [%d, %d]", d.kind, name, v, lo, hi)
		return lo
	}
	return int(v)
}

func (d *changeDecoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < 1 {
		d.err = fmt.Errorf("decode %s state: %w", d.kind, errChangeShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.err = fmt.Errorf("decode %s state: bad bool byte %d", d.kind, v)
	}
	return v == 1
}

// need fails unless at least n more bytes remain: checked before allocating for a
// length read from the input, so bad bytes cannot ask for a huge allocation.
func (d *changeDecoder) need(n int) bool {
	if d.err == nil && (n < 0 || len(d.b) < n) {
		d.err = fmt.Errorf("decode %s state: %w", d.kind, errChangeShort)
	}
	return d.err == nil
}

// finish fails on trailing bytes or an earlier error, and runs the parameter check.
func (d *changeDecoder) finish(check func() error) error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("decode %s state: %d trailing bytes", d.kind, len(d.b))
	}
	if check != nil {
		if err := check(); err != nil {
			return fmt.Errorf("decode %s state: %w", d.kind, err)
		}
	}
	return nil
}
