// Package pipeline wires driftd's parts into the running job: records from the
// consumers are decoded, aggregated into windows, judged by the detectors, written to
// ClickHouse, alerted on Kafka, and only then committed. One goroutine owns the state.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// Source is where records come from (a *consumers.Consumer).
type Source interface {
	// Fetch returns the next record, or ctx's error, or consumers.ErrRebalanced (wrapped).
	// It retries by itself what may pass; any other error ends the run.
	Fetch(ctx context.Context) (consumers.Record, error)
	Commit(ctx context.Context, next map[consumers.TopicPartition]int64) error
	// Assigned is how many partitions this member reads (0 on a standby).
	Assigned() int
}

// DeadLetterer sets records aside (a *consumers.DeadLetter).
type DeadLetterer interface {
	Send(ctx context.Context, rec consumers.Record, class string, reason error, at time.Time) error
}

// AlertSink publishes alerts (an *AlertPublisher).
type AlertSink interface {
	Publish(ctx context.Context, alerts []*schemas.AlertEvent) error
}

// Store is the ClickHouse side (a *storage.Store).
type Store interface {
	WriteWithRetry(ctx context.Context, b *storage.Batch, bo storage.Backoff, onRetry func(error)) error
	SaveReference(ctx context.Context, p *detectors.Profile) error
	LoadReferences(ctx context.Context) ([]*detectors.Profile, error)
	LoadClosedWindows(ctx context.Context, lookback time.Duration) ([]storage.ClosedWindow, error)
	LoadFiringAlerts(ctx context.Context) ([]storage.FiringAlert, error)
	LoadUnpublishedAlerts(ctx context.Context, lookback time.Duration) ([]*schemas.AlertEvent, error)
	MarkPublished(ctx context.Context, ids []string, at time.Time) error
	LoadClosedStageWindows(ctx context.Context, lookback time.Duration) ([]storage.ClosedWindow, error)
	LoadStageHistory(ctx context.Context, lookback time.Duration) ([]storage.StageHistory, error)
	LoadWindow(ctx context.Context, series processors.SeriesKey, start time.Time) (*processors.WindowAgg, error)
	LoadHourlyEvents(ctx context.Context, lookback time.Duration) ([]storage.HourlyEvents, error)
	LoadVolumeWindows(ctx context.Context, lookback time.Duration, perSeries int) ([]storage.WindowVolume, error)
	LoadSeriesEnds(ctx context.Context, lookback time.Duration) ([]storage.SeriesEnd, error)
	LoadAlertStates(ctx context.Context, lookback time.Duration) ([]detectors.FingerprintState, error)
	LoadStageStates(ctx context.Context, lookback time.Duration) ([]storage.StageState, error)
	LoadReferenceSamples(ctx context.Context) ([]storage.ReferenceSample, error)
	LoadLateWindows(ctx context.Context, lookback time.Duration) ([]storage.ClosedWindow, error)
	labelStore
	shadowStore
	spreadStore
	runStore
}

// Observer receives what the pipeline does (a *telemetry.Metrics).
type Observer interface {
	Consumed(topic string)
	DecodeError(topic, class string)
	DeadLettered(class string)
	Late(topic string)
	Lag(topic string, partition int, lag int64)
	WindowsWritten(waited []time.Duration)
	Insert(took time.Duration, failureClass string)
	Alert(kind, state string)
	State(openWindows, series, partitions int)
	Rebalanced()
}

// NopObserver observes nothing: the Observer of Settings without one, and what an
// observer that wants a few observations embeds for the rest.
type NopObserver struct{}

func (NopObserver) Consumed(string)                {}
func (NopObserver) DecodeError(string, string)     {}
func (NopObserver) DeadLettered(string)            {}
func (NopObserver) Late(string)                    {}
func (NopObserver) Lag(string, int, int64)         {}
func (NopObserver) WindowsWritten([]time.Duration) {}
func (NopObserver) Insert(time.Duration, string)   {}
func (NopObserver) Alert(string, string)           {}
func (NopObserver) State(int, int, int)            {}
func (NopObserver) Rebalanced()                    {}

// Settings are the pipeline's knobs (from config).
type Settings struct {
	PredictionTopic  string
	Decoder          schemas.Decoder
	WindowSpec       func(model string) processors.WindowSpec
	Limits           processors.Limits
	Thresholds       func(model, feature string) detectors.Thresholds
	ReferenceWindows func(model string) int
	// Spread: this member reads a share of the partitions and judges the models whose
	// owner partition it reads (kafka.group_mode spread; spread.go).
	Spread bool
	// JudgeBatch is the most windows of a model a spread judge reads back and judges in
	// one round (0: DefaultJudgeBatch); the rest wait for its next flush.
	JudgeBatch int
	// ReferenceMinEvents is how many events a first-windows reference needs besides its
	// windows (0: none).
	ReferenceMinEvents uint64
	// ReferenceSource is a model's kind of reference: first_windows (or a file loaded with
	// driftd baseline), or a rolling one (detectors.RollingLag).
	ReferenceSource func(model string) detectors.ReferenceSource
	FireAfter       int
	ResolveAfter    int
	FlushInterval   time.Duration
	// CatchUpFlushInterval is how long after the last flush the next may wait while a
	// prediction partition is read a backlog behind (catchingUp; 0 or at most
	// FlushInterval: it never waits).
	CatchUpFlushInterval time.Duration
	IdleClose            time.Duration
	// StartupGrace holds every window open for this long after the first record, so that
	// each assigned partition delivers its first records (and holds the watermark back)
	// before anything closes. Without it, a partition read first would push the watermark
	// past records the others have not delivered yet. A group member also waits until
	// every partition it reads has delivered or has nothing to read (graceOver).
	StartupGrace time.Duration
	// EarlyCloseRecords is how many predictions a member adds to windows in its start-up
	// grace before its prediction windows may close early (Runner.placed; 0: 100,000).
	// The memory the grace costs is what a backlog read at full speed opens in it; a
	// restart after a short outage (its replayed records open no window), or live
	// traffic, adds far fewer and keeps the whole time, which also covers a model that
	// trails its partition's others by more than the skew bound, as long as it comes
	// within the time. By 100,000 predictions, every partition's first fetches have long
	// been delivered.
	EarlyCloseRecords int
	// LabelBatch bounds the prediction keys and labels kept for the label join between
	// two flushes: once this many, they are handed to the label writer ahead of the
	// interval's flush (0: 25,000, half the default clickhouse.max_batch_rows, since two
	// batches are held at once: one being stored, one being read). One key per
	// prediction, they were the largest thing a member held, and with the interval alone
	// their buffer grew with the read rate (46 MiB at 200,000 records/s, twice that after
	// one slow flush, and the buffer kept that size). Batches of 25,000 are stored as
	// fast as of 50,000 (docs/performance.md).
	LabelBatch int
	Backoff    storage.Backoff
	// MaxOutage bounds how long a dependency (ClickHouse, the dead-letter or alert topic,
	// the schema registry) may fail before Run gives up with an error wrapping
	// retry.ErrOutage, so that driftd exits and a standby takes over (0: never).
	MaxOutage time.Duration
	// Observer sees counters and latencies (metrics); nil for none.
	Observer Observer
	// MaxFuture sets aside events stamped further ahead of the wall clock than this (0:
	// no limit): one event from a broken clock in year 2099 would otherwise carry the
	// watermark away and make every later event late. With a limit, the events within it
	// also move the watermark no further than the clock (processors.Limits.ClockBound);
	// 0 is for simulated time, which runs ahead of the wall clock.
	MaxFuture time.Duration
	// MaxEventBytes sets aside records larger than this (0: no limit) before decoding.
	MaxEventBytes int
	// DecodeAhead is how many records a goroutine of their own fetches and decodes ahead
	// of the window updates (ahead.go); 0 decodes inline. Inline is for sources whose
	// Fetch moves a simulated clock (internal/replay): fetching ahead would move the
	// pipeline's wall clock ahead of the records it handles.
	DecodeAhead int
	// AggregateWorkers is how many goroutines update the windows' aggregates while Run
	// runs (processors.Workers); 0 updates them on the pipeline goroutine. The results
	// are the same either way.
	AggregateWorkers int

	// PipelineTopic carries the upstream pipelines' events ("" to ignore them), decoded
	// with PipelineDecoder.
	PipelineTopic      string
	PipelineDecoder    schemas.Decoder
	PipelineWindow     processors.WindowSpec
	PipelineThresholds detectors.PipelineThresholds
	FreshnessFactor    float64
	// StageInterval is a stage's configured expected interval (0: learn it); StagesOf
	// lists the (pipeline, stage) pairs configured as feeding a model.
	StageInterval func(pipeline, stage string) time.Duration
	StagesOf      func(model string) [][2]string

	// LabelTopic carries ground truth for earlier predictions ("" to ignore it), decoded
	// with LabelDecoder and joined as Labels says (labels.go).
	LabelTopic   string
	LabelDecoder schemas.Decoder
	Labels       LabelSettings
	// Canary is how a canary's windows are compared with the primary's (canary.go;
	// zero: detectors.DefaultCanarySettings); Shadow how a shadow's agreement with the
	// primary is judged (shadow.go; zero: detectors.DefaultShadowSettings).
	Canary detectors.CanarySettings
	Shadow detectors.ShadowSettings
}

// DefaultJudgeBatch bounds a spread judge's round (Settings.JudgeBatch): a window read
// back holds its merged bins, sketches and categories per feature, and a judge held back
// for a day of one-minute windows would otherwise read all 1,440 of a model at once.
const DefaultJudgeBatch = 500

// Stats count what the pipeline did; read them with Runner.Stats.
type Stats struct {
	Records, Added, Late, Replayed, DeadLettered uint64
	PipelineRuns, StageWindowsClosed             uint64
	FreshnessChecks                              uint64
	// Labels counts the label records read; PerformanceWindows the windows whose
	// performance was judged.
	Labels, PerformanceWindows            uint64
	WindowsClosed, AlertsEmitted, Flushes uint64
	// Supplements counts the windows closed that only add partitions to one already
	// written and judged without them (processors.Closed.Supplement): records of a
	// partition read, or delivered, after the rest of their window was judged.
	Supplements     uint64
	ReferencesBuilt uint64
	// Rebalances counts the generations that gave this member other partitions (each
	// dropped its state and restored it from ClickHouse).
	Rebalances uint64
	// Paused counts the times a partition read ahead of the others in event time was
	// paused (align.go).
	Paused uint64
	// Started: the start-up grace was over at the flush (labels settle, stage windows
	// close; prediction windows may close earlier: Runner.placed).
	Started bool
}

// Runner is the running pipeline.
type Runner struct {
	set    Settings
	src    Source
	dlq    DeadLetterer
	alerts AlertSink
	store  Store
	log    *slog.Logger
	now    func() time.Time

	proc *processors.Processor
	// workers update proc's aggregates while Run runs (Settings.AggregateWorkers).
	workers *processors.Workers
	// j is the judging stage, with all per-series judging state (judge.go).
	j *judge

	event    schemas.PredictionEvent
	pending  []processors.Closed
	closedAt []time.Time // when each pending window closed (wall clock)
	// built are the first-windows references built as their last windows closed, and
	// shares what the pending windows of versions still building one added to it
	// (judge.buildAtClose): saved and written with the next flush.
	built     []*detectors.Profile
	shares    []storage.ReferenceSample
	late      []storage.LateEvent
	lastSeen  map[consumers.TopicPartition]int64
	lastFlush time.Time
	// stalled are the partitions the source cannot read, with where they stand by their
	// last record (stall.go); last asked at stallAsked.
	stalled    map[consumers.TopicPartition]stall
	stallAsked time.Time
	// align keeps a backlog's windowed partitions read together in event time (align.go).
	align alignment
	// grace is the start-up grace since Run's start or the last rebalance (startup.go).
	grace startup
	stats Stats
	up    *upstream
	lab   *labelState // nil without a label topic
	// labWriter stores full batches of r.lab's keys and labels while Run reads on (nil
	// outside Run). It outlives r.lab, which a rebalance replaces.
	labWriter *labelWriter
	// shadowRefs are the shadow series' references (shadow.go), loaded when first needed.
	shadowRefs map[processors.SeriesKey]*shadowRef
	// extraAlerts are raised between flushes (freshness runs on the clock).
	extraAlerts []*schemas.AlertEvent
	clock       *streamClock
	// on are the callbacks registered (OnFlush, OnVerdict, OnAlert, OnPerformance).
	on hooks
	// outboxDue: stored alerts not recorded as published are to be published once this
	// member reads partitions.
	outboxDue bool
	// unwritten is a judged batch whose write or publish was cut off (write.go).
	unwritten *judged
	// cut says why a flush's judging was cut off half-way (cutJudging): nothing more is
	// written or committed until a rebalance restores the state.
	cut error
	// spread is this member's part in judging a spread group (spread.go); nil otherwise.
	spread *spreadState
}

// New returns a runner. now is the wall clock (time.Now in production).
func New(set Settings, src Source, dlq DeadLetterer, alerts AlertSink, store Store, log *slog.Logger, now func() time.Time) *Runner {
	if set.EarlyCloseRecords <= 0 {
		set.EarlyCloseRecords = 100_000
	}
	if set.LabelBatch <= 0 {
		set.LabelBatch = 25_000
	}
	if set.FlushInterval <= 0 {
		set.FlushInterval = time.Second
	}
	if set.JudgeBatch <= 0 {
		set.JudgeBatch = DefaultJudgeBatch
	}
	if set.Backoff.Initial <= 0 {
		set.Backoff = storage.DefaultBackoff
	}
	if set.Observer == nil {
		set.Observer = NopObserver{}
	}
	set.Limits.ClockBound = set.Limits.ClockBound || set.MaxFuture > 0
	if set.ReferenceSource == nil {
		set.ReferenceSource = func(string) detectors.ReferenceSource { return detectors.SourceFirstWindows }
	}
	if set.StageInterval == nil {
		set.StageInterval = func(string, string) time.Duration { return 0 }
	}
	if set.StagesOf == nil {
		set.StagesOf = func(string) [][2]string { return nil }
	}
	if set.PipelineWindow.Size <= 0 {
		set.PipelineWindow = processors.WindowSpec{Size: time.Hour, Lateness: 5 * time.Minute}
	}
	if set.FreshnessFactor < 1 {
		set.FreshnessFactor = 2
	}
	if set.Labels.Horizon <= 0 {
		set.Labels.Horizon = 7 * 24 * time.Hour
	}
	if set.Labels.Change.ADWIN.Delta <= 0 {
		set.Labels.Change = detectors.DefaultChangeParams()
	}
	if set.Labels.Thresholds.PValue <= 0 {
		set.Labels.Thresholds = detectors.DefaultPerformanceThresholds
	}
	r := &Runner{set: set, src: src, dlq: dlq, alerts: alerts, store: store, log: log, now: now}
	r.reset()
	return r
}

// reset forgets everything derived from records: after a rebalance, the records behind
// it may be another member's to read, and what this member still owns is re-read from
// the committed offsets. Restore then reloads what ClickHouse knows.
func (r *Runner) reset() {
	r.proc = processors.NewProcessor(r.set.WindowSpec, r.set.Limits)
	r.proc.SetWorkers(r.workers)
	r.proc.HoldUnseen(!r.set.Spread) // until the grace's time is over (placed)
	r.j = newJudge(&r.set, r.log, r.store)
	r.j.hint = r.hinter()
	r.lastSeen = map[consumers.TopicPartition]int64{}
	r.stalled, r.stallAsked = map[consumers.TopicPartition]stall{}, time.Time{}
	if ps, ok := r.src.(pauser); ok {
		r.resumeAll(ps)
	}
	r.align = alignment{paused: map[consumers.TopicPartition]bool{}}
	r.pending, r.closedAt, r.late, r.extraAlerts = nil, nil, nil, nil
	r.built, r.shares = nil, nil
	r.unwritten, r.cut = nil, nil
	_, owner := r.src.(partitionOwner)
	_, ends := r.src.(endsSource)
	r.grace = startup{began: r.grace.began, drained: map[consumers.TopicPartition]bool{},
		all: !owner || !ends, addedFrom: r.stats.Added} // a source that cannot tell (a replay): started
	r.clock = newStreamClock()
	r.up = nil
	if r.set.PipelineTopic != "" {
		r.up = newUpstream(r.set)
	}
	r.lab = nil
	if r.set.LabelTopic != "" {
		r.lab = newLabelState()
	}
	r.shadowRefs = map[processors.SeriesKey]*shadowRef{}
	r.spread = nil
	if r.set.Spread {
		r.spread = newSpreadState()
	} else {
		// A spread group's members learn of a reference from its judge, whenever that
		// is: they do not keep events for it (docs/reliability.md).
		r.proc.KeepEventsOf(r.j.afterReferenceWindows)
	}
}

// rebalanced drops this member's state and restores it from ClickHouse, waiting out a
// ClickHouse that cannot answer for up to Settings.MaxOutage.
func (r *Runner) rebalanced(ctx context.Context, cause error) error {
	r.stats.Rebalances++
	r.set.Observer.Rebalanced()
	r.log.Info("partitions reassigned: dropping state built from uncommitted records and restoring from ClickHouse", "cause", cause)
	r.dropLabelBatch()
	// Past limits.max_outage Run ends, as for every other dependency: an active member
	// waiting for ClickHouse here for ever would keep its standby out. Each attempt
	// starts from nothing: Restore adds to what it finds (the volume history, a stage's
	// failures), so one cut off half-way would count those twice.
	if err := retry.Do(ctx, r.set.policy(), "restore after rebalance", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		r.reset()
		return r.Restore(ctx)
	}); err != nil {
		return err
	}
	r.grace.began = r.now()
	return nil
}

// hooks are the callbacks a Runner calls as it goes (nil: none).
type hooks struct {
	flush   func(Stats)
	verdict func(detectors.Verdict, []*schemas.AlertEvent)
	alert   func(*schemas.AlertEvent)
	perf    func([]storage.PerformanceRow)
}

// OnFlush registers a callback run after every flush (metrics, the dev view).
func (r *Runner) OnFlush(f func(Stats)) { r.on.flush = f }

// OnVerdict registers a callback run for every judged window with the alerts it raised
// (the dev view).
func (r *Runner) OnVerdict(f func(detectors.Verdict, []*schemas.AlertEvent)) { r.on.verdict = f }

// OnAlert registers a callback run for every alert published (all kinds).
func (r *Runner) OnAlert(f func(*schemas.AlertEvent)) { r.on.alert = f }

// OnPerformance registers a callback run with every batch of settled windows'
// performance, once written (the dev view).
func (r *Runner) OnPerformance(f func([]storage.PerformanceRow)) { r.on.perf = f }

// Stats returns the counters.
func (r *Runner) Stats() Stats { return r.stats }

// Restore loads what earlier runs left: reference profiles, the windows already written
// (so that re-read records are recognised), and the judging state (restoreJudging).
func (r *Runner) Restore(ctx context.Context) error {
	refs, firing, states, samples, err := r.restoreJudging(ctx)
	if err != nil {
		return err
	}
	closed, err := r.store.LoadClosedWindows(ctx, writtenLookback)
	if err != nil {
		return err
	}
	for _, c := range closed {
		r.proc.Restore(c.Model, c.Start, c.End, processors.TopicPartition{Topic: c.TP.Topic, Partition: c.TP.Partition}, c.LastOffset)
	}
	if r.spread != nil {
		// Read before the windows (restoreJudging): every window judged is among them.
		for m, t := range r.spread.judged {
			r.proc.Judged(m, t.UnixMilli())
		}
	}
	if err := r.restoreLate(ctx); err != nil {
		return err
	}
	// The outbox is emptied once this member reads partitions (drainOutbox): a standby
	// must not publish what the active member is about to.
	r.outboxDue = true
	if r.up != nil {
		if err := r.restoreUpstream(ctx); err != nil {
			return err
		}
	}
	if r.lab != nil {
		if err := r.restoreLabels(ctx); err != nil {
			return err
		}
	}
	r.log.Info("restored state", "references", refs, "closed_windows", len(closed), "firing_alerts", firing,
		"alert_states", states, "reference_windows", samples)
	return nil
}

// restoreJudging loads the judge's state as the windows judged left it: the references,
// where each series' windows end, its volume history, the alerts firing and the
// alerter's hysteresis, the samples of references still being built, and (in a spread
// group) how far each model is judged. It returns how many references, firing alerts,
// alert states and reference windows it found.
func (r *Runner) restoreJudging(ctx context.Context) (refCount, firingCount, stateCount, samples int, err error) {
	refs, err := r.store.LoadReferences(ctx)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, p := range refs {
		r.useReference(p)
	}
	ends, err := r.store.LoadSeriesEnds(ctx, silentSeriesFor+time.Hour)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, e := range ends {
		if e.Size > 0 {
			st := r.j.state(e.Series)
			st.end, st.hasEnd = seriesEnd{end: e.End.UnixMilli(), lastData: e.LastData.UnixMilli(), size: e.Size}, true
		}
	}
	hourly, err := r.store.LoadHourlyEvents(ctx, time.Duration(keepVolDays)*24*time.Hour)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, h := range hourly {
		st := r.j.state(h.Series)
		v := &st.volume
		if v.hours == nil {
			v.hours, v.first = map[int64]hourCount{}, h.Hour.UnixMilli()
		}
		c := v.hours[h.Hour.UnixMilli()]
		c.events, c.windows, c.empty, c.squares = c.events+h.Events, c.windows+h.Windows, c.empty+h.Empty, c.squares+h.Squares
		v.hours[h.Hour.UnixMilli()] = c
		v.first = min(v.first, h.Hour.UnixMilli())
	}
	// Enough windows to find the run of windows below expectation (at most maxRunWindows)
	// and, before it, the recent windows not judged low.
	volume, err := r.store.LoadVolumeWindows(ctx, recentVolumeLookback, maxRunWindows+3*maxRecentWindows)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	bySeries := map[processors.SeriesKey][]storage.WindowVolume{}
	for _, w := range volume {
		bySeries[w.Series] = append(bySeries[w.Series], w)
	}
	for k, ws := range bySeries {
		if st := r.j.state(k); st.hasEnd {
			st.restoreVolume(ws)
		}
	}
	firing, err := r.store.LoadFiringAlerts(ctx)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, a := range firing {
		r.j.alerter.Restore(a.Fingerprint, true, a.Severity)
	}
	// The stored hysteresis, where there is one, is newer than what the alerts say.
	states, err := r.store.LoadAlertStates(ctx, 48*time.Hour)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, st := range states {
		r.j.alerter.RestoreState(st.Fingerprint, st.AlertState)
	}
	if samples, err = r.restoreBuilders(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	if r.spread != nil {
		judged, err := r.store.LoadJudgeProgress(ctx)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		// The processor learns it with the windows written up to there: from Restore,
		// which reads them next, or, judging again (judgeOwned), from learnJudged.
		for _, p := range judged {
			r.spread.judged[p.Model] = p.Through
		}
	}
	return len(refs), len(firing), len(states), samples, nil
}

// adoptBuilt makes a first-windows reference just built the processor's layout, for the
// windows from the end of its own on. Those already opened without it, open or closed and
// not judged yet (closed: pending, and held back for upstream stages), count again with
// it from the events they kept (processors/kept.go); those that could not (beyond what
// is kept, or opened before an earlier window of the version was read) stay whole as they
// opened. Those are recorded in the profile (saved after this), so that a restart reads
// them again as they were read the first time. A window named there, not a bound: one
// event stamped hours ahead opens one window, not all those before it.
func adoptBuilt(proc *processors.Processor, p *detectors.Profile, closed ...[]processors.Closed) {
	from := p.Through.UnixMilli()
	after := func(c processors.Closed) bool {
		s := c.Merged.Series
		return s.Model == p.Model && s.Version == p.Version && c.Merged.Start >= from
	}
	// The windows to leave as they opened first, whole: a window with one partial that
	// could not count again and another that could would be counted by the layout in
	// part only, and read again after a restart not at all.
	raw := proc.UnbinnedStarts(p.Model, p.Version, from)
	for _, list := range closed {
		for _, c := range list {
			if after(c) && c.Unbinned() {
				raw = append(raw, c.Merged.Start)
			}
		}
	}
	if len(raw) > 0 {
		slices.Sort(raw)
		p.RawWindows = slices.Compact(raw)
	}
	l := p.Layout()
	proc.SetLayout(p.Model, p.Version, l)
	for _, list := range closed {
		for i := range list {
			if list[i].KeptEvents() && list[i].Merged.Series.Model == p.Model && list[i].Merged.Series.Version == p.Version {
				list[i].Adopt(l) // the reference's own windows drop their events
			}
		}
	}
}

// useReference makes p the reference of its model version (restored, or loaded by
// driftd baseline): the judge judges against it, the processor bins by its edges.
func (r *Runner) useReference(p *detectors.Profile) {
	r.j.useReference(p)
	r.proc.SetLayout(p.Model, p.Version, p.Layout())
}

// Run consumes until ctx ends, then writes what is closed and returns ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	r.lastFlush = r.now()
	r.grace.began = r.lastFlush
	tick := min(r.set.FlushInterval, time.Second)
	var deadline tickDeadline
	defer deadline.stop()
	fetch := func(ctx context.Context) (ahead, error) {
		rec, err := r.src.Fetch(ctx)
		return ahead{rec: rec}, err
	}
	if r.set.AggregateWorkers > 0 {
		r.workers = processors.NewWorkers(r.set.AggregateWorkers)
		r.proc.SetWorkers(r.workers)
		defer func() {
			// What Run leaves open (Shutdown's flush) is closed without them.
			r.proc.SetWorkers(nil)
			r.workers.Stop()
			r.workers = nil
		}()
	}
	if r.set.DecodeAhead > 0 {
		d := startDecodeAhead(ctx, r.src, r.set)
		defer d.stop()
		fetch = func(ctx context.Context) (ahead, error) {
			a, err := d.next(ctx)
			if err == nil && a.fetchErr != nil {
				err = a.fetchErr
			}
			return a, err
		}
	}
	if r.lab != nil {
		r.labWriter = startLabelWriter(ctx, r.store, r.set.MaxOutage)
		defer r.stopLabelWriter()
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a, err := fetch(deadline.get(ctx, tick))
		switch {
		case err == nil:
			if err := r.handle(ctx, a); err != nil {
				return err
			}
		case err == context.DeadlineExceeded && ctx.Err() == nil:
			// No record within a tick: time to close idle windows and flush. The tick's
			// own error, not one that wraps it: a source's error that gave up on a
			// timeout (a dial's) also says DeadlineExceeded, and ends the run.
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, consumers.ErrRebalanced):
			if err := r.rebalanced(ctx, err); err != nil {
				return err
			}
			continue
		default:
			// The source retried what may pass by itself (consumers.Consumer bounds it by
			// limits.max_outage): this ends the run, and a restart reads again.
			return fmt.Errorf("fetch records: %w", err)
		}
		if r.outboxDue && r.src.Assigned() > 0 {
			if err := r.drainOutbox(ctx); err != nil {
				return err
			}
		}
		now := r.now()
		r.markStalled(now)
		r.realign(now)
		r.checkStarted(ctx, now)
		over := r.graceOver(now)
		if over {
			r.proc.HoldUnseen(false)
		}
		if over || r.placed() {
			// Per record: Ready, Idle and checkFreshness return at once unless something
			// may be due.
			var clock time.Time
			r.enqueue(now, r.holdForUpstream(r.proc.Ready()))
			if over && r.set.IdleClose > 0 { // the idle close does not follow the partitions' holds
				clock = r.clock.now(now)
				r.enqueue(now, r.holdForUpstream(r.proc.Idle(now, r.set.IdleClose, clock)))
			}
			if over && r.up != nil {
				r.up.pending = append(r.up.pending, r.up.proc.Ready()...)
				if r.set.IdleClose > 0 {
					r.up.pending = append(r.up.pending, r.up.proc.Idle(now, r.set.IdleClose, clock)...)
				}
				r.checkFreshness(now)
			}
		}
		if r.keysFull() {
			// Written ahead of their windows, as a flush writes them: nothing else waits.
			if err := r.handOffLabels(ctx); err != nil {
				return err
			}
		}
		if now.Sub(r.lastFlush) >= r.set.FlushInterval && !r.catchingUp(now) {
			if r.graceOver(now) {
				r.enqueue(now, r.silentWindows(now))
			}
			if err := r.Flush(ctx); err != nil {
				return err
			}
		}
	}
}

// catchUpRecords is how far behind its end, in records, a prediction partition read is
// for the flush to wait (catchingUp): more than a few fetches.
const catchUpRecords = 10_000

// catchUpAge is how long before it is read a partition's last record was appended for
// the partition to count as read behind (catchingUp): a member keeping up with live
// traffic reads records well within it, however many come in a flush's pause.
const catchUpAge = 10 * time.Second

// catchingUp reports whether the flush due by Settings.FlushInterval waits, until
// Settings.CatchUpFlushInterval has passed since the last flush: while a prediction
// partition is read a backlog behind, that is catchUpRecords or more records
// unread after its last record read, and that record appended catchUpAge or more
// before. Every flush is an insert into each table written (a part for ClickHouse to
// write and merge), the label join's settling and a commit; reading a backlog, a member
// spends less of the machine on them and reads sooner to the end. The results of
// partitions read to their end meanwhile come a few seconds later; once no partition is
// that far behind, the flushes come every FlushInterval again. A stalled partition (its
// lag is as last known) does not count. What is written does not depend on when flushes
// come; a rebalance reads again what was not committed, up to CatchUpFlushInterval of
// reading.
func (r *Runner) catchingUp(now time.Time) bool {
	if now.Sub(r.lastFlush) >= r.set.CatchUpFlushInterval {
		return false
	}
	for i := range r.clock.parts {
		p := &r.clock.parts[i]
		if p.lag < catchUpRecords || p.tp.Topic != r.set.PredictionTopic || p.appended.IsZero() || now.Sub(p.appended) < catchUpAge {
			continue
		}
		if _, stalled := r.stalled[p.tp]; !stalled {
			return true
		}
	}
	return false
}

// keysFull reports whether the prediction keys and labels kept for the label join are
// to be written before the interval's flush (Settings.LabelBatch).
func (r *Runner) keysFull() bool {
	return r.lab != nil && len(r.lab.keys)+len(r.lab.rows) >= r.set.LabelBatch
}

// tickDeadline is the fetch deadline of the current tick. One serves the fetches of a
// whole tick: a context per record cost a timer and its allocations on every record. A
// fetch started late in the tick waits less than a tick, which only brings the idle
// closing and the flush check forward.
type tickDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (d *tickDeadline) get(parent context.Context, tick time.Duration) context.Context {
	if d.ctx == nil || d.ctx.Err() != nil {
		d.stop()
		d.ctx, d.cancel = context.WithTimeout(parent, tick)
	}
	return d.ctx
}

func (d *tickDeadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

func (r *Runner) enqueue(now time.Time, closed []processors.Closed) {
	for range closed {
		r.closedAt = append(r.closedAt, now)
	}
	r.pending = append(r.pending, closed...)
	if r.spread == nil {
		var shares storage.Batch
		var held []processors.Closed
		if r.up != nil {
			held = r.up.held
		}
		r.built = append(r.built, r.j.buildAtClose(r.proc, r.pending, len(closed), now, &shares, held)...)
		r.shares = append(r.shares, shares.ReferenceSamples...)
	}
}

// unread is how many records of rec's partition were after it when it was fetched (0
// when the fetch did not say).
func unread(rec consumers.Record) int64 {
	return max(rec.HighWaterMark-rec.Offset-1, 0)
}

// sourceOf is where a windowed record comes from, for the processors.
func sourceOf(rec consumers.Record) processors.Source {
	return processors.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Time: rec.Time}
}

// handle decodes and aggregates one record. Bad records go to the dead-letter topic; the
// only errors returned end Run: ctx ended, or the dead-letter topic or the schema
// registry failed past Settings.MaxOutage (or the topic refused the record for good).
// The record is then not done, and not committed.
func (r *Runner) handle(ctx context.Context, a ahead) (err error) {
	rec := a.rec
	r.stats.Records++
	if r.grace.firstRec.IsZero() {
		r.grace.firstRec = r.now()
	}
	r.set.Observer.Consumed(rec.Topic)
	if rec.HighWaterMark > 0 {
		r.set.Observer.Lag(rec.Topic, rec.Partition, unread(rec))
	}
	tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	defer func() {
		// A record whose handling was cut off (its dead-letter write or the registry
		// wait gave up) is not done: committing past it would lose it.
		if err == nil {
			r.lastSeen[tp] = rec.Offset
		}
	}()
	// Every record, before anything sets it aside: the partition's last may be one.
	r.readRecord(tp, rec)
	if r.set.MaxEventBytes > 0 && len(rec.Value) > r.set.MaxEventBytes {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("%w: record is %d bytes, more than limits.max_event_bytes (%d)", schemas.ErrInvalid, len(rec.Value), r.set.MaxEventBytes))
	}
	if r.up != nil && rec.Topic == r.set.PipelineTopic {
		return r.handlePipeline(ctx, rec)
	}
	if r.lab != nil && rec.Topic == r.set.LabelTopic {
		return r.handleLabel(ctx, rec)
	}
	if rec.Topic != r.set.PredictionTopic {
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("topic %s is not handled by this driftd", rec.Topic))
	}
	e, first := a.event, a.decodeErr
	decodeInline := func() error { return r.set.Decoder.Prediction(ctx, rec.Value, &r.event) }
	if e == nil {
		e, first = &r.event, decodeInline()
	}
	if first != nil {
		// Decoded again inline, into the runner's own event: the schema registry may be
		// down, which decode waits out.
		if ok, err := r.decode(ctx, rec, first, decodeInline); !ok {
			return err
		}
		e = &r.event
	}
	now := r.now() // once per record, after decoding (which may wait for the registry)
	if err := r.checkFuture(e.Timestamp, now); err != nil {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("prediction %s: %w", e.EventID, err))
	}
	if limit := r.proc.Limits().MaxFeatures; len(e.Features) > limit {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("%w: prediction %s has %d features, more than limits.max_features (%d)", schemas.ErrInvalid, e.EventID, len(e.Features), limit))
	}
	for i := range e.Features {
		// The model's output is aggregated under these names: a feature of the same
		// name would be mixed into it and judged as something it is not.
		if processors.IsOutputFeature(e.Features[i].Name) {
			r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
			return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("%w: prediction %s has a feature named %q, a name driftd keeps for the model's output", schemas.ErrInvalid, e.EventID, e.Features[i].Name))
		}
	}
	r.aheadOf(r.clock.event(tp, e.Timestamp, now))
	src := sourceOf(rec)
	if r.spread != nil {
		r.firstDelivery(ctx, e.Model, processors.TopicPartition{Topic: rec.Topic, Partition: rec.Partition})
	}
	out, start, end := r.proc.Add(e, src, now)
	if gone := r.proc.Forgotten(); len(gone) > 0 {
		r.j.forget(gone)
		for _, k := range gone {
			delete(r.shadowRefs, k) // read back from ClickHouse if the shadow comes back
		}
		if r.spread != nil {
			r.forgetDelivered(gone)
		}
	}
	switch out {
	case processors.Rejected:
		return r.deadLetter(ctx, rec, consumers.ClassLimit, fmt.Errorf("series model %q version %q deployment %q is not tracked: limits.max_series (%d) series are", e.Model, e.ModelVersion, e.Deployment, r.proc.Limits().MaxSeries))
	case processors.Added:
		r.stats.Added++
		r.addKey(e, src, start, end)
		if _, ok := r.j.refs[[2]string{e.Model, e.ModelVersion}]; !ok && r.set.ReferenceSource(e.Model) == detectors.SourceFirstWindows {
			r.sampler(e.Model, e.ModelVersion).add(start, processors.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}, e,
				r.set.ReferenceWindows(e.Model), r.set.ReferenceMinEvents)
		}
	case processors.Late:
		r.stats.Late++
		r.set.Observer.Late(rec.Topic)
		r.late = append(r.late, storage.LateEvent{
			Source: processors.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}, EventID: e.EventID,
			Series: processors.SeriesKey{Model: e.Model, Version: e.ModelVersion, Deployment: e.Deployment},
			Start:  start, End: end, EventTime: e.Timestamp})
	case processors.Replayed:
		r.stats.Replayed++
	}
	return nil
}

// checkFuture refuses timestamps too far ahead of the wall clock (Settings.MaxFuture).
func (r *Runner) checkFuture(t, now time.Time) error {
	if r.set.MaxFuture > 0 {
		if limit := now.Add(r.set.MaxFuture); t.After(limit) {
			return fmt.Errorf("%w: timestamp %s is more than %s ahead of driftd's clock", schemas.ErrInvalid, t.UTC().Format(time.RFC3339), r.set.MaxFuture)
		}
	}
	return nil
}

// decode settles a record whose first decoding attempt failed with first (nil: it did
// not fail), running decodeFn again while the schema registry is unavailable (up to
// Settings.MaxOutage). A record that cannot be decoded goes to the dead-letter topic and
// decode reports false (with an error if the wait or the dead-letter write gave up).
func (r *Runner) decode(ctx context.Context, rec consumers.Record, first error, decodeFn func() error) (bool, error) {
	// The record may be fine while the registry is not: wait rather than set it aside.
	registryDown := func(err error) retry.Class {
		if errors.Is(err, schemas.ErrRegistryUnavailable) {
			return retry.Retryable
		}
		return retry.Fatal
	}
	// Nearly every record decodes at once: the retry machinery (a deadline context and
	// closures per call) is for the others, which it decodes again from the start.
	if first == nil {
		return true, nil
	}
	err := retry.Do(ctx, r.set.policy(), "schema registry", registryDown, r.attempt, func(context.Context) error { return decodeFn() })
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil || errors.Is(err, retry.ErrOutage) {
		return false, err
	}
	class := consumers.ClassDecode
	if errors.Is(err, schemas.ErrInvalid) {
		class = consumers.ClassInvalid
	}
	r.set.Observer.DecodeError(rec.Topic, class)
	return false, r.deadLetter(ctx, rec, class, err)
}

// deadLetter sets rec aside, waiting out a dead-letter topic that cannot take it. It
// fails when ctx ends, the topic stays down past Settings.MaxOutage, or it refuses the
// record for good: skipping the record would lose it, so Run ends without committing it.
func (r *Runner) deadLetter(ctx context.Context, rec consumers.Record, class string, reason error) error {
	r.log.Info("record set aside on the dead-letter topic", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "class", class, "reason", reason)
	if err := retry.Do(ctx, r.set.policy(), "dead-letter write", consumers.ClassifyWrite, r.attempt, func(ctx context.Context) error {
		return r.dlq.Send(ctx, rec, class, reason, r.now())
	}); err != nil {
		return fmt.Errorf("set aside record %s/%d at offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	r.stats.DeadLettered++
	r.set.Observer.DeadLettered(class)
	return nil
}

// Flush judges the closed windows, writes them, publishes their alerts and commits the
// offsets that are now safe. It returns only when that is done, ctx ends, or a
// dependency stays down past Settings.MaxOutage; then nothing is committed, and a later
// Flush (Shutdown's) finishes the judged batch first (write.go).
func (r *Runner) Flush(ctx context.Context) error {
	r.lastFlush = r.now()
	if r.cut != nil {
		return r.cut
	}
	if r.unwritten != nil {
		if err := r.writeJudged(ctx); err != nil {
			return err
		}
	}
	if r.lab != nil {
		if err := r.writeLabelData(ctx); err != nil {
			return err
		}
	}
	closed, late := r.pending, r.late
	var stageClosed []processors.Closed
	var runs []storage.StageRun
	if r.up != nil {
		stageClosed, runs = r.up.pending, r.up.runs
	}
	if len(closed) == 0 && len(late) == 0 && len(stageClosed) == 0 && len(runs) == 0 && len(r.extraAlerts) == 0 && !r.j.alerter.Changed() && !r.progressDue() {
		return r.settleAndCommit(ctx)
	}
	sort.SliceStable(closed, func(i, j int) bool { return closed[i].Merged.Start < closed[j].Merged.Start })
	if r.spread == nil {
		closed = r.fillGaps(closed)
	}
	batch := &storage.Batch{Closed: closed, Late: late, WrittenAt: r.now(), Alerts: r.extraAlerts, StageRuns: runs}
	if len(stageClosed) > 0 {
		// Stage windows first, so that model alerts of the same period can point at them.
		sort.SliceStable(stageClosed, func(i, j int) bool { return stageClosed[i].Merged.Start < stageClosed[j].Merged.Start })
		for _, c := range r.judgeStages(batch, stageClosed) {
			if a := r.j.alerter.Observe(c, r.now()); a != nil {
				batch.Alerts = append(batch.Alerts, a)
			}
		}
	}
	var built []*detectors.Profile
	if r.spread != nil {
		// Written unjudged: each model's judge judges them once every partition has
		// (spread.go).
		if err := r.shareWindows(ctx, batch, closed); err != nil {
			return r.cutJudging(err)
		}
	} else {
		var err error
		built, err = r.j.judgeClosed(ctx, closed, r.now(), batch, r.on.verdict)
		for _, p := range built {
			// Not reached today: one member builds as the last window closes
			// (buildAtClose); judgeClosed builds for a spread group's judge.
			var held []processors.Closed
			if r.up != nil {
				held = r.up.held
			}
			adoptBuilt(r.proc, p, closed, held)
		}
		for _, c := range closed {
			c.DropKept() // judged: a reference built later cannot use them
		}
		// Partials that opened before their version's first-windows reference are written so
		// that they read back as the window in memory (Closed.PrepareKept).
		for _, c := range closed {
			if s := c.Merged.Series; r.set.ReferenceSource(s.Model) == detectors.SourceFirstWindows {
				c.PrepareKept(r.proc.Layout(s.Model, s.Version), false)
			}
		}
		if err != nil {
			return r.cutJudging(err)
		}
		if err := r.compareShadows(ctx, closed, batch); err != nil {
			return r.cutJudging(err)
		}
		batch.JudgedThrough = judgedThrough(closed)
		// Only now, the batch judged: a flush cut off before keeps them for the next.
		built = append(r.built, built...)
		batch.ReferenceSamples = append(r.shares, batch.ReferenceSamples...)
		r.built, r.shares = nil, nil
	}
	batch.AlertStates = r.j.alerter.Changes()
	r.unwritten = &judged{refs: built, batch: batch, closedAt: r.closedAt, windows: len(closed), stageWindows: len(stageClosed)}
	for _, c := range closed {
		if c.Supplement {
			r.unwritten.supplements++
		}
	}
	r.pending, r.closedAt, r.late, r.extraAlerts = nil, nil, nil, nil
	if r.up != nil {
		r.up.pending, r.up.runs = nil, nil
	}
	if err := r.writeJudged(ctx); err != nil {
		return err
	}
	if r.spread == nil {
		r.markDue(closed)
	}
	return r.settleAndCommit(ctx)
}

// ErrFlushCut is what a flush returns after an earlier one was cut off half-way
// (cutJudging): it writes and commits nothing.
var ErrFlushCut = errors.New("an earlier flush was cut off half-way: nothing more is written or committed, the records since the last commit are read again")

// cutJudging records that a flush failed half-way through judging its windows, or
// sharing them in a spread group (a dependency down past Settings.MaxOutage, or the
// run's end while it waited), and returns err. The alerter, the volume history and the
// other judging state (a spread member: the sample shares handed over) have moved on for
// part of the batch, which is dropped: judging it again (Shutdown's flush) would lose
// the alerts the first pass raised (the alerter has seen their windows), and count
// windows twice. So nothing more is written or committed; the records since the last
// commit are read again by whoever reads next, from the state stored.
func (r *Runner) cutJudging(err error) error {
	r.cut = fmt.Errorf("%w (%v)", ErrFlushCut, err)
	return err
}

// settleAndCommit ends a flush: a spread member judges the windows of its models that
// every partition has written (spread.go), the windows whose labels are in are judged
// (labels.go; not on a standby, and not before the start-up grace, in which every label
// partition delivers its first records), then the offsets are committed.
func (r *Runner) settleAndCommit(ctx context.Context) error {
	if r.spread != nil && r.src.Assigned() > 0 {
		r.spread.progress = nil
		r.pollReferences(ctx, r.now())
		if err := r.judgeOwned(ctx); err != nil {
			return err
		}
		r.learnJudged(ctx)
	}
	if r.lab != nil && r.src.Assigned() > 0 && r.graceOver(r.now()) {
		if err := r.settleLabels(ctx); err != nil {
			return err
		}
	}
	return r.commitAndReport(ctx)
}

// drainOutbox publishes the alerts a member that stopped (or was replaced) stored but did
// not record as published, waiting out a ClickHouse that cannot answer.
func (r *Runner) drainOutbox(ctx context.Context) error {
	var unpublished []*schemas.AlertEvent
	if err := retry.Do(ctx, r.set.policy(), "loading unpublished alerts", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		unpublished, err = r.store.LoadUnpublishedAlerts(ctx, 48*time.Hour)
		return err
	}); err != nil {
		return err
	}
	r.outboxDue = false
	if len(unpublished) == 0 {
		return nil
	}
	r.log.Info("publishing alerts stored but not published before the last stop", "alerts", len(unpublished))
	return r.publish(ctx, unpublished)
}

// publish puts stored alerts on the alert topic, waiting out a topic that cannot take
// them, then records them as published (the outbox). If that record fails, the alerts are
// published again after a restart: at least once, never lost. An alert that cannot be
// published as it is (it does not encode, or the topic refuses it for good) is set aside
// on the dead-letter topic instead of being retried for ever.
func (r *Runner) publish(ctx context.Context, alerts []*schemas.AlertEvent) error {
	pub := func(alerts []*schemas.AlertEvent) error {
		return retry.Do(ctx, r.set.policy(), "alert publish", classifyPublish, r.attempt, func(ctx context.Context) error {
			return r.alerts.Publish(ctx, alerts)
		})
	}
	refusedForGood := func(err error) bool {
		return ctx.Err() == nil && !errors.Is(err, retry.ErrOutage) && classifyPublish(err) == retry.Fatal
	}
	if err := pub(alerts); err != nil {
		if !refusedForGood(err) {
			return err
		}
		// Find the alerts at fault: one at a time.
		for _, a := range alerts {
			err := pub([]*schemas.AlertEvent{a})
			if err == nil {
				continue
			}
			if !refusedForGood(err) {
				return err
			}
			if err := r.deadLetter(ctx, alertRecord(a), consumers.ClassAlertRefused, err); err != nil {
				return err
			}
		}
	}
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		ids[i] = a.AlertID
	}
	if err := r.store.MarkPublished(ctx, ids, r.now()); err != nil {
		r.log.Warn("alerts published but not recorded as such; a restart publishes them again", "alerts", len(ids), "err", err)
	}
	return nil
}

// commitAndReport ends a flush: commit what is safe, then tell the OnFlush callback.
func (r *Runner) commitAndReport(ctx context.Context) error {
	r.stats.Flushes++
	r.stats.Started = r.graceOver(r.now())
	r.set.Observer.State(r.proc.OpenWindows(), r.proc.Series(), r.src.Assigned())
	if err := r.commit(ctx); err != nil {
		return err
	}
	if r.on.flush != nil {
		r.on.flush(r.stats)
	}
	return nil
}

type windowKey struct {
	series processors.SeriesKey
	start  int64
}

// saveReference stores a reference the judge built, waiting out a ClickHouse that cannot
// take it: it is saved before the windows judged against it are written.
func (r *Runner) saveReference(ctx context.Context, p *detectors.Profile) error {
	if err := retry.Do(ctx, r.set.policy(), "saving a reference", storage.Classify, r.attempt, func(ctx context.Context) error {
		return r.store.SaveReference(ctx, p)
	}); err != nil {
		return fmt.Errorf("save reference %s for %s %s: %w", p.ID, p.Model, p.Version, err)
	}
	r.stats.ReferencesBuilt++
	r.log.Info("reference built", "model", p.Model, "version", p.Version, "id", p.ID, "windows", p.Windows, "events", p.Events)
	if len(p.RawWindows) > 0 {
		// Those windows read live would have been binned by it, with a joint model.
		r.log.Warn("windows after the reference's own opened before it was built and could not be counted with it (more events than kept, or opened before an earlier window of the version was read): judged from their first values, with no joint model (docs/reliability.md)",
			"model", p.Model, "version", p.Version, "windows", len(p.RawWindows), "first", time.UnixMilli(p.RawWindows[0]).UTC())
	}
	return nil
}

// commit commits, per partition, up to the oldest record still in an open window.
func (r *Runner) commit(ctx context.Context) error {
	next := map[consumers.TopicPartition]int64{}
	for tp, off := range r.lastSeen {
		next[tp] = off + 1
	}
	open := r.proc.CommitOffsets()
	if r.up != nil {
		for tp, first := range r.up.proc.CommitOffsets() {
			if cur, ok := open[tp]; !ok || first < cur {
				open[tp] = first
			}
		}
		// Closed windows held for the pipeline topic are not written yet.
		for _, c := range r.up.held {
			for _, p := range c.Partials {
				if cur, ok := open[p.TopicPartition]; !ok || p.FirstOffset < cur {
					open[p.TopicPartition] = p.FirstOffset
				}
			}
		}
	}
	for tp, first := range open {
		k := consumers.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
		if first < next[k] {
			next[k] = first
		}
	}
	if len(next) == 0 {
		return nil
	}
	if err := r.src.Commit(ctx, next); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, consumers.ErrRebalanced) {
			// The next Fetch reports the rebalance; the records are another member's now.
			return nil
		}
		// Not fatal: the records will be re-read and recognised as replays.
		r.log.Warn("offset commit failed; will retry on the next flush", "err", err)
	}
	return nil
}

// Shutdown writes the windows that are already closed and commits. Open windows are
// left open on purpose: their records are not committed, so the next run re-reads them
// and completes the windows instead of writing a partial result now. ctx bounds the wait.
func (r *Runner) Shutdown(ctx context.Context) error {
	return r.Flush(ctx)
}
