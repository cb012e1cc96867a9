package pipeline

import (
	"context"
	"errors"
	"fmt"
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

// Labels: ground truth joined to predictions, and the performance and concept drift
// judged from it (docs/concept-drift.md). The join is ClickHouse's: the runner writes
// predictions' keys and labels as it reads them, and judges a window once it is settled —
// written, and every label partition past its end plus the settle time and the lateness —
// with the labels stamped up to its end plus the settle time. That point in event time,
// not when the labels happened to be read, decides what is judged.

// LabelSettings configure the label join (config.Labels).
type LabelSettings struct {
	Horizon, Settle, Lateness time.Duration
	Detector                  detectors.ChangeKind
	// Change are the detectors' parameters (zero: River's defaults).
	Change     detectors.ChangeParams
	Thresholds detectors.PerformanceThresholds
	// ForModel, when set, gives a model's settings (config.LabelsFor: the section with
	// the model's overrides of Settle, Change and Thresholds); MinSettle is then the
	// shortest Settle of any model.
	ForModel  func(model string) LabelSettings
	MinSettle time.Duration
}

// of returns the settings of a model.
func (ls LabelSettings) of(model string) LabelSettings {
	if ls.ForModel == nil {
		return ls
	}
	return ls.ForModel(model)
}

// minSettle is the shortest settle time of any model.
func (ls LabelSettings) minSettle() time.Duration {
	if ls.ForModel != nil && ls.MinSettle < ls.Settle {
		return ls.MinSettle
	}
	return ls.Settle
}

// labelStore is the label join's side of the Store.
type labelStore interface {
	WriteLabelData(ctx context.Context, keys []storage.PredictionKey, labels []storage.LabelRow, at time.Time) error
	LoadLabelProgress(ctx context.Context) ([]storage.LabelProgress, []string, error)
	LoadUnsettledWindows(ctx context.Context, models []string, since, until time.Time) ([]storage.SettledWindow, error)
	LabelCuts(ctx context.Context, t, appended time.Time, partitions []storage.LabelPartition) (map[storage.LabelPartition]int64, error)
	LoadWindowPairs(ctx context.Context, w storage.SettledWindow, js storage.JoinSpec, add func(detectors.PerfPair)) (uint64, error)
	LoadSettled(ctx context.Context, only ...processors.SeriesKey) ([]storage.SeriesSettled, error)
}

// farFuture bounds a load of every written window: DateTime64(3) holds it.
var farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// labelIdle is how long after a window's cutoff (its end + settle + lateness) a label
// for it may still be appended to its partition, in Kafka record time: one appended later
// joins no window of that cutoff (storage.JoinSpec.AppendCutoff), and a label partition
// read to its end holds such a window back only until the wall clock is this far past
// the cutoff (plus labelSkew). A partition that goes quiet and later delivers labels
// stamped in the past then gives them to no window settled before them, whether the
// stream is read live or as a backlog.
const labelIdle = time.Hour

// labelSkew is the margin, over labelIdle, for the fetch delay and for the difference
// between the broker's clock (record times) and driftd's.
const labelSkew = time.Minute

// labelPart is what the settle loop knows of one label partition: the newest label stamp
// and the newest record time read from it (zero: none; a restart restores the stamp
// only), and when it was last found read to its end (zero: not since this member
// started reading it). known is when this member began waiting for a partition that had
// delivered nothing (labelState.know).
type labelPart struct {
	stamp, appended, caught time.Time
	known                   time.Time
}

// endsSource is the Source's view of where partitions end (a *consumers.Consumer): what
// tells a label partition read to its end from one whose last fetch said so.
type endsSource interface {
	Ends(ctx context.Context, tps []consumers.TopicPartition) (map[consumers.TopicPartition]consumers.Ends, error)
}

// labelState is the runner's label-join state.
type labelState struct {
	event    schemas.LabelEvent
	progress map[consumers.TopicPartition]labelPart
	models   map[string]bool
	keys     []storage.PredictionKey
	rows     []storage.LabelRow
	// spareKeys and spareRows are the arrays of the last batch the label writer stored,
	// for the next batch: a key per prediction would otherwise allocate a batch's worth
	// of arrays again and again.
	spareKeys []storage.PredictionKey
	spareRows []storage.LabelRow
	series    map[processors.SeriesKey]*perfSeries
	// due are, sorted, when the written windows of labelled models not settled yet are
	// due, each as the end its model's settle time makes comparable with the settle
	// loop's until (labelSettings.dueKey): the loop asks ClickHouse for windows only when
	// one is due. dueKnown is false after a restart or a model's first label, until a
	// loop has loaded every written window not settled.
	due      []time.Time
	dueKnown bool
	// warned is when warnSilentLabels last logged.
	warned time.Time
}

// dueKey is when a window of model ending at end is due, on the settle loop's scale
// (until is the label watermark less the shortest settle time and the lateness).
func (ls LabelSettings) dueKey(model string, end time.Time) time.Time {
	return end.Add(ls.of(model).Settle - ls.minSettle())
}

// addDue adds a due time, keeping l.due sorted.
func (l *labelState) addDue(t time.Time) {
	i := sort.Search(len(l.due), func(i int) bool { return l.due[i].After(t) })
	l.due = append(l.due, time.Time{})
	copy(l.due[i+1:], l.due[i:])
	l.due[i] = t
}

// perfSeries is one series' settled performance: the start of its last settled window,
// its reference so far, and its loss stream's detector.
type perfSeries struct {
	last time.Time
	// perf is the performance reference: the series' first windows with labels. outcomes
	// is the outcomes' own: its first windows from the first that had one (a series may
	// report outcomes before it has labels, or start reporting them long after).
	perf, outcomes reference
	task           string
	concept        detectors.ConceptState
	// recent are the last storage.RecentSettled windows in neither reference.
	recent []storage.PerformanceRow
}

// reference is a sum of a series' first windows, done once it holds windows windows and
// min of what it counts.
type reference struct {
	counts  detectors.PerfCounts
	windows int
	done    bool
	// last is the start of its last window: a low-volume window merges with windows after
	// it only (those before are from before the signal existed, or are the reference).
	last time.Time
}

func (r *reference) add(start time.Time, c detectors.PerfCounts, windows int, min uint64, count func(detectors.PerfCounts) uint64) {
	r.counts.Add(c)
	r.windows++
	r.done = r.windows >= windows && count(r.counts) >= min
	r.last = start
}

func labelled(c detectors.PerfCounts) uint64    { return c.Labelled }
func predictions(c detectors.PerfCounts) uint64 { return c.Predictions }

// minJudged: a settled window with fewer labelled predictions (for performance) or
// predictions (for outcomes) is judged together with the series' windows before it (at
// most storage.RecentSettled in all) until they hold this many, as a low-volume window's
// drift is (lowvolume.go): a test of a single window of a few never has the evidence.
const minJudged = 100

// judgedCounts returns what a window is judged on: its counts, or, under minJudged of
// what count counts, its counts merged with the series' recent windows before it, with
// the span.
func (ps *perfSeries) judgedCounts(w detectors.PerfWindow, c detectors.PerfCounts, ref reference, count func(detectors.PerfCounts) uint64) (detectors.PerfWindow, detectors.PerfCounts) {
	if count(c) >= minJudged || len(ps.recent) == 0 {
		return w, c
	}
	merged := detectors.PerfCounts{}
	merged.Add(c)
	for i := len(ps.recent) - 1; i >= 0 && count(merged) < minJudged && i >= len(ps.recent)-(storage.RecentSettled-1); i-- {
		if !ps.recent[i].Window.Start.After(ref.last) {
			break
		}
		merged.Add(ps.recent[i].Counts)
		w.Start = ps.recent[i].Window.Start
	}
	return w, merged
}

func newLabelState() *labelState {
	return &labelState{progress: map[consumers.TopicPartition]labelPart{}, models: map[string]bool{},
		series: map[processors.SeriesKey]*perfSeries{}}
}

// watermark is the label partitions' common progress: every label that can join a
// window whose cutoff is before it has been read. A partition is past a cutoff once it
// delivered a label stamped after it or a record appended more than labelIdle after it
// (the records from there on are cut off: storage.JoinSpec), or once it was found read
// to its end (its end offset asked of the broker, caught) more than labelIdle +
// labelSkew after the cutoff: a record appended later is cut off too. Otherwise it holds
// the others back however far behind it is: read as a backlog, partitions are not read
// at the same pace, and a window settled past the labels still unread in one would be
// judged without them. With caughtAt, every partition counts as found read to its end
// at that time (whether anything could be due if it were).
func (l *labelState) watermark(caughtAt time.Time) time.Time {
	var wm time.Time
	first := true
	for _, p := range l.progress {
		if t := p.mark(caughtAt); first || t.Before(wm) {
			wm, first = t, false
		}
	}
	return wm
}

// mark is how far one partition is past every cutoff (watermark; with caughtAt, as if
// found read to its end then). A spread member writes its partitions' marks for the
// models' judges (spread_labels.go).
func (p labelPart) mark(caughtAt time.Time) time.Time {
	t := p.stamp
	if a := p.appended.Add(-labelIdle); !p.appended.IsZero() && a.After(t) {
		t = a
	}
	caught := p.caught
	if !caughtAt.IsZero() {
		caught = caughtAt
	}
	if w := caught.Add(-labelIdle - labelSkew); !caught.IsZero() && w.After(t) {
		t = w
	}
	return t
}

// refreshCaught asks the broker where the label partitions tps end, at wall time now,
// and marks those this member has read to their end as caught at now. A source that
// cannot tell (or a partition this member does not read) marks nothing.
func (r *Runner) refreshCaught(ctx context.Context, now time.Time, tps []consumers.TopicPartition) error {
	src, ok := r.src.(endsSource)
	if !ok {
		return nil
	}
	l := r.lab
	var ends map[consumers.TopicPartition]consumers.Ends
	if err := retry.Do(ctx, r.set.policy(), "asking where label partitions end", consumers.Classify, r.attempt, func(ctx context.Context) error {
		var err error
		ends, err = src.Ends(ctx, tps)
		return err
	}); err != nil {
		return err
	}
	for tp, e := range ends {
		pos := e.Start
		if last, ok := r.lastSeen[tp]; ok {
			pos = max(pos, last+1)
		}
		if pos >= e.End {
			p := l.progress[tp]
			p.caught = now
			l.progress[tp] = p
		}
	}
	return nil
}

// know adds the label partitions this member reads that have delivered nothing yet.
// Each holds the watermark (mark zero) until it delivers a label or is found read to
// its end: one slow to deliver its first records (a loaded broker, a backlog's first
// fetch) may hold labels of every window, and settling without it would judge those
// windows without them, differently on each replay.
func (l *labelState) know(topic string, partitions []int, now time.Time) {
	for _, p := range partitions {
		tp := consumers.TopicPartition{Topic: topic, Partition: p}
		if _, ok := l.progress[tp]; !ok {
			l.progress[tp] = labelPart{known: now}
		}
	}
}

// warnSilentLabels logs, at most once a minute, the label partitions that have held settling
// for startWaitGraces start-up graces or more without delivering a label or being found
// read to their end (a partition whose leader is down, or whose records are all aborted
// transactions). Settling keeps waiting for them: judging without their labels would
// give other results on a replay.
func (r *Runner) warnSilentLabels(now time.Time) {
	l := r.lab
	if now.Sub(l.warned) < time.Minute {
		return
	}
	var silent []int
	for tp, p := range l.progress {
		if p.mark(time.Time{}).IsZero() && !p.known.IsZero() && now.Sub(p.known) >= startWaitGraces*r.set.StartupGrace {
			silent = append(silent, tp.Partition)
		}
	}
	if len(silent) == 0 {
		return
	}
	l.warned = now
	slices.Sort(silent)
	r.log.Error("label partitions with records deliver none: settling waits for them", "topic", r.set.LabelTopic, "partitions", silent)
}

// newest is the newest label stamp read from any partition.
func (l *labelState) newest() time.Time {
	var t time.Time
	for _, p := range l.progress {
		t = maxTime(t, p.stamp)
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// oldest is the oldest of the label partitions' newest stamps (of those that delivered
// a label).
func (l *labelState) oldest() time.Time {
	var t time.Time
	for _, p := range l.progress {
		if p.stamp.IsZero() {
			continue
		}
		if t.IsZero() || p.stamp.Before(t) {
			t = p.stamp
		}
	}
	return t
}

// addKey keeps what the join needs of a prediction added to a window.
func (r *Runner) addKey(e *schemas.PredictionEvent, src processors.Source, start, end int64) {
	if r.lab == nil || e.RequestID == "" {
		return
	}
	var scores map[string]float64
	if len(e.Scores) > 0 {
		scores = make(map[string]float64, len(e.Scores))
		for k, v := range e.Scores {
			scores[k] = v
		}
	}
	r.lab.keys = append(r.lab.keys, storage.PredictionKey{Series: processors.SeriesKey{Model: e.Model, Version: e.ModelVersion, Deployment: e.Deployment},
		RequestID: e.RequestID, EventTime: e.Timestamp, Start: start, End: end, Prediction: e.Prediction, Scores: scores, Source: src})
}

// handleLabel decodes one label record and keeps it for the next flush.
func (r *Runner) handleLabel(ctx context.Context, rec consumers.Record) error {
	l := r.lab
	decodeFn := func() error { return r.set.LabelDecoder.Label(ctx, rec.Value, &l.event) }
	if ok, err := r.decode(ctx, rec, decodeFn(), decodeFn); !ok {
		return err
	}
	e := l.event
	now := r.now()
	if r.set.MaxFuture > 0 && e.Timestamp.After(now.Add(maxAhead)) {
		// Ground truth comes after its prediction: a label stamped ahead of the clock is
		// broken, and would carry its partition's progress (and cut) along with it.
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("label %s: %w: timestamp %s is ahead of driftd's clock",
			e.EventID, schemas.ErrInvalid, e.Timestamp.UTC().Format(time.RFC3339)))
	}
	if err := r.checkFuture(e.Timestamp, now); err != nil {
		r.set.Observer.DecodeError(rec.Topic, consumers.ClassInvalid)
		return r.deadLetter(ctx, rec, consumers.ClassInvalid, fmt.Errorf("label %s: %w", e.EventID, err))
	}
	tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	p := l.progress[tp]
	if e.Timestamp.After(p.stamp) {
		p.stamp = e.Timestamp
	}
	appended := rec.Time
	if appended.Unix() <= 0 || appended.After(now.Add(maxAhead)) {
		// None (Kafka's -1), or a producer's clock ahead of driftd's (a record time set by
		// hand, in the wrong unit): the record dates nothing, rather than release its
		// partition and cut every label after it until that date.
		appended = time.Time{}
	}
	if appended.After(p.appended) {
		p.appended = appended
	}
	l.progress[tp] = p
	if !l.models[e.Model] {
		// Its windows written so far were not tracked as due: the next settle loop loads
		// them all.
		l.models[e.Model], l.dueKnown = true, false
	}
	l.rows = append(l.rows, storage.LabelRow{Event: e, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, RecordTime: appended})
	r.stats.Labels++
	return nil
}

// writeLabelData writes the keys and labels read since the last flush, before the
// windows they belong to: a window found written after a restart has its keys written.
// The batch the label writer may have in flight is stored first.
func (r *Runner) writeLabelData(ctx context.Context) error {
	l := r.lab
	if err := r.awaitLabels(ctx); err != nil {
		return err
	}
	if len(l.keys) == 0 && len(l.rows) == 0 {
		return nil
	}
	if err := r.writeLabels(ctx, l.keys, l.rows, r.now()); err != nil {
		return err
	}
	l.keys, l.rows = l.keys[:0], l.rows[:0]
	return nil
}

// labelWriter stores batches of prediction keys and labels on a goroutine of its own,
// so that the Run loop reads on meanwhile: at a few hundred thousand predictions a
// second, storing every prediction's key takes the engine about as long as reading
// them takes driftd (docs/performance.md). One batch is in flight at a time, so batches
// are stored in the order they were read, and a label partition's progress (the last
// rows of each batch) is never stored ahead of an earlier batch's labels. The writer
// tries a batch once; a batch it could not store goes back to the Run loop, which
// stores it there with writeLabels (backoff, halving, dead letters). The Run loop waits
// for the batch in flight before each flush, so nothing is committed, judged or joined
// before its keys are stored.
type labelWriter struct {
	in   chan labelBatch
	out  chan labelBatch
	busy bool // a batch was sent on in and not yet received from out
}

// labelBatch is one batch of the label writer; err is its attempt's.
type labelBatch struct {
	keys []storage.PredictionKey
	rows []storage.LabelRow
	at   time.Time
	err  error
}

// labelDataWriter is what the label writer stores with.
type labelDataWriter interface {
	WriteLabelData(ctx context.Context, keys []storage.PredictionKey, labels []storage.LabelRow, at time.Time) error
}

// startLabelWriter starts the writer. An attempt ends with ctx, and within maxOutage
// (when set), as every wait on ClickHouse does: the loop waits for it before each flush.
func startLabelWriter(ctx context.Context, store labelDataWriter, maxOutage time.Duration) *labelWriter {
	w := &labelWriter{in: make(chan labelBatch), out: make(chan labelBatch, 1)}
	go func() {
		for b := range w.in {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if maxOutage > 0 {
				actx, cancel = context.WithTimeout(ctx, maxOutage)
			}
			b.err = store.WriteLabelData(actx, b.keys, b.rows, b.at)
			cancel()
			w.out <- b
		}
	}()
	return w
}

// handOffLabels gives the keys and labels read so far to the label writer (after the
// batch before them is stored), and reuses that batch's arrays for the next.
func (r *Runner) handOffLabels(ctx context.Context) error {
	l, w := r.lab, r.labWriter
	if w == nil {
		return r.writeLabelData(ctx)
	}
	if err := r.awaitLabels(ctx); err != nil {
		return err
	}
	w.in <- labelBatch{keys: l.keys, rows: l.rows, at: r.now()}
	w.busy = true
	l.keys, l.rows, l.spareKeys, l.spareRows = l.spareKeys, l.spareRows, nil, nil
	return nil
}

// awaitLabels waits for the label writer's batch in flight, if any, and stores it here
// if the writer could not. A batch that cannot be stored goes back in front of the
// keys and labels kept, for a later flush (Shutdown's) to store. A stored batch's arrays
// are kept for the next (spareKeys, spareRows).
func (r *Runner) awaitLabels(ctx context.Context) error {
	w := r.labWriter
	if w == nil || !w.busy {
		return nil
	}
	// Not bound by ctx: the attempt is (it runs with Run's context), and the batch must
	// not be dropped.
	b := <-w.out
	w.busy = false
	if b.err != nil {
		if errors.Is(b.err, context.DeadlineExceeded) && ctx.Err() == nil && r.set.MaxOutage > 0 {
			// The attempt hung for all of limits.max_outage (startLabelWriter): an outage
			// already as long as a retry would wait.
			r.requeueLabels(b)
			return fmt.Errorf("write %d prediction keys and %d labels: failing for %s: %w: %w", len(b.keys), len(b.rows), r.set.MaxOutage, retry.ErrOutage, b.err)
		}
		if err := r.writeLabels(ctx, b.keys, b.rows, b.at); err != nil {
			r.requeueLabels(b)
			return err
		}
	}
	// Cleared, so that the spare arrays hold no events, maps or strings of the batch
	// stored.
	r.lab.spareKeys, r.lab.spareRows = clearedSpare(b.keys), clearedSpare(b.rows)
	return nil
}

// clearedSpare is s emptied and zeroed, for reuse.
func clearedSpare[T any](s []T) []T {
	clear(s)
	return s[:0]
}

// requeueLabels puts an unstored batch back in front of the keys and labels kept.
func (r *Runner) requeueLabels(b labelBatch) {
	l := r.lab
	l.keys = append(b.keys, l.keys...)
	l.rows = append(b.rows, l.rows...)
}

// stopLabelWriter ends the label writer when Run returns: a batch in flight that was
// not stored goes back to the keys and labels kept, for Shutdown's flush.
func (r *Runner) stopLabelWriter() {
	w := r.labWriter
	r.labWriter = nil
	close(w.in)
	if w.busy {
		if b := <-w.out; b.err != nil {
			r.requeueLabels(b)
		}
	}
}

// dropLabelBatch waits for the label writer's batch in flight when the partitions are
// reassigned, and drops it if it was not stored: like the keys and labels kept, it is
// of records not committed, which are read again (by this member or the next owner).
func (r *Runner) dropLabelBatch() {
	if w := r.labWriter; w != nil && w.busy {
		<-w.out
		w.busy = false
	}
}

// writeLabels writes keys and labels. Rows ClickHouse refuses for good are found by
// writing halves apart, as write does for windows, and set aside on the dead-letter
// topic, each with its record's place; the rest is written.
func (r *Runner) writeLabels(ctx context.Context, keys []storage.PredictionKey, rows []storage.LabelRow, at time.Time) error {
	err := retry.Do(ctx, r.set.policy(), "write labels to clickhouse", storage.Classify, r.attempt, func(ctx context.Context) error {
		return r.store.WriteLabelData(ctx, keys, rows, at)
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil || errors.Is(err, retry.ErrOutage) || storage.Classify(err) != storage.Fatal:
		return fmt.Errorf("write %d prediction keys and %d labels: %w", len(keys), len(rows), err)
	}
	if len(keys)+len(rows) > 1 {
		hk, hr := len(keys)/2, len(rows)/2
		if hk == 0 && hr == 0 { // one key and one label
			hk = len(keys)
		}
		if err := r.writeLabels(ctx, keys[:hk], rows[:hr], at); err != nil {
			return err
		}
		return r.writeLabels(ctx, keys[hk:], rows[hr:], at)
	}
	r.log.Error("clickhouse refused a prediction key or label for good; set aside on the dead-letter topic", "err", err)
	for _, x := range storage.RefusedLabelData(keys, rows, at) {
		rec := consumers.Record{Topic: x.Topic, Partition: x.Partition, Offset: x.FirstOffset, Value: x.Rows}
		if err := r.deadLetter(ctx, rec, consumers.ClassWriteFatal, err); err != nil {
			return err
		}
	}
	return nil
}

// settleLabels judges the windows that settled since the last flush, in start order per
// series: their performance against the series' reference, and their losses through its
// change detector. Their rows, alerts and detector states are written as one batch.
func (r *Runner) settleLabels(ctx context.Context) error {
	l := r.lab
	ls := r.set.Labels
	settle := r.memberLabels
	if r.spread != nil {
		settle = r.spreadLabels
	}
	view, ok, err := settle(ctx)
	if err != nil || !ok {
		return err
	}
	// A window settles when every label partition is past its cutoff, its end + settle +
	// lateness (watermark): a label for it read later is out of its partition's order by
	// more than the lateness, or appended more than labelIdle after the cutoff, and left
	// out (storage.JoinSpec's cutoffs) alike on every replay. The settle time is its
	// model's; the windows loaded are those of the shortest.
	until := view.wm.Add(-ls.minSettle() - ls.Lateness - time.Millisecond)
	if l.dueKnown && (len(l.due) == 0 || l.due[0].After(until)) {
		return nil // no written window is due
	}
	// Not knowing what is written and not settled, every such window is loaded: those
	// not due yet are remembered as due later.
	loadUntil := until
	if !l.dueKnown {
		loadUntil = farFuture
	}
	// The scan is bounded below. Known, by the oldest due window's end (its model's settle
	// time is less than the horizon: config.checkLabels). Not known, by the horizon before
	// the partition whose labels are oldest (no label stamped since can join a window that
	// ended before then), but no more than two horizons before the newest label (a
	// partition quiet for months would make every full load scan, and settle without
	// labels, months of windows). The watermark would not do: partitions read to their
	// end put it at the wall clock, months after a backlog's windows.
	since := maxTime(l.oldest(), l.newest().Add(-ls.Horizon))
	if l.dueKnown {
		since = l.due[0]
	}
	since = since.Add(-ls.Horizon)
	var windows []storage.SettledWindow
	if err := retry.Do(ctx, r.set.policy(), "loading windows to settle", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		windows, err = r.store.LoadUnsettledWindows(ctx, view.models, since, loadUntil)
		return err
	}); err != nil {
		return err
	}
	partitions := view.partitions
	batch := &storage.Batch{WrittenAt: r.now()}
	// finish makes the batch of the windows judged so far the one to write: also when a
	// join is cut off (ctx ended, ClickHouse down past max_outage), since their series
	// have moved on in memory and Shutdown's flush writes r.unwritten first.
	finish := func() {
		if len(batch.Performance) == 0 {
			return
		}
		batch.AlertStates = r.j.alerter.Changes()
		r.stats.PerformanceWindows += uint64(len(batch.Performance))
		r.unwritten = &judged{batch: batch}
	}
	// Known, the due times after until stay (the windows loaded that wait are among
	// them); loaded all, the windows that wait are the due times.
	full := !l.dueKnown
	if full {
		l.due = l.due[:0]
	} else {
		later := l.due[sort.Search(len(l.due), func(i int) bool { return l.due[i].After(until) }):]
		l.due = append(l.due[:0], later...)
	}
	// Known once the loop is through: cut off (an error, ctx), the next loop loads all.
	l.dueKnown = false
	waiting := map[processors.SeriesKey]bool{}
	cuts := map[[2]time.Time]map[storage.LabelPartition]int64{}
	for _, w := range windows {
		ps, err := r.perfSeries(ctx, w.Series)
		if err != nil {
			finish()
			return err
		}
		if !w.Start.After(ps.last) && !ps.last.IsZero() {
			continue // written after a later window settled: never judged
		}
		if view.judged != nil && !view.judged(w.Series.Model, w.End) {
			// Written, not judged yet (a spread group): due once its judge has judged it
			// (judgeOwned), and the series' later windows wait for it.
			waiting[w.Series] = true
			continue
		}
		key := ls.dueKey(w.Series.Model, w.End)
		if waiting[w.Series] || key.After(until) {
			// Its model's labels are awaited longer (or it is not due yet): it and the
			// series' later windows wait, due at their key (already known unless all
			// were loaded: a key after until was kept above).
			waiting[w.Series] = true
			if full {
				l.due = append(l.due, key) // sorted once the loop is through
			}
			continue
		}
		settle := ls.of(w.Series.Model).Settle
		cutoff := w.End.Add(settle + ls.Lateness)
		js := storage.JoinSpec{From: w.Start.Add(-ls.Lateness), Until: w.End.Add(settle), Cutoff: cutoff, AppendCutoff: cutoff.Add(labelIdle),
			Horizon: ls.Horizon, Before: ls.Lateness, Partitions: partitions}
		// Windows that end together (the series of a model) share their cutoffs.
		ck := [2]time.Time{js.Cutoff, js.AppendCutoff}
		if js.Cuts = cuts[ck]; js.Cuts == nil {
			if err := retry.Do(ctx, r.set.policy(), "finding label cutoffs", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
				var err error
				js.Cuts, err = r.store.LabelCuts(ctx, js.Cutoff, js.AppendCutoff, js.Partitions)
				return err
			}); err != nil {
				finish()
				return err
			}
			cuts[ck] = js.Cuts
		}
		// The window streams through a scorer, a page of the join at a time; an attempt
		// cut off part way starts again from a fresh one.
		var sc *detectors.Scorer
		var beyond uint64
		if err := retry.Do(ctx, r.set.policy(), "joining labels", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			sc = &detectors.Scorer{}
			var err error
			beyond, err = r.store.LoadWindowPairs(ctx, w, js, sc.Add)
			return err
		}); err != nil {
			finish()
			return err
		}
		row, conds := r.judgePerformance(ps, w, js, sc)
		row.BeyondHorizon = beyond
		state, err := ps.concept.MarshalBinary()
		if err != nil {
			finish()
			return fmt.Errorf("settle %v at %v: %w", w.Series, w.Start, err)
		}
		row.Change = state
		batch.Performance = append(batch.Performance, row)
		conds = append(conds, r.canaryPerformance(batch.Performance)...)
		for _, c := range conds {
			if a := r.j.alerter.Observe(c, r.now()); a != nil {
				batch.Alerts = append(batch.Alerts, a)
			}
		}
		ps.last = w.Start
	}
	if full {
		sort.Slice(l.due, func(i, j int) bool { return l.due[i].Before(l.due[j]) })
	}
	l.dueKnown = true
	if finish(); r.unwritten == nil {
		l.prune(until, ls.Horizon)
		return nil
	}
	if view.owned != nil && !view.owned(ctx) {
		r.dropJudged("partitions moved while settling; the settled windows are left to their new judge")
		return nil
	}
	if err := r.writeJudged(ctx); err != nil {
		return err
	}
	l.prune(until, ls.Horizon)
	if r.on.perf != nil {
		r.on.perf(batch.Performance)
	}
	return nil
}

// markDue remembers when closed's windows of labelled models are due to settle (written
// and judged: a spread group's judge marks them when it has judged them).
func (r *Runner) markDue(closed []processors.Closed) {
	if r.lab == nil || !r.lab.dueKnown {
		return
	}
	for _, c := range closed {
		if m := c.Merged.Series.Model; r.lab.models[m] {
			r.lab.addDue(r.set.Labels.dueKey(m, time.UnixMilli(c.Merged.End)))
		}
	}
}

// settleView is what a settle loop works with: the label watermark, the models whose
// windows it settles, the label partitions cutoffs are found on, and in a spread group
// whether a model's window is judged yet and whether this member still judges what it
// settled (nil: every written window is judged, by this member).
type settleView struct {
	wm         time.Time
	models     []string
	partitions []storage.LabelPartition
	judged     func(model string, end time.Time) bool
	owned      func(ctx context.Context) bool
}

// memberLabels is the settle loop's view for one member, which reads every label
// partition: the watermark of what it read. Where the partitions end is asked only when
// a window could be due were they read to their end now.
func (r *Runner) memberLabels(ctx context.Context) (settleView, bool, error) {
	l, ls := r.lab, r.set.Labels
	if len(l.models) == 0 {
		return settleView{}, false, nil
	}
	if owner, ok := r.src.(partitionOwner); ok {
		if mine, _, err := owner.Owned(ctx, r.set.LabelTopic); err == nil {
			now := r.now()
			l.know(r.set.LabelTopic, mine, now)
			r.warnSilentLabels(now)
		} else {
			r.log.Warn("partitions of the label topic not known; settling goes on with those that delivered labels", "err", err)
		}
	}
	now := r.now()
	if wm := l.watermark(now); !wm.IsZero() && (!l.dueKnown || len(l.due) > 0 && !l.due[0].After(wm.Add(-ls.minSettle()-ls.Lateness-time.Millisecond))) {
		tps := make([]consumers.TopicPartition, 0, len(l.progress))
		for tp := range l.progress {
			tps = append(tps, tp)
		}
		if err := r.refreshCaught(ctx, now, tps); err != nil {
			return settleView{}, false, err
		}
	}
	v := settleView{wm: l.watermark(time.Time{})}
	if v.wm.IsZero() {
		return settleView{}, false, nil
	}
	for m := range l.models {
		v.models = append(v.models, m)
	}
	for tp := range l.progress {
		v.partitions = append(v.partitions, storage.LabelPartition{Topic: tp.Topic, Partition: tp.Partition})
	}
	return v, true, nil
}

// canaryPerformance compares the last of rows with its counterpart among the others: a
// canary's window with the primary's of the same model and period, or a primary's with
// its canaries' (detectors.CanaryPerformance). A model's series settle together (one
// settle time per model), so the pair is in one batch, whichever comes first.
func (r *Runner) canaryPerformance(rows []storage.PerformanceRow) []detectors.Condition {
	last := rows[len(rows)-1]
	k := last.Window.Series
	if k.Deployment != schemas.DeploymentCanary && k.Deployment != schemas.DeploymentPrimary {
		return nil
	}
	set := r.set.Canary
	if set == (detectors.CanarySettings{}) {
		set = detectors.DefaultCanarySettings
	}
	th := r.set.Labels.of(k.Model).Thresholds
	var out []detectors.Condition
	compare := func(canary, primary storage.PerformanceRow) {
		if c, ok := detectors.CanaryPerformance(canary.Window, canary.Counts, primary.Counts, primary.Window.Series.Version, th, set); ok {
			out = append(out, c)
		}
	}
	var primary *storage.PerformanceRow
	for i := range rows[:len(rows)-1] {
		o := &rows[i]
		if o.Window.Series.Model != k.Model || !o.Window.Start.Equal(last.Window.Start) {
			continue
		}
		switch {
		case k.Deployment == schemas.DeploymentPrimary && o.Window.Series.Deployment == schemas.DeploymentCanary:
			compare(*o, last)
		case k.Deployment == schemas.DeploymentCanary && o.Window.Series.Deployment == schemas.DeploymentPrimary &&
			(primary == nil || o.Counts.Predictions > primary.Counts.Predictions):
			primary = o
		}
	}
	if primary != nil {
		compare(last, *primary)
	}
	return out
}

// perfSeries returns a series' settled state: the one in memory, else the one stored (a
// series this runner has not judged yet since it started, or pruned), as a restart
// would find it.
func (r *Runner) perfSeries(ctx context.Context, k processors.SeriesKey) (*perfSeries, error) {
	if ps, ok := r.lab.series[k]; ok {
		return ps, nil
	}
	var settled []storage.SeriesSettled
	if err := retry.Do(ctx, r.set.policy(), "loading settled performance", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		settled, err = r.store.LoadSettled(ctx, k)
		return err
	}); err != nil {
		return nil, err
	}
	ps := &perfSeries{}
	for _, s := range settled {
		if s.Series != k {
			continue
		}
		th, windows := r.set.Labels.of(k.Model).Thresholds, r.set.ReferenceWindows(k.Model)
		ps.last = s.LastStart
		for _, row := range s.Reference {
			if row.InReference {
				if ps.task == "" {
					ps.task = row.Counts.Task()
				}
				ps.perf.add(row.Window.Start, row.Counts, windows, th.ReferenceMinLabelled, labelled)
			}
			if row.OutcomeReference {
				ps.outcomes.add(row.Window.Start, row.Counts, windows, th.ReferenceMinLabelled, predictions)
			}
		}
		ps.recent = s.Recent
		if s.Change != nil {
			if err := ps.concept.UnmarshalBinary(s.Change); err != nil {
				return nil, fmt.Errorf("restore the change detector of %v: %w", k, err)
			}
		}
	}
	r.lab.series[k] = ps
	return ps, nil
}

// prune forgets the series whose last settled window is older than until less the
// horizon: no window of theirs is loaded to settle any more, and one that comes later
// finds their state in ClickHouse (perfSeries). Only with nothing unwritten: the state
// stored is then the state in memory.
func (l *labelState) prune(until time.Time, horizon time.Duration) {
	for k, ps := range l.series {
		// One with nothing settled yet stays: its windows are waiting (a load would find
		// nothing, on every loop).
		if !ps.last.IsZero() && ps.last.Before(until.Add(-horizon)) {
			delete(l.series, k)
		}
	}
}

// detector starts a series' change detector once its loss stream's kind is known: the
// configured one, but ADWIN on a regression series' absolute errors for one that reads a
// 0/1 stream only.
func (r *Runner) detector(k processors.SeriesKey, zeroOne bool) detectors.ChangeDetector {
	kind, params := r.set.Labels.Detector, r.set.Labels.of(k.Model).Change
	if kind.BinaryOnly() && !zeroOne {
		kind = detectors.ChangeADWIN
	}
	// Validated with the configuration: the kind is known and its parameters build.
	d, err := detectors.NewChangeDetector(kind, params)
	if err != nil {
		d, _ = detectors.NewChangeDetector(detectors.ChangeADWIN, detectors.DefaultChangeParams())
	}
	return d
}

// judgePerformance scores one settled window: its row and the conditions it raises.
func (r *Runner) judgePerformance(ps *perfSeries, w storage.SettledWindow, js storage.JoinSpec, sc *detectors.Scorer) (storage.PerformanceRow, []detectors.Condition) {
	th := r.set.Labels.of(w.Series.Model).Thresholds
	counts, losses, zeroOne := sc.Result()
	pw := detectors.PerfWindow{Series: w.Series, Start: w.Start, End: w.End}
	row := storage.PerformanceRow{Window: pw, LabelsUntil: js.Until, Counts: counts}
	var conds []detectors.Condition
	task := counts.Task()
	if ps.task == "" {
		ps.task = task
	}
	windows := r.set.ReferenceWindows(w.Series.Model)
	switch {
	case task == "":
	case !ps.perf.done:
		row.InReference = true
		ps.perf.add(w.Start, counts, windows, th.ReferenceMinLabelled, labelled)
	default:
		span, judged := ps.judgedCounts(pw, counts, ps.perf, labelled)
		if c, ok := detectors.PerformanceCondition(span, judged, ps.perf.counts, th); ok {
			conds = append(conds, c)
		}
	}
	switch {
	case !ps.outcomes.done && (ps.outcomes.windows > 0 || len(counts.Outcomes) > 0):
		row.OutcomeReference = true
		ps.outcomes.add(w.Start, counts, windows, th.ReferenceMinLabelled, predictions)
	case ps.outcomes.done:
		span, judged := ps.judgedCounts(pw, counts, ps.outcomes, predictions)
		conds = append(conds, detectors.OutcomeConditions(span, judged, ps.outcomes.counts, th)...)
	}
	if !row.InReference && !row.OutcomeReference {
		// As LoadSettled reads them back: every window not in the reference.
		ps.recent = append(ps.recent, row)
		if len(ps.recent) > storage.RecentSettled {
			ps.recent = append(ps.recent[:0], ps.recent[len(ps.recent)-storage.RecentSettled:]...)
		}
	}
	if task == "" || task != ps.task {
		return row, conds
	}
	if ps.concept.Detector == nil {
		ps.concept.Detector = r.detector(w.Series, zeroOne)
	}
	if c, ok := ps.concept.Observe(pw, losses, zeroOne, th); ok {
		conds = append(conds, c)
	}
	return row, conds
}

// restoreLabels reloads the label partitions' progress and the labelled models; each
// series' settled state is loaded when one of its windows is next due (perfSeries).
func (r *Runner) restoreLabels(ctx context.Context) error {
	progress, models, err := r.store.LoadLabelProgress(ctx)
	if err != nil {
		return err
	}
	for _, p := range progress {
		if p.Topic == r.set.LabelTopic {
			r.lab.progress[consumers.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = labelPart{stamp: p.Latest}
		}
	}
	for _, m := range models {
		r.lab.models[m] = true
	}
	r.lab.dueKnown = false
	return nil
}
