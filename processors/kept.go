package processors

import (
	"maps"
	"unsafe"

	"github.com/driftd/driftd/schemas"
)

// A version whose reference is built from its first windows has no layout until those
// windows have closed, and the windows after them open before that: the next one live,
// several in a backlog, and which ones depends on how fast the stream was read. A window
// that opened without its layout keeps its values (FeatureAgg.Raw) and has no joint model,
// so live and a backlog would judge it differently. So a window known to come after the
// reference's windows (Processor.KeepEventsOf) also keeps its events, and once the layout
// is there it is counted again from them, as if it had opened with it: when the layout is
// set (SetLayout) while it is open, or when it is judged (Closed.Adopt) if it closed in the
// same flush. Copies of the events, not the values alone: the layout decides each
// feature's kind, its bins and known categories and the joint model's rows, all per event.
// Memory bounds what is kept: past MaxRawValues events a partial stops keeping them,
// and a processor keeps MaxKeptBytes at most (a backlog read at full speed opens many
// windows before any reference is built: its first flush, its start-up grace); a partial
// that would go beyond stops keeping its events, and one opened then keeps none. Such a
// window stays as it opened, binned from its first MaxRawValues values with no joint
// model, and how many events it had by then depends on the read (docs/reliability.md).

// MaxKeptBytes bounds the events one processor keeps (an estimate of their size).
const MaxKeptBytes = 64 << 20

// keptEvents are the events of one partial, in the order they were added, and their
// estimated size.
type keptEvents struct {
	events []schemas.PredictionEvent
	bytes  int64
	lim    Limits
}

// keptSize estimates what a copy of e holds: the event, its features and its scores.
func keptSize(e *schemas.PredictionEvent) int64 {
	return int64(unsafe.Sizeof(*e)) + int64(len(e.Features))*int64(unsafe.Sizeof(schemas.Feature{})) + int64(len(e.Scores))*48
}

// keep records a copy of e (the caller reuses e) in part, within MaxRawValues events and
// the processor's MaxKeptBytes; beyond, the partial stops keeping events.
func (p *Processor) keep(part *Partial, e *schemas.PredictionEvent) {
	k := part.kept
	size := keptSize(e)
	if len(k.events) >= MaxRawValues || p.keptBytes+size > MaxKeptBytes {
		p.uncount(part)
		part.kept = nil
		return
	}
	c := *e
	c.Features = append([]schemas.Feature(nil), e.Features...)
	if len(e.Scores) > 0 {
		c.Scores = maps.Clone(e.Scores)
	}
	k.events = append(k.events, c)
	k.bytes += size
	p.keptBytes += size
}

// uncount takes part's kept events out of the processor's count (MaxKeptBytes): they are
// dropped, adopted, or the judge's once the window has closed (Closed.Adopt).
func (p *Processor) uncount(part *Partial) {
	if part.kept != nil {
		p.keptBytes -= part.kept.bytes
		part.kept.bytes = 0
	}
}

// adopt counts the partial again from its kept events with l, if l applies to its window,
// and stops keeping them either way. It reports whether it did.
func (p *Partial) adopt(l *Layout) bool {
	k := p.kept
	p.kept = nil
	if k == nil || l == nil || !l.Applies(p.Start) {
		return false
	}
	w := newWindowAgg(p.Series, p.Start, p.End)
	for i := range k.events {
		w.add(&k.events[i], l, k.lim)
	}
	p.WindowAgg = w
	return true
}

// KeptEvents reports whether some partial of the window kept its events (Adopt).
func (c Closed) KeptEvents() bool {
	for _, p := range c.Partials {
		if p.kept != nil {
			return true
		}
	}
	return false
}

// Adopt counts the partials that kept their events again with l (a reference built in
// the flush that judges the window), and the merge with them: the window is then what it
// would have been had it opened with l.
func (c *Closed) Adopt(l *Layout) {
	changed := false
	for _, p := range c.Partials {
		changed = p.adopt(l) || changed
	}
	if changed {
		c.Merged = mergePartials(c.Merged.Series, c.Merged.Start, c.Partials)
	}
}

// Unbinned reports whether some partial of the window counted its events without a
// layout.
func (c Closed) Unbinned() bool {
	for _, p := range c.Partials {
		if p.Events > 0 && p.ReferenceID == "" {
			return true
		}
	}
	return false
}

// mergePartials is the window of series at start merged from its partials (in partition
// order).
func mergePartials(series SeriesKey, start int64, parts []*Partial) *WindowAgg {
	merged := newWindowAgg(series, start, parts[0].End)
	for _, part := range parts {
		merged.Merge(part.WindowAgg)
	}
	return merged
}
