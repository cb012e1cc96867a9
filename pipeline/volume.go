package pipeline

import (
	"sort"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
)

// A series' volume is judged per window (never merged: a count is evidence at any size)
// against what is expected of that window: the same hour of day on the previous days once
// a day of history exists (traffic has daily cycles; a nightly dip is not an outage), else
// the version's reference windows.

const (
	hourMs      = int64(time.Hour / time.Millisecond)
	dayMs       = 24 * hourMs
	volumeDays  = 7 // days of same-hour history an expectation is taken from
	keepVolDays = volumeDays + 1
)

// hourlyVolume is a series' events per hour (hour start, unix ms), for the last days.
type hourlyVolume struct {
	hours map[int64]uint64
	first int64 // the first hour counted: history exists from here on
}

func (h *hourlyVolume) add(w *processors.WindowAgg) {
	hour := w.Start - ((w.Start%hourMs)+hourMs)%hourMs
	if h.hours == nil {
		h.hours, h.first = map[int64]uint64{}, hour
	}
	h.hours[hour] += w.Events
	if hour < h.first {
		h.first = hour
	}
	for k := range h.hours {
		if k < hour-int64(keepVolDays)*dayMs {
			delete(h.hours, k)
		}
	}
}

// expectation returns the same hour's median over the previous days that have history,
// per window of size; ok is false before a day of history.
func (h *hourlyVolume) expectation(start int64, size time.Duration) (detectors.VolumeExpectation, bool) {
	if h.hours == nil {
		return detectors.VolumeExpectation{}, false
	}
	hour := start - ((start%hourMs)+hourMs)%hourMs
	var counts []float64
	for d := int64(1); d <= volumeDays; d++ {
		past := hour - d*dayMs
		if past < h.first {
			break
		}
		counts = append(counts, float64(h.hours[past]))
	}
	if len(counts) == 0 {
		return detectors.VolumeExpectation{}, false
	}
	sort.Float64s(counts)
	med := counts[len(counts)/2]
	if len(counts)%2 == 0 {
		med = (counts[len(counts)/2-1] + counts[len(counts)/2]) / 2
	}
	perHour := float64(time.Hour / size)
	return detectors.VolumeExpectation{PerWindow: med / perHour, Size: size, Windows: len(counts) * int(perHour),
		Basis: "the same hour of the previous days"}, true
}

// volumeCondition judges w's events: against the same hour of the previous days when
// that history exists, else against the reference's windows.
func (r *Runner) volumeCondition(w *processors.WindowAgg, ref *detectors.Profile) (detectors.Condition, bool) {
	size := time.Duration(w.End-w.Start) * time.Millisecond
	h := &r.state(w.Series).volume
	defer h.add(w)
	th := r.set.Thresholds(w.Series.Model, "")
	if exp, ok := h.expectation(w.Start, size); ok {
		return detectors.ModelVolumeCondition(w, exp, th)
	}
	if ref == nil {
		return detectors.Condition{}, false
	}
	per, n, ok := ref.EventsPerWindow()
	if !ok {
		return detectors.Condition{}, false
	}
	return detectors.ModelVolumeCondition(w, detectors.VolumeExpectation{PerWindow: per, Size: size, Windows: n, Basis: "its reference"}, th)
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
// fires at the same event-time moment live and in a backlog.
func (r *Runner) silentWindows(now time.Time) []processors.Closed {
	clock := r.clock.now(now)
	if clock.IsZero() || len(r.series) == 0 {
		return nil
	}
	open := r.proc.OpenSeries()
	for _, c := range r.pending {
		open[c.Merged.Series] = true // closed, not judged yet: its end is not known here
	}
	var out []processors.Closed
	for _, s := range r.seriesWithEnds() {
		st := r.series[s]
		if open[s] || r.refs[[2]string{s.Model, s.Version}] == nil && st.volume.hours == nil {
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

// fillGaps puts, before each closed window of a series that resumed after a silence, the
// empty windows of the silence not given yet: however the stream is read, a series' windows
// are judged without holes, so its volume alerts are the same live and from a backlog.
func (r *Runner) fillGaps(closed []processors.Closed) []processors.Closed {
	var out []processors.Closed
	for _, c := range closed {
		st, ok := r.series[c.Merged.Series]
		if ok && st.hasEnd && !c.Supplement {
			if c.Merged.Start > st.end.end {
				limit := c.Merged.Start
				out = append(out, r.emptyWindows(c.Merged.Series, st, func(_, end int64) bool { return end <= limit })...)
			}
			// The next window of the series in this flush continues from this one.
			st.end.end = max(st.end.end, c.Merged.End)
		}
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
	for k, st := range r.series {
		if k.Model != s.Model || k.Deployment != s.Deployment || k.Version == s.Version {
			continue
		}
		if open[k] || (st.hasEnd && st.end.lastData >= end) {
			return true
		}
	}
	return false
}

// seriesWithEnds lists the series whose judged windows' end is known, in a fixed order.
func (r *Runner) seriesWithEnds() []processors.SeriesKey {
	keys := make([]processors.SeriesKey, 0, len(r.series))
	for k, st := range r.series {
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
func (r *Runner) windowJudged(w *processors.WindowAgg) {
	st := r.state(w.Series)
	e := st.end
	e.end, e.size = max(e.end, w.End), time.Duration(w.End-w.Start)*time.Millisecond
	if w.Events > 0 {
		e.lastData = max(e.lastData, w.End)
	}
	st.end, st.hasEnd = e, true
}
