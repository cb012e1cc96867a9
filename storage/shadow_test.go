package storage_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// A shadow window's join with the primary's, in the engine: by request id, within the
// window and the primary version; probabilities agree by class (0.5) and within 0.1,
// other numbers within 10%, classes and booleans when equal; the numeric pairs' sums are kept. The
// rows written come back as the shadow's reference.
func TestJoinShadow(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	shadow := processors.SeriesKey{Model: "m", Version: "2", Deployment: schemas.DeploymentShadow}
	num := func(x float64) schemas.Value { return schemas.Value{Kind: schemas.Number, Num: x} }
	str := func(x string) schemas.Value { return schemas.Value{Kind: schemas.String, Str: x} }
	next := t0.Add(5 * time.Minute)
	key := func(version, slot, id string, start time.Time, v schemas.Value) storage.PredictionKey {
		return storage.PredictionKey{Series: processors.SeriesKey{Model: "m", Version: version, Deployment: slot}, RequestID: id,
			EventTime: start.Add(time.Second), Start: start.UnixMilli(), End: start.Add(5 * time.Minute).UnixMilli(), Prediction: v}
	}
	pairs := []struct {
		id              string
		shadow, primary schemas.Value
		primaryStart    time.Time
		primaryVersion  string
	}{
		{"r1", num(0.75), num(0.7), t0, "1"},    // same class, within 0.1: agree
		{"r2", num(0.3), num(0.7), t0, "1"},     // disagree
		{"r3", num(150), num(140), t0, "1"},     // within 10%: agree
		{"r4", str("cat"), str("cat"), t0, "1"}, // agree
		{"r5", str("dog"), str("cat"), t0, "1"}, // disagree
		{"r6", schemas.Value{Kind: schemas.Bool, Num: 1}, schemas.Value{Kind: schemas.Bool, Num: 1}, t0, "1"}, // agree
		{"r7", num(0.5), schemas.Value{}, t0, ""},                                                             // no primary
		{"r8", num(0.5), num(0.5), next, "1"},                                                                 // the primary's in the next window
		{"r9", num(0.5), num(0.5), t0, "3"},                                                                   // another primary version
	}
	var keys []storage.PredictionKey
	for _, p := range pairs {
		keys = append(keys, key("2", schemas.DeploymentShadow, p.id, t0, p.shadow))
		if p.primaryVersion != "" {
			keys = append(keys, key(p.primaryVersion, schemas.DeploymentPrimary, p.id, p.primaryStart, p.primary))
		}
	}
	if err := s.WriteLabelData(ctx, keys, nil, t0); err != nil {
		t.Fatal(err)
	}
	c, err := s.JoinShadow(ctx, shadow, "1", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := detectors.ShadowCounts{Shadows: 9, Matched: 6, Agreed: 4, Numeric: 3, AbsDiff: 0.05 + 0.4 + 10, SumS: 0.75 + 0.3 + 150, SumP: 0.7 + 0.7 + 140,
		SSS: 0.5625 + 0.09 + 22500, SPP: 0.49 + 0.49 + 19600, SSP: 0.525 + 0.21 + 21000}
	got := c
	for _, f := range []*float64{&got.AbsDiff, &got.SumS, &got.SumP, &got.SSS, &got.SPP, &got.SSP} {
		*f = math.Round(*f*1e6) / 1e6
	}
	for _, f := range []*float64{&want.AbsDiff, &want.SumS, &want.SumP, &want.SSS, &want.SPP, &want.SSP} {
		*f = math.Round(*f*1e6) / 1e6
	}
	if got != want {
		t.Errorf("joined %+v\nwant   %+v", got, want)
	}
	w := detectors.ShadowWindow{Shadow: shadow, PrimaryVersion: "1", Start: t0, End: next, Counts: c}
	if err := s.Write(ctx, &storage.Batch{Shadow: []storage.ShadowRow{{Window: w, InReference: true}, {Window: detectors.ShadowWindow{Shadow: shadow,
		PrimaryVersion: "1", Start: next, End: next.Add(5 * time.Minute)}}}, WrittenAt: t0}); err != nil {
		t.Fatal(err)
	}
	ref, err := s.LoadShadowReference(ctx, shadow)
	if err != nil || len(ref) != 1 || ref[0] != w {
		t.Errorf("reference %+v (%v), want the first window %+v", ref, err, w)
	}
}

// A fraud/CTR-style score (base rate ~1%): the shadow answers 0.40 where the primary
// answers 0.01 on every request. Both are under 0.5; they disagree by value (review: the
// join called all 200 pairs agreed, and such a shadow could never be found disagreeing).
func TestJoinShadowLowScoresDisagree(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	var keys []storage.PredictionKey
	for i := 0; i < 200; i++ {
		id := fmt.Sprint("q", i)
		for _, k := range []struct {
			version, slot string
			x             float64
		}{{"1", schemas.DeploymentPrimary, 0.01}, {"2", schemas.DeploymentShadow, 0.40}} {
			keys = append(keys, storage.PredictionKey{Series: processors.SeriesKey{Model: "lowscore", Version: k.version, Deployment: k.slot}, RequestID: id,
				EventTime: t0.Add(time.Second), Start: t0.UnixMilli(), End: t0.Add(5 * time.Minute).UnixMilli(), Prediction: schemas.Value{Kind: schemas.Number, Num: k.x}})
		}
	}
	if err := s.WriteLabelData(ctx, keys, nil, t0); err != nil {
		t.Fatal(err)
	}
	c, err := s.JoinShadow(ctx, processors.SeriesKey{Model: "lowscore", Version: "2", Deployment: schemas.DeploymentShadow}, "1", t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("matched %d agreed %d mean abs diff %.3f", c.Matched, c.Agreed, c.MeanAbsDiff())
	if c.Agreed > c.Matched/2 {
		t.Errorf("a shadow scoring 40× the primary counted as agreeing on %d of %d requests", c.Agreed, c.Matched)
	}
}
