package detectors

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/schemas"
)

// A reference built from stored window samples is the reference built from the samples
// themselves: same id, so a restart inside a version's first windows changes nothing.
func TestStoredSamplesBuildTheSameReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	window := func(n int, withMissing bool) *Sample {
		s := NewSample()
		for i := 0; i < n; i++ {
			e := event(rng, 0, []string{"DE", "FR", "US"}, time.Duration(i)*time.Second)
			if withMissing && i%7 == 0 {
				e.Features = append(e.Features, schemas.Feature{Name: "tenure", Value: schemas.Value{Kind: schemas.Missing}})
			} else {
				e.Features = append(e.Features, schemas.Feature{Name: "tenure", Value: schemas.Value{Kind: schemas.Number, Num: rng.Float64()}})
			}
			s.AddEvent(e)
		}
		return s
	}
	// Windows big enough that the reference's caps (MaxSample values, MaxJointRows rows)
	// cut the last ones.
	windows := []*Sample{window(30000, true), window(50000, false), window(40000, true)}
	direct, stored := NewSample(), NewSample()
	for _, w := range windows {
		share := w.TrimmedFor(stored)
		body, err := share.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSample(body)
		if err != nil {
			t.Fatal(err)
		}
		again, err := back.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(body) {
			t.Errorf("re-encoding changes the size: %d, %d bytes", len(body), len(again))
		}
		direct.Merge(w)
		stored.Merge(back)
	}
	a := direct.Build("m", "1", SourceFirstWindows, 3, t0)
	b := stored.Build("m", "1", SourceFirstWindows, 3, t0.Add(time.Hour))
	if a.ID != b.ID || a.Events != 120000 || b.Events != a.Events {
		t.Errorf("references differ: %s (%d events) and %s (%d events)", a.ID, a.Events, b.ID, b.Events)
	}
	if _, err := UnmarshalSample(bytes.Repeat([]byte{7}, 20)); err == nil {
		t.Error("garbage decoded")
	}
	// The last window's share holds only what the reference still had room for.
	full := NewSample()
	for _, w := range windows[:2] {
		full.Merge(w)
	}
	share := windows[2].TrimmedFor(full)
	if len(share.numeric["amount"]) != MaxSample-80000 || share.rows != nil || share.Events != 40000 {
		t.Errorf("share: %d values, %d rows, %d events", len(share.numeric["amount"]), len(share.rows), share.Events)
	}
}
