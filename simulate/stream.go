package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/driftd/driftd/schemas"
)

// Changes a streamed model or pipeline can show, the catalogue of the detection
// benchmark (docs/detection.md). Each starts at its ChangeAt and lasts to the end.
const (
	ChangeNone            = ""
	ChangeShift           = "shift"            // amount's mean moves by half a standard deviation
	ChangeTinyShift       = "tiny_shift"       // amount's mean moves by 3% of a standard deviation: real, irrelevant
	ChangeGradual         = "gradual"          // amount's mean drifts by one standard deviation per two hours
	ChangeNewCategory     = "new_category"     // 30% of country values become a category never seen ("XX")
	ChangeMissing         = "missing_spike"    // age goes from 1% to 45% missing
	ChangeSentinel        = "sentinel_values"  // 10% of ages are sent as -1 (a producer's "unknown"): out of range
	ChangeNullPredictions = "null_predictions" // 10% of predictions are null
	ChangeLatency         = "latency_x5"       // every request takes five times as long
	ChangeErrors          = "errors_x30"       // the error rate goes from 0.3% to 9%
	ChangeVolumeDrop      = "volume_drop"      // traffic falls to a tenth
	ChangeStopped         = "stopped"          // traffic stops
	ChangeFailingStage    = "failing_stage"    // a pipeline's middle stage fails every run
	ChangeSilentStage     = "silent_stage"     // a pipeline stops running
	ChangeSlowStage       = "slow_stage"       // a pipeline's middle stage takes four times as long
	ChangeLossyStage      = "lossy_stage"      // a pipeline's middle stage drops 30% of its records (0.1% before)
	ChangeNullStage       = "null_stage"       // a pipeline's middle stage outputs 20% nulls (0.05% before)
)

// ModelChanges and PipelineChanges list the changes of each kind of stream.
var (
	ModelChanges = []string{ChangeShift, ChangeTinyShift, ChangeGradual, ChangeNewCategory, ChangeMissing, ChangeSentinel,
		ChangeNullPredictions, ChangeLatency, ChangeErrors, ChangeVolumeDrop, ChangeStopped}
	PipelineChanges = []string{ChangeFailingStage, ChangeSilentStage, ChangeSlowStage, ChangeLossyStage, ChangeNullStage}
)

// StreamModel is one model of a stream: arrivals at Rate events per second on average,
// Poisson unless Traffic says otherwise.
type StreamModel struct {
	Name, Version string
	Rate          float64
	Change        string
	ChangeAt      time.Duration // after the stream's start
	Traffic       string        // TrafficPoisson (""), TrafficBursty or TrafficDiurnal
}

// Traffic shapes. Real traffic is not Poisson: its rate wanders from minute to minute
// (bursty: each minute's rate is the mean times a gamma variable of shape 4, CV 0.5) and
// follows the day (diurnal: 1 + 0.8 cos, peak at 14:00 UTC, nine times the trough at
// 02:00). Both keep the mean rate.
const (
	TrafficPoisson = ""
	TrafficBursty  = "bursty"
	TrafficDiurnal = "diurnal"
)

// Traffics lists the traffic shapes.
var Traffics = []string{"poisson", TrafficBursty, TrafficDiurnal}

// StreamPipeline is one upstream pipeline: its stages run one after the other every
// Every, emitting only succeeded/failed events (as many producers do). A run takes about
// two seconds, varying as real runs do (log-normal, σ 0.25), loses up to 0.2% of its
// records and reports up to 0.1% nulls.
type StreamPipeline struct {
	Name     string
	Stages   []string
	Every    time.Duration
	Models   []string
	Change   string
	ChangeAt time.Duration
	// Omit lists the fields its producer does not send ("duration_ms", "records_in",
	// "records_out", "null_count"): producers that send part of the contract. With
	// OmitBefore, only in the runs before it (after the stream's start): a producer that
	// starts sending them.
	Omit       []string
	OmitBefore time.Duration
}

// StreamOptions describe a stream of event time [Start, Start+Duration).
type StreamOptions struct {
	Seed      uint64
	Start     time.Time
	Duration  time.Duration
	Models    []StreamModel
	Pipelines []StreamPipeline
	// Features is how many features each prediction has, 5 to 20 (0: 5). The first five
	// are the catalogue's (amount, country, age, is_returning, session_seconds); further
	// ones are stationary and come from extraFeatures, so that the throughput benchmark
	// (driftd bench) reads events as wide as production's. With 5, the stream is the same
	// as before they existed (no extra random draws).
	Features int
}

// MaxStreamFeatures is the widest prediction a Stream emits.
const MaxStreamFeatures = 20

// extraFeatures are added in this order: with 20 features, 14 numeric, 4 categorical and
// 2 boolean, the mix of docs/performance.md's reference event.
var extraFeatures = [MaxStreamFeatures - 5]struct {
	name string
	kind schemas.Kind
}{
	{"device", schemas.String}, {"channel", schemas.String}, {"plan", schemas.String}, {"has_coupon", schemas.Bool},
	{"num_00", schemas.Number}, {"num_01", schemas.Number}, {"num_02", schemas.Number}, {"num_03", schemas.Number},
	{"num_04", schemas.Number}, {"num_05", schemas.Number}, {"num_06", schemas.Number}, {"num_07", schemas.Number},
	{"num_08", schemas.Number}, {"num_09", schemas.Number}, {"num_10", schemas.Number},
}

// extraCategories are the values of the extra categorical features (a few, skewed).
var extraCategories = []string{"web", "ios", "android", "partner", "other"}

// Stream yields the records of a rate-based stream in event-time order, one at a time,
// so that a day at thousands of events per second needs no memory. Unlike Generator
// (which fills windows of a fixed count for the demo), arrivals are Poisson, so window
// counts vary as real traffic does: the volume detectors must tolerate that.
type Stream struct {
	o       StreamOptions
	end     time.Time
	sources []streamSource
}

type streamSource interface {
	next() (Record, bool) // the next record, false when done
	peek() time.Time      // when next's record happens
}

// NewStream returns a stream; the same options give the same records.
func NewStream(o StreamOptions) (*Stream, error) {
	if o.Duration <= 0 {
		return nil, fmt.Errorf("stream: duration must be positive")
	}
	if o.Features == 0 {
		o.Features = 5
	}
	if o.Features < 5 || o.Features > MaxStreamFeatures {
		return nil, fmt.Errorf("stream: %d features: must be 5 to %d", o.Features, MaxStreamFeatures)
	}
	s := &Stream{o: o, end: o.Start.Add(o.Duration)}
	known := map[string]bool{ChangeNone: true}
	for _, c := range ModelChanges {
		known[c] = true
	}
	for i, m := range o.Models {
		if m.Rate <= 0 || !known[m.Change] {
			return nil, fmt.Errorf("stream: model %q: rate %g, change %q (known: %v)", m.Name, m.Rate, m.Change, ModelChanges)
		}
		if m.Version == "" {
			m.Version = "1.0.0"
		}
		if m.Traffic != TrafficPoisson && m.Traffic != TrafficBursty && m.Traffic != TrafficDiurnal {
			return nil, fmt.Errorf("stream: model %q: traffic %q (known: %v)", m.Name, m.Traffic, Traffics)
		}
		src := &modelSource{m: m, rng: rand.New(rand.NewPCG(o.Seed, uint64(i)+1)), end: s.end, start: o.Start, features: o.Features,
			index: uint64(i), seed: o.Seed}
		src.at = o.Start
		src.advance()
		s.sources = append(s.sources, src)
	}
	for i, p := range o.Pipelines {
		if p.Every <= 0 || len(p.Stages) == 0 || (p.Change != ChangeNone && !slices.Contains(PipelineChanges, p.Change)) {
			return nil, fmt.Errorf("stream: pipeline %q: every %s, %d stages, change %q", p.Name, p.Every, len(p.Stages), p.Change)
		}
		for _, f := range p.Omit {
			if !slices.Contains([]string{"duration_ms", "records_in", "records_out", "null_count"}, f) {
				return nil, fmt.Errorf("stream: pipeline %q: cannot omit %q", p.Name, f)
			}
		}
		src := &pipelineSource{p: p, rng: rand.New(rand.NewPCG(o.Seed, uint64(1000+i))), start: o.Start, end: s.end}
		s.sources = append(s.sources, src)
	}
	return s, nil
}

// Next returns the next record in event-time order; false when the stream has ended.
func (s *Stream) Next() (Record, bool) {
	best := -1
	var at time.Time
	for i, src := range s.sources {
		t := src.peek()
		if t.IsZero() {
			continue
		}
		if best < 0 || t.Before(at) {
			best, at = i, t
		}
	}
	if best < 0 {
		return Record{}, false
	}
	return s.sources[best].next()
}

type modelSource struct {
	m          StreamModel
	rng        *rand.Rand
	start, end time.Time
	at         time.Time // the next event's time; zero when done
	n          int
	features   int
	index      uint64 // the model's place in the stream (its random streams)
	seed       uint64
	minute     int64   // the minute whose bursty factor is cached
	factor     float64 // that factor
}

// shape is the traffic's rate at t relative to its mean, and the most it can be.
func (m *modelSource) shape(t time.Time) (float64, float64) {
	switch m.m.Traffic {
	case TrafficDiurnal:
		h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60 + float64(t.UTC().Second())/3600
		return 1 + 0.8*math.Cos(2*math.Pi*(h-14)/24), 1.8
	case TrafficBursty:
		if minute := t.Unix() / 60; minute != m.minute || m.factor == 0 {
			// Gamma(4, 1/4) from four exponentials, from a generator of its own per
			// minute so that the factor does not depend on how many events came before.
			g := rand.New(rand.NewPCG(m.seed^uint64(minute), 7000+m.index))
			m.minute, m.factor = minute, min((g.ExpFloat64()+g.ExpFloat64()+g.ExpFloat64()+g.ExpFloat64())/4, 4)
		}
		return m.factor, 4
	}
	return 1, 1
}

func (m *modelSource) changed(t time.Time) (bool, time.Duration) {
	since := t.Sub(m.start) - m.m.ChangeAt
	return m.m.Change != ChangeNone && since >= 0, since
}

func (m *modelSource) rate(t time.Time) float64 {
	if on, _ := m.changed(t); on {
		switch m.m.Change {
		case ChangeVolumeDrop:
			return m.m.Rate / 10
		case ChangeStopped:
			return 0
		}
	}
	return m.m.Rate
}

// advance moves to the next arrival: exponential gaps at the rate in force. Arrivals are
// memoryless, so a gap that crosses a change of rate restarts at the change.
func (m *modelSource) advance() {
	if m.m.Traffic != TrafficPoisson {
		m.advanceThinned()
		return
	}
	r := m.rate(m.at)
	if r == 0 {
		m.at = time.Time{} // stopped: nothing more from this model
		return
	}
	next := m.at.Add(time.Duration(m.rng.ExpFloat64() / r * float64(time.Second)))
	if change := m.start.Add(m.m.ChangeAt); m.at.Before(change) && !next.Before(change) && m.rate(change) != r {
		m.at = change
		m.advance()
		return
	}
	m.at = next
	if !m.at.Before(m.end) {
		m.at = time.Time{}
	}
}

// advanceThinned moves to the next arrival of a rate that varies in time (Lewis and
// Shedler's thinning): candidates at the highest rate the traffic reaches, each kept with
// the share of that rate in force at its time.
func (m *modelSource) advanceThinned() {
	_, most := m.shape(m.at)
	top := m.m.Rate * most
	for {
		m.at = m.at.Add(time.Duration(m.rng.ExpFloat64() / top * float64(time.Second)))
		if !m.at.Before(m.end) {
			m.at = time.Time{}
			return
		}
		r := m.rate(m.at)
		if r == 0 {
			m.at = time.Time{} // stopped: nothing more from this model
			return
		}
		f, _ := m.shape(m.at)
		if m.rng.Float64()*top < r*f {
			return
		}
	}
}

func (m *modelSource) peek() time.Time { return m.at }

func (m *modelSource) next() (Record, bool) {
	if m.at.IsZero() {
		return Record{}, false
	}
	at := m.at
	e := m.event(at)
	m.advance()
	return Record{Kind: Prediction, Time: at, Key: e.RequestID, Prediction: e}, true
}

var streamCountries = []string{"DE", "FR", "NL", "US", "GB"}
var streamCountryShare = []float64{0.40, 0.25, 0.15, 0.12, 0.08}

func (m *modelSource) event(at time.Time) *schemas.PredictionEvent {
	rng := m.rng
	on, since := m.changed(at)
	shift, missing, flood, nullPred, latencyX, errRate, sentinel := 0.0, 0.01, 0.0, 0.0, 1.0, 0.003, 0.0
	if on {
		switch m.m.Change {
		case ChangeShift:
			shift = 0.5
		case ChangeTinyShift:
			shift = 0.03
		case ChangeGradual:
			shift = since.Hours() / 2
		case ChangeNewCategory:
			flood = 0.3
		case ChangeMissing:
			missing = 0.45
		case ChangeSentinel:
			sentinel = 0.1
		case ChangeNullPredictions:
			nullPred = 0.1
		case ChangeLatency:
			latencyX = 5
		case ChangeErrors:
			errRate = 0.09
		}
	}
	m.n++
	reqID := m.m.Name + "-" + strconv.Itoa(m.n)
	amount := 100 + 15*(rng.NormFloat64()+shift)
	country := streamCountries[len(streamCountries)-1]
	u := rng.Float64()
	for i, p := range streamCountryShare {
		if u < p {
			country = streamCountries[i]
			break
		}
		u -= p
	}
	if rng.Float64() < flood {
		country = "XX"
	}
	age := schemas.Value{Kind: schemas.Number, Num: float64(18 + rng.IntN(60))}
	if rng.Float64() < missing {
		age = schemas.Value{}
	}
	if sentinel > 0 && rng.Float64() < sentinel {
		age.Num = -1
	}
	session := math.Round(math.Exp(3+0.8*rng.NormFloat64())*10) / 10
	score := 1 / (1 + math.Exp(-(amount-100)/15+rng.NormFloat64()*0.5))
	pred := schemas.Value{Kind: schemas.Number, Num: math.Round(score*1e4) / 1e4}
	if rng.Float64() < nullPred {
		pred = schemas.Value{}
	}
	status := schemas.StatusOK
	switch u := rng.Float64(); {
	case u < errRate:
		status = schemas.StatusError
	case u < errRate+0.0005:
		status = schemas.StatusTimeout
	}
	e := &schemas.PredictionEvent{
		EventID: reqID, RequestID: reqID, Model: m.m.Name, ModelVersion: m.m.Version, Deployment: schemas.DeploymentPrimary,
		Timestamp: at, Status: status, LatencyMs: math.Round((20+rng.ExpFloat64()*8)*latencyX*10) / 10,
		InputSize: float64(3 + rng.IntN(5)), HasInputSize: true,
		Features:   make([]schemas.Feature, 5, m.features),
		Prediction: pred,
	}
	e.Features[0] = schemas.Feature{Name: "amount", Value: schemas.Value{Kind: schemas.Number, Num: math.Round(amount*100) / 100}}
	e.Features[1] = schemas.Feature{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: country}}
	e.Features[2] = schemas.Feature{Name: "age", Value: age}
	e.Features[3] = schemas.Feature{Name: "is_returning", Value: schemas.Value{Kind: schemas.Bool, Num: float64(rng.IntN(2))}}
	e.Features[4] = schemas.Feature{Name: "session_seconds", Value: schemas.Value{Kind: schemas.Number, Num: session}}
	for i, f := range extraFeatures[:m.features-5] {
		v := schemas.Value{Kind: f.kind}
		switch f.kind {
		case schemas.Number:
			// Scales differ from feature to feature, as real features' do.
			v.Num = math.Round((50+float64(i)*10*(1+rng.NormFloat64()*0.2))*100) / 100
		case schemas.String:
			v.Str = extraCategories[min(int(rng.ExpFloat64()*1.5), len(extraCategories)-1)]
		case schemas.Bool:
			v.Num = float64(rng.IntN(2))
		}
		e.Features = append(e.Features, schemas.Feature{Name: f.name, Value: v})
	}
	return e
}

type pipelineSource struct {
	p          StreamPipeline
	rng        *rand.Rand
	start, end time.Time
	run        int // the current run
	stage      int // the next stage of the current run
	in         int64
}

// at is when the next stage event happens: stages finish a tenth of the interval apart.
func (ps *pipelineSource) at() time.Time {
	return ps.start.Add(time.Duration(ps.run)*ps.p.Every + time.Duration(ps.stage+1)*ps.p.Every/time.Duration(10*len(ps.p.Stages)))
}

func (ps *pipelineSource) silent(t time.Time) bool {
	return ps.p.Change == ChangeSilentStage && t.Sub(ps.start) >= ps.p.ChangeAt
}

func (ps *pipelineSource) peek() time.Time {
	t := ps.at()
	if !t.Before(ps.end) || ps.silent(t) {
		return time.Time{}
	}
	return t
}

func (ps *pipelineSource) next() (Record, bool) {
	t := ps.peek()
	if t.IsZero() {
		return Record{}, false
	}
	if ps.stage == 0 {
		ps.in = int64(10000 + ps.rng.IntN(500))
	}
	name := ps.p.Stages[ps.stage]
	status, errText, out := schemas.StageSucceeded, "", ps.in-int64(ps.rng.IntN(20))
	duration := math.Round(2000 * math.Exp(0.25*ps.rng.NormFloat64()))
	nulls := int64(ps.rng.IntN(int(out/1000) + 1))
	changed := t.Sub(ps.start) >= ps.p.ChangeAt && ps.stage == len(ps.p.Stages)/2
	switch {
	case changed && ps.p.Change == ChangeFailingStage:
		status, errText, out = schemas.StageFailed, "join key customer_id missing", 0
	case changed && ps.p.Change == ChangeSlowStage:
		duration *= 4
	case changed && ps.p.Change == ChangeLossyStage:
		out = ps.in * 7 / 10
	case changed && ps.p.Change == ChangeNullStage:
		nulls = out / 5
	}
	runID := ps.p.Name + "-run-" + strconv.Itoa(ps.run)
	e := &schemas.PipelineEvent{EventID: runID + "-" + name, Pipeline: ps.p.Name, Stage: name, RunID: runID, Status: status,
		Timestamp: t, DurationMs: duration, RecordsIn: ps.in, RecordsOut: out, NullCount: nulls, HasNullCount: true, Error: errText, Models: ps.p.Models}
	for _, f := range ps.p.Omit {
		if ps.p.OmitBefore > 0 && t.Sub(ps.start) >= ps.p.OmitBefore {
			break
		}
		switch f {
		case "duration_ms":
			e.DurationMs, e.NoDuration = 0, true
		case "records_in":
			e.RecordsIn, e.NoRecordsIn = 0, true
		case "records_out":
			e.RecordsOut, e.NoRecordsOut = 0, true
		case "null_count":
			e.NullCount, e.HasNullCount = 0, false
		}
	}
	ps.in = out
	ps.stage++
	if ps.stage == len(ps.p.Stages) {
		ps.stage, ps.run = 0, ps.run+1
	}
	return Record{Kind: Pipeline, Time: t, Key: name, Pipeline: e}, true
}
