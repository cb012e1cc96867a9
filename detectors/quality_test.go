package detectors

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// change describes a stream's state: the stationary stream, or one after a change.
type change struct {
	missing  float64 // share of amount values that are null
	flood    float64 // share of country values replaced by a category the reference never saw
	sentinel float64 // share of age values sent as -1 (a producer's "unknown"): out of range
	nulls    float64 // share of null predictions
	latencyX float64 // latency multiplier
	errorsX  float64 // error and timeout rate multiplier
	sizeX    float64 // input size multiplier
	volumeX  float64 // event rate multiplier
}

var stationary = change{missing: 0.01, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1, volumeX: 1}

var simCountries = []string{"DE", "FR", "NL", "US", "GB"}

// simMerchants are the merchant categories (read only).
var simMerchants = func() []string {
	m := make([]string, 3000)
	for i := range m {
		m[i] = fmt.Sprintf("m%04d", i)
	}
	return m
}()

// simStream generates one model's prediction events: two numeric features (amount with
// explicit nulls, age sometimes absent), three categorical ones (country with a rare
// category, merchant with 3,000 Zipf-distributed categories — more than a reference keeps
// — and a boolean), a score, log-normal latency and input size, errors and timeouts.
type simStream struct {
	rng      *rand.Rand
	merchant *rand.Zipf
	// sentinel draws which ages are sent as -1, apart from rng: the other signals see the
	// same stream with or without them.
	sentinel *rand.Rand
	e        schemas.PredictionEvent
}

func newSimStream(seed uint64) *simStream {
	rng := rand.New(rand.NewPCG(seed, 77))
	return &simStream{rng: rng, merchant: rand.NewZipf(rng, 1.2, 1, uint64(len(simMerchants)-1)), sentinel: rand.New(rand.NewPCG(seed, 78))}
}

// next fills the stream's one event (reused: the processor and samples keep no pointer
// into it).
func (s *simStream) next(at time.Time, c change) *schemas.PredictionEvent {
	rng := s.rng
	e := &s.e
	f := e.Features[:0]
	amount := 100 + 15*rng.NormFloat64()
	v := schemas.Value{Kind: schemas.Number, Num: math.Round(amount*100) / 100}
	if rng.Float64() < c.missing {
		v = schemas.Value{}
	}
	f = append(f, schemas.Feature{Name: "amount", Value: v})
	if rng.Float64() >= 0.05 { // a producer that drops the key when age is unknown
		age := float64(18 + rng.IntN(60))
		if c.sentinel > 0 && s.sentinel.Float64() < c.sentinel {
			age = -1
		}
		f = append(f, schemas.Feature{Name: "age", Value: schemas.Value{Kind: schemas.Number, Num: age}})
	}
	country := simCountries[min(int(rng.ExpFloat64()*1.5), len(simCountries)-1)]
	if rng.Float64() < 0.002 {
		country = "LU"
	}
	if rng.Float64() < c.flood {
		country = "XX"
	}
	f = append(f, schemas.Feature{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: country}},
		schemas.Feature{Name: "merchant", Value: schemas.Value{Kind: schemas.String, Str: simMerchants[s.merchant.Uint64()]}},
		schemas.Feature{Name: "is_returning", Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(2))}})
	status := schemas.StatusOK
	switch u := rng.Float64(); {
	case u < 0.005*c.errorsX:
		status = schemas.StatusError
	case u < 0.006*c.errorsX:
		status = schemas.StatusTimeout
	}
	pred := schemas.Value{Kind: schemas.Number, Num: 1 / (1 + math.Exp(-(amount-100)/15+rng.NormFloat64()*0.5))}
	if rng.Float64() < c.nulls {
		pred = schemas.Value{}
	}
	*e = schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: schemas.DeploymentPrimary, Timestamp: at,
		Features: f, Prediction: pred, Status: status, LatencyMs: 30 * math.Exp(0.6*rng.NormFloat64()) * c.latencyX,
		InputSize: math.Round(200*math.Exp(0.5*rng.NormFloat64())) * c.sizeX, HasInputSize: true}
	return e
}

// simResult is what one simulated stream raised.
type simResult struct {
	spans      int         // judged spans (windows, merged while below min_events)
	spanStarts []time.Time // when each span starts
	breaches   []breach    // breached conditions of the signal kinds
	volume     int         // windows judged for volume
	minP       map[string]float64
}

type breach struct {
	key   string // kind/feature/metric
	start time.Time
	span  int // index of the judged span
}

// signalKinds are the kinds judged here.
var signalKinds = map[string]bool{schemas.KindInputQuality: true, schemas.KindOutputQuality: true, schemas.KindLatency: true,
	schemas.KindErrors: true, schemas.KindVolume: true}

func condKey(c Condition) string { return c.Kind + "/" + c.Feature + "/" + c.Metric }

// runStream feeds a stream through a processor as the pipeline does: the first three
// windows build the reference (a Sample per window, merged, as pipeline/reference.go's
// refBuilder does), windows opened after it are counted against its layout, and every
// later window is judged with the defaults (by Evaluate, or by the signals' part of it alone) — merged with the next ones while it holds
// fewer than min_events events (up to 12), as the pipeline does at low volume. Before
// `at` the stream is stationary, from `at` on it follows c.
func runStream(t *testing.T, seed uint64, rate float64, size, length, at time.Duration, c change, evaluate bool) simResult {
	t.Helper()
	const refWindows = 3
	th := DefaultThresholds
	thresholds := func(string) Thresholds { return th }
	start := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	proc := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: size} }, processors.Limits{})
	s := newSimStream(seed)
	samples := map[int64]*Sample{}
	building := NewSample()
	closedForRef := 0
	var ref *Profile
	var pending *processors.WindowAgg
	res := simResult{minP: map[string]float64{}}
	pendingWindows := 0
	judge := func(w *processors.WindowAgg) {
		exp := VolumeExpectation{Size: size, Basis: "its reference"}
		exp.PerWindow, exp.Windows, _ = ref.EventsPerWindow(w.Series.Deployment)
		if vc, ok := ModelVolumeCondition(w, exp, th); ok {
			res.volume++
			res.note(vc, res.spans)
		}
		if pending == nil {
			pending = w.Clone()
		} else {
			pending.Merge(w)
			pending.End = w.End
		}
		pendingWindows++
		if pending.Events < th.MinEvents && pendingWindows < 12 {
			return
		}
		res.spanStarts = append(res.spanStarts, time.UnixMilli(pending.Start).UTC())
		// The signals alone (serviceConditions, as Evaluate calls it): the feature-drift
		// tests Evaluate also runs cost far more and are not what is measured here.
		conds := serviceConditions(pending, ref, thresholds)
		if evaluate {
			conds = Evaluate(pending, ref, thresholds).Conditions
		}
		for _, cond := range conds {
			if signalKinds[cond.Kind] {
				res.note(cond, res.spans)
			}
		}
		res.spans++
		pending, pendingWindows = nil, 0
	}
	closeReady := func(closed []processors.Closed) {
		for _, cl := range closed {
			w := cl.Merged
			if ref == nil {
				if smp, ok := samples[w.Start]; ok {
					building.Merge(smp)
					delete(samples, w.Start)
				}
				if closedForRef++; closedForRef == refWindows {
					ref = building.Build("m", "1", SourceFirstWindows, refWindows, start)
					proc.SetLayout("m", "1", ref.Layout())
				}
				continue
			}
			judge(w)
		}
	}
	t1 := start
	var cur int64 = math.MinInt64
	for i := int64(0); ; i++ {
		cc := stationary
		if t1.Sub(start) >= at {
			cc = c
		}
		t1 = t1.Add(time.Duration(s.rng.ExpFloat64() / (rate * cc.volumeX) * float64(time.Second)))
		if t1.Sub(start) >= length {
			break
		}
		e := s.next(t1, cc)
		ws, _ := processors.WindowOf(t1, size)
		if ws != cur {
			closeReady(proc.Ready())
			cur = ws
		}
		if ref == nil {
			smp, ok := samples[ws]
			if !ok {
				smp = NewSample()
				samples[ws] = smp
			}
			smp.AddEvent(e)
		}
		proc.Add(e, processors.Source{Offset: i}, start)
	}
	closeReady(proc.CloseAll())
	return res
}

func (r *simResult) note(c Condition, span int) {
	k := condKey(c)
	if p, err := parseP(c.Details["p_value"]); err == nil {
		if cur, ok := r.minP[k]; !ok || p < cur {
			r.minP[k] = p
		}
	}
	if c.Breached {
		r.breaches = append(r.breaches, breach{key: k, start: c.WindowStart, span: span})
	}
}

func parseP(s string) (float64, error) {
	var p float64
	_, err := fmt.Sscan(s, &p)
	return p, err
}

type simConfig struct {
	rate float64
	size time.Duration
}

func (c simConfig) String() string { return fmt.Sprintf("%gps/%v", c.rate, c.size) }

var simConfigs = []simConfig{{1, time.Minute}, {1, 5 * time.Minute}, {10, time.Minute}, {10, 5 * time.Minute}, {100, time.Minute}, {100, 5 * time.Minute}}

// simHours is how much event time each stationary stream covers. One and ten events a
// second run the whole 24 hours; at 100 events a second a window of the stream is like
// any other window (the stream is stationary and every window is judged against the
// same reference), so three hours judge 180 one-minute and 36 five-minute windows of
// 6,000 and 30,000 events, and keep the test within seconds. With -short, ten events a
// second run 6 hours and 100 one hour.
func simHours(rate float64) time.Duration {
	switch {
	case rate >= 100 && testing.Short():
		return time.Hour
	case rate >= 100:
		return 3 * time.Hour
	case rate >= 10 && testing.Short():
		return 6 * time.Hour
	}
	return 24 * time.Hour
}

// Stationary streams raise nothing with the defaults, at 1, 10 and 100 events a second,
// with 1- and 5-minute windows.
func TestSignalsSilentOnStationaryStreams(t *testing.T) {
	for i, cfg := range simConfigs {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			length := simHours(cfg.rate)
			res := runStream(t, uint64(100+i), cfg.rate, cfg.size, length, length, stationary, false)
			for _, b := range res.breaches {
				t.Errorf("false alarm %s in span %d at %s", b.key, b.span, b.start.Format("15:04"))
			}
			// Every window after the three reference ones (a last one may hold no event).
			if want := int(length/cfg.size) - 3; res.volume < want-1 || res.volume > want {
				t.Errorf("%d windows judged for volume, want %d", res.volume, want)
			}
			keys := make([]string, 0, len(res.minP))
			for k := range res.minP {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var sb strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&sb, " %s=%.2g", k, res.minP[k])
			}
			t.Logf("%v: %d spans and %d windows (volume) judged over %v, %d breached; smallest p-values:%s", cfg, res.spans, res.volume, length, len(res.breaches), sb.String())
			if len(keys) < 9 {
				t.Errorf("judged only %v", keys)
			}
		})
	}
}

// Each change is found within two judged windows (spans, at low volume) of its start;
// irrelevant changes at high volume stay silent.
func TestSignalsFindChangesWithinTwoWindows(t *testing.T) {
	all := change{missing: 0.45, flood: 0.3, sentinel: 0.3, nulls: 0.2, latencyX: 5, errorsX: 30, sizeX: 1.5, volumeX: 1}
	want := []string{"input_quality/amount/missing_rate", "input_quality/country/unseen_share", "input_quality/age/out_of_range_share", "input_quality//input_size_mean",
		"output_quality//null_prediction_rate", "latency//latency_p99_vs_reference", "latency//latency_p50_vs_reference",
		"errors//error_rate_vs_reference"}
	for i, cfg := range simConfigs {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			// Three reference windows, then stationary ones (two spans' worth at low volume),
			// then the change for four windows or spans.
			per := max(1, int(math.Ceil(float64(DefaultThresholds.MinEvents)/(cfg.rate*cfg.size.Seconds()*0.9))))
			at := time.Duration(3+2*per) * cfg.size
			length := at + time.Duration(4*per)*cfg.size
			res := runStream(t, uint64(200+i), cfg.rate, cfg.size, length, at, all, true)
			changeAt := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC).Add(at)
			changeSpan := sort.Search(len(res.spanStarts), func(i int) bool { return !res.spanStarts[i].Before(changeAt) })
			first := map[string]int{}
			for _, b := range res.breaches {
				if b.span < changeSpan {
					t.Errorf("%s breached before the change, span %d", b.key, b.span)
					continue
				}
				if _, ok := first[b.key]; !ok {
					first[b.key] = b.span
				}
			}
			var sb strings.Builder
			for _, k := range want {
				s, ok := first[k]
				if !ok {
					t.Errorf("%s never breached", k)
					continue
				}
				if s-changeSpan > 1 {
					t.Errorf("%s breached %d spans after the change", k, s-changeSpan)
				}
				fmt.Fprintf(&sb, " %s in span %d", k, s-changeSpan+1)
			}
			t.Logf("%v (spans of %d windows): found%s", cfg, per, sb.String())
		})
	}
}

// Irrelevant changes at high volume are significant but do not matter, and stay silent:
// missing 1% → 2%, unseen categories 1%, nulls 0.5% → 1%, latency ×1.2, errors ×1.5,
// input size +10%.
func TestSignalsSilentOnTinyChangesAtHighVolume(t *testing.T) {
	tiny := change{missing: 0.02, flood: 0.01, nulls: 0.01, latencyX: 1.2, errorsX: 1.5, sizeX: 1.1, volumeX: 1}
	for i, size := range []time.Duration{time.Minute, 5 * time.Minute} {
		res := runStream(t, uint64(300+i), 100, size, 10*size, 4*size, tiny, true)
		for _, b := range res.breaches {
			t.Errorf("%v windows: %s breached in span %d", size, b.key, b.span)
		}
		if res.spans < 6 {
			t.Errorf("%v windows: %d spans judged", size, res.spans)
		}
	}
}

// refWith builds a reference profile from n stationary events of the simulated stream.
func refWith(n int, seed uint64) *Profile {
	s := newSimStream(seed)
	smp := NewSample()
	for i := 0; i < n; i++ {
		smp.AddEvent(s.next(t0.Add(time.Duration(i)*time.Millisecond), stationary))
	}
	return smp.Build("m", "1", SourceFirstWindows, 3, t0)
}

// windowWith aggregates n events of the stream under c into one window counted against
// ref's layout.
func windowWith(n int, seed uint64, ref *Profile, c change) *processors.WindowAgg {
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Hour} }, processors.Limits{})
	if ref != nil {
		p.SetLayout("m", "1", ref.Layout())
	}
	s := newSimStream(seed)
	for i := 0; i < n; i++ {
		p.Add(s.next(t0.Add(time.Duration(i)*time.Millisecond), c), processors.Source{Offset: int64(i)}, t0)
	}
	return p.CloseAll()[0].Merged
}

func findCondition(conds []Condition, key string) (Condition, bool) {
	for _, c := range conds {
		if condKey(c) == key {
			return c, true
		}
	}
	return Condition{}, false
}

// The cases and their neighbours, one rule at a time.
func TestSignalRules(t *testing.T) {
	th := func(string) Thresholds { return DefaultThresholds }
	for _, c := range []struct {
		name       string
		refN, winN int
		change     change
		key        string
		breached   bool
		severity   string
		summary    string
	}{
		{"missing 1% to 45% fires", 300, 120, change{missing: 0.45, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1},
			"input_quality/amount/missing_rate", true, schemas.SeverityCritical, "feature amount of m 1 is missing in"},
		{"missing 1% to 2% at 10k events is significant but does not matter", 30000, 10000, change{missing: 0.02, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1},
			"input_quality/amount/missing_rate", false, "", ""},
		{"an absent key counts as missing", 300, 300, stationary, "input_quality/age/missing_rate", false, "", ""},
		{"a flood of a new category fires", 300, 200, change{missing: 0.01, flood: 0.3, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1},
			"input_quality/country/unseen_share", true, schemas.SeverityCritical, `in categories its reference never saw (reference 0.0%, threshold 5.0%) over 10:00–11:00 UTC: "XX"`},
		{"3,000 merchants: unseen ones are the usual long tail", 3000, 3000, stationary, "input_quality/merchant/unseen_share", false, "", ""},
		{"8% of ages sent as -1 fire", 3000, 300, change{missing: 0.01, sentinel: 0.08, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1},
			"input_quality/age/out_of_range_share", true, schemas.SeverityWarning, "values outside its reference's range [18, 77] (lowest -1, highest 77;"},
		{"2% of ages sent as -1 are in the drift scores, not a page", 3000, 3000, change{missing: 0.01, sentinel: 0.02, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1},
			"input_quality/age/out_of_range_share", false, "", ""},
		{"a normal amount's tails beyond a small reference's range are no page", 300, 30000, stationary, "input_quality/amount/out_of_range_share", false, "", ""},
		{"null predictions fire", 300, 120, change{missing: 0.01, nulls: 0.2, latencyX: 1, errorsX: 1, sizeX: 1},
			"output_quality//null_prediction_rate", true, schemas.SeverityWarning, "m 1 returned no prediction for"},
		{"latency x5 fires at p99", 300, 120, change{missing: 0.01, nulls: 0.005, latencyX: 5, errorsX: 1, sizeX: 1},
			"latency//latency_p99_vs_reference", true, schemas.SeverityCritical, "p99 latency of m 1 is"},
		{"latency x5 fires at p50", 300, 120, change{missing: 0.01, nulls: 0.005, latencyX: 5, errorsX: 1, sizeX: 1},
			"latency//latency_p50_vs_reference", true, schemas.SeverityCritical, "p50 latency of m 1 is"},
		{"latency x1.2 at volume does not matter", 30000, 30000, change{missing: 0.01, nulls: 0.005, latencyX: 1.2, errorsX: 1, sizeX: 1},
			"latency//latency_p99_vs_reference", false, "", ""},
		{"errors x30 fire", 300, 120, change{missing: 0.01, nulls: 0.005, latencyX: 1, errorsX: 30, sizeX: 1},
			"errors//error_rate_vs_reference", true, schemas.SeverityCritical, "m 1 failed"},
		{"input size +50% fires", 300, 120, change{missing: 0.01, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1.5},
			"input_quality//input_size_mean", true, schemas.SeverityWarning, "mean input size of m 1 is"},
		{"input size -50% fires too", 300, 120, change{missing: 0.01, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 0.5},
			"input_quality//input_size_mean", true, schemas.SeverityWarning, "-51% against its reference"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := refWith(c.refN, 1)
			w := windowWith(c.winN, 2, ref, c.change)
			conds := Evaluate(w, ref, th).Conditions
			got, ok := findCondition(conds, c.key)
			if !ok {
				t.Fatalf("no %s condition", c.key)
			}
			if got.Breached != c.breached || (c.breached && got.Severity != c.severity) || !strings.Contains(got.FiringSummary, c.summary) {
				t.Fatalf("%s: breached %v severity %s, want %v %s\n%s\n%v", c.key, got.Breached, got.Severity, c.breached, c.severity, got.FiringSummary, got.Details)
			}
			if got.Details["p_value"] == "" || got.Details["alpha"] == "" || got.ResolvedSummary == "" || got.WindowEnd.IsZero() {
				t.Errorf("condition lacks details: %+v", got)
			}
			t.Logf("%s value %.4g threshold %.4g p %s: %s", c.key, got.Value, got.Threshold, got.Details["p_value"], got.FiringSummary)
		})
	}
}

// A feature that vanished from the events is 100% missing; one the window may have
// dropped at its feature cap is not judged.
func TestVanishedFeature(t *testing.T) {
	ref := refWith(300, 1)
	w := windowWith(200, 2, ref, stationary)
	delete(w.Features, "age")
	th := func(string) Thresholds { return DefaultThresholds }
	c, ok := findCondition(Evaluate(w, ref, th).Conditions, "input_quality/age/missing_rate")
	if !ok || !c.Breached || c.Value != 1 || c.Severity != schemas.SeverityCritical {
		t.Fatalf("vanished feature: %+v", c)
	}
	w.DroppedFeatures = 1
	if _, ok := findCondition(Evaluate(w, ref, th).Conditions, "input_quality/age/missing_rate"); ok {
		t.Error("a feature perhaps dropped at the cap was judged")
	}
}

// The absolute ceilings fire only when the window is above them beyond chance.
func TestAbsoluteCeilingsNeedEvidence(t *testing.T) {
	w := windowWith(120, 3, nil, stationary)
	th := DefaultThresholds
	th.LatencyP99Ms = 100
	for _, c := range []struct {
		errors   uint64
		breached bool
	}{{6, false}, {12, false}, {20, true}} {
		w.Errors, w.Timeouts = c.errors, 0
		got, _ := findCondition(Evaluate(w, nil, func(string) Thresholds { return th }).Conditions, "errors//error_rate")
		if got.Breached != c.breached {
			t.Errorf("%d errors of 120 against a 5%% ceiling: breached %v (p %s)", c.errors, got.Breached, got.Details["p_value"])
		}
	}
	slow := windowWith(120, 3, nil, change{missing: 0.01, nulls: 0.005, latencyX: 10, errorsX: 1, sizeX: 1})
	for _, c := range []struct {
		w        *processors.WindowAgg
		breached bool
	}{{w, false}, {slow, true}} {
		got, _ := findCondition(Evaluate(c.w, nil, func(string) Thresholds { return th }).Conditions, "latency//latency_p99_ms")
		if got.Breached != c.breached {
			t.Errorf("p99 %.0f ms against 100 ms: breached %v (p %s)", got.Value, got.Breached, got.Details["p_value"])
		}
	}
}

// Profiles stored before the baselines existed still load; their windows are judged by
// the absolute thresholds only. New profiles keep their baselines through storage.
func TestProfilesWithoutBaselines(t *testing.T) {
	old := []byte(`{"id":"first_windows-abc","model":"m","model_version":"1","source":"first_windows","windows":3,"events":300,
		"features":{"amount":{"kind":"numeric","count":297,"missing":3,"mean":100,"std":15,"edges":[90,100,110],"bins":[70,80,80,67]},
		"country":{"kind":"categorical","count":300,"missing":0,"categories":{"DE":150,"FR":150}}}}`)
	p, err := UnmarshalProfile(old)
	if err != nil {
		t.Fatal(err)
	}
	w := windowWith(200, 4, nil, change{missing: 0.5, flood: 0.5, nulls: 0.5, latencyX: 10, errorsX: 30, sizeX: 2})
	th := DefaultThresholds
	th.LatencyP99Ms = 100
	kinds := map[string]int{}
	for _, c := range Evaluate(w, p, func(string) Thresholds { return th }).Conditions {
		if c.Kind != schemas.KindDataDrift && c.Kind != schemas.KindPredictionDrift {
			kinds[condKey(c)]++
			if !c.Breached {
				t.Errorf("%s not breached", condKey(c))
			}
		}
	}
	if len(kinds) != 2 || kinds["latency//latency_p99_ms"] != 1 || kinds["errors//error_rate"] != 1 {
		t.Errorf("an old profile judged %v, want only the absolute latency and error ceilings", kinds)
	}

	ref := refWith(3000, 5)
	b, err := MarshalProfile(ref)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	sp := back.Service
	if sp == nil || sp.Events != 3000 || sp.LatencyCount != 3000 || sp.LatencyP99 <= sp.LatencyP50 || sp.InputSize == nil || sp.InputSize.N != 3000 ||
		sp.Errors == 0 || sp.NullPredictions == 0 {
		t.Fatalf("service baseline after storage: %+v", sp)
	}
	if f := back.Features["age"]; f.Present == 0 || f.Present >= 3000 || back.Features["merchant"].Novel == 0 || back.Features["country"].Present != 3000 {
		t.Errorf("feature baselines after storage: age %+v merchant novel %d", f, back.Features["merchant"].Novel)
	}
	if _, _, ok := back.EventsPerWindow(schemas.DeploymentPrimary); ok {
		t.Error("a profile built from one sample claims windows")
	}
}

// A reference built from windows knows its events per window: the median, robust to a
// first window that began mid-window.
func TestEventsPerWindow(t *testing.T) {
	s := newSimStream(9)
	done := NewSample()
	for _, n := range []int{130, 600, 590} {
		w := NewSample()
		for i := 0; i < n; i++ {
			w.AddEvent(s.next(t0, stationary))
		}
		done.Merge(w)
	}
	p := done.Build("m", "1", SourceFirstWindows, 3, t0)
	if per, windows, ok := p.EventsPerWindow(schemas.DeploymentPrimary); !ok || per != 590 || windows != 3 {
		t.Errorf("events per window %v over %d (%v)", per, windows, ok)
	}
	if exp, ok := p.VolumeExpectation(schemas.DeploymentPrimary, time.Minute); !ok || exp.PerWindow != 590 || exp.Dispersion != 0 {
		t.Errorf("three windows: %+v (%v), want no dispersion", exp, ok)
	}
	// More than 20 windows (short ones) say how much the traffic varies: the spread of
	// their counts over their mean, the first (maybe partial) window left out; a spread
	// within twice its sampling error of Poisson's is Poisson's.
	build := func(counts []int) VolumeExpectation {
		t.Helper()
		many := NewSample()
		for _, n := range counts {
			w := NewSample()
			for i := 0; i < n; i++ {
				w.AddEvent(s.next(t0, stationary))
			}
			many.Merge(w)
		}
		exp, ok := many.Build("m", "1", SourceFirstWindows, len(counts), t0).VolumeExpectation(schemas.DeploymentPrimary, 10*time.Second)
		if !ok || exp.Windows != len(counts) || exp.Basis != "its reference" {
			t.Fatalf("%v: %+v (%v)", counts, exp, ok)
		}
		return exp
	}
	bursty, poisson := []int{10}, []int{10}
	for i := 0; i < 20; i++ {
		bursty = append(bursty, 60+80*(i%2)) // mean 100, sample variance 1,684.2
		poisson = append(poisson, 95+10*(i%2))
	}
	if exp := build(bursty); math.Abs(exp.Dispersion-1600.0*20/19/100) > 1e-9 {
		t.Errorf("bursty reference: dispersion %v, want 16.84", exp.Dispersion)
	}
	if exp := build(poisson); exp.Dispersion != 0 {
		t.Errorf("Poisson-like reference: dispersion %v, want none", exp.Dispersion)
	}
	if exp := build(bursty[:7]); exp.Dispersion != 0 {
		t.Errorf("seven windows: dispersion %v, want none (too few)", exp.Dispersion)
	}
	rolling := ProfileFromWindow(windowWith(500, 10, nil, stationary), SourcePreviousWindow, t0)
	if per, windows, ok := rolling.EventsPerWindow(schemas.DeploymentPrimary); !ok || per != 500 || windows != 1 || rolling.Service.LatencyCount != 500 {
		t.Errorf("rolling reference: %v over %d (%v), %+v", per, windows, ok, rolling.Service)
	}
}

// Fingerprints depend on what is judged, never on the window's values.
func TestSignalFingerprints(t *testing.T) {
	ref := refWith(600, 1)
	th := func(string) Thresholds { return DefaultThresholds }
	a := Evaluate(windowWith(300, 2, ref, stationary), ref, th).Conditions
	b := Evaluate(windowWith(300, 3, ref, change{missing: 0.45, flood: 0.3, nulls: 0.15, latencyX: 5, errorsX: 30, sizeX: 1.5}), ref, th).Conditions
	fps := map[string]string{}
	for _, c := range a {
		if signalKinds[c.Kind] {
			if prev, ok := fps[c.Fingerprint()]; ok {
				t.Errorf("%s and %s share a fingerprint", prev, condKey(c))
			}
			fps[c.Fingerprint()] = condKey(c)
		}
	}
	matched := 0
	for _, c := range b {
		if signalKinds[c.Kind] {
			if fps[c.Fingerprint()] != condKey(c) {
				t.Errorf("%s changed its fingerprint between windows", condKey(c))
			}
			matched++
		}
	}
	if matched != len(fps) || matched < 12 {
		t.Errorf("%d signal conditions, %d in the other window", len(fps), matched)
	}
}

// The latency test is exact at any reference size: under no change its p-values are
// (conservatively) uniform, also with a reference of 180 latencies and the sketch's
// buckets.
func TestLatencyExceedanceTestIsCalibrated(t *testing.T) {
	const runs = 3000
	rng := rand.New(rand.NewPCG(11, 12))
	below := map[float64]int{}
	for i := 0; i < runs; i++ {
		ref, win := processors.NewSketch(), processors.NewSketch()
		for j := 0; j < 180; j++ {
			ref.Add(30 * math.Exp(0.6*rng.NormFloat64()))
		}
		for j := 0; j < 120; j++ {
			win.Add(30 * math.Exp(0.6*rng.NormFloat64()))
		}
		p := &Profile{Service: &ServiceProfile{Events: 180, LatencyCount: 180, LatencyP50: ref.Quantile(0.5), LatencyP99: ref.Quantile(0.99)}}
		w := &processors.WindowAgg{Events: 120, Latency: win, Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli()}
		st := DefaultSignalThresholds
		st.LatencyMinRatio, st.LatencyMinIncreaseMs = 1, 0 // the test alone
		for _, c := range latencyConditions(w, p, st) {
			pv, _ := parseP(c.Details["p_value"])
			for _, a := range []float64{0.01, 0.05, 0.2} {
				if pv < a {
					below[a]++
				}
			}
		}
	}
	// Two tests per run; Binomial(6000, a) plus four standard deviations.
	for _, a := range []float64{0.01, 0.05, 0.2} {
		n := float64(2 * runs)
		if limit := n*a + 4*math.Sqrt(n*a*(1-a)); float64(below[a]) > limit {
			t.Errorf("p < %v in %d of %.0f tests, more than %.0f", a, below[a], n, limit)
		}
		t.Logf("p < %v in %d of %.0f tests (nominal %.0f)", a, below[a], n, n*a)
	}
}

// rateBreach is the exact probability that the rate rule breaches when the reference's
// events fail (or miss a value, …) with probability pRef and the window's with p: under
// no change (p = pRef) its false-alarm probability, after a change its power. For each
// reference count the breaching window counts are those from the smallest one up (the
// effect and the p-value are monotone in it).
func rateBreach(nRef, n int, pRef, p, minIncrease, minRatio, alpha float64) float64 {
	ref := binomial(nRef, pRef)
	sd := math.Sqrt(float64(nRef) * pRef * (1 - pRef))
	lo, hi := max(0, int(float64(nRef)*pRef-12*sd-12)), min(nRef, int(float64(nRef)*pRef+12*sd+12))
	var total float64
	for xr := lo; xr <= hi; xr++ {
		breaches := func(x int) bool {
			r := newRateTest(uint64(x), uint64(n), uint64(xr), uint64(nRef), minIncrease, minRatio)
			return r.effect && r.p < alpha
		}
		first := sort.Search(n+1, breaches)
		if first > n {
			continue
		}
		total += math.Exp(ref.logPmf(xr)) * BinomialSF(first, n, p)
	}
	return total
}

// The rate rules' false-alarm probability per window, computed exactly at the sizes of
// the stationary streams (reference = 3 windows; at 1 event/s with 1-minute windows two
// windows are merged), for base rates from 0.5% to 20%: at most 1e-5 everywhere, and
// orders of magnitude less at volume, where the effect floor is what holds.
func TestRateRulesFalseAlarmProbability(t *testing.T) {
	sizes := []struct {
		name    string
		nRef, n int
	}{{"1/s 1m (2 merged)", 180, 120}, {"1/s 5m", 900, 300}, {"10/s 1m", 1800, 600}, {"10/s 5m", 9000, 3000}, {"100/s 1m", 18000, 6000}, {"100/s 5m", 90000, 30000}}
	st := DefaultSignalThresholds
	for _, rule := range []struct {
		name       string
		inc, ratio float64
		rates      []float64
	}{{"quality", st.QualityMinIncrease, st.QualityMinRatio, []float64{0.005, 0.01, 0.05, 0.2}}, {"errors", st.ErrorMinIncrease, st.ErrorMinRatio, []float64{0.005, 0.01, 0.05}}} {
		for _, sz := range sizes {
			var sb strings.Builder
			for _, p := range rule.rates {
				fa := rateBreach(sz.nRef, sz.n, p, p, rule.inc, rule.ratio, st.PValue)
				if fa > st.PValue {
					t.Errorf("%s rule, %s, rate %v: false-alarm probability %.3g per window", rule.name, sz.name, p, fa)
				}
				fmt.Fprintf(&sb, " p=%v: %.2g", p, fa)
			}
			t.Logf("%s rule, %s:%s", rule.name, sz.name, sb.String())
		}
	}
	// The changes of TestSignalsFindChangesWithinTwoWindows, at the level a single test
	// gets in its family (input quality shares it over nine tests there).
	for _, c := range []struct {
		name            string
		pRef, p         float64
		inc, ratio, lvl float64
	}{
		{"missing 1% → 45%", 0.01, 0.45, st.QualityMinIncrease, st.QualityMinRatio, st.PValue / 9},
		{"new category 0 → 30%", 0.0001, 0.3, st.QualityMinIncrease, st.QualityMinRatio, st.PValue / 9},
		{"null predictions 0.5% → 20%", 0.005, 0.2, st.QualityMinIncrease, st.QualityMinRatio, st.PValue},
		{"errors 0.6% → 18% (×30)", 0.006, 0.18, st.ErrorMinIncrease, st.ErrorMinRatio, st.PValue},
	} {
		var sb strings.Builder
		for _, sz := range sizes {
			power := rateBreach(sz.nRef, sz.n, c.pRef, c.p, c.inc, c.ratio, c.lvl)
			within2 := 1 - (1-power)*(1-power)
			if within2 < 0.99 {
				t.Errorf("%s at %s: found in a window with probability %.4f, within two %.4f", c.name, sz.name, power, within2)
			}
			fmt.Fprintf(&sb, " %s: %.4g;", sz.name, power)
		}
		t.Logf("power per window, %s:%s", c.name, sb.String())
	}
}

// Volume: a drop and a silence fire (the silence critical), stationary counts do not,
// a jump fires only when enabled.
func TestModelVolumeCondition(t *testing.T) {
	th := DefaultThresholds
	exp := VolumeExpectation{PerWindow: 60, Size: time.Minute, Windows: 3}
	w := func(events uint64, minutes int) *processors.WindowAgg {
		return &processors.WindowAgg{Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}, Events: events,
			Start: t0.UnixMilli(), End: t0.Add(time.Duration(minutes) * time.Minute).UnixMilli(), Latency: processors.NewSketch()}
	}
	for _, c := range []struct {
		name          string
		w             *processors.WindowAgg
		jump          float64
		breached      bool
		severity, say string
	}{
		{"usual", w(55, 1), 0, false, "", ""},
		{"low but plausible", w(40, 1), 0, false, "", ""},
		{"drop to 10%", w(6, 1), 0, true, schemas.SeverityWarning, "m 1 received 6 events, 10% of the 60 expected (its reference), over 10:00–10:01 UTC"},
		{"silence", w(0, 1), 0, true, schemas.SeverityCritical, "m 1 stopped sending: 0 events where 60 were expected (its reference) over 10:00–10:01 UTC"},
		{"a merged span of three windows", w(170, 3), 0, false, "", ""},
		{"jump, off by default", w(400, 1), 0, false, "", ""},
		{"jump when enabled", w(400, 1), 3, true, schemas.SeverityWarning, "6.7× the 60 expected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			th.Signals.VolumeJump = c.jump
			got, ok := ModelVolumeCondition(c.w, exp, th)
			if !ok || got.Breached != c.breached || got.Kind != schemas.KindVolume || got.Metric != "events_ratio" {
				t.Fatalf("%+v", got)
			}
			if c.breached && (got.Severity != c.severity || !strings.Contains(got.FiringSummary, c.say)) {
				t.Errorf("severity %s summary %q", got.Severity, got.FiringSummary)
			}
		})
	}
	if _, ok := ModelVolumeCondition(w(0, 1), VolumeExpectation{Size: time.Minute, Windows: 3}, th); ok {
		t.Error("judged without an expectation")
	}
	th.Signals.VolumeJump = 0
	// Traffic that varies more than Poisson (the learned windows' variance 16 times their
	// mean, as 60 events a minute with a gamma rate of CV 0.5): a tenth, even a silent
	// minute, is within what it does (negative binomial P = 0.0024 and 1.5e-5, against
	// 5e-6); with 5-minute windows (dispersion 4.75 at 300) silence is not.
	bursty := VolumeExpectation{PerWindow: 60, Size: time.Minute, Windows: 60, Dispersion: 16}
	for _, c := range []struct {
		exp      VolumeExpectation
		events   uint64
		breached bool
		test     string
	}{
		{bursty, 6, false, "negative_binomial"},
		{bursty, 0, false, "negative_binomial"},
		{VolumeExpectation{PerWindow: 300, Size: time.Minute, Windows: 12, Dispersion: 4.75}, 0, true, "negative_binomial"},
		{VolumeExpectation{PerWindow: 60, Size: time.Minute, Windows: 60, Dispersion: 1.1}, 6, true, "negative_binomial"},
		// Below half the expected but not below the fewest of the learned windows.
		{VolumeExpectation{PerWindow: 60, Size: time.Minute, Windows: 60, Fewest: 20}, 25, false, "conditional_binomial"},
		{VolumeExpectation{PerWindow: 60, Size: time.Minute, Windows: 60, Fewest: 20}, 15, true, "conditional_binomial"},
	} {
		got, ok := ModelVolumeCondition(w(c.events, 1), c.exp, th)
		if !ok || got.Breached != c.breached || got.Details["test"] != c.test {
			t.Errorf("%d events against %+v: breached %v by %s (p %s), want %v by %s", c.events, c.exp, got.Breached, got.Details["test"],
				got.Details["p_value"], c.breached, c.test)
		}
	}
}

// The unseen-category test is calibrated against the reference's leave-one-out rate of
// new categories, also for a feature with more categories than a reference keeps: under
// no change its p-values are not smaller than uniform ones.
func TestUnseenBaselineIsCalibrated(t *testing.T) {
	const runs = 200
	th := func(string) Thresholds { return DefaultThresholds }
	for _, sz := range []struct{ ref, win int }{{180, 120}, {900, 300}, {2000, 600}} {
		below := map[float64]int{}
		for i := 0; i < runs; i++ {
			ref := refWith(sz.ref, uint64(1000+i))
			w := windowWith(sz.win, uint64(5000+i), ref, stationary)
			c, ok := findCondition(serviceConditions(w, ref, th), "input_quality/merchant/unseen_share")
			if !ok {
				t.Fatal("merchant not judged")
			}
			pv, _ := parseP(c.Details["p_value"])
			for _, a := range []float64{0.01, 0.05, 0.2} {
				if pv < a {
					below[a]++
				}
			}
		}
		for _, a := range []float64{0.01, 0.05, 0.2} {
			if limit := runs*a + 4*math.Sqrt(runs*a*(1-a)); float64(below[a]) > limit {
				t.Errorf("reference %d, window %d: p < %v in %d of %d runs, more than %.0f", sz.ref, sz.win, a, below[a], runs, limit)
			}
		}
		t.Logf("reference %d, window %d: p < 0.01/0.05/0.2 in %d/%d/%d of %d runs", sz.ref, sz.win, below[0.01], below[0.05], below[0.2], runs)
	}
}

// The latency rules judge the window's latencies, which not every event must carry (a
// producer may send none with its errors): none, or fewer than a feature needs present
// values (MinEvents), judge nothing; enough judge as before, the ceiling included.
func TestLatencyIsJudgedOnTheLatenciesSent(t *testing.T) {
	ref := refWith(3000, 5)
	th := DefaultThresholds
	th.LatencyP99Ms = 100
	for _, c := range []struct {
		latencies int
		judged    bool
	}{{0, false}, {3, false}, {int(th.MinEvents) - 1, false}, {int(th.MinEvents), true}, {1000, true}} {
		w := windowWith(1000, 6, nil, change{})
		w.Latency = processors.NewSketch()
		for range c.latencies {
			w.Latency.Add(500)
		}
		var got []string
		for _, cond := range Evaluate(w, ref, func(string) Thresholds { return th }).Conditions {
			if cond.Kind == schemas.KindLatency {
				got = append(got, condKey(cond))
				if !cond.Breached {
					t.Errorf("%d latencies of 500 ms: %s not breached", c.latencies, condKey(cond))
				}
			}
		}
		if judged := len(got) == 3; judged != c.judged || (!c.judged && len(got) > 0) {
			t.Errorf("%d latencies of 1000 events: latency conditions %v, want judged %t (p50, p99 against the reference and the ceiling)", c.latencies, got, c.judged)
		}
	}
}

func oneFeatureEvent(i int, v float64) *schemas.PredictionEvent {
	return &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: schemas.DeploymentPrimary,
		Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Status: schemas.StatusOK, LatencyMs: 10,
		Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: v}}},
		Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
}

// A reference's range is of every value its windows saw, not of the first MaxSample it
// keeps: partitions merged in order, the last one of other values (a region keyed to its
// own partition), a window of the reference period's mix is in range. Its range survives
// being stored (a restart inside the reference's windows) and is the whole count's.
func TestOutOfRangeIsAgainstTheWholeReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	all := NewSample()
	for k := 0; k < 3; k++ {
		part := NewSample()
		for i := 0; i < 60000; i++ {
			v := 30 + 5*rng.NormFloat64()
			if k == 2 {
				v = 80 + 5*rng.NormFloat64()
			}
			part.AddEvent(oneFeatureEvent(i, v))
		}
		b, err := part.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		stored, err := UnmarshalSample(b)
		if err != nil {
			t.Fatal(err)
		}
		all.Merge(stored.TrimmedFor(all))
	}
	ref := all.Build("m", "1", SourceFirstWindows, 3, t0)
	fp := ref.Features["x"]
	if fp.RangeN != 180000 || fp.Range[1] < 95 || fp.Count != MaxSample {
		t.Fatalf("range %v of %d values (%d kept), want of all 180,000", fp.Range, fp.RangeN, fp.Count)
	}
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Hour} }, processors.Limits{})
	p.SetLayout("m", "1", ref.Layout())
	for i := 0; i < 3000; i++ {
		v := 30 + 5*rng.NormFloat64()
		if i%3 == 2 {
			v = 80 + 5*rng.NormFloat64()
		}
		p.Add(oneFeatureEvent(i, v), processors.Source{Offset: int64(i)}, t0)
	}
	w := p.CloseAll()[0].Merged
	c, ok := findCondition(Evaluate(w, ref, func(string) Thresholds { return DefaultThresholds }).Conditions, "input_quality/x/out_of_range_share")
	if !ok || c.Breached || c.Details["chance_rate"] == "" {
		t.Errorf("a window of the reference's own mix: %v %s %v", ok, c.FiringSummary, c.Details)
	}
}

// A sample stored before extents were kept, merged with a newer one, gives a range over
// both: the values it kept stand for its extent.
func TestSampleStoredBeforeExtentsKeepsItsRange(t *testing.T) {
	old, recent := NewSample(), NewSample()
	for i := 0; i < 100; i++ {
		old.AddEvent(oneFeatureEvent(i, float64(200+i)))
		recent.AddEvent(oneFeatureEvent(i, float64(i)))
	}
	b, err := old.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var w sampleWire
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		t.Fatal(err)
	}
	w.Extents = nil
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&w); err != nil {
		t.Fatal(err)
	}
	stored, err := UnmarshalSample(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	recent.Merge(stored)
	fp := recent.Build("m", "1", SourceFirstWindows, 2, t0).Features["x"]
	if fp.RangeN != 200 || len(fp.Range) != 2 || fp.Range[0] != 0 || fp.Range[1] != 299 {
		t.Errorf("range %v of %d values, want [0, 299] of 200", fp.Range, fp.RangeN)
	}
}

// A feature that drifts and leaves its reference's range in the same window: its drift
// alert says both, and the out-of-range condition, judged as ever, names the drift
// condition that tells it (the alerter then fires it silently with the drift page:
// TestAlerterToldConditionIsOnePage). Out of range alone, it stands.
func TestOutOfRangeIsToldInTheDriftAlert(t *testing.T) {
	th := func(string) Thresholds { return DefaultThresholds }
	ref := refWith(3000, 1)
	for _, c := range []struct {
		name              string
		sentinel          float64
		drift, outOfRange bool
	}{
		{"30% of ages sent as -1: drifted, and told so", 0.3, true, true},
		{"8% of ages sent as -1: out of range alone", 0.08, false, true},
		{"none: neither", 0, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conds := Evaluate(windowWith(3000, 2, ref, change{missing: 0.01, sentinel: c.sentinel, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1}), ref, th).Conditions
			d, ok := findCondition(conds, "data_drift/age/psi")
			o, ok2 := findCondition(conds, "input_quality/age/out_of_range_share")
			if !ok || !ok2 {
				t.Fatalf("conditions %v %v", ok, ok2)
			}
			told := strings.Contains(d.FiringSummary, "of its values outside its reference's range [18, 77] (lowest -1, highest 77)")
			if d.Breached != c.drift || told != c.drift || o.Breached != c.outOfRange || (o.ToldIn == d.Fingerprint()) != c.drift || (c.drift && d.Details["out_of_range_share"] == "") {
				t.Errorf("drift %v told %v, out of range %v told in %q: %s | %s | %v", d.Breached, told, o.Breached, o.ToldIn, d.FiringSummary, o.FiringSummary, d.Details)
			}
		})
	}
}
