package pipeline

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// Judging a spread group exactly (kafka.group_mode: spread; docs/architecture.md).
//
// Every member reads its share of the partitions and writes, per window, the partials of
// those partitions, unjudged, with the partitions' shares of the reference samples; then,
// per model and partition, how far the model's windows are written (its progress). One
// member judges each model: the reader of partition hash(model) mod P of the prediction
// topic, so the members agree on it without talking, and it moves with the partition at a
// rebalance. The judge reads the partitions' progress, and once every partition that
// carries the model has written a window, reads the window back (merged in partition
// order, exactly as one member merges it in memory) and judges it as one member would;
// it then writes the verdicts and alerts, the judgement into the partials' rows, and the
// end of the last window judged (judge_progress), from which its successor goes on.
//
// A partition's share of a window is final once its reader's watermark for the model
// has passed the window's end (for records in order within their partition, as for one
// member): so a window is complete when every partition carrying the model says so,
// except partitions more than the skew bound behind the model's newest, which one
// member's watermark drops too. Nothing is judged until every partition of the topic has
// been read past its reader's start-up grace (a row with model ""): a partition read
// late would otherwise not hold the first windows back.

// partitionOwner says which partitions of a topic this member reads, and how many the
// topic has (a *consumers.Consumer).
type partitionOwner interface {
	Owned(ctx context.Context, topic string) (mine []int, total int, err error)
}

// wholeReader says whether the group gives the pipeline topic whole to one member (a
// *consumers.Consumer).
type wholeReader interface {
	WholeTopics() (whole, known bool)
}

// spreadStore is what judging a spread group reads (a *storage.Store).
type spreadStore interface {
	LoadPartitionProgress(ctx context.Context) ([]storage.PartitionProgress, error)
	LoadJudgeProgress(ctx context.Context, models ...string) ([]storage.JudgeProgress, error)
	LoadWrittenWindows(ctx context.Context, models []string, from, through time.Time) ([]storage.ClosedWindow, error)
	LoadWindows(ctx context.Context, model string, after, through time.Time) ([]*processors.WindowAgg, error)
	WindowEnd(ctx context.Context, model string, after time.Time, nth int) (time.Time, bool, error)
	LoadSampleParts(ctx context.Context, model string, from, to time.Time) ([]storage.SamplePart, error)
}

// spreadState is a member's part in judging a spread group.
type spreadState struct {
	// written is the progress this member last wrote per (model, partition), so that only
	// what moved is written again (model "": a partition's clock, or a label partition's
	// mark); clockSent when it last wrote its partitions' clocks.
	written   map[progressKey]storage.PartitionProgress
	clockSent time.Time
	// judged is, per model, the end of the last window judged (by any member).
	judged map[string]time.Time
	// refsPolled is when the references were last read: a member learns the layouts of
	// references other members built from them, to bin its partials by them.
	refsPolled time.Time
	// total is the prediction topic's partition count ownership was last reckoned with.
	total int
	// samples are this member's shares of the first windows of versions without a
	// reference, written with its partials (the judge's builders are the judge's: they are
	// rebuilt from ClickHouse when the judge is).
	samples map[[2]string]*refBuilder
	// caughtAsked is when this member last asked where its label partitions end;
	// labelsPolled when it last read which models have labels (spread_labels.go).
	caughtAsked, labelsPolled time.Time
	// delivered are the (model, partition) pairs whose first record here was preceded by
	// reading how far the model is judged (firstDelivery).
	delivered map[progressKey]bool
	// judgedReadFailed is when firstDelivery's read last failed.
	judgedReadFailed time.Time
	// hints are the upstream hints worded in this judging, by model and window: a window
	// with several drifting features asks for its hint once per feature (storedHint).
	hints map[hintKey]string
	// links are the stages feeding each model, read in this judging (storedHint).
	links map[string][]storage.StageLink
	// progress is every partition's progress as read in this flush (nil: not read yet).
	progress []storage.PartitionProgress
	// rangeSaid is when the group's fallback to range was last logged.
	rangeSaid time.Time
	// claims are the model rows of this member's prediction partitions written before
	// this generation, taken over until this member's own replace them (shareClaims);
	// claimed once they are read. gen is the generation the rows are written in.
	claims  map[progressKey]claim
	claimed bool
	gen     int32
	// stale: the judging state was restored when this member's partitions were assigned,
	// while the member that judged its models before may still have been writing. It is
	// restored again before this member first judges (after its start-up grace).
	stale bool
}

// claim is a progress row taken over (shareClaims), and whether it is written as it is.
type claim struct {
	row  storage.PartitionProgress
	sent bool
}

type hintKey struct {
	model      string
	start, end int64
}

type progressKey struct {
	model string
	tp    processors.TopicPartition
}

func newSpreadState() *spreadState {
	return &spreadState{written: map[progressKey]storage.PartitionProgress{},
		judged: map[string]time.Time{}, samples: map[[2]string]*refBuilder{}, delivered: map[progressKey]bool{}, hints: map[hintKey]string{},
		links: map[string][]storage.StageLink{}, claims: map[progressKey]claim{}, stale: true}
}

// sampler is where an event of a version without a reference is sampled: the judge's
// builder, or in a spread group this member's share of the window (shareWindows).
func (r *Runner) sampler(model, version string) *refBuilder {
	if r.spread == nil {
		return r.j.builder(model, version)
	}
	key := [2]string{model, version}
	b, ok := r.spread.samples[key]
	if !ok {
		b = newRefBuilder(model, version)
		r.spread.samples[key] = b
	}
	return b
}

// referenceKnown stops sampling a version whose reference this member now knows.
func (r *Runner) referenceKnown(p *detectors.Profile) {
	if r.spread != nil {
		delete(r.spread.samples, [2]string{p.Model, p.Version})
	}
}

// ownerPartition is the partition of a topic of n partitions whose reader judges model.
func ownerPartition(model string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(model))
	return int(h.Sum32() % uint32(n))
}

// completeThrough is the end up to which every window of a model is written by every
// partition that holds it back (progress: the model's rows, one per partition; spec's
// Holds, as one member's watermark drops partitions far behind), and whether any
// partition says so. A row written in a generation before gen (the judge's) holds the
// windows as a partition read behind does: the partition may have moved to a member
// that has not written of it yet (shareClaims), or have no reader at the moment, and
// what the row said of its reading is not known to hold.
func completeThrough(progress []storage.PartitionProgress, spec processors.WindowSpec, gen int32) (time.Time, bool) {
	if len(progress) == 0 {
		return time.Time{}, false
	}
	newest := progress[0].EventMax
	for _, p := range progress[1:] {
		if p.EventMax.After(newest) {
			newest = p.EventMax
		}
	}
	var through time.Time
	first := true
	for _, p := range progress {
		if !spec.Holds(newest.Sub(p.EventMax), p.Lagging || p.Generation < gen) {
			continue // far behind: the watermark does not wait for it
		}
		if first || p.Through.Before(through) {
			through, first = p.Through, false
		}
	}
	return through, !first
}

// shareWindows readies a spread member's closed windows to be written unjudged: their
// partials keep their values while their version has no reference (the judge bins them
// by the reference it builds, whatever this member knew), the partitions' shares of the
// reference samples go with them, and after them the progress they make.
func (r *Runner) shareWindows(ctx context.Context, batch *storage.Batch, closed []processors.Closed) error {
	for _, c := range closed {
		s := c.Merged.Series
		if r.set.ReferenceSource(s.Model) != detectors.SourceFirstWindows {
			continue
		}
		c.PrepareKept(r.proc.Layout(s.Model, s.Version), true)
		b, ok := r.spread.samples[[2]string{s.Model, s.Version}]
		if !ok {
			continue
		}
		parts := b.open[c.Merged.Start]
		for _, p := range c.Partials {
			sample := parts[p.TopicPartition]
			if sample == nil {
				continue
			}
			body, err := sample.MarshalBinary()
			if err != nil {
				return fmt.Errorf("share the reference sample of %s %s at %v: %w", s.Model, s.Version, time.UnixMilli(c.Merged.Start).UTC(), err)
			}
			batch.SampleParts = append(batch.SampleParts, storage.SamplePart{Model: s.Model, Version: s.Version,
				Start: time.UnixMilli(c.Merged.Start).UTC(), TP: p.TopicPartition, Sample: body})
			delete(parts, p.TopicPartition)
		}
		if len(parts) == 0 {
			delete(b.open, c.Merged.Start)
		}
	}
	owner, ok := r.src.(partitionOwner)
	if !ok {
		return nil
	}
	g, current := r.generation()
	if !current {
		// Between generations, or the current one ended: the partitions may be another
		// member's already, and their windows idle-closed here (nothing is fetched) are
		// not read through. A row now could hide the new reader's.
		return nil
	}
	mine, _, err := owner.Owned(ctx, r.set.PredictionTopic)
	if err != nil {
		// Said at the next flush: the progress rows wait, nothing is judged early.
		r.log.Warn("partitions of the prediction topic not known; progress not written", "err", err)
		return nil
	}
	own := make(map[int]bool, len(mine))
	for _, p := range mine {
		own[p] = true
	}
	if g != r.spread.gen {
		// A generation begins: every row of this member's partitions is written again in
		// it, its own and those it takes over, since a judge holds a model's windows for a
		// row of an earlier generation (completeThrough).
		r.spread.gen = g
		clear(r.spread.written)
		clear(r.spread.claims)
		r.spread.claimed = false
	}
	graced := r.graceOver(r.now())
	if graced {
		if err := r.shareProgress(ctx, owner, mine, own, batch); err != nil {
			return err
		}
	}
	r.shareClaims(ctx, own, batch, graced)
	for i := range batch.Progress {
		batch.Progress[i].Generation = r.spread.gen
	}
	return nil
}

// generationSource says which generation of the group this member reads in (a
// *consumers.Consumer; 0 between generations).
type generationSource interface {
	Generation() int32
}

// generation is the group generation this member reads in (0 for a source without
// one), and whether one is current: false between generations, and once the current one
// ended (its readers stopped).
func (r *Runner) generation() (int32, bool) {
	if g, ok := r.src.(generationSource); ok {
		gen := g.Generation()
		return gen, gen != 0
	}
	return 0, true
}

// shareProgress adds to batch the progress this member's partitions of the prediction
// topic (mine, and as a set own) made since it last wrote it: their clocks, their label
// marks, and per model how far its windows are written (after the start-up grace).
func (r *Runner) shareProgress(ctx context.Context, owner partitionOwner, mine []int, own map[int]bool, batch *storage.Batch) error {
	now := r.now()
	due := now.Sub(r.spread.clockSent) >= pollEvery
	r.shareClocks(r.set.PredictionTopic, mine, batch, r.clock.partitionClock, due)
	if r.up != nil {
		pipe, _, err := owner.Owned(ctx, r.set.PipelineTopic)
		if err != nil {
			r.log.Warn("partitions of the pipeline topic not known; their clocks not written", "err", err)
		} else {
			r.shareClocks(r.set.PipelineTopic, pipe, batch, r.clock.readThrough, due)
		}
	}
	if due {
		r.spread.clockSent = now
	}
	if r.lab != nil {
		if err := r.shareLabelProgress(ctx, owner, batch); err != nil {
			return err
		}
	}
	// Windows held for the pipeline topic are closed but not written yet.
	held := map[string]int64{}
	if r.up != nil {
		for _, c := range r.up.held {
			m := c.Merged.Series.Model
			if cur, ok := held[m]; !ok || c.Merged.Start < cur {
				held[m] = c.Merged.Start
			}
		}
	}
	for _, mp := range r.proc.Progress() {
		through := mp.Through
		if h, ok := held[mp.Model]; ok {
			through = min(through, h)
		}
		if through <= 0 {
			continue
		}
		for tp, ev := range mp.EventMax {
			if tp.Topic == r.set.PredictionTopic && !own[tp.Partition] {
				continue // not this member's in this generation
			}
			p := storage.PartitionProgress{Model: mp.Model, TP: tp, Through: time.UnixMilli(through).UTC(), EventMax: time.UnixMilli(ev).UTC(), Lagging: mp.Lagging[tp]}
			k := progressKey{mp.Model, tp}
			if last, ok := r.spread.written[k]; ok && !p.Through.After(last.Through) && !p.EventMax.After(last.EventMax) && p.Lagging == last.Lagging {
				continue
			}
			r.spread.written[k] = p
			batch.Progress = append(batch.Progress, p)
		}
	}
	return nil
}

// shareClaims takes over, once this member has its partitions of the prediction topic in
// a generation, the model rows written of them before (by their previous readers, or by
// this member in an earlier generation; the newest row wins: read_progress), and adds
// them to batch, in this generation, until this member's own rows replace them. A
// partition that moved here at a rebalance is re-read from its commit, and this member
// writes nothing of it before its start-up grace, nor of a model it has not delivered
// again: the previous reader's last row, written when it had read the partition to its
// end, would meanwhile say the partition is not read behind, and the judge would stop
// waiting for it once the other partitions were the skew bound ahead (completeThrough),
// judging windows this member has still to write. The rows taken over keep what they
// said was written (it is), and say the partition is read behind until the grace is
// over, then what its reading here says (an idle partition is not).
func (r *Runner) shareClaims(ctx context.Context, own map[int]bool, batch *storage.Batch, graced bool) {
	if r.spread.claimed && r.spread.progress != nil {
		// What the last judging read (after this member's last write): a row of its
		// partitions of another generation was written after its own or its claim (a
		// member that lost the partition and had not learnt it yet): taken over again.
		for _, p := range r.spread.progress {
			if p.Model == "" || p.TP.Topic != r.set.PredictionTopic || !own[p.TP.Partition] || p.Generation == r.spread.gen {
				continue
			}
			k := progressKey{p.Model, p.TP}
			delete(r.spread.written, k) // this member's own row is written again when it moves
			r.spread.claims[k] = claim{row: p}
		}
	}
	if !r.spread.claimed {
		if len(own) == 0 {
			return // none yet: the next flush asks again
		}
		progress, err := r.store.LoadPartitionProgress(ctx)
		if err != nil {
			r.log.Warn("partition progress not read; the previous readers' rows are taken over at the next flush", "err", err)
			return
		}
		for _, p := range progress {
			if p.Model != "" && p.TP.Topic == r.set.PredictionTopic && own[p.TP.Partition] {
				r.spread.claims[progressKey{p.Model, p.TP}] = claim{row: p}
			}
		}
		r.spread.claimed = true
	}
	var out []storage.PartitionProgress
	for k, c := range r.spread.claims {
		if _, replaced := r.spread.written[k]; replaced {
			delete(r.spread.claims, k) // this member's own row replaced it
			continue
		}
		// Read behind, as far as this member knows: before its grace, and after it a
		// partition that has delivered nothing although it had records to read (the grace
		// stopped waiting for it: it cannot be read), as well as one read behind now.
		lagging := !graced || r.proc.Lagging(k.tp) || !r.readOnce(consumers.TopicPartition{Topic: k.tp.Topic, Partition: k.tp.Partition})
		if c.sent && c.row.Lagging == lagging {
			continue
		}
		c.row.Lagging, c.sent = lagging, true
		r.spread.claims[k] = c
		out = append(out, c.row)
	}
	// In order, so that a batch is the same whatever the map's order.
	slices.SortFunc(out, func(a, b storage.PartitionProgress) int {
		if a.Model != b.Model {
			return strings.Compare(a.Model, b.Model)
		}
		return a.TP.Partition - b.TP.Partition
	})
	batch.Progress = append(batch.Progress, out...)
}

// shareClocks adds to batch the clocks of topic's partitions mine (clockOf): of the
// prediction partitions, which the judges give silent windows by (silentOwned), and of
// the pipeline partitions, which they judge a model's windows after (upstreamRead).
// Each partition's first row says it was read past the start-up grace; after it, a clock
// that moved is written at most every pollEvery (a caught-up clock moves with the wall
// clock at every flush). Written after the batch's rows (the runs read before it).
func (r *Runner) shareClocks(topic string, mine []int, batch *storage.Batch, clockOf func(consumers.TopicPartition, time.Time) time.Time, due bool) {
	now := r.now()
	epoch := time.UnixMilli(0).UTC()
	for _, p := range mine {
		tp := processors.TopicPartition{Topic: topic, Partition: p}
		row := storage.PartitionProgress{TP: tp, Through: epoch, EventMax: epoch}
		if c := clockOf(consumers.TopicPartition{Topic: tp.Topic, Partition: p}, now); c.After(epoch) {
			row.Through = c.UTC()
		}
		k := progressKey{tp: tp}
		if last, ok := r.spread.written[k]; ok && (!due || !row.Through.After(last.Through)) {
			continue
		}
		r.spread.written[k] = row
		batch.Progress = append(batch.Progress, row)
	}
}

// pollReferences reads the references other members built, at most every few seconds
// while some version this member reads has none: its windows are then counted between
// the reference's bins instead of keeping their values.
func (r *Runner) pollReferences(ctx context.Context, now time.Time) {
	if len(r.spread.samples) == 0 || now.Sub(r.spread.refsPolled) < pollEvery {
		return
	}
	r.spread.refsPolled = now
	refs, err := r.store.LoadReferences(ctx)
	if err != nil {
		r.log.Warn("references not read; windows keep their values until they are", "err", err)
		return
	}
	for _, p := range refs {
		if _, ok := r.j.refs[[2]string{p.Model, p.Version}]; !ok {
			r.useReference(p)
		}
		r.referenceKnown(p)
	}
}

// judgeOwned judges the windows of the models this member judges that every partition
// has written since they were last judged, and writes the result (write.go).
func (r *Runner) judgeOwned(ctx context.Context) error {
	now := r.now()
	if !r.graceOver(now) {
		return nil
	}
	owner, ok := r.src.(partitionOwner)
	if !ok {
		return nil
	}
	mine, total, err := owner.Owned(ctx, r.set.PredictionTopic)
	if err != nil {
		r.log.Warn("partitions of the prediction topic not known; judging waits", "err", err)
		return nil
	}
	if total != r.spread.total && r.spread.total != 0 && total != 0 {
		// Partitions were added, and which models this member judges changed with them,
		// while its own partitions may not have (no rebalance here). Its judging state is
		// that of the models it judged: ending Run (nothing is committed past what is
		// written) lets driftd start again and restore every model's state.
		return fmt.Errorf("the prediction topic %s now has %d partitions, not %d: which member judges each model has changed; "+
			"driftd stops so that it starts again with every model's judging state restored", r.set.PredictionTopic, total, r.spread.total)
	}
	r.spread.total = total
	if total == 0 || len(mine) == 0 {
		return nil
	}
	gen, current := r.generation()
	if !current {
		return nil // the generation ended: its readers stopped each at another point
	}
	if r.spread.stale {
		// A fresh judge, restored from what is judged by now (restoreJudging); each
		// attempt from nothing, as restoreJudging adds to what it finds. Past
		// limits.max_outage Run ends: a member that cannot judge its models must not keep
		// them from a member that can.
		if err := retry.Do(ctx, r.set.policy(), "restoring the judging state", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			r.j = newJudge(&r.set, r.log, r.store)
			r.j.hint = r.hinter()
			clear(r.spread.judged)
			// And the shadows' references: another member may have added windows to them.
			clear(r.shadowRefs)
			if r.lab != nil {
				// The series' settled state too: another member may have settled since.
				clear(r.lab.series)
				r.lab.dueKnown = false
			}
			_, _, _, _, err := r.restoreJudging(ctx)
			return err
		}); err != nil {
			return err
		}
		r.spread.stale = false
	}
	own := map[int]bool{}
	for _, p := range mine {
		own[p] = true
	}
	var progress []storage.PartitionProgress
	if err := retry.Do(ctx, r.set.policy(), "loading partition progress", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		progress, err = r.store.LoadPartitionProgress(ctx)
		return err
	}); err != nil {
		return err
	}
	r.spread.progress = progress
	for _, p := range progress {
		if p.TP.Topic == r.set.PredictionTopic && p.Generation > gen {
			// The group has moved on to a generation this member has not learnt of yet:
			// its readers are stopping, and its partitions may be another's already.
			return nil
		}
	}
	clear(r.spread.hints)
	clear(r.spread.links)
	// clock is the least of the partitions' clocks (zero: none dates anything yet).
	var clock time.Time
	graced, byModel := map[int]bool{}, map[string][]storage.PartitionProgress{}
	for _, p := range progress {
		if p.TP.Topic != r.set.PredictionTopic {
			continue
		}
		if p.Model == "" {
			graced[p.TP.Partition] = true
			if p.Through.UnixMilli() > 0 && (clock.IsZero() || p.Through.Before(clock)) {
				clock = p.Through
			}
			continue
		}
		byModel[p.Model] = append(byModel[p.Model], p)
	}
	for p := 0; p < total; p++ {
		if !graced[p] {
			return nil // a partition not read yet may hold any model's first windows back
		}
	}
	upstream, bounded, ok := r.upstreamRead(ctx, owner, progress)
	if !ok {
		return nil
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		if own[ownerPartition(m, total)] {
			models = append(models, m)
		}
	}
	sort.Strings(models)
	var closed []processors.Closed
	// upTo is, per model, the end of the last window this batch judges.
	upTo := map[string]time.Time{}
	for _, m := range models {
		upTo[m] = r.spread.judged[m]
		complete, ok := completeThrough(byModel[m], r.set.WindowSpec(m), gen)
		if bounded {
			// Whole windows only: a window ending after the bound waits for the pipeline topic.
			complete = minTime(complete, upstream)
		}
		if !ok || !complete.After(r.spread.judged[m]) {
			continue
		}
		if complete, err = r.judgeBatch(ctx, m, complete); err != nil {
			return err
		}
		ws, err := r.loadComplete(ctx, m, r.spread.judged[m], complete)
		if err != nil {
			return err
		}
		closed = append(closed, ws...)
		upTo[m] = complete
	}
	sort.SliceStable(closed, func(i, j int) bool { return closed[i].Merged.Start < closed[j].Merged.Start })
	closed = r.fillGaps(closed)
	silent := r.silentOwned(byModel, upTo, clock)
	for _, c := range silent {
		m := c.Merged.Series.Model
		upTo[m] = maxTime(upTo[m], time.UnixMilli(c.Merged.End).UTC())
	}
	var through []storage.JudgeProgress
	for _, m := range models {
		if upTo[m].After(r.spread.judged[m]) {
			through = append(through, storage.JudgeProgress{Model: m, Through: upTo[m]})
		}
	}
	if len(through) == 0 && len(silent) == 0 {
		// Empty windows up to where a model is judged are written even when nothing
		// moved (a series that has its reference only now, or a restart after a write cut
		// off): emptyWindows has moved the series' end past them.
		return nil
	}
	closed = append(closed, silent...)
	sort.SliceStable(closed, func(i, j int) bool { return closed[i].Merged.Start < closed[j].Merged.Start })
	batch := &storage.Batch{Closed: closed, WrittenAt: now, JudgedThrough: through}
	built, err := r.j.judgeClosed(ctx, closed, now, batch, r.on.verdict)
	if err != nil {
		r.spread.stale = true // the judge's state has moved on for windows not written
		return err
	}
	if err := r.compareShadows(ctx, closed, batch); err != nil {
		r.spread.stale = true // as above: the windows are judged, not written
		return err
	}
	batch.AlertStates = r.j.alerter.Changes()
	// The partitions may have moved while judging: a member that no longer reads a
	// model's partition leaves its windows to the new judge, which restores the state
	// from ClickHouse after its grace; so does this member before it judges again.
	if now, _, err := owner.Owned(ctx, r.set.PredictionTopic); err != nil || !slices.Equal(now, mine) {
		r.dropJudged("partitions moved while judging; the judged windows are left to their new judge")
		return nil
	}
	for _, p := range built {
		r.proc.SetLayout(p.Model, p.Version, p.Layout())
		r.referenceKnown(p)
	}
	// Judged from here on, written or not: a write cut off is finished as it is by the
	// next flush (write.go), never judged again.
	// Not read back, the processor learns the judgement later (learnJudged), with them.
	learned := r.learnWritten(ctx, through) == nil
	for _, p := range through {
		r.spread.judged[p.Model] = p.Through
		if learned {
			r.proc.Judged(p.Model, p.Through.UnixMilli())
		}
	}
	// windows: 0, as each was counted closed where it was read.
	r.unwritten = &judged{refs: built, batch: batch}
	if err := r.writeJudged(ctx); err != nil {
		return err
	}
	r.markDue(closed)
	return nil
}

// judgeBatch bounds how far a model's windows are judged in one round, complete being
// how far they may be: a judge that was held back (a partition not read, the pipeline
// topic's clock, a partition read behind) or that first judges a model after a backlog
// was written reads back and judges at most Settings.JudgeBatch windows at once, not
// everything written meanwhile, and goes on at its next flush. The windows are judged in
// order all the same, so the rows and alerts are those of one round.
func (r *Runner) judgeBatch(ctx context.Context, model string, complete time.Time) (time.Time, error) {
	judged, n := r.spread.judged[model], r.set.JudgeBatch
	if !judged.IsZero() && complete.Sub(judged) <= time.Duration(n)*r.set.WindowSpec(model).Size {
		return complete, nil // at most n windows of the model's size fit: no need to count
	}
	var end time.Time
	var found bool
	if err := retry.Do(ctx, r.set.policy(), "counting the windows to judge", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		end, found, err = r.store.WindowEnd(ctx, model, judged, n)
		return err
	}); err != nil {
		return time.Time{}, err
	}
	if found && end.Before(complete) {
		return end, nil
	}
	return complete, nil
}

// upstreamRead is how far a model's windows may end to be judged, as the pipeline topic
// is read: the least of its partitions' clocks (readThrough, written by the member that
// reads them after the runs it read) less the pipelines' lateness, as one member's
// holdForUpstream waits for its own read. bounded is false without a pipeline topic (or
// one with no partitions); ok is false while a partition of it has no clock yet.
func (r *Runner) upstreamRead(ctx context.Context, owner partitionOwner, progress []storage.PartitionProgress) (bound time.Time, bounded, ok bool) {
	if r.up == nil {
		return time.Time{}, false, true
	}
	_, total, err := owner.Owned(ctx, r.set.PipelineTopic)
	if err != nil {
		r.log.Warn("partitions of the pipeline topic not known; judging waits", "err", err)
		return time.Time{}, false, false
	}
	if total == 0 {
		return time.Time{}, false, true
	}
	if w, ok := owner.(wholeReader); ok {
		if whole, known := w.WholeTopics(); known && !whole {
			// A member of an older driftd, which writes no clocks of the partitions it
			// reads, made the group fall back to range: waiting for their clocks would stop
			// judging until the last member is upgraded.
			if now := r.now(); now.Sub(r.spread.rangeSaid) >= time.Minute {
				r.spread.rangeSaid = now
				r.log.Error("the consumer group assigns partitions by range, not driftd-spread: a member runs an older driftd. "+
					"Until every member is upgraded, the pipeline topic is read by several members: model windows are judged without "+
					"waiting for it, drift alerts' upstream hints miss the runs older members read, and each member judges pipeline "+
					"stages from the partitions it reads", "topic", r.set.PipelineTopic)
			}
			return time.Time{}, false, true
		}
	}
	clocks := map[int]time.Time{}
	for _, p := range progress {
		if p.Model == "" && p.TP.Topic == r.set.PipelineTopic {
			clocks[p.TP.Partition] = p.Through
		}
	}
	for p := 0; p < total; p++ {
		c, ok := clocks[p]
		if !ok {
			return time.Time{}, false, false
		}
		if p == 0 || c.Before(bound) {
			bound = c
		}
	}
	return bound.Add(-r.set.PipelineWindow.Lateness), true, true
}

// learnJudged tells the processor how far every model is judged (by whichever member):
// a record of a window already judged is late here, as for one member, not a partial
// nobody judges (a partition read late, or delivering a model for the first time).
func (r *Runner) learnJudged(ctx context.Context, models ...string) bool {
	judged, err := r.store.LoadJudgeProgress(ctx, models...)
	if err != nil {
		r.log.Warn("judge progress not read; records of judged windows may be written unjudged", "err", err)
		return false
	}
	if err := r.learnWritten(ctx, judged); err != nil {
		r.log.Warn("windows judged by another member not read; records of them read again may be counted late", "err", err)
		return false
	}
	for _, p := range judged {
		r.proc.Judged(p.Model, p.Through.UnixMilli())
	}
	return true
}

// learnWritten tells the processor the windows written up to where judged says each
// model is now judged, beyond where it knew: a record of a judged window is late unless
// it was written, and a partition's previous reader may have written it after this
// member restored (a write cut off by a rebalance is still stored, its commit refused),
// so that this member reads its records again. Read after the judge progress: the
// partials a window was judged from are stored before its judgement (Store.Write).
// Looks back at most as far as a restart does.
func (r *Runner) learnWritten(ctx context.Context, judged []storage.JudgeProgress) error {
	from, to := map[string]int64{}, map[string]int64{}
	var models []string
	var startAfter, through int64
	for _, p := range judged {
		t, known := p.Through.UnixMilli(), r.proc.JudgedThrough(p.Model)
		if t <= known {
			continue
		}
		lo := max(known, t-writtenLookback.Milliseconds())
		// A window ending after lo starts after lo less its size.
		if s := lo - r.proc.Spec(p.Model).Size.Milliseconds(); len(models) == 0 || s < startAfter {
			startAfter = s
		}
		through = max(through, t)
		from[p.Model], to[p.Model] = lo, t
		models = append(models, p.Model)
	}
	if len(models) == 0 {
		return nil
	}
	written, err := r.store.LoadWrittenWindows(ctx, models, time.UnixMilli(startAfter).UTC(), time.UnixMilli(through).UTC())
	if err != nil {
		return err
	}
	for _, w := range written {
		if lo, ok := from[w.Model]; ok && w.End > lo && w.End <= to[w.Model] {
			r.proc.Written(w.Model, w.Start, processors.TopicPartition{Topic: w.TP.Topic, Partition: w.TP.Partition}, w.LastOffset)
		}
	}
	return nil
}

// writtenLookback is how far back learnWritten reads, as Restore reads the windows
// written before a restart.
const writtenLookback = 48 * time.Hour

// firstDelivery reads how far model is judged before the first record of it that
// partition tp delivers here is aggregated. The model's judge does not wait for a
// partition that has not carried the model, so it may have judged the record's window
// since this member last learned (at its last flush): the record is then late, as for
// one member, rather than the start of a partial nobody judges. Once per pair and
// assignment: a partition that has carried the model is waited for.
func (r *Runner) firstDelivery(ctx context.Context, model string, tp processors.TopicPartition) {
	k := progressKey{model, tp}
	if r.spread.delivered[k] {
		return
	}
	// A failed read is tried again at the pair's next record, but not before a second
	// has passed: while ClickHouse is down, records are not held up a query each.
	if now := r.now(); now.Sub(r.spread.judgedReadFailed) >= time.Second {
		if r.learnJudged(ctx, model) {
			r.spread.delivered[k] = true
		} else {
			r.spread.judgedReadFailed = now
		}
	}
}

// forgetDelivered makes the next record of a model whose state the processor dropped
// (its series idle, to make room for others) read how far it is judged again: the
// processor forgot that with the model.
func (r *Runner) forgetDelivered(gone []processors.SeriesKey) {
	models := map[string]bool{}
	for _, s := range gone {
		models[s.Model] = true
	}
	for k := range r.spread.delivered {
		if models[k.model] {
			delete(r.spread.delivered, k)
		}
	}
}

// loadComplete reads back model's windows ending in (after, through], with the
// partitions' shares of the reference samples of versions still building a reference.
func (r *Runner) loadComplete(ctx context.Context, model string, after, through time.Time) ([]processors.Closed, error) {
	var ws []*processors.WindowAgg
	if err := retry.Do(ctx, r.set.policy(), "reading windows back", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		ws, err = r.store.LoadWindows(ctx, model, after, through)
		return err
	}); err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]processors.Closed, len(ws))
	for i, w := range ws {
		out[i] = processors.Closed{Merged: w}
	}
	if r.set.ReferenceSource(model) != detectors.SourceFirstWindows {
		return out, nil
	}
	building := false
	for _, c := range out {
		if r.j.refs[[2]string{model, c.Merged.Series.Version}] == nil {
			building = true
		}
	}
	if !building {
		return out, nil
	}
	var parts []storage.SamplePart
	if err := retry.Do(ctx, r.set.policy(), "loading reference sample shares", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		parts, err = r.store.LoadSampleParts(ctx, model, time.UnixMilli(ws[0].Start), time.UnixMilli(ws[len(ws)-1].Start))
		return err
	}); err != nil {
		return nil, err
	}
	for _, p := range parts {
		if r.j.refs[[2]string{model, p.Version}] != nil {
			continue
		}
		s, err := detectors.UnmarshalSample(p.Sample)
		if err != nil {
			r.log.Warn("stored reference sample share unreadable; the reference is built without it", "model", model, "version", p.Version,
				"window", p.Start, "partition", p.TP.Partition, "err", err)
			continue
		}
		r.j.builder(model, p.Version).share(p.Start.UnixMilli(), p.TP, s)
	}
	return out, nil
}

// progressDue says whether a flush has progress to write even with no window closed: a
// spread member past its start-up grace writes how far its partitions have gone (only
// what moved is written), and one given partitions, or in a new generation, writes
// their rows again (shareClaims).
func (r *Runner) progressDue() bool {
	if r.spread == nil {
		return false
	}
	g, current := r.generation()
	return r.graceOver(r.now()) || !r.spread.claimed && r.src.Assigned() > 0 || current && g != r.spread.gen
}

// judgedThrough is, per model, the end of the last of closed's windows judged: one
// member records it too, so that a group that later spreads (or a restart after it did)
// restores the judging state from the windows judged.
func judgedThrough(closed []processors.Closed) []storage.JudgeProgress {
	ends := map[string]int64{}
	for _, c := range closed {
		if c.Supplement {
			continue
		}
		m := c.Merged.Series.Model
		ends[m] = max(ends[m], c.Merged.End)
	}
	out := make([]storage.JudgeProgress, 0, len(ends))
	for m, end := range ends {
		out = append(out, storage.JudgeProgress{Model: m, Through: time.UnixMilli(end).UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}
