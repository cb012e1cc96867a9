package pipeline

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// A series' volume is judged per window (never merged: a count is evidence at any size)
// against what is expected of that window: the same hour of day on the previous days once
// a day of history exists (traffic has daily cycles; a nightly dip is not an outage), else
// the series' recent windows (the last hour's that were not judged low), else the
// version's reference windows.

// referenceVolumeDrop is the drop flagged against the reference before the series has
// recent windows to go by; recentVolumeDrop the drop flagged against its recent windows
// before a day of same-hour history exists.
const (
	referenceVolumeDrop = 0.05
	recentVolumeDrop    = 0.25
)

// referenceMinSpan is the time a reference's windows must cover for a new series' first
// hour to be judged against them with recentVolumeDrop.
const referenceMinSpan = 3 * time.Minute

// burstSpan is the longest burst a run of low windows is taken to sit in (volumeRun.judge).
const burstSpan = time.Minute

// burstWindows is how many windows of size a burst spans: at least one.
func burstWindows(size time.Duration) int {
	if size <= 0 {
		return 1
	}
	return max(1, int(burstSpan/size))
}

const (
	hourMs      = int64(time.Hour / time.Millisecond)
	dayMs       = 24 * hourMs
	volumeDays  = 7 // days of same-hour history an expectation is taken from
	keepVolDays = volumeDays + 1
)

// hourlyVolume is a series' windows per hour (hour start, unix ms), for the last days.
type hourlyVolume struct {
	hours map[int64]hourCount
	first int64 // the first hour counted: history exists from here on
}

// hourCount is one hour of a series: its events, and its windows and empty ones; squares
// sums the squares of its windows' events (their dispersion).
type hourCount struct {
	events, windows, empty uint64
	squares                float64
}

func hourOf(ms int64) int64 { return ms - ((ms%hourMs)+hourMs)%hourMs }

func (h *hourlyVolume) add(w *processors.WindowAgg) {
	hour := hourOf(w.Start)
	if h.hours == nil {
		h.hours, h.first = map[int64]hourCount{}, hour
	}
	c := h.hours[hour]
	c.events += w.Events
	c.squares += float64(w.Events) * float64(w.Events)
	c.windows++
	if w.Events == 0 {
		c.empty++
	}
	h.hours[hour] = c
	if hour < h.first {
		h.first = hour
	}
	for k := range h.hours {
		if k < hour-int64(keepVolDays)*dayMs {
			delete(h.hours, k)
		}
	}
}

// hourHistory says what a series' same-hour history can tell about a window.
type hourHistory uint8

const (
	// noHistory: less than a day of history, or windows that do not divide an hour: the
	// window is judged against recent windows or the reference instead.
	noHistory hourHistory = iota
	// quietHour: the series' windows at this hour were often empty on the previous days
	// (one time in ten or more): a window with few or no events is its normal, and an
	// empty one says nothing. Its volume is not judged: falling back to the recent
	// windows would page every evening for a model that serves only in the daytime.
	quietHour
	// expected: the same hour's history gives an expectation.
	expected
)

// expectation returns the same hour's median over the previous days that have history,
// per window of size, and what the history says (hourHistory).
func (h *hourlyVolume) expectation(start int64, size time.Duration) (detectors.VolumeExpectation, hourHistory) {
	if h.hours == nil || size <= 0 || size > time.Hour || time.Hour%size != 0 {
		return detectors.VolumeExpectation{}, noHistory
	}
	hour := hourOf(start)
	var counts, emptyShares []float64
	var variance, mean float64 // pooled over the days: the windows' spread within an hour
	for d := int64(1); d <= volumeDays; d++ {
		past := hour - d*dayMs
		if past < h.first {
			break
		}
		c := h.hours[past]
		counts = append(counts, float64(c.events))
		if c.windows > 0 {
			emptyShares = append(emptyShares, float64(c.empty)/float64(c.windows))
			m := float64(c.events) / float64(c.windows)
			mean += m
			variance += max(c.squares/float64(c.windows)-m*m, 0)
		}
	}
	if len(counts) == 0 {
		return detectors.VolumeExpectation{}, noHistory
	}
	if len(emptyShares) > 0 && medianOf(emptyShares) >= 0.1 {
		return detectors.VolumeExpectation{}, quietHour
	}
	perHour := float64(time.Hour / size)
	exp := detectors.VolumeExpectation{PerWindow: medianOf(counts) / perHour, Size: size, Windows: len(counts) * int(perHour),
		Basis: "the same hour of the previous days"}
	if mean > 0 {
		exp.Dispersion = variance / mean
	}
	return exp, expected
}

// explainedByLastWeek reports whether w, below the previous days' same hour, is no drop
// against the same hour a week before: that hour was quiet, or w is not significantly
// below it, or not by the effect that matters (volume_drop).
func explainedByLastWeek(w *processors.WindowAgg, h *hourlyVolume, size time.Duration, th detectors.Thresholds) bool {
	week, hist := h.lastWeek(w.Start, size)
	switch hist {
	case quietHour:
		return true
	case expected:
		cw, ok := detectors.ModelVolumeCondition(w, week, th)
		expectedHere := week.PerWindow * float64(w.End-w.Start) / float64(week.Size.Milliseconds())
		return ok && (!cw.Breached || float64(w.Events) >= th.Signals.VolumeDrop*expectedHere)
	}
	return false
}

// lastWeek returns the expectation of the same hour one week before start, if the
// history holds it: traffic with a weekly cycle (a business model quiet at weekends) is
// judged against last week's same day too, so that the previous days (weekdays) do not
// make every Saturday an outage.
func (h *hourlyVolume) lastWeek(start int64, size time.Duration) (detectors.VolumeExpectation, hourHistory) {
	past := hourOf(start) - 7*dayMs
	c, ok := h.hours[past]
	if h.hours == nil || past < h.first || !ok || c.windows == 0 {
		return detectors.VolumeExpectation{}, noHistory
	}
	if float64(c.empty)/float64(c.windows) >= 0.1 {
		return detectors.VolumeExpectation{}, quietHour
	}
	perHour := float64(time.Hour / size)
	m := float64(c.events) / float64(c.windows)
	exp := detectors.VolumeExpectation{PerWindow: float64(c.events) / perHour, Size: size, Windows: int(perHour), Basis: "the same hour a week before"}
	if m > 0 {
		exp.Dispersion = max(c.squares/float64(c.windows)-m*m, 0) / m
	}
	return exp, expected
}

func medianOf(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// judgeVolume judges w's events and puts the condition, if any, in v: against the same
// hour of the previous days when that history exists, else against the series' recent
// windows, else against the reference's windows.
func (j *judge) judgeVolume(v *detectors.Verdict, w *processors.WindowAgg, ref *detectors.Profile) {
	size := time.Duration(w.End-w.Start) * time.Millisecond
	st := j.state(w.Series)
	c, exp, th, ok := j.volumeCondition(w, ref, st, size)
	if d := w.Series.Deployment; ok && c.Value < 1 && (isSlot(d) || d == schemas.DeploymentCanary) {
		// A canary or blue/green slot is judged with the model's serving traffic: traffic
		// that moved to another slot (a switch, a rollout's end, a gradual shift) is not
		// an outage, nor part of a run of low windows.
		expected := exp.PerWindow * float64(w.End-w.Start) / float64(exp.Size.Milliseconds())
		if serving := j.slotEvents[slotWindow{w.Series.Model, w.Start}]; float64(serving) > th.Signals.VolumeDrop*expected {
			c.Breached = false
			c.Details["not_low_against"] = "the model's serving slots together (its traffic moved to another slot)"
		}
	}
	x := runWindow{start: w.Start, end: w.End, events: w.Events}
	if ok {
		x.expected = exp.PerWindow * float64(w.End-w.Start) / float64(exp.Size.Milliseconds())
		if c.Details["not_low_against"] != "" {
			// Stored as not judged short of an expectation, so that a restart does not
			// count the window into a run of low windows either.
			x.expected = 0
		}
		c = st.run.judge(w, c, exp, th, x, &st.recent)
		x.low = c.Breached
	}
	st.volume.add(w)
	st.account(x)
	if !ok {
		return
	}
	v.Conditions = append(v.Conditions, c)
	v.ExpectedEvents, v.VolumeLow = x.expected, c.Breached
}

func (j *judge) volumeCondition(w *processors.WindowAgg, ref *detectors.Profile, st *seriesState, size time.Duration) (detectors.Condition, detectors.VolumeExpectation, detectors.Thresholds, bool) {
	th := j.set.Thresholds(w.Series.Model, "")
	switch exp, hist := st.volume.expectation(w.Start, size); hist {
	case quietHour:
		return detectors.Condition{}, detectors.VolumeExpectation{}, th, false
	case expected:
		c, ok := detectors.ModelVolumeCondition(w, exp, th)
		if ok && c.Value < 1 && explainedByLastWeek(w, &st.volume, size, th) {
			// Below the previous days but not below the same day last week: a weekly
			// cycle, not an outage (and not part of a run of low windows).
			c.Breached = false
			c.Details["not_low_against"] = "the same hour a week before"
		}
		return c, exp, th, ok
	}
	if exp, ok := st.recent.expectation(size, st.run.windows); ok {
		// An hour is short, but traffic can still fall fivefold in two hours of an
		// evening; a window at half the last hour's is then ordinary. A fall to a
		// quarter within the hour is not.
		th.Signals.VolumeDrop, th.Signals.VolumeJump = min(th.Signals.VolumeDrop, recentVolumeDrop), 0
		c, ok := detectors.ModelVolumeCondition(w, exp, th)
		return c, exp, th, ok
	}
	if ref == nil {
		return detectors.Condition{}, detectors.VolumeExpectation{}, th, false
	}
	exp, ok := ref.VolumeExpectation(w.Series.Deployment, size)
	if !ok {
		return detectors.Condition{}, detectors.VolumeExpectation{}, th, false
	}
	if ref.WindowMs > 0 && ref.WindowMs != size.Milliseconds() {
		// The window size changed since the reference was built (a restart with another
		// windows.size): its windows' counts are of the old size.
		exp.PerWindow *= float64(size.Milliseconds()) / float64(ref.WindowMs)
		exp.Dispersion = 0
	}
	n := exp.Windows
	// The reference's windows are a few of one time of day: traffic with a daily cycle
	// falls well below them every night. Until the series' recent windows or a day of
	// history say what to expect, only a series that (nearly) stopped is flagged — except
	// in a new series' first hour, before its recent windows ever gave an expectation:
	// the reference's windows are then its latest ones, and a drop to a quarter of them
	// (a deploy that broke traffic) is judged as against recent windows. The windows it
	// judges low stay out of the recent ones, so the drop stays flagged while it lasts.
	// Reference windows that cover only a few minutes (short windows: three 10-second
	// ones are half a minute) are one moment of the traffic, not its level: a slow
	// minute of bursty traffic falls to a quarter of them. Against them, only a
	// (near) stop is flagged.
	drop := referenceVolumeDrop
	refSize := size
	if ref.WindowMs > 0 {
		refSize = time.Duration(ref.WindowMs) * time.Millisecond
	}
	if !st.hadRecent && time.Duration(n)*refSize >= referenceMinSpan {
		drop = recentVolumeDrop
	}
	th.Signals.VolumeDrop, th.Signals.VolumeJump = min(th.Signals.VolumeDrop, drop), 0
	c, ok := detectors.ModelVolumeCondition(w, exp, th)
	return c, exp, th, ok
}

// recentVolume is a series' latest windows that were not judged low on volume: what a
// series without a day of same-hour history (or with windows that do not divide an hour)
// is expected to send. Traffic changes little within an hour even where it has a daily
// cycle, so a sudden drop shows against it at once. Windows judged low are left out, so
// a drop is judged against the traffic before it for as long as it lasts, instead of
// becoming the normal half an hour later and resolving while the series is still down.
type recentVolume struct {
	counts []uint64      // chronological
	size   time.Duration // of the windows counted: a new window size starts afresh
}

// recentWindows is how many windows the recent expectation is learned from: an hour's,
// and at least 6 (long windows) and at most 120 (30-second windows).
func recentWindows(size time.Duration) int {
	if size <= 0 {
		return 0
	}
	n := int((time.Hour + size - 1) / size)
	return min(max(n, 6), maxRecentWindows)
}

const maxRecentWindows = 120

// recentVolumeLookback bounds how far back a restart looks for a series' recent windows
// not judged low: a drop that lasted longer than this is judged, after a restart,
// against fewer windows or the reference.
const recentVolumeLookback = 48 * time.Hour

func (v *recentVolume) observe(events uint64, size time.Duration, low bool) {
	if size != v.size {
		// Windows of another size (the configuration changed) expect other counts.
		v.counts, v.size = v.counts[:0], size
	}
	if low {
		return
	}
	v.counts = append(v.counts, events)
	if n := recentWindows(size); len(v.counts) > n {
		v.counts = append(v.counts[:0], v.counts[len(v.counts)-n:]...)
	}
}

// expectation is the median of the recent windows; ok is false until there are enough
// of them, and for a series with an empty window among them (bursty traffic: an empty
// window then says nothing). The windows of run (the run of windows below expectation
// being judged) held out of the recent ones and not judged low (runWindow.waiting) count
// in the dispersion (traffic that varies more than Poisson shows it most in its slow
// spells, and leaving them out would make a slow spell look rarer than it is) but not in
// the median or the fewest events (a run must not be judged against itself).
func (v *recentVolume) expectation(size time.Duration, run []runWindow) (detectors.VolumeExpectation, bool) {
	n := recentWindows(size)
	if n == 0 || size != v.size || len(v.counts) < n {
		return detectors.VolumeExpectation{}, false
	}
	xs := make([]float64, n)
	fewest := v.counts[len(v.counts)-n]
	var sum, squares float64
	for i, c := range v.counts[len(v.counts)-n:] {
		xs[i] = float64(c)
		fewest = min(fewest, c)
		sum += xs[i]
		squares += xs[i] * xs[i]
	}
	if fewest == 0 {
		return detectors.VolumeExpectation{}, false
	}
	k := n
	for _, h := range run {
		if h.waiting() && !h.low && h.events > 0 && h.size() == size {
			x := float64(h.events)
			sum, squares, k = sum+x, squares+x*x, k+1
		}
	}
	mean := sum / float64(k)
	return detectors.VolumeExpectation{PerWindow: medianOf(xs), Size: size, Windows: n, Fewest: float64(fewest),
		Dispersion: (squares - float64(k)*mean*mean) / float64(k-1) / mean, Basis: fmt.Sprintf("its last %d windows", n)}, true
}

// blocks describes the sums of l consecutive recent windows, from every such run of the
// last recentWindows(size) windows: their dispersion (variance over mean: how much a span
// of l windows varies where the series' traffic comes in spells longer than a window), and
// the fewest events per window of any of them. Zeros when unknown: fewer recent windows;
// l beyond a quarter of them (the sums would be too few to say) is taken as a quarter.
func (v *recentVolume) blocks(size time.Duration, l int) (dispersion, fewest float64) {
	n := recentWindows(size)
	if size != v.size || len(v.counts) < n {
		return 0, 0
	}
	l = min(l, n/4)
	if l < 2 {
		return 0, 0
	}
	xs := v.counts[len(v.counts)-n:]
	var block, sum, squares float64
	least := math.Inf(1)
	for i, c := range xs {
		block += float64(c)
		if i >= l {
			block -= float64(xs[i-l])
		}
		if i >= l-1 {
			sum += block
			squares += block * block
			least = min(least, block)
		}
	}
	k := float64(n - l + 1)
	mean := sum / k
	if mean <= 0 {
		return 0, 0
	}
	return (squares - k*mean*mean) / (k - 1) / mean, least / float64(l)
}

// seriesEnd is where a series' judged windows end: the generator of empty windows for a
// series that fell silent starts there.
type seriesEnd struct {
	end, lastData int64 // unix ms: the last window's end, the last window with events' end
	size          time.Duration
}

// silentSeriesFor bounds how long a silent series is given empty windows: as long as the
// processor keeps an idle series (a day), after which it is forgotten and its volume alert
// stays as it was until it sends again.
const silentSeriesFor = 24 * time.Hour

// silentWindows returns the empty windows of series that stopped sending while the
// stream went on: a window [end, end+size) of a series with no open window, once the
// stream's event-time clock has passed its end plus the lateness and every prediction
// partition has been read that far. They are judged on volume only, so "stopped sending"
// fires at the same event-time moment live and in a backlog. A spread member sees only
// its share of the stream: its models' judge gives them (silentOwned).
func (r *Runner) silentWindows(now time.Time) []processors.Closed {
	clock := r.clock.now(now)
	if clock.IsZero() || len(r.j.series) == 0 || r.set.Spread {
		return nil
	}
	open := r.proc.OpenSeries()
	for _, c := range r.pending {
		open[c.Merged.Series] = true // closed, not judged yet: its end is not known here
	}
	var out []processors.Closed
	for _, s := range r.seriesWithEnds() {
		st := r.j.series[s]
		if open[s] || r.j.refs[[2]string{s.Model, s.Version}] == nil && st.volume.hours == nil {
			continue
		}
		lateness := r.set.WindowSpec(s.Model).Lateness
		out = append(out, r.emptyWindows(s, st, func(start, end int64) bool {
			due := time.UnixMilli(end).Add(lateness)
			return !clock.Before(due) && r.clock.readPast(r.set.PredictionTopic, due) && !r.superseded(s, start, end, open)
		})...)
	}
	return out
}

// silentOwned gives a spread group's judge the empty windows of the series of its models
// (those in upTo, with the end of what this batch judges) that stopped sending, as
// silentWindows gives one member: up to where the model is judged (an event of the series
// there would be in a window judged), and past it only while no partition holds an event
// of the model not judged yet and every partition is read past the window's end plus the
// lateness (clock: the least of the partitions' clocks; zero: not known).
func (r *Runner) silentOwned(byModel map[string][]storage.PartitionProgress, upTo map[string]time.Time, clock time.Time) []processors.Closed {
	var out []processors.Closed
	for _, s := range r.seriesWithEnds() {
		judged, owned := upTo[s.Model]
		st := r.j.series[s]
		if !owned || r.j.refs[[2]string{s.Model, s.Version}] == nil && st.volume.hours == nil {
			continue
		}
		quiet := !clock.IsZero()
		for _, p := range byModel[s.Model] {
			quiet = quiet && p.EventMax.Before(judged)
		}
		lateness := r.set.WindowSpec(s.Model).Lateness
		out = append(out, r.emptyWindows(s, st, func(start, end int64) bool {
			if end > judged.UnixMilli() && (!quiet || clock.Before(time.UnixMilli(end).Add(lateness))) {
				return false
			}
			return !r.superseded(s, start, end, nil)
		})...)
	}
	return out
}

// fillGaps puts, before each closed window of a series that resumed after a silence, the
// empty windows of the silence not given yet: however the stream is read, a series' windows
// are judged without holes, so its volume alerts are the same live and from a backlog.
func (r *Runner) fillGaps(closed []processors.Closed) []processors.Closed {
	var out []processors.Closed
	for _, c := range closed {
		if c.Supplement {
			out = append(out, c)
			continue
		}
		w := c.Merged
		st := r.j.state(w.Series)
		if st.hasEnd && w.Start > st.end.end {
			limit := w.Start
			out = append(out, r.emptyWindows(w.Series, st, func(_, end int64) bool { return end <= limit })...)
		}
		// The next window of the series in this flush continues from this one, as it
		// would once this one is judged (windowJudged): a series first seen in a backlog
		// has all its windows in one flush, and its silences must be filled there too.
		e := st.end
		e.end, e.size = max(e.end, w.End), time.Duration(w.End-w.Start)*time.Millisecond
		if w.Events > 0 {
			e.lastData = max(e.lastData, w.End)
		}
		st.end, st.hasEnd = e, true
		out = append(out, c)
	}
	return out
}

// emptyWindows returns a series' empty windows from where its judged windows end, while
// due says so, for up to a day after its last events.
func (r *Runner) emptyWindows(s processors.SeriesKey, st *seriesState, due func(start, end int64) bool) []processors.Closed {
	var out []processors.Closed
	e := st.end
	for n := 0; n < 1000 && e.size > 0; n++ {
		start, end := e.end, e.end+e.size.Milliseconds()
		if start >= e.lastData+silentSeriesFor.Milliseconds() || !due(start, end) {
			break
		}
		w := processors.EmptyWindow(s, start, end)
		r.proc.CloseEmpty(s, start)
		out = append(out, processors.Closed{Merged: w, Partials: []*processors.Partial{{WindowAgg: w,
			TopicPartition: processors.TopicPartition{Topic: r.set.PredictionTopic, Partition: -1}, FirstOffset: -1, LastOffset: -1}}})
		e.end = end
	}
	st.end = e
	return out
}

// superseded reports whether another version of the series' model, in the same slot,
// sent events in [start, end) (a window open, waiting, or judged with events): a version
// replaced by a newer one has not "stopped sending".
func (r *Runner) superseded(s processors.SeriesKey, start, end int64, open map[processors.SeriesKey]bool) bool {
	other := func(k processors.SeriesKey) bool {
		return k.Model == s.Model && k.Deployment == s.Deployment && k.Version != s.Version
	}
	for k := range open {
		if other(k) {
			return true
		}
	}
	for k, st := range r.j.series {
		if other(k) && st.hasEnd && st.end.lastData >= end {
			return true
		}
	}
	return false
}

// seriesWithEnds lists the series whose judged windows' end is known, in a fixed order.
func (r *Runner) seriesWithEnds() []processors.SeriesKey {
	keys := make([]processors.SeriesKey, 0, len(r.j.series))
	for k, st := range r.j.series {
		if st.hasEnd {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Deployment < b.Deployment
	})
	return keys
}

// windowJudged records where a series' judged windows end.
func (j *judge) windowJudged(w *processors.WindowAgg) {
	st := j.state(w.Series)
	e := st.end
	e.end, e.size = max(e.end, w.End), time.Duration(w.End-w.Start)*time.Millisecond
	if w.Events > 0 {
		e.lastData = max(e.lastData, w.End)
	}
	st.end, st.hasEnd = e, true
}

// maxRunWindows bounds a volumeRun (the recent windows' count: 10 hours of 5-minute
// windows).
const maxRunWindows = maxRecentWindows

// volumeRun is a series' latest windows in a row that each fell short of their volume
// expectation. A count is evidence at any size, but one window of a model sending a few
// events per window is not enough of it: at 5 expected, an empty window has p = e⁻⁵, far
// from the signal level, so a model at one event a minute could stop for good and never
// be flagged. The run's events are judged together against the run's expected events
// (each window's own expectation), with the same test, level and effect floor as one
// window: three empty 5-minute windows of that model fire. The run keeps every window
// below its expectation and ends at the first window that is not, that has no
// expectation, or whose drop the same hour a week before explains: a series whose
// windows wander around their expectation starts afresh every time it reaches it, and a
// slow decline is judged window by window against an expectation that follows it.
//
// The run's empty windows are held out of the recent windows while it lasts (seriesState
// account): a series whose recent windows include an empty one is taken as bursty and
// gets no expectation, so the first empty window of a stop would otherwise end its own
// judgement. They join when the run ends, unless the run was judged low.
type volumeRun struct {
	windows []runWindow // chronological, contiguous
}

type runWindow struct {
	start, end int64
	events     uint64
	expected   float64 // 0: no expectation (or one the week before explained)
	low        bool    // judged low on volume, itself or as part of the run
	// joined: held (runWindow.held), it joined the recent windows while still in the run
	// (maxHeldWindows).
	joined bool
}

func (x runWindow) member() bool { return x.expected > 0 && float64(x.events) < x.expected }

// held says whether x, a window of a run, joins the recent windows later than at once: a
// window at a quarter or less of its expectation. A fall judged against recent windows
// that took in its own first windows would lower the fewest events learned with them, and
// a run of a few events a window never be judged low. It joins them when it leaves the
// run, or once maxHeldWindows windows came after it in a run not judged low; a window
// judged low never does. Windows merely below expectation join at once, so that the recent
// windows follow traffic that declines for hours (an evening).
func (x runWindow) held() bool {
	return x.member() && float64(x.events) <= recentVolumeDrop*x.expected
}

// maxHeldWindows is how long a window is held out of the recent windows in a run not
// judged low. A fall the run is judged low for is found within a few windows (a fifth of
// 10 events a window: within 4 in 38 of 40 seeds); a run not judged low by then is the
// series' traffic as it is now, which the recent windows must follow: an evening that
// falls fivefold within the hour, or traffic bursty over spells longer than a window,
// which holding its slow spells out would make look rarer than they are.
const maxHeldWindows = 6

// waiting says whether x is held (runWindow.held) and has not joined the recent windows
// yet.
func (x runWindow) waiting() bool { return x.held() && !x.joined }

func (x runWindow) size() time.Duration { return time.Duration(x.end-x.start) * time.Millisecond }

// extended returns the run with x appended (x a member): a gap or a change of window size
// starts it afresh, and a full run drops its oldest window. It also returns the windows
// that left.
func (r *volumeRun) extended(x runWindow) (run, left []runWindow) {
	run = r.windows
	if n := len(run); n > 0 && (run[n-1].end != x.start || run[n-1].size() != x.size()) {
		// A gap, or windows of another size (windows.size changed): their expectations
		// are of other spans, and a sum over both would expect the wrong count.
		left, run = run, nil
	}
	if len(run) == maxRunWindows {
		left, run = append(left, run[0]), run[1:]
	}
	return append(run[:len(run):len(run)], x), left
}

// judge returns the condition to report for w, a window described by x: c, or the
// condition of the run x extends when c did not breach and the run does. The run is
// judged over spans that end with w and start at a window as low as the effect the drop
// rule needs (at most VolumeDrop of its expectation), longest first, and the first that
// breaches is reported: a fall that began in the middle of a run, after a window or two
// just below expectation (a slow minute of bursty traffic), would otherwise be judged
// diluted by them, and a fall to a fifth stay above the quarter the rule needs for as
// long as it lasts. Those spans are picked by what they hold, so, unless the only one is
// the whole run, the test's level is divided among the run's spans (its length). It
// changes nothing (seriesState.account does).
func (r *volumeRun) judge(w *processors.WindowAgg, c detectors.Condition, exp detectors.VolumeExpectation, th detectors.Thresholds, x runWindow, recent *recentVolume) detectors.Condition {
	if c.Breached || !x.member() {
		return c
	}
	run, _ := r.extended(x)
	// At most about log2(maxRunWindows) spans: the longest, then each at most half as
	// long as the one before, so that a long run that does not breach costs a few tests a
	// window rather than one per window of it.
	var starts []int
	for k := range len(run) - 1 {
		if float64(run[k].events) <= th.Signals.VolumeDrop*run[k].expected &&
			(len(starts) == 0 || 2*(len(run)-k) <= len(run)-starts[len(starts)-1]) {
			starts = append(starts, k)
		}
	}
	if len(starts) == 0 {
		return c
	}
	if len(starts) > 1 || starts[0] > 0 {
		th.Signals.PValue /= float64(len(run))
	}
	var rc detectors.Condition
	ok := false
	for _, k := range starts {
		if rc, ok = judgeSpan(w, run[k:], exp, th, recent); ok {
			break
		}
	}
	if !ok {
		return c
	}
	// Reported on this window, as every volume condition is, over the span.
	rc.WindowStart, rc.WindowEnd = c.WindowStart, c.WindowEnd
	return rc
}

// judgeSpan judges the windows of span (the last one w) together, and reports whether
// they breach.
func judgeSpan(w *processors.WindowAgg, span []runWindow, exp detectors.VolumeExpectation, th detectors.Thresholds, recent *recentVolume) (detectors.Condition, bool) {
	agg := &processors.WindowAgg{Series: w.Series, Start: span[0].start, End: w.End}
	var sum float64
	for _, x := range span {
		agg.Events += x.events
		sum += x.expected
	}
	spanExp := exp
	spanExp.PerWindow = sum / float64(len(span)) * float64(exp.Size.Milliseconds()) / float64(w.End-w.Start)
	if exp.Dispersion > 1 {
		// Traffic that varies more than Poisson from window to window may do so in bursts
		// longer than a window (a slow minute is six slow 10-second windows): the windows
		// of a run within one burst are not independent, and their sum varies as much,
		// relatively, as one window. So the span's dispersion grows with its length up to
		// a minute of windows (burstWindows), and no further: a span longer than a burst
		// gathers evidence as independent bursts do, so a lasting partial outage is still
		// found.
		spanExp.Dispersion = 1 + (exp.Dispersion-1)*float64(min(len(span), burstWindows(exp.Size)))
	}
	if exp.Fewest > 0 {
		// Against recent windows (the basis that has a fewest), bursts may also last
		// longer than a minute (a client that sends in spells of minutes): what the
		// recent windows say of sums of as many windows as the span holds is then the
		// larger. Not against the same hour of previous days: the recent windows then
		// hold the start of a partial outage (windows merely below expectation join
		// them at once), and sums that straddle it would make the outage look ordinary.
		disp, fewest := recent.blocks(exp.Size, len(span))
		spanExp.Dispersion = max(spanExp.Dispersion, disp)
		if fewest > 0 && exp.Dispersion <= 2 {
			// Traffic that varies about as Poisson's does: a span no lower than some
			// span of as many recent windows is within what the series already did,
			// while one below the fewest of any single window asks far more than that
			// (the least of 120 windows is an extreme, which sums of several do not
			// reach). Burstier traffic keeps the single window's fewest: its slow spells,
			// not chance, make the least window, and a 20-minute history has seen few
			// of them.
			spanExp.Fewest = fewest
		}
	}
	rc, ok := detectors.ModelVolumeCondition(agg, spanExp, th)
	if !ok || !rc.Breached {
		return detectors.Condition{}, false
	}
	rc.Details["run_windows"] = fmt.Sprint(len(span))
	return rc, true
}

// account records a judged window (x.low: judged low, itself or with its run) in the
// series' recent volume and run; restoreVolume replays it over the stored windows, so a
// restart leaves both as they were.
func (st *seriesState) account(x runWindow) {
	var left []runWindow
	if x.member() {
		st.run.windows, left = st.run.extended(x)
		if x.low {
			for i := range st.run.windows {
				st.run.windows[i].low = true
			}
		}
	} else {
		left, st.run.windows = st.run.windows, nil
	}
	for _, l := range left {
		if l.waiting() {
			st.recent.observe(l.events, l.size(), l.low)
		}
	}
	for i := range max(len(st.run.windows)-maxHeldWindows, 0) {
		if l := &st.run.windows[i]; l.waiting() && !l.low {
			st.recent.observe(l.events, l.size(), false)
			l.joined = true
		}
	}
	if !x.held() {
		st.recent.observe(x.events, x.size(), x.low)
	}
	if _, ok := st.recent.expectation(x.size(), nil); ok {
		st.hadRecent = true
	}
}

// restoreVolume rebuilds a series' recent volume and run from its stored windows (oldest
// first), as judging them in turn left them.
func (st *seriesState) restoreVolume(ws []storage.WindowVolume) {
	st.run, st.recent, st.hadRecent = volumeRun{}, recentVolume{}, false
	for _, x := range ws {
		st.account(runWindow{start: x.Start.UnixMilli(), end: x.End.UnixMilli(), events: x.Events, expected: x.Expected, low: x.Low})
	}
}
