// Package simulate produces realistic, deterministic traffic for driftd: prediction,
// label and pipeline events for several models, each showing one production failure
// (or none), on a simulated clock so that windows close quickly.
package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/driftd/driftd/schemas"
)

// Scenario names, one model each so that their alerts can be told apart.
const (
	Stationary      = "stationary"
	AbruptShift     = "abrupt-shift"
	GradualDrift    = "gradual-drift"
	NewCategory     = "new-category"
	MissingSpike    = "missing-spike"
	PredictionDrift = "prediction-drift"
	ConceptDrift    = "concept-drift"
	CanaryLatency   = "canary-latency"
	ShadowDisagree  = "shadow-disagree"
	PipelineFailure = "pipeline-failure"
)

// All lists every scenario.
var All = []string{Stationary, AbruptShift, GradualDrift, NewCategory, MissingSpike, PredictionDrift,
	ConceptDrift, CanaryLatency, ShadowDisagree, PipelineFailure}

// ModelOf names the model a scenario runs on.
func ModelOf(scenario string) string { return "sim-" + scenario }

// Options shape the traffic. Times are in simulated time.
type Options struct {
	Seed      uint64
	Start     time.Time     // simulated time of the first event
	Window    time.Duration // the window size driftd uses; phases are counted in windows
	PerWindow int           // predictions per model per window
	// ChangeAt is the window at which the scenarios' changes begin (default 10), after
	// the reference windows and a few stationary ones.
	ChangeAt int
	// ChangeFor is how many windows an abrupt shift lasts before it ends (default 5).
	ChangeFor int
	Scenarios []string
}

// Kind of an emitted record.
type Kind uint8

// Record kinds.
const (
	Prediction Kind = iota + 1
	Label
	Pipeline
)

// Record is one event to produce.
type Record struct {
	Kind       Kind
	Time       time.Time
	Key        string
	Prediction *schemas.PredictionEvent
	Label      *schemas.LabelEvent
	Pipeline   *schemas.PipelineEvent
}

// Generator yields the records of one simulated window at a time, in time order.
type Generator struct {
	o      Options
	rngs   map[string]*rand.Rand
	window int
}

// New returns a generator.
func New(o Options) (*Generator, error) {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.PerWindow <= 0 {
		o.PerWindow = 200
	}
	if o.ChangeAt <= 0 {
		o.ChangeAt = 10
	}
	if o.ChangeFor <= 0 {
		o.ChangeFor = 5
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = All
	}
	known := map[string]bool{}
	for _, s := range All {
		known[s] = true
	}
	g := &Generator{o: o, rngs: map[string]*rand.Rand{}}
	for i, s := range o.Scenarios {
		if !known[s] {
			return nil, fmt.Errorf("unknown scenario %q (known: %v)", s, All)
		}
		g.rngs[s] = rand.New(rand.NewPCG(o.Seed, uint64(i)+1))
	}
	return g, nil
}

// Options returns the effective options.
func (g *Generator) Options() Options { return g.o }

// NextWindow returns the records of the next simulated window, sorted by time.
func (g *Generator) NextWindow() []Record {
	w := g.window
	g.window++
	start := g.o.Start.Add(time.Duration(w) * g.o.Window)
	var out []Record
	for _, s := range g.o.Scenarios {
		out = append(out, g.scenarioWindow(s, w, start)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func (g *Generator) phase(w int) (changed bool, since int) {
	return w >= g.o.ChangeAt, w - g.o.ChangeAt
}

func (g *Generator) scenarioWindow(s string, w int, start time.Time) []Record {
	rng := g.rngs[s]
	model := ModelOf(s)
	changed, since := g.phase(w)
	var out []Record
	step := g.o.Window / time.Duration(g.o.PerWindow)
	if s == PipelineFailure {
		// The model itself stays healthy; its upstream pipeline does not.
		out = g.pipelineWindow(rng, w, start, changed, since)
	}
	for i := 0; i < g.o.PerWindow; i++ {
		at := start.Add(time.Duration(i) * step)
		reqID := fmt.Sprintf("%s-%d-%d", model, w, i)
		amountShift, countryFlood, missing, predShift, zeroAmount := 0.0, 0.0, 0.05, 0.0, 0.0
		latency := 20 + rng.ExpFloat64()*8
		switch s {
		case AbruptShift:
			if changed && since < g.o.ChangeFor {
				amountShift = 3
			}
		case GradualDrift:
			if changed {
				amountShift = 0.25 * float64(since+1)
			}
		case NewCategory:
			if changed {
				countryFlood = 0.5
			}
		case MissingSpike:
			if changed {
				missing = 0.6
			}
		case PredictionDrift:
			if changed {
				predShift = 0.25
			}
		case PipelineFailure:
			// While the join stage fails, the feature store serves its default for the
			// customers it could not join: amount 0.
			if changed && since < 2 {
				zeroAmount = 0.4
			}
		}
		e := g.prediction(rng, model, "1.0.0", schemas.DeploymentPrimary, reqID, at, amountShift, countryFlood, missing, predShift, latency)
		if zeroAmount > 0 && rng.Float64() < zeroAmount {
			e.Features[0].Value.Num = 0
		}
		out = append(out, Record{Kind: Prediction, Time: at, Key: reqID, Prediction: e})
		switch s {
		case CanaryLatency:
			// One request in five goes to the canary, which is four times slower.
			if i%5 == 0 {
				c := g.prediction(rng, model, "1.1.0", schemas.DeploymentCanary, reqID+"-c", at, 0, 0, 0.05, 0, 4*(20+rng.ExpFloat64()*40))
				out = append(out, Record{Kind: Prediction, Time: at, Key: c.RequestID, Prediction: c})
			}
		case ShadowDisagree:
			// The shadow model sees the same request; after the change it disagrees with
			// the primary on a third of them (compared by request id).
			sh := *e
			sh.EventID, sh.ModelVersion, sh.Deployment = e.EventID+"-shadow", "2.0.0", schemas.DeploymentShadow
			sh.Features = append([]schemas.Feature(nil), e.Features...)
			if changed && rng.IntN(3) == 0 {
				sh.Prediction = schemas.Value{Kind: schemas.Number, Num: 1 - e.Prediction.Num}
			}
			out = append(out, Record{Kind: Prediction, Time: at, Key: reqID, Prediction: &sh})
		case ConceptDrift:
			// Labels arrive a little later; after the change the mapping x → y flips for
			// large amounts while inputs stay the same.
			label := 0.0
			if e.Prediction.Num > 0.5 {
				label = 1
			}
			if changed && e.Features[0].Value.Num > 100 {
				label = 1 - label
			}
			out = append(out, Record{Kind: Label, Time: at.Add(step / 2), Key: reqID, Label: &schemas.LabelEvent{
				EventID: reqID + "-label", RequestID: reqID, Model: model, Timestamp: at.Add(step / 2),
				Label: schemas.Value{Kind: schemas.Number, Num: label}}})
		}
	}
	return out
}

func (g *Generator) prediction(rng *rand.Rand, model, version, deployment, reqID string, at time.Time, amountShift, countryFlood, missing, predShift, latency float64) *schemas.PredictionEvent {
	amount := 100 + 15*(rng.NormFloat64()+amountShift)
	country := []string{"DE", "FR", "NL", "US", "GB"}[rng.IntN(5)]
	if rng.Float64() < countryFlood {
		country = "XX"
	}
	age := schemas.Value{Kind: schemas.Number, Num: math.Round(18 + rng.Float64()*60)}
	if rng.Float64() < missing {
		age = schemas.Value{}
	}
	score := 1 / (1 + math.Exp(-(amount-100)/15+rng.NormFloat64()*0.5))
	score = math.Min(1, math.Max(0, score+predShift*rng.Float64()))
	status := schemas.StatusOK
	if rng.IntN(100) == 0 {
		status = schemas.StatusError
	}
	return &schemas.PredictionEvent{
		EventID: reqID + "-" + deployment, RequestID: reqID, Model: model, ModelVersion: version, Deployment: deployment,
		Timestamp: at, Status: status, LatencyMs: latency, InputSize: float64(3 + rng.IntN(5)), HasInputSize: true,
		Features: []schemas.Feature{
			{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: math.Round(amount*100) / 100}},
			{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: country}},
			{Name: "age", Value: age},
			{Name: "is_returning", Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(2))}},
		},
		Prediction: schemas.Value{Kind: schemas.Number, Num: score},
	}
}

// pipelineWindow emits one run per window of each stage feeding the model: the join
// stage starts failing at the change, and two windows later the whole pipeline goes
// silent.
func (g *Generator) pipelineWindow(rng *rand.Rand, w int, start time.Time, changed bool, since int) []Record {
	if changed && since >= 2 {
		return nil
	}
	var out []Record
	runID := "run-" + strconv.Itoa(w)
	in := int64(10000 + rng.IntN(500))
	for i, stage := range []string{"extract_orders", "join_orders", "build_features"} {
		at := start.Add(time.Duration(i+1) * g.o.Window / 8)
		status, errText, outN := schemas.StageSucceeded, "", in-int64(rng.IntN(20))
		if changed && stage == "join_orders" {
			status, errText, outN = schemas.StageFailed, "join key customer_id missing in 38% of rows", 0
		}
		out = append(out, Record{Kind: Pipeline, Time: at, Key: stage, Pipeline: &schemas.PipelineEvent{
			EventID: fmt.Sprintf("%s-%s", runID, stage), Pipeline: "orders", Stage: stage, RunID: runID, Status: status,
			Timestamp: at, DurationMs: 2000 + rng.Float64()*500, RecordsIn: in, RecordsOut: outN,
			Error: errText, Models: []string{ModelOf(PipelineFailure)}}})
		in = outN
	}
	return out
}

// Clock maps wall time to simulated time: Speed simulated seconds pass per wall second.
type Clock struct {
	WallStart, SimStart time.Time
	Speed               float64
}

// At returns the simulated time at wall time t.
func (c Clock) At(t time.Time) time.Time {
	return c.SimStart.Add(time.Duration(float64(t.Sub(c.WallStart)) * c.Speed))
}
