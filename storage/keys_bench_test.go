package storage_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// BenchmarkWritePredictionKeys stores prediction keys as a backlog brings them (5 models,
// one-minute windows, 25,000 keys a write, as the label writer hands them over) and
// reports the process's CPU per key (user + system: the embedded engine's threads are
// in it), its background merges included: the benchmark waits for them to end. This is
// what storing the label join's keys costs driftd per prediction.
func BenchmarkWritePredictionKeys(b *testing.B) {
	s := openStore(b)
	ctx := testenv.Context(b, 20*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		b.Fatal(err)
	}
	const batch = 25_000
	models := make([]processors.SeriesKey, 5)
	for i := range models {
		models[i] = processors.SeriesKey{Model: fmt.Sprintf("bench-%02d", i), Version: "1.0.0", Deployment: schemas.DeploymentPrimary}
	}
	keys := make([]storage.PredictionKey, batch)
	ids := make([]string, batch) // made once: the CPU measured is the store's
	for i := range ids {
		ids[i] = fmt.Sprintf("req-%08x-%013d", i*2654435761, i)
	}
	var at time.Time
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	before := cpu()
	n := 0
	for b.Loop() {
		for i := range keys {
			// 200 predictions a second per model, request ids of 26 bytes (each batch's
			// in other windows)
			at = t0.Add(time.Duration(n) * time.Millisecond)
			w := at.Truncate(time.Minute)
			keys[i] = storage.PredictionKey{Series: models[n%len(models)], RequestID: ids[i], EventTime: at,
				Start: w.UnixMilli(), End: w.Add(time.Minute).UnixMilli(), Prediction: schemas.Value{Kind: schemas.Number, Num: float64(n%100) / 100}}
			n++
		}
		if err := s.WriteLabelData(ctx, keys, nil, t0); err != nil {
			b.Fatal(err)
		}
	}
	// The merges the writes started are part of their cost.
	for {
		var merging uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", s.Database()).Scan(&merging); err != nil {
			b.Fatal(err)
		}
		if merging == 0 {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.ReportMetric(float64(cpu()-before)/float64(n), "cpu-ns/key")
}
