package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// The pipeline has three stages. Ingest (pipeline.go's handle, processors) decodes
// records and keeps each series' open windows; judge (this file) turns the windows that
// closed into verdicts, conditions and alerts; sink (write.go) writes them to ClickHouse,
// publishes the alerts and commits. docs/architecture.md draws them.

// windowLoader reads a window already written (a *storage.Store): the windows before
// this member's first one, which a low-volume merge or a rolling reference may need.
type windowLoader interface {
	LoadWindow(ctx context.Context, series processors.SeriesKey, start time.Time) (*processors.WindowAgg, error)
}

// judge is the judging stage. It owns every series' judging state (registry.go), the
// versions' references and the builders of the references still being built, and the
// alerter's state machines. It writes nothing: a judgement is a function of the closed
// windows, what earlier windows left in that state, the evaluation time it is given,
// and the earlier windows it reads back, so that the same windows judged live, from a
// backlog or after a restart give the same rows and alerts.
type judge struct {
	set     *Settings
	log     *slog.Logger
	earlier windowLoader

	refs     map[[2]string]*detectors.Profile
	building map[[2]string]*refBuilder
	series   map[processors.SeriesKey]*seriesState
	// slots are the models' blue/green slots, slotEvents their serving slots' events per
	// model and window (bluegreen.go).
	slots      map[string]*slots
	slotEvents map[slotWindow]uint64
	// canaries are the canary series whose alerts may fire (canary.go).
	canaries map[processors.SeriesKey]bool
	alerter  *detectors.Alerter
	// hint says what a model's upstream stages did in a window ("" when nothing is known
	// or wrong), for drift alerts (upstream.go); an error only when ctx ends or ClickHouse
	// stays down past Settings.MaxOutage.
	hint func(ctx context.Context, model string, start, end time.Time) (string, error)
}

func newJudge(set *Settings, log *slog.Logger, earlier windowLoader) *judge {
	return &judge{set: set, log: log, earlier: earlier,
		refs: map[[2]string]*detectors.Profile{}, building: map[[2]string]*refBuilder{},
		series: map[processors.SeriesKey]*seriesState{}, slots: map[string]*slots{}, slotEvents: map[slotWindow]uint64{},
		canaries: map[processors.SeriesKey]bool{},
		alerter:  detectors.NewAlerter(set.FireAfter, set.ResolveAfter),
		hint:     func(context.Context, string, time.Time, time.Time) (string, error) { return "", nil },
	}
}

// judgeClosed judges closed windows (in start order) at time now: each window's verdict
// and the alerts its conditions raise go into batch; onVerdict (if not nil) sees each.
// It returns the references built on the way (first-windows references completed by
// these windows): the windows after one in closed are judged against it already; the
// caller saves them before the batch is written.
func (j *judge) judgeClosed(ctx context.Context, closed []processors.Closed, now time.Time, batch *storage.Batch,
	onVerdict func(detectors.Verdict, []*schemas.AlertEvent)) ([]*detectors.Profile, error) {
	// A rolling reference may be a window closed in this very flush (a backlog), not yet
	// written.
	inBatch := make(map[windowKey]*processors.WindowAgg, len(closed))
	for _, c := range closed {
		if !c.Supplement {
			inBatch[windowKey{c.Merged.Series, c.Merged.Start}] = c.Merged
		}
	}
	j.countSlotEvents(closed)
	var built []*detectors.Profile
	for _, c := range closed {
		if c.Supplement {
			// Partitions a window lacked, written to complete it; the window was judged
			// by whoever wrote the rest.
			continue
		}
		w := c.Merged
		ref := j.refs[[2]string{w.Series.Model, w.Series.Version}]
		if lag, ok := detectors.RollingLag(j.set.ReferenceSource(w.Series.Model), j.set.WindowSpec(w.Series.Model).Size); ok {
			var err error
			if ref, err = j.rollingReference(ctx, w, lag, inBatch, now); err != nil {
				return built, err
			}
		} else if ref == nil && w.Events > 0 {
			// An empty window (a silent series) is not one of the reference's windows: the
			// next window with events counts it as a quiet one (refBuilder.windowClosed).
			if p := j.referenceWindowClosed(batch, w, now); p != nil {
				j.useReference(p)
				built = append(built, p)
			}
		} else if !ref.JudgesWindow(w.Start) {
			// A window the reference was built from, judged again (its reference was
			// stored and its judgement was not): as at its own end, without it.
			ref = nil
		}
		v, err := j.evaluate(ctx, w, ref)
		if err != nil {
			return built, err
		}
		batch.Verdicts = append(batch.Verdicts, v)
		j.state(w.Series).previous = w
		j.windowJudged(w)
		var raised []*schemas.AlertEvent
		for _, cond := range v.Conditions {
			if cond.Breached && (cond.Kind == schemas.KindDataDrift || cond.Kind == schemas.KindPredictionDrift) {
				h, err := j.hint(ctx, cond.Model, cond.WindowStart, cond.WindowEnd)
				if err != nil {
					return built, err
				}
				if h != "" {
					cond.FiringSummary += "; upstream: " + h
					cond.Details["upstream"] = h
				}
			}
			if a := j.alerter.Observe(cond, now); a != nil {
				raised = append(raised, a)
			}
		}
		batch.Alerts = append(batch.Alerts, raised...)
		if onVerdict != nil {
			onVerdict(v, raised)
		}
	}
	j.compareCanaries(closed, now, batch)
	return built, j.compareSwitches(ctx, closed, now, batch)
}

// useReference makes p the reference of its model version.
func (j *judge) useReference(p *detectors.Profile) {
	key := [2]string{p.Model, p.Version}
	j.refs[key] = p
	delete(j.building, key)
}

// rollingReference is w's reference under a rolling source: the series' window lag
// earlier, from this batch, the series' previous window, or ClickHouse (nil: there is
// none). An error only when ClickHouse stays down past Settings.MaxOutage, or ctx ends:
// judging without a reference that exists would make the verdict depend on an outage.
func (j *judge) rollingReference(ctx context.Context, w *processors.WindowAgg, lag time.Duration, inBatch map[windowKey]*processors.WindowAgg, now time.Time) (*detectors.Profile, error) {
	start := w.Start - lag.Milliseconds()
	lagged := inBatch[windowKey{w.Series, start}]
	if lagged == nil {
		lagged = j.state(w.Series).previous
	}
	if lagged == nil || lagged.Start != start {
		var err error
		if lagged, err = j.loadWindow(ctx, w.Series, time.UnixMilli(start), "a rolling reference"); err != nil {
			return nil, err
		}
	}
	if lagged == nil {
		return nil, nil
	}
	return detectors.ProfileFromWindow(lagged, j.set.ReferenceSource(w.Series.Model), now), nil
}
