package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// A prediction written with the bundled schema (the same Parsing Canonical Form, so the
// same bytes) is decoded here straight into the reused PredictionEvent, without goavro's
// generic map[string]any: decoding is driftd's hot path, and the generic route costs
// ~150 allocations per 20-feature event. Writer schemas of any other shape still go
// through goavro. FuzzAvroFastMatchesGoavro holds the two to the same results.

var errShort = errors.New("record ends early")

type avroReader struct {
	b   []byte
	pos int
}

func (r *avroReader) long() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.pos >= len(r.b) {
			return 0, errShort
		}
		c := r.b[r.pos]
		r.pos++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil // zig-zag
		}
	}
	return 0, errors.New("long longer than 10 bytes")
}

func (r *avroReader) double() (float64, error) {
	if len(r.b)-r.pos < 8 {
		return 0, errShort
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.pos:]))
	r.pos += 8
	return v, nil
}

func (r *avroReader) boolean() (bool, error) {
	if r.pos >= len(r.b) {
		return false, errShort
	}
	c := r.b[r.pos]
	r.pos++
	if c > 1 {
		return false, fmt.Errorf("boolean byte %d is neither 0 nor 1", c)
	}
	return c == 1, nil
}

// bytes returns the next string's bytes, aliasing the record.
func (r *avroReader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(r.b)-r.pos) {
		return nil, fmt.Errorf("string of %d bytes in %d left", n, len(r.b)-r.pos)
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

func (r *avroReader) str() (string, error) {
	b, err := r.bytes()
	return string(b), err
}

// union reads a union's branch index, of n branches.
func (r *avroReader) union(n int64) (int64, error) {
	i, err := r.long()
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= n {
		return 0, fmt.Errorf("union branch %d of %d", i, n)
	}
	return i, nil
}

// blocks calls item for every item of a map or array, block by block.
func (r *avroReader) blocks(item func() error) error {
	for {
		n, err := r.long()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			n = -n
			if _, err := r.long(); err != nil {
				return err
			}
		}
		if n > int64(maxBlockCount) {
			return fmt.Errorf("block of %d items exceeds %d", n, maxBlockCount)
		}
		for ; n > 0; n-- {
			if err := item(); err != nil {
				return err
			}
		}
	}
}

// maxBlockCount is goavro.MaxBlockCount as driftd sets it (see init in avro.go).
const maxBlockCount = 1 << 16

// decodePredictionBinary decodes a body written with the bundled prediction schema.
func decodePredictionBinary(body []byte, e *PredictionEvent) error {
	r := &avroReader{b: body}
	e.Reset()
	var err error
	str := func(dst *string) {
		if err == nil {
			*dst, err = r.str()
		}
	}
	interned := func(dst *string) {
		if err == nil {
			var b []byte
			if b, err = r.bytes(); err == nil {
				*dst = e.intern(b)
			}
		}
	}
	str(&e.EventID)
	str(&e.RequestID)
	interned(&e.Model)
	interned(&e.ModelVersion)
	interned(&e.Deployment)
	if err != nil {
		return err
	}
	ms, err := r.long()
	if err != nil {
		return err
	}
	e.Timestamp = epochMillis(ms)
	if err := r.blocks(func() error {
		name, err := r.bytes()
		if err != nil {
			return err
		}
		v, err := r.value(e, 4)
		if err != nil {
			return err
		}
		e.Features = append(e.Features, Feature{Name: e.intern(name), Value: v})
		return nil
	}); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := sortFeatures(e); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if e.Prediction, err = r.value(e, 3); err != nil {
		return fmt.Errorf("prediction: %w", err)
	}
	i, err := r.union(2)
	if err != nil {
		return fmt.Errorf("scores: %w", err)
	}
	if i == 1 {
		e.Scores = map[string]float64{}
		if err := r.blocks(func() error {
			k, err := r.str()
			if err != nil {
				return err
			}
			if _, dup := e.Scores[k]; dup {
				return fmt.Errorf("duplicate key %q", k)
			}
			e.Scores[k], err = r.double()
			return err
		}); err != nil {
			return fmt.Errorf("scores: %w", err)
		}
	}
	if e.LatencyMs, err = r.double(); err != nil {
		return err
	}
	interned(&e.Status)
	if err != nil {
		return err
	}
	if i, err = r.union(2); err != nil {
		return fmt.Errorf("input_size: %w", err)
	}
	if i == 1 {
		if e.InputSize, err = r.double(); err != nil {
			return err
		}
		e.HasInputSize = true
	}
	if r.pos != len(r.b) {
		return fmt.Errorf("%d trailing bytes after the record", len(r.b)-r.pos)
	}
	return nil
}

// value reads a union of null, double, string and (with 4 branches) boolean.
func (r *avroReader) value(e *PredictionEvent, branches int64) (Value, error) {
	i, err := r.union(branches)
	if err != nil {
		return Value{}, err
	}
	switch i {
	case 1:
		f, err := r.double()
		return Value{Kind: Number, Num: f}, err
	case 2:
		b, err := r.bytes()
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: String, Str: e.intern(b)}, nil
	case 3:
		t, err := r.boolean()
		if t {
			return Value{Kind: Bool, Num: 1}, err
		}
		return Value{Kind: Bool}, err
	}
	return Value{}, nil
}

// sortFeatures orders features by name, as the generic path does (an Avro map has no
// order), and refuses a name given twice, as goavro does.
func sortFeatures(e *PredictionEvent) error {
	f := e.Features
	if !sort.SliceIsSorted(f, func(i, j int) bool { return f[i].Name < f[j].Name }) {
		sort.Slice(f, func(i, j int) bool { return f[i].Name < f[j].Name })
	}
	for i := 1; i < len(f); i++ {
		if f[i].Name == f[i-1].Name {
			return fmt.Errorf("duplicate key %q", f[i].Name)
		}
	}
	return nil
}
