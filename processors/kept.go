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
// so live and a backlog would judge it differently. So a window that may come after the
// reference's windows (Processor.KeepEventsOf) also keeps its events, and once the layout
// is there it is counted again from them, as if it had opened with it: when the layout is
// set (SetLayout) while it is open, or (Closed.Adopt) if it has closed and is not judged
// yet. The events, not the values alone: the layout decides each feature's kind, its bins
// and known categories and the joint model's rows, all per event.
//
// Memory bounds what is kept: past MaxRawValues events a partial stops keeping them, and
// a processor keeps MaxKeptBytes at most, counted until the events are adopted or dropped,
// closed windows not judged yet included (a backlog read at full speed opens many windows
// before any reference is built: its start-up grace); a partial that would go beyond
// stops keeping its events, and one opened then keeps none. Such a window stays as it
// opened, binned from its first MaxRawValues values with no joint model, and how many
// events it had by then depends on the read (docs/reliability.md).

// MaxKeptBytes bounds the events one processor keeps (an estimate of their size).
const MaxKeptBytes = 64 << 20

// keptEvents are the events of one partial, in the order they were added, as little as
// WindowAgg.add reads of them: a start-up backlog keeps events for every such window it
// opens before its first windows close (driftd bench: some 585,000 records), and a whole
// copy of an event of 20 features is ~1.3 KB where this is ~0.3 KB. Each event's features are
// its run of names (one list shared by the events that name the same features in the
// same order) and, per feature, its kind and number, and its string when it has one.
type keptEvents struct {
	heads []keptHead
	names [][]string
	kinds []schemas.Kind // the feature's kind, keptString set when it has a string
	nums  []float64
	strs  []string
	// bytes is what the slices and scores hold; count is the processor's total
	// (MaxKeptBytes), which it is part of until the events are adopted or dropped.
	bytes int64
	extra int64 // the names lists and scores maps in bytes
	count *int64
	lim   Limits
}

// keptHead is what one kept event holds besides its features.
type keptHead struct {
	status       string
	latency      float64
	inputSize    float64
	hasInputSize bool
	noLatency    bool
	prediction   schemas.Value
	scores       map[string]float64
	names        int32 // in keptEvents.names
}

// keptString flags, in keptEvents.kinds, a value with a string (the next of strs).
const keptString schemas.Kind = 0x80

// add appends e. What it holds is counted by the slices' capacity (their growth's
// spare room included); strings are shared with the decoder's interned ones, or the
// record's, and counted by their headers.
func (k *keptEvents) add(e *schemas.PredictionEvent) {
	h := keptHead{status: e.Status, latency: e.LatencyMs, noLatency: e.NoLatency, inputSize: e.InputSize, hasInputSize: e.HasInputSize, prediction: e.Prediction, names: -1}
	var extra int64
	if len(e.Scores) > 0 {
		h.scores = maps.Clone(e.Scores)
		extra += 256 + 64*int64(len(e.Scores)) // a small map's buckets and header
	}
	if n := len(k.names); n > 0 && sameNames(k.names[n-1], e.Features) {
		h.names = int32(n - 1)
	} else {
		names := make([]string, len(e.Features))
		for i := range e.Features {
			names[i] = e.Features[i].Name
		}
		k.names = append(k.names, names)
		h.names = int32(len(k.names) - 1)
		extra += 16 * int64(len(names))
	}
	for i := range e.Features {
		v := e.Features[i].Value
		kind := v.Kind
		if v.Str != "" {
			kind |= keptString
			k.strs = append(k.strs, v.Str)
		}
		k.kinds = append(k.kinds, kind)
		k.nums = append(k.nums, v.Num)
	}
	k.heads = append(k.heads, h)
	k.extra += extra
	was := k.bytes
	k.bytes = k.extra + int64(cap(k.heads))*int64(unsafe.Sizeof(h)) + int64(cap(k.names))*24 + int64(cap(k.kinds)) +
		int64(cap(k.nums))*8 + int64(cap(k.strs))*16
	*k.count += k.bytes - was
}

// release takes the events out of the processor's count: they are adopted or dropped.
func (k *keptEvents) release() {
	*k.count -= k.bytes
	k.bytes = 0
}

// sameNames reports whether features are named names, in order.
func sameNames(names []string, features []schemas.Feature) bool {
	if len(names) != len(features) {
		return false
	}
	for i := range names {
		if names[i] != features[i].Name {
			return false
		}
	}
	return true
}

// each calls f with every kept event in turn (one event value, reused).
func (k *keptEvents) each(f func(e *schemas.PredictionEvent)) {
	var e schemas.PredictionEvent
	pos, str := 0, 0
	for _, h := range k.heads {
		e.Status, e.LatencyMs, e.NoLatency, e.InputSize, e.HasInputSize, e.Prediction, e.Scores = h.status, h.latency, h.noLatency, h.inputSize, h.hasInputSize, h.prediction, h.scores
		e.Features = e.Features[:0]
		for _, name := range k.names[h.names] {
			v := schemas.Value{Kind: k.kinds[pos] &^ keptString, Num: k.nums[pos]}
			if k.kinds[pos]&keptString != 0 {
				v.Str = k.strs[str]
				str++
			}
			e.Features = append(e.Features, schemas.Feature{Name: name, Value: v})
			pos++
		}
		f(&e)
	}
}

// keep records e in part (the caller reuses e), within MaxRawValues events and the
// processor's MaxKeptBytes; beyond, the partial stops keeping events.
func (p *Processor) keep(part *Partial, e *schemas.PredictionEvent) {
	if len(part.kept.heads) >= MaxRawValues || p.keptBytes >= MaxKeptBytes {
		part.dropKept()
		return
	}
	part.kept.add(e)
}

// dropKept drops the partial's kept events, if any.
func (p *Partial) dropKept() {
	if p.kept != nil {
		p.kept.release()
		p.kept = nil
	}
}

// adopt counts the partial again from its kept events with l, if l applies to its window,
// and stops keeping them either way. It reports whether it did.
func (p *Partial) adopt(l *Layout) bool {
	k := p.kept
	p.dropKept()
	if k == nil || l == nil || !l.Applies(p.Start) {
		return false
	}
	w := newWindowAgg(p.Series, p.Start, p.End)
	k.each(func(e *schemas.PredictionEvent) { w.add(e, l, k.lim) })
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

// Adopt counts the partials that kept their events again with l (a reference built
// after the window closed, before it is judged), and the merge with them: the window is
// then what it would have been had it opened with l. Where l does not apply, they drop
// their events and stay as they are.
func (c *Closed) Adopt(l *Layout) {
	changed := false
	for _, p := range c.Partials {
		changed = p.adopt(l) || changed
	}
	if changed {
		c.Merged = mergePartials(c.Merged.Series, c.Merged.Start, c.Partials)
	}
}

// DropKept drops what the partials kept: the window is judged (what a reference built
// later would have adopted is of no use).
func (c Closed) DropKept() {
	for _, p := range c.Partials {
		p.dropKept()
	}
}

// Unbinned reports whether some partial of the window counted its events without a
// layout and kept none to count them again with one (Adopt).
func (c Closed) Unbinned() bool {
	for _, p := range c.Partials {
		if p.unbinned() {
			return true
		}
	}
	return false
}

// unbinned: the partial counted its events without a layout and kept none.
func (p *Partial) unbinned() bool {
	return p.Events > 0 && p.ReferenceID == "" && p.kept == nil
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
