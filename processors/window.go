package processors

import (
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/schemas"
)

// Source says where a record came from.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
	// Time is the record's Kafka timestamp (zero if it has none): the producer's or the
	// broker's clock when it was written. With Limits.ClockBound it bounds the watermark.
	Time time.Time
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// WindowSpec is a model's tumbling window size and allowed lateness.
type WindowSpec struct {
	Size, Lateness time.Duration
	// MaxSkew is how far (in event time) one partition may trail the model's fastest
	// partition and still hold the watermark back (default: the larger of 1h and ten
	// windows). A partition further behind is treated as idle; its events may be late.
	MaxSkew time.Duration
}

// SkewBound is MaxSkew, or its default when unset.
func (s WindowSpec) SkewBound() time.Duration {
	if s.MaxSkew > 0 {
		return s.MaxSkew
	}
	return max(time.Hour, 10*s.Size)
}

// lagFactor is how many skew bounds a partition read behind the others (records unread)
// holds the watermark back. Reading order is not the stream: a backlog read at full speed,
// or a member of a spread group re-reading its partitions after a rebalance, can leave a
// partition hours of event time behind the others with its records waiting, and judging
// its windows without them would depend on how the reads interleaved. It is bounded all
// the same, because a partition that cannot be read (its leader down) would otherwise
// hold every window of its models open, in memory, for as long as the outage lasts.
const lagFactor = 10

// Holds reports whether a partition whose newest event is behind the model's newest by
// behind still holds the model's windows open: within the skew bound, or within
// lagFactor skew bounds while it has records not read yet (lagging). One member's
// watermark and a spread group's judge (which reads the partitions' progress) both
// follow it, so that they wait for the same partitions.
func (s WindowSpec) Holds(behind time.Duration, lagging bool) bool {
	if lagging {
		return behind <= lagFactor*s.SkewBound()
	}
	return behind <= s.SkewBound()
}

// Limits bound the state of one window so that memory depends on series, not events.
type Limits struct {
	MaxFeatures   int // features per window; more are counted as dropped
	MaxCategories int // categories per feature beyond the reference's; more go to OtherCategory
	// ClosedRetention is how many closed windows per model are remembered to tell a
	// replayed record (after a restart) from a late one.
	ClosedRetention int
	// MaxSeries bounds the (model, version, deployment) series tracked at once: state is
	// per series, so this bounds memory whatever the events say. A new series beyond it
	// is Rejected until a series falls idle for SeriesIdle.
	MaxSeries  int
	SeriesIdle time.Duration
	// ClockBound keeps every model's watermark at or behind the clock: an event stamped
	// later than clock + lateness counts for the watermark as if stamped then (it is still
	// aggregated into its own window). One event from a clock hours ahead would otherwise
	// carry the watermark away and make every on-time event after it late. The clock is
	// the earlier of the wall clock given to Add and the record's Kafka timestamp
	// (Source.Time): a record re-read later (a replay, a backlog) carries the same Kafka
	// timestamp, so it moves the watermark as it did live. Off for simulated time, which
	// runs ahead of the wall clock.
	ClockBound bool
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxFeatures: 1000, MaxCategories: 200, ClosedRetention: 1000, MaxSeries: 10000, SeriesIdle: 24 * time.Hour}

// Outcome says what Add did with an event.
type Outcome uint8

// Outcomes of Add.
const (
	// Added: the event was aggregated into an open window.
	Added Outcome = iota + 1
	// Late: its window had already closed; the caller records it as late for that window.
	Late
	// Replayed: its window was already closed and written with this record in it (a
	// record re-read after a restart); it must not be counted again.
	Replayed
	// Rejected: the event's series is new and Limits.MaxSeries series are tracked.
	Rejected
)

// Partial is one partition's share of one series' window.
type Partial struct {
	*WindowAgg
	TopicPartition
	FirstOffset, LastOffset int64
	// worker updates the aggregate when the processor has Workers.
	worker int
	// KeepRaw: the partial opened before its version's first-windows reference existed,
	// so its numeric features were not counted between bins; their kept values (Raw) are
	// written with it, so that a merge reaching back into the window after a restart
	// merges and bins them as the window in memory does.
	KeepRaw bool
	// kept are the partial's events while it waits for its layout (kept.go).
	kept *keptEvents
}

// Closed is a closed window of one series: its partials (one per source partition, each
// written as is) and their merge (what detectors evaluate).
type Closed struct {
	Merged   *WindowAgg
	Partials []*Partial
	// Supplement: the window was already written for other partitions (by another group
	// member, or before a restart) and these partials add partitions it lacked. They are
	// written; the merge is only part of the window and is not judged.
	Supplement bool
}

type partialKey struct {
	series SeriesKey
	start  int64
	tp     TopicPartition
}

type modelWindow struct {
	model string
	start int64
}

type modelState struct {
	spec     WindowSpec
	maxEvent int64 // largest event time seen, unix ms
	// partMax is the largest event time seen per partition: the watermark follows the
	// slowest partition, so records that one partition delivers ahead of another (as
	// consumers fetch partitions independently) do not make the other's records late.
	// Values are pointers, as in seen: an event moves its partition's time in place,
	// without a map assignment, on every event.
	partMax   map[TopicPartition]*int64
	watermark int64 // min over active partitions of partMax, minus lateness
	// horizon is the start of the newest window forgotten from closed: older windows
	// cannot be told apart from written ones, so their events count as late.
	horizon   int64
	lastAdded time.Time
	// closed remembers, per closed window start, the last offset written per partition.
	closed map[int64]map[TopicPartition]int64
	// whole marks the windows this processor closed itself: every partition's later
	// records for them are late. A window known only from storage is closed for the
	// partitions stored; another partition's records still complete it (a rebalance
	// moved that partition here before its owner wrote it).
	whole map[int64]bool
	// late marks the windows whose stored offsets of a partition include records recorded
	// as late before a restart (RestoreLate): re-read, they are replays that do not say
	// where the partition stands (position).
	late        map[int64]map[TopicPartition]bool
	closedOrder []int64
	// openEnd is the earliest end of the model's open windows (math.MaxInt64 if none):
	// nothing is ready before the watermark reaches it.
	openEnd int64
	// seen is the newest event time per partition, as partMax counts it but never
	// dropped, and closedEnd the latest end of a window closed here (Progress).
	seen      map[TopicPartition]*int64
	closedEnd int64
	// judged: every window of the model ending at or before it is judged (by this member
	// or another of a spread group); their records are late (Judged).
	judged int64
	// limit is the clock bound of the model's last event (advance). heldBy, if held, is
	// the partition read behind, without the model, at whose newest event time the
	// watermark was last held: it is computed again when that partition is read to its
	// end (Read), as no event of the model may come to move it.
	limit  int64
	heldBy TopicPartition
	held   bool
}

// Processor assigns prediction events to event-time tumbling windows per model and
// closes windows when the model's watermark (largest event time seen minus allowed
// lateness) passes their end. It is not safe for concurrent use: one goroutine owns it.
type Processor struct {
	specFor func(model string) WindowSpec
	limits  Limits
	layouts map[[2]string]*Layout // (model, version)
	models  map[string]*modelState
	open    map[partialKey]*Partial
	// series holds each tracked series' last event (wall clock, unix ms), behind a
	// pointer so that an event of a known series costs one map lookup.
	series    map[SeriesKey]*int64
	lastSweep time.Time
	// forgotten are the series forgotten since Forgotten was last called.
	forgotten []SeriesKey
	// readyDue says some model's watermark has reached its openEnd: Ready, called for
	// every record, scans the open windows only then.
	readyDue bool
	// idle bounds when Idle can close anything next (idleSkip).
	idle idleSkip
	// lagging holds the partitions whose last record read had records after it not read
	// yet (Read): of the partition, whatever model the records were of.
	lagging map[TopicPartition]bool
	// newest is the newest event time per partition over every model (a record added or
	// replayed, as partMax counts it): where a partition's reading stands in event time,
	// for the models it has not delivered yet (HoldUnseen).
	newest map[TopicPartition]int64
	// holdUnseen: partitions read behind hold the models they have not delivered
	// (HoldUnseen). heldBy lists, per partition, the models whose watermark it may hold
	// (modelState.heldBy; entries may be stale).
	holdUnseen bool
	heldBy     map[TopicPartition]map[*modelState]bool
	// resettle: a partition began holding the models it has not delivered since every
	// model was last settled (settleAll, before Ready closes anything).
	resettle bool
	// workers, if set, update the open windows' aggregates (SetWorkers).
	workers *Workers
	// keepEvents says whether a window opening without its version's layout may come
	// after the windows the layout will be built from (KeepEventsOf).
	keepEvents func(model, version string, start int64) bool
	// keptBytes is the size of the events kept by partials, open or closed and not
	// judged yet (MaxKeptBytes).
	keptBytes int64
}

// idleSkip is when Idle, called for every record, can next close a window, so that it
// scans the open windows only then. A model's windows close on Idle once the wall clock
// reaches its last event plus the idle time and the stream clock the end of one of its
// windows plus the lateness. After a scan, every model left needs one or the other to move
// on: nothing closes before the wall clock reaches wall or the stream clock reaches clock.
// Events only push a model's bounds later: a model with a new window has just had an
// event, so it is idle no earlier than wall. A wall clock that went back makes the bounds
// invalid.
type idleSkip struct {
	valid bool
	after time.Duration // the idle time the bounds are for
	wall  time.Time
	clock int64 // unix ms
}

// NewProcessor returns a processor; specFor gives each model's window spec.
func NewProcessor(specFor func(model string) WindowSpec, limits Limits) *Processor {
	if limits.MaxFeatures <= 0 {
		limits.MaxFeatures = DefaultLimits.MaxFeatures
	}
	if limits.MaxCategories <= 0 {
		limits.MaxCategories = DefaultLimits.MaxCategories
	}
	if limits.ClosedRetention <= 0 {
		limits.ClosedRetention = DefaultLimits.ClosedRetention
	}
	if limits.MaxSeries <= 0 {
		limits.MaxSeries = DefaultLimits.MaxSeries
	}
	if limits.SeriesIdle <= 0 {
		limits.SeriesIdle = DefaultLimits.SeriesIdle
	}
	return &Processor{specFor: specFor, limits: limits, layouts: map[[2]string]*Layout{},
		models: map[string]*modelState{}, open: map[partialKey]*Partial{}, series: map[SeriesKey]*int64{},
		lagging: map[TopicPartition]bool{}, newest: map[TopicPartition]int64{}, heldBy: map[TopicPartition]map[*modelState]bool{}}
}

// SetWorkers has w update the windows' aggregates from now on (nil: this goroutine
// updates them, as it does when w has no worker). w is not stopped with the
// processor: one set of workers serves the processors of one owner in turn.
func (p *Processor) SetWorkers(w *Workers) {
	if w != nil && w.Len() == 0 {
		w = nil
	}
	if p.workers == w {
		return // the open windows stay pinned: moving one with updates queued would race
	}
	if p.workers != nil {
		p.workers.sync() // what it was given is applied before anyone else updates
	}
	p.workers = w
	if w != nil {
		for _, part := range p.open {
			part.worker = w.assign()
		}
	}
}

// Layout returns the reference layout of (model, version), nil before its reference.
func (p *Processor) Layout(model, version string) *Layout {
	return p.layouts[[2]string{model, version}]
}

// UnbinnedStarts returns the starts (Unix ms) of the open windows of (model, version)
// from from on that count their events without a layout and kept none to count them
// again with one (kept.go), in no order, once per such partial (its partition and
// deployment slot).
func (p *Processor) UnbinnedStarts(model, version string, from int64) []int64 {
	var out []int64
	for k, part := range p.open {
		if k.series.Model == model && k.series.Version == version && k.start >= from && part.unbinned() {
			out = append(out, k.start)
		}
	}
	return out
}

// SetLayout sets the reference layout used by windows of (model, version) opened from now
// on. The open windows that kept their events for it are counted again with it (kept.go).
func (p *Processor) SetLayout(model, version string, l *Layout) {
	p.layouts[[2]string{model, version}] = l
	var adopt []*Partial
	for k, part := range p.open {
		if part.kept != nil && k.series.Model == model && k.series.Version == version {
			adopt = append(adopt, part)
		}
	}
	if len(adopt) > 0 && p.workers != nil {
		p.workers.sync() // the workers hold pointers to the aggregates replaced
	}
	for _, part := range adopt {
		part.adopt(l)
	}
}

// KeepEventsOf sets f to say whether a window of (model, version) starting at start,
// opening without a layout, may come after the windows its layout is still to be built
// from: its events are then kept until the layout is set (kept.go). nil: none is.
func (p *Processor) KeepEventsOf(f func(model, version string, start int64) bool) {
	p.keepEvents = f
}

func (p *Processor) model(name string) *modelState {
	m, ok := p.models[name]
	if !ok {
		spec := p.specFor(name)
		m = &modelState{spec: spec, maxEvent: minTime, watermark: minTime, horizon: minTime, partMax: map[TopicPartition]*int64{}, closed: map[int64]map[TopicPartition]int64{}, whole: map[int64]bool{}, late: map[int64]map[TopicPartition]bool{},
			openEnd: math.MaxInt64, seen: map[TopicPartition]*int64{}, closedEnd: minTime, judged: minTime}
		p.models[name] = m
	}
	return m
}

const minTime = -1 << 62

// WindowOf returns the window [start, end) in unix ms that holds t for a window size.
func WindowOf(t time.Time, size time.Duration) (int64, int64) {
	ms, sz := t.UnixMilli(), size.Milliseconds()
	start := ms - ((ms%sz)+sz)%sz
	return start, start + sz
}

// Add aggregates e from src. now is the wall-clock time, used only to close idle models.
// For Late, it also returns the window the event belonged to.
func (p *Processor) Add(e *schemas.PredictionEvent, src Source, now time.Time) (Outcome, int64, int64) {
	sk := SeriesKey{e.Model, e.ModelVersion, e.Deployment}
	last, ok := p.series[sk]
	if !ok {
		if len(p.series) >= p.limits.MaxSeries && !p.forgetIdleSeries(now, e.Model) {
			return Rejected, 0, 0
		}
		last = new(int64)
		p.series[sk] = last
	}
	*last = now.UnixMilli()
	m := p.model(e.Model)
	start, end := WindowOf(e.Timestamp, m.spec.Size)
	tp := TopicPartition{src.Topic, src.Partition}
	if parts, ok := m.closed[start]; ok {
		if last, ok := parts[tp]; ok {
			if src.Offset <= last {
				if !m.late[start][tp] {
					p.position(m, tp, e, src, now, false)
				}
				return Replayed, start, end
			}
			return Late, start, end
		}
		if m.whole[start] {
			return Late, start, end
		}
	}
	if start <= m.horizon || end <= m.judged {
		return Late, start, end
	}
	layout := p.layouts[[2]string{e.Model, e.ModelVersion}]
	if layout != nil && !layout.Applies(start) {
		layout = nil
	}
	key := partialKey{sk, start, tp}
	part, ok := p.open[key]
	if !ok {
		part = &Partial{WindowAgg: newWindowAgg(key.series, start, end), TopicPartition: tp, FirstOffset: src.Offset}
		if p.workers != nil {
			part.worker = p.workers.assign()
		}
		if p.layouts[[2]string{e.Model, e.ModelVersion}] == nil && p.keepEvents != nil && p.keptBytes < MaxKeptBytes && p.keepEvents(e.Model, e.ModelVersion, start) {
			part.kept = &keptEvents{count: &p.keptBytes, lim: p.limits}
		}
		p.open[key] = part
		m.openEnd = min(m.openEnd, end)
	}
	if part.kept != nil {
		p.keep(part, e)
	}
	if p.workers != nil {
		p.workers.add(part.worker, part.WindowAgg, e, layout, &p.limits)
	} else {
		part.add(e, layout, p.limits)
	}
	if src.Offset < part.FirstOffset {
		part.FirstOffset = src.Offset
	}
	if src.Offset > part.LastOffset {
		part.LastOffset = src.Offset
	}
	p.position(m, tp, e, src, now, true)
	if now.Before(m.lastAdded) {
		p.idle.valid = false // the wall clock went back: the model may be idle earlier than bounded
	}
	m.lastAdded = now
	return Added, start, end
}

// position moves the model's watermark for e, read from tp: for a record added, and for
// one replayed (re-read after a restart or a rebalance, its window written before),
// which says where its partition's reading stands as truly as a new one. A partition
// re-reading an hour of closed windows must hold the model's open ones until it is past
// them, or its new records for them come back late: a result that would depend on how
// the partitions' reads interleaved. A late record does not, nor one recorded as late
// before a restart (RestoreLate): on a partition that does not carry the model
// otherwise, a straggler would hold the model's windows back. A replayed record holds the
// watermark only (added false): the partition's progress (Progress, what a spread group's
// judges read) starts with its first record added, so the rows its last reader wrote
// before the restart stand until this member has something newer to say.
func (p *Processor) position(m *modelState, tp TopicPartition, e *schemas.PredictionEvent, src Source, now time.Time, added bool) {
	limit := int64(math.MaxInt64)
	if p.limits.ClockBound {
		clock := now
		if !src.Time.IsZero() && src.Time.Before(clock) {
			clock = src.Time
		}
		limit = clock.UnixMilli() + m.spec.Lateness.Milliseconds()
	}
	ts := min(e.Timestamp.UnixMilli(), limit)
	if p.holdUnseen {
		cur, ok := p.newest[tp]
		if !ok || ts > cur {
			p.newest[tp] = ts
		}
		if !ok && p.lagging[tp] {
			// Placed for the first time, read behind: the models that advanced before
			// did so without its hold (settled before anything closes: Ready).
			p.resettle = true
		}
	}
	was, wasHeld := m.heldBy, m.held
	m.advance(tp, ts, limit, p.lagging, p.unseen(), added)
	p.watch(m, was, wasHeld)
}

// settleAll settles every model that has advanced again: a partition began holding the
// models it has not delivered (HoldUnseen).
func (p *Processor) settleAll() {
	p.resettle = false
	for _, m := range p.models {
		if m.limit == 0 { // never advanced: nothing to settle
			continue
		}
		was, wasHeld := m.heldBy, m.held
		m.settle(p.lagging, p.unseen())
		p.watch(m, was, wasHeld)
	}
}

// unseen is where the partitions read behind stand, for the models they have not
// delivered: nil unless they hold them (HoldUnseen).
func (p *Processor) unseen() map[TopicPartition]int64 {
	if !p.holdUnseen {
		return nil
	}
	return p.newest
}

// HoldUnseen sets whether a partition read behind holds the models it has not delivered
// yet (off when a processor is made). For a start-up: a partition holds a model's
// windows from its first record of that model, and in a backlog another partition's
// first fetches can carry a model past records this one has still to deliver. On, it
// holds each model it has not delivered at its newest event time (over every model)
// less the skew bound: at about the time it has reached for its other models, a model
// that trails them there by up to the skew bound included. Windows can then close while
// a start-up grace lasts, instead of every window a backlog opens being held until its
// end; a pipeline turns it off when the grace's time is over, as for good a partition
// read behind must hold only its own models (one whose leader is down would otherwise
// hold every model's windows open for up to ten skew bounds). Turned off, the models it
// held are settled again at once.
func (p *Processor) HoldUnseen(on bool) {
	if on == p.holdUnseen {
		return
	}
	p.holdUnseen = on
	if on {
		return
	}
	p.resettle = false // what it was for is off
	for tp := range p.heldBy {
		p.release(tp)
	}
}

// release settles again the models tp held (heldBy), as it holds them no more: read to
// its end, or the hold is off.
func (p *Processor) release(tp TopicPartition) {
	set := p.heldBy[tp]
	delete(p.heldBy, tp)
	for m := range set {
		if m.held && m.heldBy == tp {
			m.settle(p.lagging, p.unseen())
			p.watch(m, tp, true)
		}
	}
}

// watch lists m under the partition that now holds its watermark, if it changed from
// was, and notes when m has windows ready.
func (p *Processor) watch(m *modelState, was TopicPartition, wasHeld bool) {
	if m.held && (!wasHeld || m.heldBy != was) {
		set := p.heldBy[m.heldBy]
		if set == nil {
			set = map[*modelState]bool{}
			p.heldBy[m.heldBy] = set
		}
		set[m] = true
	}
	if m.openEnd <= m.watermark {
		p.readyDue = true
	}
}

// Read records that a record of tp was read, and whether its partition had records after
// it not read yet when it was fetched (lagging): a partition behind the others in event
// time because it is read behind them is not idle, and holds the watermark back longer
// (WindowSpec.Holds). Call it for every record of the topic, before anything sets the
// record aside (a record that is late, replayed, dead-lettered or a transaction's marker
// may be the partition's last), and before Add.
func (p *Processor) Read(tp TopicPartition, lagging bool) {
	if lagging == p.lagging[tp] { // a read per record; a write only when it changes
		return
	}
	if lagging {
		p.lagging[tp] = true
		if _, placed := p.newest[tp]; placed && p.holdUnseen {
			// Read behind again: it holds the models it has not delivered. Settled before
			// anything closes (Ready): live, this flips with every fetch batch.
			p.resettle = true
		}
		return
	}
	delete(p.lagging, tp)
	// Read to its end, the partition stops holding the models it did not carry: a model
	// whose last events came while it was behind would otherwise wait for the idle close.
	p.release(tp)
}

// Lagging reports whether the last record read from tp said it had records not read yet
// (Read).
func (p *Processor) Lagging(tp TopicPartition) bool { return p.lagging[tp] }

// Positioned reports whether a record of tp has placed its partition in event time (a
// record added or replayed while HoldUnseen is on): from then on, while read behind, it
// holds the models it has not delivered.
func (p *Processor) Positioned(tp TopicPartition) bool {
	_, ok := p.newest[tp]
	return ok
}

// advance moves the model's watermark for an event of time ts from tp, ts at most limit
// (Limits.ClockBound); lagging are the partitions read behind, unseen where they stand
// for the models they have not delivered (nil: they hold none; HoldUnseen). seen: the
// event counts in the partition's progress too (position).
func (m *modelState) advance(tp TopicPartition, ts, limit int64, lagging map[TopicPartition]bool, unseen map[TopicPartition]int64, seen bool) {
	if seen {
		if cur := m.seen[tp]; cur == nil {
			t := ts // declared here, so that only a new entry allocates
			m.seen[tp] = &t
		} else if ts > *cur {
			*cur = ts
		}
	}
	switch cur := m.partMax[tp]; {
	case cur == nil:
		t := ts
		m.partMax[tp] = &t
	case ts <= *cur:
		return
	default:
		*cur = ts
	}
	m.maxEvent = max(m.maxEvent, ts)
	m.limit = limit
	m.settle(lagging, unseen)
}

// settle computes the model's watermark from its partitions' places (advance).
func (m *modelState) settle(lagging map[TopicPartition]bool, unseen map[TopicPartition]int64) {
	// maxEvent may be ahead of limit when it was restored from a window written before
	// (Restore) or counted under a later clock of another partition's records.
	top := min(m.maxEvent, m.limit)
	wm := top
	for p, t := range m.partMax {
		if !m.spec.Holds(time.Duration(top-*t)*time.Millisecond, lagging[p]) {
			delete(m.partMax, p) // idle or far behind: stop holding the watermark
			continue
		}
		wm = min(wm, *t)
	}
	m.held = false
	if unseen != nil { // the hold is on (HoldUnseen)
		for p := range lagging {
			t, ok := unseen[p]
			if _, carries := m.partMax[p]; !ok || carries || !m.spec.Holds(time.Duration(top-t)*time.Millisecond, true) {
				continue
			}
			if t -= m.spec.SkewBound().Milliseconds(); t < wm {
				wm, m.heldBy, m.held = t, p, true
			}
		}
	}
	// Not monotonic on purpose: a partition seen for the first time pulls the watermark
	// back, and windows it still feeds stay open. Closed windows stay closed (m.closed).
	m.watermark = wm - m.spec.Lateness.Milliseconds()
}

// Ready closes and returns every open window whose end the model's watermark has passed.
// It costs nothing until a watermark reaches the earliest end of its model's windows.
func (p *Processor) Ready() []Closed {
	if p.resettle {
		p.settleAll()
	}
	if !p.readyDue {
		return nil
	}
	return p.close(func(k partialKey, m *modelState) bool { return k.start+m.spec.Size.Milliseconds() <= m.watermark })
}

// Idle closes the open windows of models that received no event for idle (wall clock)
// and whose end, plus the lateness, the stream's event-time clock has passed: the last
// windows of a stream that stopped are not held forever, and a model quiet for a while
// inside a window (bursts, a pipeline running every few minutes into hourly windows) keeps
// it open until the stream's time has reached its end, as a backlog read would.
// It scans the open windows only once the clocks reach the bounds of the last scan
// (idleSkip).
func (p *Processor) Idle(now time.Time, idle time.Duration, clock time.Time) []Closed {
	c := clock.UnixMilli()
	if s := p.idle; s.valid && s.after == idle && now.Before(s.wall) && c < s.clock {
		return nil
	}
	out := p.close(func(k partialKey, m *modelState) bool {
		return now.Sub(m.lastAdded) >= idle && k.start+(m.spec.Size+m.spec.Lateness).Milliseconds() <= c
	})
	// Every model with windows left has them ending after c (its idle ones were closed):
	// one already idle waits for the stream clock, one not idle yet for the wall clock.
	s := idleSkip{valid: true, after: idle, clock: math.MaxInt64}
	for _, m := range p.models {
		if m.openEnd == math.MaxInt64 {
			continue
		}
		if at := m.lastAdded.Add(idle); now.Before(at) {
			if s.wall.IsZero() || at.Before(s.wall) {
				s.wall = at
			}
		} else {
			s.clock = min(s.clock, m.openEnd+m.spec.Lateness.Milliseconds())
		}
	}
	if s.wall.IsZero() {
		s.wall = now.Add(idle) // no model waits for the wall clock: any new one waits at least this long
	}
	p.idle = s
	return out
}

// CloseAll closes every open window (used at shutdown and in tests).
func (p *Processor) CloseAll() []Closed {
	return p.close(func(partialKey, *modelState) bool { return true })
}

func (p *Processor) close(due func(partialKey, *modelState) bool) []Closed {
	if p.workers != nil {
		p.workers.sync()
	}
	groups := map[modelWindow]map[SeriesKey][]*Partial{}
	for _, m := range p.models {
		m.openEnd = math.MaxInt64
	}
	for k, part := range p.open {
		m := p.models[k.series.Model]
		if !due(k, m) {
			m.openEnd = min(m.openEnd, k.start+m.spec.Size.Milliseconds())
			continue
		}
		delete(p.open, k)
		mw := modelWindow{k.series.Model, k.start}
		if groups[mw] == nil {
			groups[mw] = map[SeriesKey][]*Partial{}
		}
		groups[mw][k.series] = append(groups[mw][k.series], part)
	}
	var out []Closed
	for mw, bySeries := range groups {
		m := p.models[mw.model]
		m.closedEnd = max(m.closedEnd, mw.start+m.spec.Size.Milliseconds())
		_, supplement := m.closed[mw.start]
		written := map[TopicPartition]int64{}
		for series, parts := range bySeries {
			sort.Slice(parts, func(i, j int) bool {
				if parts[i].Topic != parts[j].Topic {
					return parts[i].Topic < parts[j].Topic
				}
				return parts[i].Partition < parts[j].Partition
			})
			for _, part := range parts {
				if part.LastOffset > written[part.TopicPartition] {
					written[part.TopicPartition] = part.LastOffset
				}
			}
			out = append(out, Closed{Merged: mergePartials(series, mw.start, parts), Partials: parts, Supplement: supplement})
		}
		p.markClosed(m, mw.start, written, true)
	}
	p.readyDue = false
	for _, m := range p.models {
		if m.openEnd <= m.watermark {
			p.readyDue = true
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Merged, out[j].Merged
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.Series.Model != b.Series.Model {
			return a.Series.Model < b.Series.Model
		}
		if a.Series.Version != b.Series.Version {
			return a.Series.Version < b.Series.Version
		}
		return a.Series.Deployment < b.Series.Deployment
	})
	return out
}

func (p *Processor) markClosed(m *modelState, start int64, written map[TopicPartition]int64, whole bool) {
	parts, ok := m.closed[start]
	if !ok {
		parts = map[TopicPartition]int64{}
		m.closed[start] = parts
		m.closedOrder = append(m.closedOrder, start)
		sort.Slice(m.closedOrder, func(i, j int) bool { return m.closedOrder[i] < m.closedOrder[j] })
	}
	for tp, off := range written {
		if cur, ok := parts[tp]; !ok || off > cur {
			parts[tp] = off
		}
	}
	if whole {
		m.whole[start] = true
	}
	for len(m.closedOrder) > p.limits.ClosedRetention {
		m.horizon = max(m.horizon, m.closedOrder[0])
		delete(m.closed, m.closedOrder[0])
		delete(m.whole, m.closedOrder[0])
		delete(m.late, m.closedOrder[0])
		m.closedOrder = m.closedOrder[1:]
	}
}

// Restore tells the processor, after a restart, that a window of model was already
// written with records of tp up to lastOffset, and that the model's event time had
// reached at least end. Records re-read from Kafka for it are then Replayed, not counted.
func (p *Processor) Restore(model string, start, end int64, tp TopicPartition, lastOffset int64) {
	p.Written(model, start, tp, lastOffset)
	m := p.model(model)
	m.maxEvent = max(m.maxEvent, end)
}

// Written tells the processor that a window of model was written (by this member or
// another) with records of tp up to lastOffset: records of it read again are Replayed.
// Unlike Restore it leaves the model's event-time clock where this member's own
// records put it.
func (p *Processor) Written(model string, start int64, tp TopicPartition, lastOffset int64) {
	p.markClosed(p.model(model), start, map[TopicPartition]int64{tp: lastOffset}, false)
}

// Spec returns model's window spec.
func (p *Processor) Spec(model string) WindowSpec { return p.specFor(model) }

// SkewBound is the least skew bound of the models windowed (0 before any): partitions
// read no further apart than it in event time hold every model's windows, read behind
// or not.
func (p *Processor) SkewBound() time.Duration {
	var b time.Duration
	for _, m := range p.models {
		if s := m.spec.SkewBound(); b == 0 || s < b {
			b = s
		}
	}
	return b
}

// JudgedThrough returns how far model is known to be judged (Judged; unix ms), very
// early when not at all.
func (p *Processor) JudgedThrough(model string) int64 {
	if m := p.models[model]; m != nil {
		return m.judged
	}
	return minTime
}

// RestoreLate tells the processor, after a restart, that records of tp up to lastOffset
// for a window of model were recorded as late: re-read, they are Replayed too, but they
// do not hold the model's watermark (a straggler's partition may not carry the model
// otherwise).
func (p *Processor) RestoreLate(model string, start, end int64, tp TopicPartition, lastOffset int64) {
	p.Restore(model, start, end, tp, lastOffset)
	m := p.model(model)
	if _, ok := m.closed[start]; !ok {
		return // already past the retention of closed windows
	}
	if m.late[start] == nil {
		m.late[start] = map[TopicPartition]bool{}
	}
	m.late[start][tp] = true
}

// Judged says that every window of model ending at or before through (unix ms) is
// judged: a spread group's judge judged it from what every member had written. Records
// of those windows that this processor has not aggregated yet are late.
func (p *Processor) Judged(model string, through int64) {
	m := p.model(model)
	m.judged = max(m.judged, through)
}

// ModelProgress is how far one model's windows are final here (pipeline/spread.go).
type ModelProgress struct {
	Model string
	// Through: every window of the model ending at or before it (unix ms) is closed
	// here, so the records of this processor's partitions in it are final (for records
	// in order within their partition): the watermark, or past it the end of the last
	// window closed on the idle rule, and never an open window's end.
	Through int64
	// EventMax is the newest event time per partition (unix ms, bounded as the watermark
	// counts it).
	EventMax map[TopicPartition]int64
	// Lagging are the partitions of EventMax read behind (Read).
	Lagging map[TopicPartition]bool
}

// Progress returns each model's progress, by model name. Call it once the windows the
// watermark has passed are closed (after Ready).
func (p *Processor) Progress() []ModelProgress {
	out := make([]ModelProgress, 0, len(p.models))
	for name, m := range p.models {
		if len(m.seen) == 0 {
			continue
		}
		through := max(m.watermark, m.closedEnd)
		if m.openEnd != math.MaxInt64 {
			through = min(through, m.openEnd-m.spec.Size.Milliseconds())
		}
		mp := ModelProgress{Model: name, Through: through, EventMax: make(map[TopicPartition]int64, len(m.seen))}
		for tp, t := range m.seen {
			mp.EventMax[tp] = *t
			if p.lagging[tp] {
				if mp.Lagging == nil {
					mp.Lagging = map[TopicPartition]bool{}
				}
				mp.Lagging[tp] = true
			}
		}
		out = append(out, mp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// OpenSeries returns the series that have an open window.
func (p *Processor) OpenSeries() map[SeriesKey]bool {
	out := make(map[SeriesKey]bool, len(p.series))
	for k := range p.open {
		out[k.series] = true
	}
	return out
}

// CloseEmpty records that a series' window [start, end) was closed with no events (the
// series fell silent while the stream went on): when no partition of the model has the
// window open, it is closed as a whole, so that an event for it coming later counts as
// late instead of reopening a window already judged.
func (p *Processor) CloseEmpty(series SeriesKey, start int64) {
	m := p.model(series.Model)
	for k := range p.open {
		if k.series.Model == series.Model && k.start == start {
			return
		}
	}
	p.markClosed(m, start, nil, true)
}

// CommitOffsets returns, for every partition that has records in open windows, the
// first offset of the oldest such record: committing more would lose those records if
// the process died before their windows are written.
func (p *Processor) CommitOffsets() map[TopicPartition]int64 {
	out := map[TopicPartition]int64{}
	for k, part := range p.open {
		if off, ok := out[k.tp]; !ok || part.FirstOffset < off {
			out[k.tp] = part.FirstOffset
		}
	}
	return out
}

// forgetIdleSeries forgets series without an event for Limits.SeriesIdle and without
// open windows (and models left without series, but adding, the model of the event being
// added), and reports whether any was. It runs at most once a minute: under a flood of
// new series it would otherwise scan every event.
func (p *Processor) forgetIdleSeries(now time.Time, adding string) bool {
	if now.Sub(p.lastSweep) < time.Minute {
		return false
	}
	p.lastSweep = now
	busy := map[SeriesKey]bool{}
	for k := range p.open {
		busy[k.series] = true
	}
	cutoff := now.Add(-p.limits.SeriesIdle).UnixMilli()
	forgotten, kept := map[string]bool{}, map[string]bool{}
	for k, last := range p.series {
		if *last <= cutoff && !busy[k] {
			delete(p.series, k)
			p.forgotten = append(p.forgotten, k)
			forgotten[k.Model] = true
		} else {
			kept[k.Model] = true
		}
	}
	for name := range forgotten {
		// The model of the event being added keeps its state: which windows are closed
		// and judged decides whether that event is late.
		if !kept[name] && name != adding {
			if m := p.models[name]; m != nil && m.held {
				delete(p.heldBy[m.heldBy], m)
			}
			delete(p.models, name)
		}
	}
	return len(forgotten) > 0
}

// Forgotten returns the series forgotten (idle, to make room for new ones) since it was
// last called: their owner drops what it keeps about them.
func (p *Processor) Forgotten() []SeriesKey {
	f := p.forgotten
	p.forgotten = nil
	return f
}

// Limits returns the processor's limits (defaults filled in).
func (p *Processor) Limits() Limits { return p.limits }

// Series returns how many series are tracked.
func (p *Processor) Series() int { return len(p.series) }

// OpenWindows returns how many partial windows are open.
func (p *Processor) OpenWindows() int { return len(p.open) }
