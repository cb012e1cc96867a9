package storage

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// TestKeyColumnsReusedFillAsNew: a keyColumns taken from the store's pool after writes of
// other (larger or smaller) batches fills exactly as a new one does: no row, array or
// element of an earlier write shows through; released, it holds no batch's strings.
func TestKeyColumnsReusedFillAsNew(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	batch := func() []PredictionKey {
		var keys []PredictionKey
		for range rng.IntN(300) {
			k := PredictionKey{Series: processors.SeriesKey{Model: fmt.Sprint("m", rng.IntN(3)), Version: "1", Deployment: "p"},
				RequestID: fmt.Sprint("r", rng.IntN(1e6)), EventTime: at, Start: int64(rng.IntN(4)) * 60_000}
			k.End = k.Start + 60_000
			if rng.IntN(2) == 0 {
				k.Prediction = schemas.Value{Kind: schemas.String, Str: fmt.Sprint("c", rng.IntN(5))}
			} else {
				k.Prediction = schemas.Value{Kind: schemas.Number, Num: rng.Float64()}
				k.Scores = map[string]float64{"a": rng.Float64()}
			}
			keys = append(keys, k)
		}
		return keys
	}
	reused := new(keyColumns)
	for i := range 500 {
		keys := batch()
		reused.fill(keys, at)
		fresh := new(keyColumns)
		fresh.fill(keys, at)
		a, b := *reused, *fresh
		a.strs, a.times, a.bytes, a.nums1, b.strs, b.times, b.bytes, b.nums1 = nil, nil, nil, nil, nil, nil, nil, nil
		norm := func(c *keyColumns) {
			// empty and nil are alike; compare contents
			for _, p := range []any{&c.model, &c.version, &c.deployment, &c.start, &c.end, &c.writtenAt, &c.requestIDs, &c.eventTimes, &c.kinds, &c.nums, &c.classes, &c.scores} {
				v := reflect.ValueOf(p).Elem()
				if v.Len() == 0 {
					v.Set(reflect.Zero(v.Type()))
				}
				if v.Type().Elem().Kind() == reflect.Slice {
					for j := range v.Len() {
						if v.Index(j).Len() == 0 {
							v.Index(j).Set(reflect.Zero(v.Index(j).Type()))
						}
					}
				}
			}
		}
		norm(&a)
		norm(&b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("batch %d (%d keys): reused columns differ from fresh ones", i, len(keys))
		}
		// Released between writes (writeKeys), as the pool holds it: no request id or
		// score map of the batch is kept alive.
		reused.release()
		for _, row := range reused.requestIDs[:cap(reused.requestIDs)] {
			for _, id := range row[:cap(row)] {
				if id != "" {
					t.Fatalf("batch %d: request id %q still held after release", i, id)
				}
			}
		}
		for _, row := range reused.scores[:cap(reused.scores)] {
			for _, m := range row[:cap(row)] {
				if m != nil {
					t.Fatalf("batch %d: scores still held after release", i)
				}
			}
		}
	}
}
