package pipeline_test

// Traffic nobody here simulated: streams written here (not by the simulator) read by the real
// pipeline in memory, live or as a backlog, with the default settings.

import (
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
)

// revRec is one record a producer writes.
type revRec struct {
	at    time.Time
	topic string
	key   string
	value []byte
}

// revGen yields a producer's records in event-time order.
type revGen interface {
	peek() time.Time // zero when done
	next() revRec
}

// revModel is a prediction producer: arrivals at rate(t) events/s (thinned Poisson, or
// fixed gaps when every > 0), bodies from body.
type revModel struct {
	name, version, deployment string
	rate                      func(t time.Time) float64
	maxRate                   float64
	end                       time.Time
	rng                       *rand.Rand
	at                        time.Time
	n                         int
	// body returns the JSON fields after the common ones (features, prediction, ...),
	// without braces; "" gives the default body.
	body func(m *revModel, t time.Time) string
	// times, when set, gives the arrival times instead of rate (sorted).
	times []time.Time
}

func newRevModel(seed uint64, name, version, deployment string, start, end time.Time, maxRate float64, rate func(time.Time) float64) *revModel {
	m := &revModel{name: name, version: version, deployment: deployment, rate: rate, maxRate: maxRate, end: end,
		rng: rand.New(rand.NewPCG(seed, uint64(len(name))*7919+uint64(len(deployment)))), at: start}
	m.advance()
	return m
}

func (m *revModel) advance() {
	if m.times != nil {
		if m.n < len(m.times) {
			m.at = m.times[m.n]
		} else {
			m.at = time.Time{}
		}
		return
	}
	for {
		m.at = m.at.Add(time.Duration(m.rng.ExpFloat64() / m.maxRate * float64(time.Second)))
		if !m.at.Before(m.end) {
			m.at = time.Time{}
			return
		}
		if m.rng.Float64()*m.maxRate < m.rate(m.at) {
			return
		}
	}
}

func (m *revModel) peek() time.Time { return m.at }

func defaultBody(m *revModel, _ time.Time) string {
	rng := m.rng
	amount := 100 + 15*rng.NormFloat64()
	countries := []string{"DE", "FR", "NL", "US", "GB"}
	country := countries[min(int(rng.ExpFloat64()*1.5), 4)]
	age := fmt.Sprint(18 + rng.IntN(60))
	if rng.Float64() < 0.01 {
		age = "null"
	}
	status := "ok"
	if u := rng.Float64(); u < 0.003 {
		status = "error"
	} else if u < 0.0035 {
		status = "timeout"
	}
	score := 1 / (1 + math.Exp(-(amount-100)/15+rng.NormFloat64()*0.5))
	return fmt.Sprintf(`"features":{"amount":%.2f,"country":%q,"age":%s,"is_returning":%t},"prediction":%.4f,"latency_ms":%.1f,"status":%q,"input_size":%d`,
		amount, country, age, rng.IntN(2) == 1, score, 20+rng.ExpFloat64()*8, status, 3+rng.IntN(5))
}

func (m *revModel) next() revRec {
	at := m.at
	m.n++
	body := defaultBody
	if m.body != nil {
		body = m.body
	}
	id := fmt.Sprintf("%s-%s-%s-%d", m.name, m.version, m.deployment, m.n)
	dep := ""
	if m.deployment != "" {
		dep = fmt.Sprintf(`"deployment":%q,`, m.deployment)
	}
	v := fmt.Sprintf(`{"event_id":%q,"request_id":%q,"model":%q,"model_version":%q,%s"timestamp":%d,%s}`,
		id, id, m.name, m.version, dep, at.UnixMilli(), body(m, at))
	m.advance()
	return revRec{at: at, topic: replay.PredictionTopic, key: m.name, value: []byte(v)}
}

// revPipeline emits succeeded stage events of one pipeline at the run times runAt gives.
type revPipeline struct {
	name   string
	stages []string
	runs   []time.Time // run start times
	run    int
	stage  int
	rng    *rand.Rand
}

func (p *revPipeline) at() time.Time {
	if p.run >= len(p.runs) {
		return time.Time{}
	}
	return p.runs[p.run].Add(time.Duration(p.stage+1) * 20 * time.Second)
}
func (p *revPipeline) peek() time.Time { return p.at() }
func (p *revPipeline) next() revRec {
	t := p.at()
	st := p.stages[p.stage]
	runID := fmt.Sprintf("%s-run-%d", p.name, p.run)
	in := 10000 + p.rng.IntN(500)
	v := fmt.Sprintf(`{"event_id":"%s-%s","pipeline":%q,"stage":%q,"run_id":%q,"status":"succeeded","timestamp":%d,"duration_ms":2000,"records_in":%d,"records_out":%d}`,
		runID, st, p.name, st, runID, t.UnixMilli(), in, in-p.rng.IntN(20))
	p.stage++
	if p.stage == len(p.stages) {
		p.stage, p.run = 0, p.run+1
	}
	return revRec{at: t, topic: replay.PipelineTopic, key: st, value: []byte(v)}
}

// revMerge merges generators in event-time order.
type revMerge []revGen

func (h revMerge) Len() int           { return len(h) }
func (h revMerge) Less(i, j int) bool { return h[i].peek().Before(h[j].peek()) }
func (h revMerge) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *revMerge) Push(x any)        { *h = append(*h, x.(revGen)) }
func (h *revMerge) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }
func newRevMerge(gens ...revGen) *revMerge {
	h := &revMerge{}
	for _, g := range gens {
		if !g.peek().IsZero() {
			*h = append(*h, g)
		}
	}
	heap.Init(h)
	return h
}
func (h *revMerge) nextRec() (revRec, bool) {
	if h.Len() == 0 {
		return revRec{}, false
	}
	g := (*h)[0]
	r := g.next()
	if g.peek().IsZero() {
		heap.Pop(h)
	} else {
		heap.Fix(h, 0)
	}
	return r, true
}

// revSource serves the merged stream as replay.Source does (Live: each record read a
// second after its event time; Backlog: partition batches of 500, the wall clock an hour
// after the stream's end).
type revSource struct {
	wall       time.Time
	parts      int
	pace       replay.Pace
	tail       time.Duration
	stop       func()
	src        *revMerge
	offsets    map[consumers.TopicPartition]int64
	exhausted  time.Time
	read       int
	buffered   map[consumers.TopicPartition][]consumers.Record
	order      []consumers.TopicPartition
	nbuf, turn int
	batch      []consumers.Record
	drained    bool
	verdicts   []detectors.Verdict
	ahead      *consumers.Record // live: the next record, read when the wall clock reaches it
	// stats are the runner's counters after the run.
	stats pipeline.Stats
	// delay, when set, is how long after its event time a record is read live.
	delay func(r revRec) time.Duration
}

func newRevSource(h *revMerge, pace replay.Pace, parts int, tail time.Duration, start, end time.Time) *revSource {
	s := &revSource{parts: parts, pace: pace, tail: tail, src: h, offsets: map[consumers.TopicPartition]int64{},
		buffered: map[consumers.TopicPartition][]consumers.Record{}}
	if pace == replay.Live {
		s.wall = start
	} else {
		s.wall = end.Add(time.Hour)
	}
	return s
}

func (s *revSource) now() time.Time { return s.wall }
func (s *revSource) set(t time.Time) {
	if t.After(s.wall) {
		s.wall = t
	}
}

func (s *revSource) pull() (consumers.Record, bool) {
	r, ok := s.src.nextRec()
	if !ok {
		s.drained = true
		return consumers.Record{}, false
	}
	h := fnv.New32a()
	h.Write([]byte(r.key))
	tp := consumers.TopicPartition{Topic: r.topic, Partition: int(h.Sum32() % uint32(s.parts))}
	off := s.offsets[tp]
	s.offsets[tp] = off + 1
	rt := r.at
	if s.delay != nil {
		rt = r.at.Add(s.delay(r))
	}
	return consumers.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: off, Key: []byte(r.key), Value: r.value,
		Time: rt, HighWaterMark: off + 1}, true
}

func (s *revSource) nextBatched() (consumers.Record, bool) {
	if len(s.batch) == 0 {
		for s.nbuf < 50000 {
			full := false
			for _, q := range s.buffered {
				if len(q) >= 500 {
					full = true
					break
				}
			}
			if full {
				break
			}
			rec, ok := s.pull()
			if !ok {
				break
			}
			tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
			if _, seen := s.buffered[tp]; !seen {
				s.order = append(s.order, tp)
			}
			s.buffered[tp] = append(s.buffered[tp], rec)
			s.nbuf++
		}
		for range s.order {
			tp := s.order[s.turn%len(s.order)]
			s.turn++
			if q := s.buffered[tp]; len(q) > 0 {
				n := min(len(q), 500)
				s.batch, s.buffered[tp] = q[:n], q[n:]
				s.nbuf -= n
				break
			}
		}
		if len(s.batch) == 0 {
			return consumers.Record{}, false
		}
	}
	rec := s.batch[0]
	s.batch = s.batch[1:]
	rec.HighWaterMark = rec.Offset + 1 + int64(len(s.batch)+len(s.buffered[consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}]))
	if !s.drained {
		rec.HighWaterMark++
	}
	return rec, true
}

func (s *revSource) Fetch(ctx context.Context) (consumers.Record, error) {
	if err := ctx.Err(); err != nil {
		return consumers.Record{}, err
	}
	var rec consumers.Record
	var ok bool
	if s.pace == replay.Backlog {
		rec, ok = s.nextBatched()
	} else {
		if s.ahead == nil {
			if r, ok := s.pull(); ok {
				s.ahead = &r
			}
		}
		if s.ahead != nil && s.ahead.Time.After(s.now().Add(time.Second)) {
			// Nothing to read yet: the consumer's poll times out and the wall clock runs on.
			s.set(s.now().Add(time.Second))
			return consumers.Record{}, context.DeadlineExceeded
		}
		if s.ahead != nil {
			rec, ok, s.ahead = *s.ahead, true, nil
		}
	}
	if !ok {
		if s.exhausted.IsZero() {
			s.exhausted = s.now()
		}
		s.set(s.now().Add(time.Second))
		if s.now().Sub(s.exhausted) >= s.tail && s.stop != nil {
			s.stop()
		}
		return consumers.Record{}, context.DeadlineExceeded
	}
	s.read++
	if s.pace == replay.Live {
		// The wall clock runs on through a quiet gap as it would: in steps of a second.
		s.set(rec.Time.Add(time.Second))
	} else {
		s.set(s.now().Add(time.Millisecond))
	}
	return rec, nil
}

func (s *revSource) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (s *revSource) Assigned() int                                                    { return s.parts }

// revRun reads gens through a pipeline with the default settings (edit changes them).
func revRun(t *testing.T, pace replay.Pace, start, end time.Time, edit func(*config.Config), gens ...revGen) ([]*schemas.AlertEvent, *replay.Store, *revSource) {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	if edit != nil {
		edit(&cfg)
	}
	src := newRevSource(newRevMerge(gens...), pace, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), start, end)
	r, store, sink := runInMemory(t, cfg, src, src.now, func(stop func()) { src.stop = stop }, func(r *pipeline.Runner) {
		r.OnVerdict(func(v detectors.Verdict, _ []*schemas.AlertEvent) { src.verdicts = append(src.verdicts, v) })
	}, 10*time.Minute)
	if len(sink.DeadLetters) > 0 {
		t.Logf("%d dead letters, first: %v", len(sink.DeadLetters), sink.DeadLetters[:min(3, len(sink.DeadLetters))])
	}
	st := r.Stats()
	src.stats = st
	t.Logf("%s: %d records, %d added, %d late, %d windows closed, %d alerts", paceName(pace), st.Records, st.Added, st.Late, st.WindowsClosed, len(store.Alerts))
	return store.Alerts, store, src
}

func paceName(p replay.Pace) string {
	if p == replay.Live {
		return "live"
	}
	return "backlog"
}

// firing returns the firing transitions within [from, to] of window end, as strings.
func firing(alerts []*schemas.AlertEvent, to time.Time) []string {
	var out []string
	for _, x := range replay.Transitions(alerts) {
		// A canary's promote recommendation (info) pages nobody: it is not a false alarm.
		if x.State == schemas.StateFiring && !x.WindowEnd.After(to) && x.Metric != "canary_promote" {
			out = append(out, x.String())
		}
	}
	return out
}

// summaries returns the first n firing alerts' summaries.
func summaries(alerts []*schemas.AlertEvent, n int) string {
	var b strings.Builder
	k := 0
	for _, a := range alerts {
		if a.State != schemas.StateFiring {
			continue
		}
		if k == n {
			break
		}
		k++
		fmt.Fprintf(&b, "\n  [%s %s] %s", a.Kind, a.Severity, a.Summary)
	}
	return b.String()
}

// countKinds counts firing alerts per kind.
func countKinds(alerts []*schemas.AlertEvent) string {
	n := map[string]int{}
	for _, a := range alerts {
		if a.State == schemas.StateFiring {
			n[a.Kind]++
		}
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}

func constRate(r float64) func(time.Time) float64 { return func(time.Time) float64 { return r } }

// diffTransitions compares two alert sequences; it returns the differing lines.
func diffTransitions(a, b []*schemas.AlertEvent, to time.Time) []string {
	x, y := firingAll(a, to), firingAll(b, to)
	var out []string
	n := max(len(x), len(y))
	for i := 0; i < n; i++ {
		var p, q string
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		if p != q {
			out = append(out, fmt.Sprintf("#%d live %q / backlog %q", i, p, q))
		}
	}
	return out
}

func firingAll(alerts []*schemas.AlertEvent, to time.Time) []string {
	var out []string
	for _, x := range replay.Transitions(alerts) {
		if !x.WindowEnd.After(to) {
			out = append(out, x.String())
		}
	}
	return out
}

// breachedPerWindow lists, per judged window of model, the breached conditions.
func breachedPerWindow(vs []detectors.Verdict, model string) []string {
	var out []string
	for _, v := range vs {
		if v.Window.Series.Model != model {
			continue
		}
		var b []string
		for _, c := range v.Conditions {
			if c.Breached {
				b = append(b, fmt.Sprintf("%s/%s%s=%.3g", c.Kind, c.Metric, "("+c.Feature+")", c.Value))
			}
		}
		out = append(out, fmt.Sprintf("%s %s n=%d %v", time.UnixMilli(v.Window.Start).UTC().Format("15:04"), v.Window.Series.Deployment, v.Window.Events, b))
	}
	return out
}
