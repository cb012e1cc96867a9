package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// MaxMergedWindows caps how many consecutive windows a low-volume series is judged over.
// A model sending less than min_events per window is judged over its latest windows
// merged until they hold min_events (the span is named in the alert), rather than never:
// at one event a minute and 100 events needed that would be 100 windows, so beyond the
// cap a window stays "not judged" and says why.
const MaxMergedWindows = 12

// trail is a series' most recent closed windows, oldest first: as many as a short window
// after them could need to reach min_events.
type trail []*processors.WindowAgg

// keep appends w and drops the windows no later merge can need: those before the
// shortest suffix that holds min events, and those more than MaxMergedWindows back.
func (t trail) keep(w *processors.WindowAgg, min uint64, size time.Duration) trail {
	t = append(t, w)
	oldest := w.End - int64(MaxMergedWindows)*size.Milliseconds()
	var n uint64
	cut := 0
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].Start < oldest {
			cut = i + 1
			break
		}
		n += t[i].Events
		if n >= min {
			cut = i
			break
		}
	}
	return append(trail(nil), t[cut:]...)
}

// judgedWindow returns what w is judged over: w itself when it holds min events, else w
// merged with the series' preceding windows (at most MaxMergedWindows in all, going back
// from w) until they do, with how many windows and events that took. It returns nil when
// even the merge is short. Windows from before this member first closed one of the
// series come from ClickHouse, so a window is judged over the same span however the
// stream was read and wherever it was restarted.
func (j *judge) judgedWindow(ctx context.Context, w *processors.WindowAgg, min uint64, ref *detectors.Profile) (*processors.WindowAgg, int, uint64, error) {
	size := time.Duration(w.End-w.Start) * time.Millisecond
	st := j.state(w.Series)
	prev := st.trail
	if !st.trailed {
		st.trailFrom, st.trailed = w.Start, true
	}
	from := st.trailFrom
	defer func() { st.trail = prev.keep(w, min, size) }()
	if w.Events >= min {
		return w, 1, w.Events, nil
	}
	byStart := make(map[int64]*processors.WindowAgg, len(prev))
	for _, p := range prev {
		byStart[p.Start] = p
	}
	merged, n, events := w.Clone(), 1, w.Events
	if ref != nil {
		// Binned first, the merge counts every value each window kept, whether w opened
		// before its reference was built (the first time the stream was read) or after
		// (read again after a restart), as it does with windows read back from ClickHouse
		// (binned when written: Closed.PrepareKept); merged kept values are capped.
		merged.BinKept(ref.Layout())
	}
	for k := 1; k < MaxMergedWindows && events < min; k++ {
		start := w.Start - int64(k)*size.Milliseconds()
		p := byStart[start]
		if p == nil && start < from {
			var err error
			if p, err = j.loadWindow(ctx, w.Series, time.UnixMilli(start), "a low-volume merge"); err != nil {
				return nil, 0, 0, err
			}
		}
		if p == nil {
			continue // the series was quiet then
		}
		merged.Merge(p)
		merged.Start = p.Start
		n, events = k+1, events+p.Events
	}
	if events < min {
		return nil, n, events, nil
	}
	return merged, n, events, nil
}

// evaluate judges a closed window against its reference, over the span judgedWindow
// gives, and says in the verdict (and the alerts) over what.
func (j *judge) evaluate(ctx context.Context, w *processors.WindowAgg, ref *detectors.Profile) (detectors.Verdict, error) {
	if w.Events == 0 {
		// A series that fell silent: nothing to judge but that.
		v := detectors.Verdict{Window: w, Judgement: "no events: judged on volume only"}
		j.judgeVolume(&v, w, ref)
		return v, nil
	}
	model := w.Series.Model
	th := func(feature string) detectors.Thresholds { return j.set.Thresholds(model, feature) }
	min := th("").MinEvents
	over, n, events, err := j.judgedWindow(ctx, w, min, ref)
	if err != nil {
		return detectors.Verdict{}, err
	}
	if over == nil {
		v := detectors.Verdict{Window: w, Judgement: fmt.Sprintf("not judged: %d events < min_events %d over the last %d windows", events, min, n)}
		j.judgeVolume(&v, w, ref)
		return v, nil
	}
	v := detectors.Evaluate(over, ref, th)
	if ref == nil {
		v.Judgement = "no reference yet: service thresholds only"
	}
	if n > 1 {
		v.Window, v.JudgedFrom = w, time.UnixMilli(over.Start).UTC()
		v.Judgement = strings.TrimPrefix(v.Judgement+"; ", "; ") + fmt.Sprintf("judged over %d windows merged: %d events < min_events %d in this one", n, w.Events, min)
		for i := range v.Conditions {
			c := &v.Conditions[i]
			note := fmt.Sprintf(" (%d windows merged: fewer than %d events in one)", n, min)
			c.FiringSummary += note
			c.ResolvedSummary += note
			if c.Details == nil {
				c.Details = map[string]string{}
			}
			c.Details["merged_windows"] = fmt.Sprint(n)
		}
	}
	j.judgeVolume(&v, w, ref)
	return v, nil
}

// loadWindow reads a written window (nil: none) for what (a low-volume merge, a rolling
// reference, …), waiting out a ClickHouse that cannot answer (up to Settings.MaxOutage):
// judging without it would make the verdict depend on an outage.
func (j *judge) loadWindow(ctx context.Context, series processors.SeriesKey, start time.Time, what string) (*processors.WindowAgg, error) {
	var w *processors.WindowAgg
	err := retry.Do(ctx, j.set.policy(), fmt.Sprintf("loading the written window %s of %s for %s", start.UTC().Format(time.RFC3339), series.Model, what),
		storage.ClassifyRead, logAttempts(j.log), func(ctx context.Context) error {
			var err error
			w, err = j.earlier.LoadWindow(ctx, series, start)
			return err
		})
	return w, err
}
