package detectors

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/driftd/driftd/processors"
)

// sampleWire is a Sample as stored: every field, so that merging a stored sample gives
// exactly what merging the original did (the reference built from a version's first
// windows is the same across a restart).
type sampleWire struct {
	Events  uint64
	Rows    [][]float64
	Cols    map[string]int
	Numeric map[string][]float64
	Cats    map[string]map[string]uint64
	CatSeq  map[string][]string
	Missing map[string]uint64
	Kinds   map[string]uint8
	// The service signals' baseline (quality.go).
	Served, Errors, Timeouts, Nulls uint64
	Latency                         []byte // processors.Sketch.Encode
	InputSize                       processors.Moments
	Windows                         []uint64
	Present                         map[string]uint64
	Slots                           map[string]uint64
	SlotWindows                     map[string][]uint64
	// Extents: absent in samples stored before them (UnmarshalSample then takes the range
	// of the values kept).
	Extents map[string]Extent
}

// MarshalBinary encodes the sample for storage.
func (s *Sample) MarshalBinary() ([]byte, error) {
	w := sampleWire{Events: s.Events, Rows: s.rows, Cols: s.cols, Numeric: s.numeric, Cats: s.cats, CatSeq: s.catSeq,
		Missing: s.missing, Kinds: make(map[string]uint8, len(s.kinds)),
		Served: s.served, Errors: s.errors, Timeouts: s.timeouts, Nulls: s.nulls, Latency: s.latency.Encode(),
		InputSize: s.inputSize, Windows: s.windows, Present: s.present, Slots: s.slots, SlotWindows: s.slotWindows, Extents: s.extents}
	for name, k := range s.kinds {
		w.Kinds[name] = uint8(k)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&w); err != nil {
		return nil, fmt.Errorf("encode reference sample: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalSample decodes a stored sample.
func UnmarshalSample(b []byte) (*Sample, error) {
	var w sampleWire
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return nil, fmt.Errorf("decode reference sample: %w", err)
	}
	s := NewSample()
	s.Events, s.rows = w.Events, w.Rows
	s.served, s.errors, s.timeouts, s.nulls, s.inputSize, s.windows = w.Served, w.Errors, w.Timeouts, w.Nulls, w.InputSize, w.Windows
	s.slots, s.slotWindows = w.Slots, w.SlotWindows
	if len(w.Latency) > 0 {
		sk, err := processors.DecodeSketch(w.Latency)
		if err != nil {
			return nil, fmt.Errorf("decode reference sample: latency: %w", err)
		}
		s.latency = sk
	}
	for name, n := range w.Present {
		s.present[name] = n
	}
	for name, c := range w.Cols {
		s.cols[name] = c
	}
	for name, v := range w.Numeric {
		s.numeric[name] = v
	}
	for name, c := range w.Cats {
		s.cats[name] = c
	}
	for name, v := range w.CatSeq {
		s.catSeq[name] = v
	}
	for name, n := range w.Missing {
		s.missing[name] = n
	}
	for name, e := range w.Extents {
		s.extents[name] = e
	}
	if w.Extents == nil {
		// A sample stored before extents were kept: the range of the values it kept, so
		// that merged with newer samples the reference's range still covers its windows.
		for name, v := range w.Numeric {
			for _, x := range v {
				s.extents[name] = s.extents[name].merge(Extent{Min: x, Max: x, N: 1})
			}
		}
	}
	for name, k := range w.Kinds {
		s.kinds[name] = processors.FeatureKind(k)
	}
	return s, nil
}

// TrimmedFor returns s cut to what into.Merge(s) keeps (values beyond MaxSample per
// feature, rows beyond MaxJointRows), so that storing a window's share of a reference
// costs no more than the reference itself: into.Merge(s.TrimmedFor(into)) leaves into as
// into.Merge(s) would.
func (s *Sample) TrimmedFor(into *Sample) *Sample {
	out := &Sample{Events: s.Events, rows: s.rows, cols: s.cols, numeric: make(map[string][]float64, len(s.numeric)),
		cats: s.cats, catSeq: make(map[string][]string, len(s.catSeq)), missing: s.missing, kinds: s.kinds,
		served: s.served, errors: s.errors, timeouts: s.timeouts, nulls: s.nulls, latency: s.latency, inputSize: s.inputSize,
		windows: s.windows, present: s.present, slots: s.slots, slotWindows: s.slotWindows, extents: s.extents}
	if len(into.rows) >= MaxJointRows {
		out.rows = nil
	}
	for name, vs := range s.numeric {
		out.numeric[name] = vs[:min(max(MaxSample-len(into.numeric[name]), 0), len(vs))]
	}
	for name, seq := range s.catSeq {
		out.catSeq[name] = seq[:min(max(MaxSample-len(into.catSeq[name]), 0), len(seq))]
	}
	return out
}
