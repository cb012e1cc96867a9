package pipeline

import (
	"context"
	"sort"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// refBuilder collects the events of a model version's first windows, per window and
// source partition, until enough windows have closed to build its reference profile.
//
// The reference must be a function of the stream: the same whether the windows were read
// live, from a backlog, or across a restart. So a window's events are merged partition by
// partition in partition order (each partition's in offset order), not in the order
// the consumer happened to interleave partitions; and what each closed window added is
// written to ClickHouse with the window (reference_samples), so that a restart inside the
// first windows continues from the windows already written instead of building the
// reference from later ones. The alternative — holding commits at the first record of
// those windows so that a restart re-reads them — would make every restart re-read up
// to reference_windows windows, keep the group's lag up for that long, and never
// release a partition whose version stops before its reference is complete; the stored
// share is bounded by the reference's own size (detectors.Sample.TrimmedFor).
type refBuilder struct {
	model, version string
	open           map[int64]map[processors.TopicPartition]*detectors.Sample
	done           *detectors.Sample
	closed         map[int64]bool
	// last is the start of the latest window folded in: the windows between it and the
	// next one had no event and count as empty reference windows.
	last    int64
	hasLast bool
	// Windows from cutoff on come after enough windows to build the reference from: they
	// are judged against it, never folded in, so their events are not sampled. In a
	// backlog many windows stay open until every partition holds, and sampling them all
	// cost a tenth of the pipeline goroutine and most of its start-up memory.
	cutoff    int64
	hasCutoff bool
}

func (j *judge) builder(model, version string) *refBuilder {
	key := [2]string{model, version}
	b, ok := j.building[key]
	if !ok {
		b = newRefBuilder(model, version)
		j.building[key] = b
	}
	return b
}

func newRefBuilder(model, version string) *refBuilder {
	return &refBuilder{model: model, version: version, open: map[int64]map[processors.TopicPartition]*detectors.Sample{},
		done: detectors.NewSample(), closed: map[int64]bool{}}
}

// add samples e into the share of its window and partition. n and minEvents are what the
// reference needs (windows, events).
func (b *refBuilder) add(windowStart int64, tp processors.TopicPartition, e *schemas.PredictionEvent, n int, minEvents uint64) {
	if b.hasCutoff && windowStart >= b.cutoff {
		return
	}
	parts, ok := b.open[windowStart]
	if !ok {
		if b.enoughBefore(windowStart, n, minEvents) {
			b.cutoff, b.hasCutoff = windowStart, true
			return
		}
		parts = map[processors.TopicPartition]*detectors.Sample{}
		b.open[windowStart] = parts
	}
	s, ok := parts[tp]
	if !ok {
		s = detectors.NewSample()
		parts[tp] = s
	}
	s.AddEvent(e)
}

// mayFollow reports whether the window at start may come after the windows the
// reference is built from: those are n windows with events at least, so they end n window
// sizes after the earliest window with events known, at the soonest. Which windows they
// are is known for sure only once they have closed: whether the windows before start
// already hold minEvents events, or another partition's are still to be read, depends on
// the read. So this errs towards true: a window of the reference's own that kept its
// events drops them as it closes. It errs towards false only when a window at least n
// earlier than every window read so far is read after this one opens (from a partition
// that carries the version from earlier on, or out of order in the same one).
func (b *refBuilder) mayFollow(start, size int64, n int) bool {
	first, ok := int64(0), false
	for s := range b.open {
		if !ok || s < first {
			first, ok = s, true
		}
	}
	for s := range b.closed {
		if !ok || s < first {
			first, ok = s, true
		}
	}
	return ok && start >= first+int64(n)*size
}

// afterReferenceWindows says whether a window of (model, version) at start, opening before
// the version's reference exists, may come after the windows it is built from: the
// processor then keeps its events, to count them again with the reference's layout once
// it is built (processors/kept.go), so that the window is the same whether it opened
// before the reference was built or after (live, a backlog, a restart).
func (j *judge) afterReferenceWindows(model, version string, start int64) bool {
	if j.set.ReferenceSource(model) != detectors.SourceFirstWindows || j.refs[[2]string{model, version}] != nil {
		return false
	}
	b, ok := j.building[[2]string{model, version}]
	if !ok {
		// The version's first window: it may be far ahead of the ones read next.
		return true
	}
	return b.mayFollow(start, j.set.WindowSpec(model).Size.Milliseconds(), j.set.ReferenceWindows(model))
}

// share puts in a partition's share of a window as the member that read the partition
// sampled it (spread.go).
func (b *refBuilder) share(start int64, tp processors.TopicPartition, s *detectors.Sample) {
	parts, ok := b.open[start]
	if !ok {
		parts = map[processors.TopicPartition]*detectors.Sample{}
		b.open[start] = parts
	}
	parts[tp] = s
}

// enoughBefore reports whether the windows before start make a reference without it: n
// windows with events, closed or still open (a model's windows close in start order, and
// an open window already has an event), holding minEvents events. Their counts only grow,
// so a window found not needed stays not needed.
func (b *refBuilder) enoughBefore(start int64, n int, minEvents uint64) bool {
	windows, events := len(b.closed), b.done.Events
	for s, parts := range b.open {
		if s < start {
			windows++
			for _, p := range parts {
				events += p.Events
			}
		}
	}
	return windows >= n && events > 0 && events >= minEvents
}

// windowClosed folds a closed window in. After n windows holding minEvents events in
// all it returns the profile; before, it returns what the window added (nil if nothing),
// to be stored with it.
func (b *refBuilder) windowClosed(start, size int64, n int, minEvents uint64, now time.Time) (*detectors.Profile, *detectors.Sample) {
	parts := b.open[start]
	delete(b.open, start)
	var share *detectors.Sample
	if !b.closed[start] {
		b.closed[start] = true
		if len(parts) > 0 {
			tps := make([]processors.TopicPartition, 0, len(parts))
			for tp := range parts {
				tps = append(tps, tp)
			}
			sort.Slice(tps, func(i, j int) bool {
				if tps[i].Topic != tps[j].Topic {
					return tps[i].Topic < tps[j].Topic
				}
				return tps[i].Partition < tps[j].Partition
			})
			w := detectors.NewSample()
			for _, tp := range tps {
				w.Merge(parts[tp])
			}
			empty := 0
			if b.hasLast && size > 0 && start > b.last {
				empty = int((start-b.last)/size) - 1
			}
			w.AsWindow(min(empty, 1000))
			b.last, b.hasLast = max(b.last, start), true
			share = w.TrimmedFor(b.done)
			b.done.Merge(share)
		}
	}
	if len(b.closed) < n || b.done.Events == 0 || b.done.Events < minEvents {
		return nil, share
	}
	p := b.done.Build(b.model, b.version, detectors.SourceFirstWindows, len(b.closed), now)
	p.WindowMs, p.Through = size, time.UnixMilli(max(b.last, start)+size).UTC()
	return p, nil
}

// restoreWindow folds in a window written before a restart (windows in start order).
func (b *refBuilder) restoreWindow(start int64, s *detectors.Sample) {
	if b.closed[start] {
		return
	}
	b.closed[start] = true
	b.last, b.hasLast = max(b.last, start), true
	b.done.Merge(s)
}

// referenceWindowClosed feeds a closed window of a version without a reference to its
// builder. It returns the reference once built (now is its build time); until then the
// window's share goes into the batch, to be written with it.
func (j *judge) referenceWindowClosed(batch *storage.Batch, w *processors.WindowAgg, now time.Time) *detectors.Profile {
	p, share := j.builder(w.Series.Model, w.Series.Version).windowClosed(w.Start, w.End-w.Start, j.set.ReferenceWindows(w.Series.Model), j.set.ReferenceMinEvents, now)
	if p != nil || share == nil {
		return p
	}
	body, err := share.MarshalBinary()
	if err != nil {
		// Not stored, the share is still in memory: only a restart before the reference
		// is built would miss it.
		j.log.Warn("reference sample not stored", "model", w.Series.Model, "version", w.Series.Version, "err", err)
		return nil
	}
	batch.ReferenceSamples = append(batch.ReferenceSamples, storage.ReferenceSample{Model: w.Series.Model, Version: w.Series.Version,
		Start: time.UnixMilli(w.Start).UTC(), Sample: body})
	return nil
}

// buildAtClose folds the windows just closed, the last n of pending (the windows closed
// and not judged yet), into the references their versions are building, and builds a
// reference as its last window closes rather than at the next flush: the windows after
// it that open before it is built keep their events until then (processors/kept.go), and
// a backlog read at full speed opens many in a flush interval, few in the time the last
// window waits for its late events. What each window added goes into shares, to be
// written with it; the references built are returned, to be saved before the batch that
// judges their windows. held are the windows closed and held back before pending
// (holdForUpstream): a reference built adopts them too. A spread group's judge builds
// them as it judges (judgeClosed).
func (j *judge) buildAtClose(proc *processors.Processor, pending []processors.Closed, n int, now time.Time, shares *storage.Batch, held []processors.Closed) []*detectors.Profile {
	var built []*detectors.Profile
	for _, c := range pending[len(pending)-n:] {
		w := c.Merged
		if c.Supplement || w.Events == 0 || j.set.ReferenceSource(w.Series.Model) != detectors.SourceFirstWindows || j.refs[[2]string{w.Series.Model, w.Series.Version}] != nil {
			continue
		}
		p := j.referenceWindowClosed(shares, w, now)
		c.DropKept() // one of the reference's own windows
		if p != nil {
			j.useReference(p)
			adoptBuilt(proc, p, pending, held)
			built = append(built, p)
		}
	}
	return built
}

// restoreBuilders loads the shares of the windows written for versions whose reference
// is not built yet.
func (r *Runner) restoreBuilders(ctx context.Context) (int, error) {
	samples, err := r.store.LoadReferenceSamples(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rs := range samples {
		if _, ok := r.j.refs[[2]string{rs.Model, rs.Version}]; ok || r.set.ReferenceSource(rs.Model) != detectors.SourceFirstWindows {
			continue
		}
		s, err := detectors.UnmarshalSample(rs.Sample)
		if err != nil {
			r.log.Warn("stored reference sample unreadable; the reference is built without that window", "model", rs.Model, "version", rs.Version, "err", err)
			continue
		}
		r.j.builder(rs.Model, rs.Version).restoreWindow(rs.Start.UnixMilli(), s)
		n++
	}
	return n, nil
}
