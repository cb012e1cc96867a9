package detectors

import (
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
	nulls    float64 // share of null predictions
	latencyX float64 // latency multiplier
	errorsX  float64 // error and timeout rate multiplier
	sizeX    float64 // input size multiplier
	volumeX  float64 // event rate multiplier
}

var stationary = change{missing: 0.01, nulls: 0.005, latencyX: 1, errorsX: 1, sizeX: 1, volumeX: 1}

var simCountries = []string{"DE", "FR", "NL", "US", "GB"}

// simStream generates one model's prediction events: two numeric features (amount with
// explicit nulls, age sometimes absent), three categorical ones (country with a rare
// category, merchant with 3,000 Zipf-distributed categories — more than a reference keeps
// — and a boolean), a score, log-normal latency and input size, errors and timeouts.
type simStream struct {
	rng       *rand.Rand
	merchant  *rand.Zipf
	merchants []string
	e         schemas.PredictionEvent
}

func newSimStream(seed uint64) *simStream {
	rng := rand.New(rand.NewPCG(seed, 77))
	s := &simStream{rng: rng, merchant: rand.NewZipf(rng, 1.2, 1, 2999), merchants: make([]string, 3000)}
	for i := range s.merchants {
		s.merchants[i] = fmt.Sprintf("m%04d", i)
	}
	return s
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
		f = append(f, schemas.Feature{Name: "age", Value: schemas.Value{Kind: schemas.Number, Num: float64(18 + rng.IntN(60))}})
	}
	country := simCountries[min(int(rng.ExpFloat64()*1.5), len(simCountries)-1)]
	if rng.Float64() < 0.002 {
		country = "LU"
	}
	if rng.Float64() < c.flood {
		country = "XX"
	}
	f = append(f, schemas.Feature{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: country}},
		schemas.Feature{Name: "merchant", Value: schemas.Value{Kind: schemas.String, Str: s.merchants[s.merchant.Uint64()]}},
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
		exp.PerWindow, exp.Windows, _ = ref.EventsPerWindow()
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
// 6,000 and 30,000 events, and keep the test within seconds.
func simHours(rate float64) time.Duration {
	if rate >= 100 {
		return 3 * time.Hour
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
			if want := int(0.9 * float64(length/cfg.size)); res.volume < want {
				t.Errorf("%d windows judged for volume, want at least %d", res.volume, want)
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
			t.Logf("%d spans judged over %v, smallest p-values:%s", res.spans, length, sb.String())
			if len(keys) < 9 {
				t.Errorf("judged only %v", keys)
			}
		})
	}
}

// Each change is found within two judged windows (spans, at low volume) of its start;
// irrelevant changes at high volume stay silent.
func TestSignalsFindChangesWithinTwoWindows(t *testing.T) {
	all := change{missing: 0.45, flood: 0.3, nulls: 0.15, latencyX: 5, errorsX: 30, sizeX: 1.5, volumeX: 1}
	want := []string{"input_quality/amount/missing_rate", "input_quality/country/unseen_share", "input_quality//input_size_mean",
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
			for _, k := range want {
				s, ok := first[k]
				if !ok {
					t.Errorf("%s never breached", k)
					continue
				}
				if s-changeSpan > 1 {
					t.Errorf("%s breached %d spans after the change", k, s-changeSpan)
				}
			}
		})
	}
}
