package detectors

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Feature and joint drift on generated streams, windowed by processors and judged by
// Evaluate with the defaults against a reference built from the first three windows,
// as the pipeline does it (pipeline/reference.go, pipeline/lowvolume.go).

var detectionFull = flag.Bool("detection.full", false,
	"run the drift detection table: 24 h of every stream configuration with several seeds (minutes; docs/detection.md)")

// Changes a stream can undergo at driftSpec.at (elapsed event time).
const (
	driftNone        = ""
	driftShift       = "shift"       // amount + driftSpec.size stds
	driftCategory    = "category"    // a country the reference never saw takes driftSpec.size of events
	driftGradual     = "gradual"     // amount drifts linearly to +1 std over 2 h
	driftCorrelation = "correlation" // corr(amount, balance) +0.8 → −0.8, marginals unchanged
)

type driftSpec struct {
	cfg    simConfig
	length time.Duration
	seed   uint64
	change string
	at     time.Duration
	size   float64 // of a shift, in stds of amount; of a new category, its share
}

// driftCountries are skewed, with rare ones (expected counts below 5 in small windows).
var (
	driftCountries = []string{"DE", "FR", "NL", "US", "GB", "IT", "ES", "PL", "SE", "AT", "CH", "LU"}
	driftCountryP  = []float64{0.30, 0.20, 0.15, 0.12, 0.08, 0.05, 0.04, 0.03, 0.015, 0.01, 0.004, 0.001}
)

// driftGen generates one model's prediction events: amount (normal) and balance
// (normal, correlated 0.8 with amount), income (log-normal), wait (30% zeros, else
// exponential), items (Poisson 1.5: few distinct values), country (twelve skewed
// categories, the rarest 0.1%), is_returning (boolean, 30%), and a score that depends on
// amount. Its one event is reused: the processor and samples copy what they keep.
type driftGen struct {
	spec driftSpec
	rng  *rand.Rand
	e    schemas.PredictionEvent
	cum  []float64
}

func newDriftGen(s driftSpec) *driftGen {
	g := &driftGen{spec: s, rng: rand.New(rand.NewPCG(s.seed, 0x5eed))}
	var acc float64
	for _, p := range driftCountryP {
		acc += p
		g.cum = append(g.cum, acc)
	}
	g.e = schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: schemas.DeploymentPrimary, Status: schemas.StatusOK,
		Features: make([]schemas.Feature, 7)}
	return g
}

// state is amount's mean shift in stds, the amount–balance correlation and the new
// country's share at elapsed time at.
func (g *driftGen) state(at time.Duration) (shift, rho, flood float64) {
	rho = 0.8
	if g.spec.change == driftNone || at < g.spec.at {
		return 0, rho, 0
	}
	switch g.spec.change {
	case driftShift:
		shift = g.spec.size
	case driftGradual:
		shift = math.Min(1, float64(at-g.spec.at)/float64(2*time.Hour))
	case driftCorrelation:
		rho = -0.8
	case driftCategory:
		flood = g.spec.size
	}
	return shift, rho, flood
}

func (g *driftGen) event(at time.Duration) *schemas.PredictionEvent {
	rng, e := g.rng, &g.e
	shift, rho, flood := g.state(at)
	e.Timestamp = t0.Add(at)
	za := rng.NormFloat64()
	zb := rho*za + math.Sqrt(1-rho*rho)*rng.NormFloat64()
	amount := 100 + 15*(za+shift)
	wait := 0.0
	if rng.Float64() >= 0.3 {
		wait = rng.ExpFloat64() * 5
	}
	items := 0
	for l, p := math.Exp(-1.5), rng.Float64(); p > l; p *= rng.Float64() {
		items++
	}
	country := driftCountries[len(driftCountries)-1]
	for i, u := 0, rng.Float64(); i < len(g.cum); i++ {
		if u < g.cum[i] {
			country = driftCountries[i]
			break
		}
	}
	if flood > 0 && rng.Float64() < flood {
		country = "XX"
	}
	num := func(name string, x float64) schemas.Feature {
		return schemas.Feature{Name: name, Value: schemas.Value{Kind: schemas.Number, Num: x}}
	}
	e.Features[0] = num("amount", amount)
	e.Features[1] = num("balance", 5000+1000*zb)
	e.Features[2] = num("income", math.Exp(10+0.8*rng.NormFloat64()))
	e.Features[3] = num("wait", wait)
	e.Features[4] = num("items", float64(items))
	e.Features[5] = schemas.Feature{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: country}}
	e.Features[6] = schemas.Feature{Name: "is_returning", Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(10) / 7)}}
	e.Prediction = schemas.Value{Kind: schemas.Number, Num: 1 / (1 + math.Exp(-(amount-100)/15-0.5*rng.NormFloat64()))}
	return e
}

// driftSpan is one judged window: over itself, or merged with the windows before it
// while it holds fewer than min_events events.
type driftSpan struct {
	start    time.Duration // the window's start, from the stream's
	merged   int           // windows judged together
	events   uint64
	features int  // features (and the prediction) judged
	joint    bool // the joint model judged it
	breached []Condition
	// amountP is amount's test p-value (uncorrected).
	amountP float64
}

// The pipeline's defaults for a first-windows reference (config's detection.
// reference_windows and reference_min_events): at least three windows, holding at least
// 1,000 events.
const (
	refWindows   = 3
	refMinEvents = 1000
)

// refSpan is how many windows the reference of a stream takes, with room for Poisson
// arrivals.
func refSpan(cfg simConfig) int {
	return max(refWindows, int(math.Ceil(1.15*refMinEvents/(cfg.rate*cfg.size.Seconds()))))
}

// runDrift feeds the stream through a processor at rate events a second (Poisson
// arrivals). The first windows build the reference, as pipeline/reference.go does (a
// Sample per window, merged, until refWindows windows hold refMinEvents events); every
// later window is judged with the defaults, merged with up to eleven windows before it
// while short of min_events (as pipeline/lowvolume.go does).
func runDrift(s driftSpec) []driftSpan {
	th := DefaultThresholds
	thresholds := func(string) Thresholds { return th }
	g := newDriftGen(s)
	size := s.cfg.size
	proc := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: size} }, processors.Limits{})
	samples := map[int64]*Sample{}
	building := NewSample()
	var ref *Profile
	var trail []*processors.WindowAgg
	var out []driftSpan
	refClosed := 0
	judge := func(closed []processors.Closed) {
		for _, c := range closed {
			w := c.Merged
			if ref == nil {
				if smp, ok := samples[w.Start]; ok {
					building.Merge(smp)
					delete(samples, w.Start)
				}
				if refClosed++; refClosed >= refWindows && building.Events >= refMinEvents {
					ref = building.Build("m", "1", SourceFirstWindows, refClosed, t0)
					proc.SetLayout("m", "1", ref.Layout())
				}
				continue
			}
			trail = append(trail, w)
			if len(trail) > 12 {
				trail = trail[1:]
			}
			over, merged := w, 1
			for i := len(trail) - 2; i >= 0 && over.Events < th.MinEvents; i-- {
				if merged == 1 {
					over = w.Clone()
				}
				over.Merge(trail[i])
				over.Start = trail[i].Start
				merged++
			}
			if over.Events < th.MinEvents {
				continue
			}
			v := Evaluate(over, ref, thresholds)
			sp := driftSpan{start: time.UnixMilli(w.Start).Sub(t0), merged: merged, events: over.Events, features: len(v.Scores), joint: v.Multivariate != nil, amountP: 1}
			for _, sc := range v.Scores {
				if sc.Feature == "amount" {
					sp.amountP = sc.PValue
				}
			}
			for _, cond := range v.Conditions {
				if cond.Breached && (cond.Kind == schemas.KindDataDrift || cond.Kind == schemas.KindPredictionDrift) {
					sp.breached = append(sp.breached, cond)
				}
			}
			out = append(out, sp)
		}
	}
	at := time.Duration(0)
	var cur int64 = math.MinInt64
	for i := int64(0); ; i++ {
		at += time.Duration(g.rng.ExpFloat64() / s.cfg.rate * float64(time.Second))
		if at >= s.length {
			break
		}
		e := g.event(at)
		ws, _ := processors.WindowOf(e.Timestamp, size)
		if ws != cur {
			judge(proc.Ready())
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
		proc.Add(e, processors.Source{Offset: i}, t0)
	}
	judge(proc.CloseAll())
	return out
}

// driftHours is how much event time a stationary stream covers: simHours (24 hours at
// 1 and 10 events a second, 3 at 100), all 24 with -detection.full.
func driftHours(rate float64) time.Duration {
	if *detectionFull {
		return 24 * time.Hour
	}
	return simHours(rate)
}

// Stationary streams raise no feature, prediction, dataset or joint drift with the
// defaults, at 1, 10 and 100 events a second, with 1- and 5-minute windows, although
// every feature and the joint model are judged in every span.
func TestDriftSilentOnStationaryStreams(t *testing.T) {
	seeds := 1
	if *detectionFull {
		seeds = 3
	}
	var table strings.Builder
	for i, cfg := range simConfigs {
		for seed := 0; seed < seeds; seed++ {
			t.Run(fmt.Sprintf("%v/seed%d", cfg, seed), func(t *testing.T) {
				length := driftHours(cfg.rate)
				spans := runDrift(driftSpec{cfg: cfg, length: length, seed: uint64(400 + 10*i + seed)})
				features, joint, breached := 0, 0, 0
				for _, sp := range spans {
					features += sp.features
					if sp.joint {
						joint++
					}
					if sp.features != 8 {
						t.Errorf("span at %v judged %d features, want 7 and the prediction", sp.start, sp.features)
					}
					for _, c := range sp.breached {
						breached++
						t.Errorf("false alarm: %s in the span at %v (%d windows, %d events): %s", condKey(c), sp.start, sp.merged, sp.events, c.FiringSummary)
					}
				}
				// Every window after the reference's (the last may be empty); the joint
				// model every one that opened after the reference (the first may not have;
				// at low volume neither may the span merged with it).
				if want := int(length/cfg.size) - refSpan(cfg); len(spans) < want {
					t.Errorf("%d spans judged, want %d", len(spans), want)
				}
				if joint < len(spans)-2 {
					t.Errorf("the joint model judged %d of %d spans", joint, len(spans))
				}
				fmt.Fprintf(&table, "| %v | %v | %d | %d | %d | %d |\n", cfg, length, len(spans), features, joint, breached)
				t.Logf("%v over %v: %d spans, %d feature judgements, %d joint, %d breached", cfg, length, len(spans), features, joint, breached)
			})
		}
	}
	if *detectionFull {
		t.Logf("\n| stream | event time | spans judged | feature judgements | joint judgements | breached |\n|---|---|---|---|---|---|\n%s", table.String())
	}
}

// driftCase is a change and when it becomes material: breaches are expected from the
// span whose window starts at at + material on.
type driftCase struct {
	change   string
	size     float64
	material time.Duration
	want     string // the condition that must breach
	allowed  map[string]bool
}

var driftCases = []driftCase{
	{change: driftShift, size: 0.5, want: "data_drift/amount/psi", allowed: map[string]bool{"data_drift/amount/psi": true, "prediction_drift//psi": true}},
	{change: driftCategory, size: 0.15, want: "data_drift/country/psi", allowed: map[string]bool{"data_drift/country/psi": true}},
	// Material at half a std, one hour in (one std, two hours in, at low volume).
	{change: driftGradual, material: time.Hour, want: "data_drift/amount/psi", allowed: map[string]bool{"data_drift/amount/psi": true, "prediction_drift//psi": true}},
	{change: driftCorrelation, want: "data_drift//pca_reconstruction_error", allowed: map[string]bool{"data_drift//pca_reconstruction_error": true}},
}

// lowVolume: at one event a second in one-minute windows a window is judged over two
// merged (about 120 events, against a reference of about 1,000), and changes are counted
// from the first span made of changed windows only. Beyond noise at 10⁻⁶ per window is
// then about PSI 0.42 over the ten groups, which a half-std shift (PSI ≈ 0.24) does not
// reach, and three quarters of a std (0.53) in nine windows in ten: one std (0.93) is
// what is material there. A new category of 15% (18 values) is pooled with the rare ones
// there and found in three spans in ten; input_quality's unseen_share (an exact test of
// that one cell) finds it, data drift finds 30%.
func lowVolume(cfg simConfig) bool {
	return cfg.rate*cfg.size.Seconds() < float64(DefaultThresholds.MinEvents)
}

// Each change is breached within two windows of becoming material, by the condition that
// names it, and nothing else breaches: before the change, or a feature it leaves alone.
func TestDriftFindsChangesWithinTwoWindows(t *testing.T) {
	seeds := 1
	if *detectionFull {
		seeds = 10
	}
	var table strings.Builder
	for i, cfg := range simConfigs {
		for j, dc := range driftCases {
			if lowVolume(cfg) {
				switch dc.change {
				case driftShift:
					dc.size = 1
				case driftCategory:
					dc.size = 0.3
				case driftGradual:
					dc.material = 2 * time.Hour
				}
			}
			found := make([]string, seeds)
			for seed := range seeds {
				t.Run(fmt.Sprintf("%v/%s/seed%d", cfg, dc.change, seed), func(t *testing.T) {
					found[seed] = fmt.Sprint(findChange(t, cfg, dc, uint64(500+100*seed+10*i+j)))
				})
			}
			what := dc.change
			switch dc.change {
			case driftShift:
				what = fmt.Sprintf("shift %g std", dc.size)
			case driftCategory:
				what = fmt.Sprintf("new category %g%%", 100*dc.size)
			}
			fmt.Fprintf(&table, "| %v | %s | %s |\n", cfg, what, strings.Join(found, " "))
		}
	}
	if *detectionFull {
		t.Logf("\n| stream | change | span found in, per seed |\n|---|---|---|\n%s", table.String())
	}
}

// findChange runs one stream with the change and returns the span, counted from the
// first that starts once the change is material, in which its condition breached.
func findChange(t *testing.T, cfg simConfig, dc driftCase, seed uint64) int {
	t.Helper()
	at := time.Duration(refSpan(cfg)+6) * cfg.size
	from := at + dc.material
	if lowVolume(cfg) {
		// A span of two windows is made of changed ones only from the second on.
		from += cfg.size
	}
	length := from + 4*cfg.size
	spans := runDrift(driftSpec{cfg: cfg, length: length, seed: seed, change: dc.change, at: at, size: dc.size})
	found := -1
	after := 0
	for _, sp := range spans {
		for _, c := range sp.breached {
			key := condKey(c)
			switch {
			case sp.start+cfg.size <= at:
				t.Errorf("%s breached before the change, in the span at %v", key, sp.start)
			case !dc.allowed[key]:
				t.Errorf("%s breached in the span at %v: %s", key, sp.start, c.FiringSummary)
			}
		}
		if sp.start < from {
			continue
		}
		after++
		for _, c := range sp.breached {
			if condKey(c) == dc.want && found < 0 {
				found = after
			}
		}
	}
	if found < 1 || found > 2 {
		t.Errorf("%s breached in span %d after the change became material, want 1 or 2", dc.want, found)
	}
	t.Logf("%v %s: %s breached in span %d after it became material", cfg, dc.change, dc.want, found)
	return found
}

// A real but irrelevant change at high volume — amount's mean +3% of a std, at 100
// events a second — is never breached, although in 5-minute windows its test is often
// significant.
func TestDriftSilentOnATinyShiftAtHighVolume(t *testing.T) {
	for i, cfg := range simConfigs {
		if cfg.rate < 100 {
			continue
		}
		t.Run(cfg.String(), func(t *testing.T) {
			length := time.Hour
			if *detectionFull {
				length = 24 * time.Hour
			}
			spans := runDrift(driftSpec{cfg: cfg, length: length, seed: uint64(600 + i), change: driftShift, size: 0.03, at: 3 * cfg.size})
			significant := 0
			for _, sp := range spans {
				if sp.amountP < 0.05 {
					significant++
				}
				for _, c := range sp.breached {
					t.Errorf("%s breached in the span at %v: %s", condKey(c), sp.start, c.FiringSummary)
				}
			}
			if len(spans) < int(length/cfg.size)-5 {
				t.Errorf("%d spans judged", len(spans))
			}
			t.Logf("%v: amount's KS test significant (p < 0.05, uncorrected) in %d of %d spans, none breached", cfg, significant, len(spans))
		})
	}
}
