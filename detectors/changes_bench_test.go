package detectors

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkChangeDetectors: one Update per op on a 0/1 loss stream whose error rate
// steps from 0.1 to 0.4 every 2,000 values (so drifts, resets and ADWIN's bucket
// merges are all in the mix); values/s is per core.
func BenchmarkChangeDetectors(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	stream := make([]float64, 1<<14)
	for i := range stream {
		p := 0.1
		if (i/2000)%2 == 1 {
			p = 0.4
		}
		if rng.Float64() < p {
			stream[i] = 1
		}
	}
	for _, kind := range ChangeKinds() {
		b.Run(kind.String(), func(b *testing.B) {
			d := newDefaultChange(b, kind)
			b.ReportAllocs()
			b.ResetTimer()
			drifts := 0
			for i := 0; i < b.N; i++ {
				if d.Update(stream[i&(len(stream)-1)]) == ChangeDrift {
					drifts++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
			if b.N > 2*len(stream) && drifts == 0 {
				b.Fatal("no drift on a stream that changes every 2,000 values")
			}
		})
	}
}

// BenchmarkChangeStateMarshal: a restart's cost, per detector, after 10,000 values.
func BenchmarkChangeStateMarshal(b *testing.B) {
	for _, kind := range ChangeKinds() {
		b.Run(kind.String(), func(b *testing.B) {
			d := newDefaultChange(b, kind)
			for i := 0; i < 10000; i++ {
				d.Update(float64(i % 7 / 6))
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf, err := d.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				if err := d.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
