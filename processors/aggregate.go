// Package processors turns decoded events into per-window aggregates: event-time
// tumbling windows per model, closed by a watermark, with mergeable partial aggregates
// per source partition so that several instances (or partitions) add up to one result.
package processors

import (
	"math"
	"slices"
	"sort"

	"github.com/driftd/driftd/schemas"
)

// MaxRawValues bounds Raw per feature and window.
const MaxRawValues = 20000

// OtherCategory collects categories beyond a feature's cap.
const OtherCategory = "__other__"

// PredictionFeature is the name under which the prediction is aggregated like a feature.
const PredictionFeature = "__prediction__"

// ConfidenceFeature and EntropyFeature are the names under which a prediction's class
// scores are aggregated like features (when it has scores): the highest score, and the
// scores' entropy in nats (ScoreSignals). Windows, references and drift tests take them
// as they take any numeric feature; their alerts are output_quality.
const (
	ConfidenceFeature = "__confidence__"
	EntropyFeature    = "__entropy__"
)

// IsOutputFeature reports whether name is one of the pseudo-features aggregated from the
// model's output (the prediction, its confidence and entropy), not an input.
func IsOutputFeature(name string) bool {
	return name == PredictionFeature || name == ConfidenceFeature || name == EntropyFeature
}

// ScoreSignals returns a prediction's confidence (its highest class score) and the
// entropy of its class scores, normalised to sum to 1 (nats); a single score s in [0, 1]
// is a binary model's probability of one class, the other having 1 − s. ok is false
// without a usable score (none, or negative, non-finite or all zero).
func ScoreSignals(scores map[string]float64) (confidence, entropy float64, ok bool) {
	if len(scores) == 0 {
		return 0, 0, false
	}
	if len(scores) == 1 {
		for _, s := range scores {
			if !(s >= 0 && s <= 1) {
				return 0, 0, false
			}
			return math.Max(s, 1-s), binaryEntropy(s), true
		}
	}
	// Summed in sorted order: the same bits whatever the map's (random) iteration order,
	// so that a replay aggregates the same values.
	var buf [16]float64
	terms := buf[:0]
	for _, s := range scores {
		if !(s >= 0) || math.IsInf(s, 1) {
			return 0, 0, false
		}
		terms = append(terms, s)
	}
	slices.Sort(terms)
	// Relative to the highest: scores near the float64 maximum would sum to +Inf.
	top := terms[len(terms)-1]
	if top <= 0 {
		return 0, 0, false
	}
	var sum float64
	for _, s := range terms {
		sum += s / top
	}
	for _, s := range terms {
		if p := s / top / sum; p > 0 {
			entropy -= p * math.Log(p)
		}
	}
	return 1 / sum, entropy, true
}

func binaryEntropy(p float64) float64 {
	var h float64
	for _, q := range []float64{p, 1 - p} {
		if q > 0 {
			h -= q * math.Log(q)
		}
	}
	return h
}

// FeatureKind says how a feature is summarized.
type FeatureKind uint8

// Feature kinds.
const (
	Numeric FeatureKind = iota + 1
	Categorical
)

func (k FeatureKind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case Categorical:
		return "categorical"
	}
	return "unknown"
}

func kindOf(v schemas.Value) FeatureKind {
	switch v.Kind {
	case schemas.Number:
		return Numeric
	case schemas.String, schemas.Bool:
		return Categorical
	}
	return 0
}

// Layout is what a reference profile tells a window in advance: each feature's kind, the
// bin edges numeric values are counted over, and the categories known to the reference.
type Layout struct {
	ReferenceID string
	// From is the start (Unix ms) of the first window the layout applies to: the end of
	// the windows its reference was built from (0: every window); nor does it apply to
	// the windows after it that were already open when the reference was built (SetRaw).
	// Those windows, read again after a restart with the reference restored, keep their
	// values as they did the first time.
	From int64
	raw  map[int64]bool
	// rawEnd is past the last of raw: a window from there on needs no lookup.
	rawEnd   int64
	Features map[string]FeatureLayout
	// Joint lists the numeric features whose joint distribution the reference models
	// (in order); windows keep their co-moments over rows where all are present.
	Joint []string
	// JointEdges, when set, are the bin edges of each joint feature (in Joint's order):
	// the co-moments are then of each value's bin index over them — its rank among the
	// reference's quantiles, bounded whatever the feature's tails — not of the value.
	JointEdges [][]float64
}

// SetRaw names the windows (starts, Unix ms) the layout does not apply to besides those
// before From.
func (l *Layout) SetRaw(starts []int64) {
	l.raw, l.rawEnd = nil, 0
	for _, s := range starts {
		if l.raw == nil {
			l.raw = make(map[int64]bool, len(starts))
		}
		l.raw[s] = true
		l.rawEnd = max(l.rawEnd, s+1)
	}
}

// Applies says whether the layout counts the values of the window starting at start.
func (l *Layout) Applies(start int64) bool {
	return start >= l.From && (start >= l.rawEnd || !l.raw[start])
}

// FeatureLayout is one feature's part of a Layout.
type FeatureLayout struct {
	Kind       FeatureKind
	Edges      []float64           // sorted; bin i holds edges[i-1] < x ≤ edges[i]
	Categories map[string]struct{} // categories seen in the reference
}

// BinIndex returns the bin of x over edges (len(edges)+1 bins).
func BinIndex(edges []float64, x float64) int {
	return sort.SearchFloat64s(edges, x)
}

// Moments are mergeable running moments (count, mean, M2; Chan et al.'s parallel update).
type Moments struct {
	N, Mean, M2, Min, Max float64
}

// Add records one value.
func (m *Moments) Add(x float64) {
	if m.N == 0 {
		m.Min, m.Max = x, x
	} else {
		m.Min, m.Max = math.Min(m.Min, x), math.Max(m.Max, x)
	}
	m.N++
	d := x - m.Mean
	m.Mean += d / m.N
	m.M2 += d * (x - m.Mean)
}

// Merge adds o into m.
func (m *Moments) Merge(o Moments) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		*m = o
		return
	}
	n := m.N + o.N
	d := o.Mean - m.Mean
	m.M2 += o.M2 + d*d*m.N*o.N/n
	m.Mean += d * o.N / n
	m.N = n
	m.Min, m.Max = math.Min(m.Min, o.Min), math.Max(m.Max, o.Max)
}

// Std is the sample standard deviation (n − 1), 0 below two values.
func (m Moments) Std() float64 {
	if m.N < 2 {
		return 0
	}
	return math.Sqrt(m.M2 / (m.N - 1))
}

// FeatureAgg summarizes one feature (or the prediction) over a window.
type FeatureAgg struct {
	Name string
	Kind FeatureKind
	// Count is the number of present values of the feature's kind; Missing counts nulls
	// and absent keys are not counted; Mismatched counts values of the other kind.
	Count, Missing, Mismatched uint64

	// Numeric.
	Moments Moments
	Sketch  Sketch
	Edges   []float64 // shared with the layout; nil when no reference existed
	Bins    []uint64
	// Raw keeps up to MaxRawValues values of a numeric feature whose window opened
	// before its reference existed, so that the window can still be binned exactly once
	// the reference arrives (the sketch's 1% relative error is too coarse for values far
	// from zero: 100 ± 15 would be misbinned).
	Raw []float64

	// Categorical. Categories beyond the cap are counted under OtherCategory; Unseen
	// counts values whose category the reference never saw.
	Categories map[string]uint64
	Unseen     uint64
	known      map[string]struct{}
	hasLayout  bool
	// lastBin is the bin of the last value counted in Bins: the joint model ranks the
	// same value over the same edges (WindowAgg.addJoint), and a search is most of a
	// numeric feature's update.
	lastBin int
}

func newFeatureAgg(name string, kind FeatureKind, fl *FeatureLayout) *FeatureAgg {
	f := &FeatureAgg{Name: name, Kind: kind}
	if fl != nil && fl.Kind == kind {
		f.hasLayout = true
		f.Edges = fl.Edges
		f.known = fl.Categories
	}
	switch kind {
	case Numeric:
		f.Sketch = NewSketch()
		if f.hasLayout {
			f.Bins = make([]uint64, len(f.Edges)+1)
		}
	case Categorical:
		f.Categories = make(map[string]uint64)
	}
	return f
}

func (f *FeatureAgg) add(v schemas.Value, maxCategories int) {
	k := kindOf(v)
	switch {
	case k == 0:
		f.Missing++
		return
	case k != f.Kind:
		f.Mismatched++
		return
	}
	f.Count++
	if f.Kind == Numeric {
		f.Moments.Add(v.Num)
		f.Sketch.Add(v.Num)
		if f.Bins != nil {
			f.lastBin = BinIndex(f.Edges, v.Num)
			f.Bins[f.lastBin]++
		} else if len(f.Raw) < MaxRawValues {
			f.Raw = append(f.Raw, v.Num)
		}
		return
	}
	c := v.Category()
	_, known := f.known[c]
	if f.hasLayout && !known {
		f.Unseen++
	}
	// Whether c is counted already matters only at the cap: one map operation per value
	// below it, where nearly every window stays.
	if known || len(f.Categories) < maxCategories {
		f.Categories[c]++
	} else if _, ok := f.Categories[c]; ok {
		f.Categories[c]++
	} else {
		f.Categories[OtherCategory]++
	}
}

// merge adds o into f; both summarize the same feature of the same window.
func (f *FeatureAgg) merge(o *FeatureAgg) {
	if f.Kind != o.Kind {
		// Two partitions disagreed on the kind (the first value of each differed): the
		// other side's values count as mismatched here.
		f.Mismatched += o.Count + o.Mismatched
		f.Missing += o.Missing
		return
	}
	f.Count += o.Count
	f.Missing += o.Missing
	f.Mismatched += o.Mismatched
	f.Unseen += o.Unseen
	if f.Kind == Numeric {
		f.Moments.Merge(o.Moments)
		f.Sketch.Merge(o.Sketch)
		switch {
		case f.Bins == nil && o.Bins == nil:
			f.Raw = append(f.Raw, o.Raw[:min(len(o.Raw), MaxRawValues-len(f.Raw))]...)
			return
		case f.Bins == nil:
			// One partition opened its window before the reference existed, another
			// after: bin the kept values so the merge covers both.
			f.Edges, f.Bins = o.Edges, make([]uint64, len(o.Bins))
			f.binRaw(f.Raw)
			f.Raw = nil
		case o.Bins == nil:
			f.binRaw(o.Raw)
			return
		}
		if len(f.Bins) == len(o.Bins) {
			for i := range o.Bins {
				f.Bins[i] += o.Bins[i]
			}
		}
		return
	}
	for c, n := range o.Categories {
		f.Categories[c] += n
	}
}

// BinKept counts, in a window that opened before its reference existed, each numeric
// feature's kept values between l's edges (the first MaxRawValues: what a window judged
// or merged in memory bins too). Stored with those bins, it reads back (a low-volume merge
// after a restart) as the window in memory is judged, where its sketch would only
// estimate them (1% relative error: 100 ± 15 misbinned).
func (w *WindowAgg) BinKept(l *Layout) {
	if l == nil {
		return
	}
	bin := func(f *FeatureAgg) {
		if f == nil || f.Kind != Numeric || f.Bins != nil {
			return
		}
		if fl, ok := l.Features[f.Name]; ok && fl.Kind == Numeric {
			f.Edges, f.Bins = fl.Edges, make([]uint64, len(fl.Edges)+1)
			f.binRaw(f.Raw)
		}
	}
	for _, f := range w.Features {
		bin(f)
	}
	bin(w.Prediction)
}

// PrepareKept readies, for writing, the partials of a window of a version whose
// reference is built from its first windows, l being its layout by now (nil: none yet).
// Partials that opened before it are binned by it (WindowAgg.BinKept), so that a window
// read back is judged as the window in memory, whose partitions' kept values are binned;
// they also store those values (KeepRaw) when there are no bins yet, or when the window in
// memory keeps fewer than its partitions do (the first MaxRawValues in partition order),
// which a window read back then merges the same way. share: the partials are one
// member's share of a window other members read partitions of (a spread group), so how
// many values the whole window keeps is not known here: they always store theirs.
func (c Closed) PrepareKept(l *Layout, share bool) {
	for _, p := range c.Partials {
		p.BinKept(l)
	}
	keep := share || l == nil || KeptBeyondMerge(c.Partials)
	for _, p := range c.Partials {
		p.KeepRaw = keep && p.ReferenceID == ""
	}
}

// KeptBeyondMerge says whether the partials of one window kept more values of some
// numeric feature, together, than their merge keeps (MaxRawValues): their bins then
// count values the merged window in memory does not, and only their kept values read
// back as it is.
func KeptBeyondMerge(parts []*Partial) bool {
	kept := map[string]int{}
	for _, p := range parts {
		count := func(f *FeatureAgg) bool {
			if f == nil || f.Kind != Numeric {
				return false
			}
			kept[f.Name] += len(f.Raw)
			return kept[f.Name] > MaxRawValues
		}
		if count(p.Prediction) {
			return true
		}
		for _, f := range p.Features {
			if count(f) {
				return true
			}
		}
	}
	return false
}

func (f *FeatureAgg) binRaw(raw []float64) {
	for _, x := range raw {
		f.Bins[BinIndex(f.Edges, x)]++
	}
}

func (f *FeatureAgg) clone() *FeatureAgg {
	c := *f
	if f.Kind == Numeric {
		c.Sketch = NewSketch()
		c.Sketch.Merge(f.Sketch)
		c.Bins = append([]uint64(nil), f.Bins...)
		c.Raw = append([]float64(nil), f.Raw...)
	} else {
		c.Categories = make(map[string]uint64, len(f.Categories))
		for k, v := range f.Categories {
			c.Categories[k] = v
		}
	}
	return &c
}

// SeriesKey names one monitored series: a model version in a deployment slot.
type SeriesKey struct {
	Model, Version, Deployment string
}

// WindowAgg summarizes one series over one window.
type WindowAgg struct {
	Series     SeriesKey
	Start, End int64 // unix milliseconds, [Start, End)

	Events, OK, Errors, Timeouts, NullPredictions uint64
	Latency                                       Sketch
	LatencyMax                                    float64
	InputSize                                     Moments
	// DroppedFeatures counts feature values not aggregated because the window already
	// tracked the maximum number of features.
	DroppedFeatures uint64

	Features   map[string]*FeatureAgg
	Prediction *FeatureAgg
	// Joint are the co-moments of the layout's joint features, over the events that had
	// all of them (nil without a layout that asks for them).
	Joint    *CoMoments
	jointBuf []float64
	// jointPos is where each joint feature was in the last event: producers send their
	// features in one order, so a look there nearly always finds it without a scan.
	jointPos []int
	// featPos is the aggregate of the feature at each position of the last event (up to
	// maxCachedPositions): looked at first, it spares a map lookup per feature per event.
	// Merge, the one other writer of Features, drops it.
	featPos []*FeatureAgg
	// ReferenceID is the reference whose layout (bin edges, categories) the window's
	// events were counted against; "" when it opened before any reference.
	ReferenceID string
}

// maxCachedPositions bounds WindowAgg.featPos.
const maxCachedPositions = 64

func newWindowAgg(s SeriesKey, start, end int64) *WindowAgg {
	return &WindowAgg{Series: s, Start: start, End: end, Latency: NewSketch(), Features: map[string]*FeatureAgg{}}
}

// EmptyWindow is a window of a series with no events (a series that fell silent).
func EmptyWindow(s SeriesKey, start, end int64) *WindowAgg { return newWindowAgg(s, start, end) }

// ErrorRate is (errors + timeouts) / events.
func (w *WindowAgg) ErrorRate() float64 {
	if w.Events == 0 {
		return 0
	}
	return float64(w.Errors+w.Timeouts) / float64(w.Events)
}

// FeatureNames returns the aggregated features in name order.
func (w *WindowAgg) FeatureNames() []string {
	names := make([]string, 0, len(w.Features))
	for n := range w.Features {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (w *WindowAgg) add(e *schemas.PredictionEvent, layout *Layout, lim Limits) {
	if w.Events == 0 && layout != nil {
		w.ReferenceID = layout.ReferenceID
	}
	w.Events++
	switch e.Status {
	case schemas.StatusError:
		w.Errors++
	case schemas.StatusTimeout:
		w.Timeouts++
	default:
		w.OK++
	}
	if !e.NoLatency {
		w.Latency.Add(e.LatencyMs)
		w.LatencyMax = max(w.LatencyMax, e.LatencyMs)
	}
	if e.HasInputSize {
		w.InputSize.Add(e.InputSize)
	}
	if e.Prediction.Kind == schemas.Missing {
		w.NullPredictions++
	}
	w.Prediction = w.addFeature(w.Prediction, PredictionFeature, e.Prediction, layout, lim)
	if conf, ent, ok := ScoreSignals(e.Scores); ok {
		w.addOutput(ConfidenceFeature, conf, layout, lim)
		w.addOutput(EntropyFeature, ent, layout, lim)
	}
	for i := range e.Features {
		f := &e.Features[i]
		var agg *FeatureAgg
		ok := false
		if i < len(w.featPos) {
			if c := w.featPos[i]; c != nil && c.Name == f.Name {
				agg, ok = c, true
			}
		}
		if !ok {
			agg, ok = w.Features[f.Name]
		}
		if !ok && w.inputFeatures() >= lim.MaxFeatures {
			w.DroppedFeatures++
			continue
		}
		agg = w.addFeature(agg, f.Name, f.Value, layout, lim)
		if !ok && agg != nil {
			w.Features[f.Name] = agg
		}
		if i < maxCachedPositions {
			for len(w.featPos) <= i {
				w.featPos = append(w.featPos, nil)
			}
			w.featPos[i] = agg
		}
	}
	if layout != nil && len(layout.Joint) > 1 && w.ReferenceID == layout.ReferenceID {
		// Only a window that opened with the layout: one that opened before its reference
		// existed would count the events after it arrived, a number that depends on when
		// that was (live, a backlog or a restart).
		w.addJoint(e, layout.Joint, layout.JointEdges)
	}
}

// inputFeatures is how many of the window's features are inputs (MaxFeatures bounds
// those; the score signals are two at most).
func (w *WindowAgg) inputFeatures() int {
	n := len(w.Features)
	for _, name := range [...]string{ConfidenceFeature, EntropyFeature} {
		if _, ok := w.Features[name]; ok {
			n--
		}
	}
	return n
}

// addOutput adds a score signal to its pseudo-feature.
func (w *WindowAgg) addOutput(name string, v float64, layout *Layout, lim Limits) {
	agg, ok := w.Features[name]
	agg = w.addFeature(agg, name, schemas.Value{Kind: schemas.Number, Num: v}, layout, lim)
	if !ok {
		w.Features[name] = agg
	}
}

// addJoint adds the event's joint feature vector when every joint feature is a number.
func (w *WindowAgg) addJoint(e *schemas.PredictionEvent, names []string, edges [][]float64) {
	if w.Joint == nil {
		w.Joint = NewCoMoments(len(names))
		w.jointBuf = make([]float64, len(names))
		w.jointPos = make([]int, len(names))
	}
	// Feature lists are short; a linear scan per name beats building a map per event, and
	// the last event's position spares most scans.
	for i, name := range names {
		j := w.jointPos[i]
		if j >= len(e.Features) || e.Features[j].Name != name {
			j = -1
			for k := range e.Features {
				if e.Features[k].Name == name {
					j, w.jointPos[i] = k, k
					break
				}
			}
		}
		if j < 0 || e.Features[j].Value.Kind != schemas.Number {
			return
		}
		w.jointBuf[i] = e.Features[j].Value.Num
		if i < len(edges) {
			w.jointBuf[i] = float64(w.rank(j, name, e.Features[j].Value.Num, edges[i]))
		}
	}
	w.Joint.Add(w.jointBuf)
}

// rank is the bin of v, the value of the event's feature name at position j, over edges: the
// bin the feature's aggregate just counted it in when it counts over the same edges
// (addJoint runs after the features are added).
func (w *WindowAgg) rank(j int, name string, v float64, edges []float64) int {
	if j < len(w.featPos) {
		if f := w.featPos[j]; f != nil && f.Name == name && f.Kind == Numeric && f.Bins != nil && sameEdges(f.Edges, edges) {
			return f.lastBin
		}
	}
	return BinIndex(edges, v)
}

// sameEdges reports whether a and b are the same slice (a layout's joint edges are its
// features' own).
func sameEdges(a, b []float64) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// addFeature adds v to agg, creating agg once the feature's kind is known: from the
// reference if there is one, else from the first present value.
func (w *WindowAgg) addFeature(agg *FeatureAgg, name string, v schemas.Value, layout *Layout, lim Limits) *FeatureAgg {
	if agg == nil {
		var fl *FeatureLayout
		kind := kindOf(v)
		if layout != nil {
			if l, ok := layout.Features[name]; ok {
				fl, kind = &l, l.Kind
			}
		}
		if kind == 0 {
			// A missing value before the kind is known still counts as missing: keep it
			// on a numeric summary until a value says otherwise.
			kind = Numeric
		}
		agg = newFeatureAgg(name, kind, fl)
	}
	agg.add(v, lim.MaxCategories)
	return agg
}

// Merge adds o (the same series and window, another partition) into w.
func (w *WindowAgg) Merge(o *WindowAgg) {
	if w.ReferenceID == "" {
		w.ReferenceID = o.ReferenceID
	}
	w.Events += o.Events
	w.OK += o.OK
	w.Errors += o.Errors
	w.Timeouts += o.Timeouts
	w.NullPredictions += o.NullPredictions
	w.Latency.Merge(o.Latency)
	w.LatencyMax = math.Max(w.LatencyMax, o.LatencyMax)
	w.InputSize.Merge(o.InputSize)
	w.DroppedFeatures += o.DroppedFeatures
	mergeFeature := func(dst **FeatureAgg, src *FeatureAgg) {
		if src == nil {
			return
		}
		if *dst == nil {
			*dst = src.clone()
			return
		}
		(*dst).merge(src)
	}
	mergeFeature(&w.Prediction, o.Prediction)
	if o.Joint != nil {
		if w.Joint == nil {
			w.Joint = o.Joint.clone()
		} else {
			w.Joint.Merge(o.Joint)
		}
	}
	w.featPos = nil
	for name, f := range o.Features {
		dst := w.Features[name]
		mergeFeature(&dst, f)
		w.Features[name] = dst
	}
}

// Clone returns a deep copy of w.
func (w *WindowAgg) Clone() *WindowAgg {
	c := newWindowAgg(w.Series, w.Start, w.End)
	c.Merge(w)
	return c
}
