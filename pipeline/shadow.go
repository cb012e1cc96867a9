package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// shadowStore is the shadow join's side of the Store: the join runs in ClickHouse on the
// prediction keys the label join keeps (written at the start of each flush, before the
// windows they belong to are judged).
type shadowStore interface {
	JoinShadow(ctx context.Context, shadow processors.SeriesKey, primaryVersion string, start time.Time) (detectors.ShadowCounts, error)
	LoadShadowReference(ctx context.Context, shadow processors.SeriesKey) ([]detectors.ShadowWindow, error)
}

// shadowRef is a shadow series' reference: its first windows with enough joined
// predictions, oldest first.
type shadowRef struct {
	windows []shadowRefWindow
}

type shadowRefWindow struct {
	start  int64 // Unix ms
	counts detectors.ShadowCounts
}

// before is the reference as of the end of the window starting at start: the reference's
// windows before it, at most n, and their counts. A window judged again (its row written
// and its judging round not finished, or its judge replaced) is judged as at its own end,
// not against a reference it is part of or came before.
func (r *shadowRef) before(start int64, n int) (detectors.ShadowCounts, int) {
	var c detectors.ShadowCounts
	k := 0
	for _, w := range r.windows {
		if w.start >= start || k == n {
			break
		}
		c.Add(w.counts)
		k++
	}
	return c, k
}

// add makes the window starting at start one of the reference's (again, if it was).
func (r *shadowRef) add(start int64, c detectors.ShadowCounts) {
	i, found := slices.BinarySearchFunc(r.windows, start, func(w shadowRefWindow, s int64) int { return cmp.Compare(w.start, s) })
	if found {
		r.windows[i].counts = c
		return
	}
	r.windows = slices.Insert(r.windows, i, shadowRefWindow{start, c})
}

// compareShadows joins each shadow window of closed to the primary's predictions of the
// same window and judges its agreement against the shadow's reference: the rows and the
// alerts go into batch. The primary is the busiest primary version of the window. Keys
// are kept only with a label topic (Settings.LabelTopic): without, shadows are not
// compared.
func (r *Runner) compareShadows(ctx context.Context, closed []processors.Closed, batch *storage.Batch) error {
	if r.lab == nil {
		return nil
	}
	set := r.set.Shadow
	if set == (detectors.ShadowSettings{}) {
		set = detectors.DefaultShadowSettings
	}
	for _, c := range closed {
		w := c.Merged
		if c.Supplement || w.Series.Deployment != schemas.DeploymentShadow {
			continue
		}
		if w.Events == 0 {
			// A silent shadow (removed, or replaced): an alert it left firing resolves.
			for _, cond := range detectors.ShadowSilent(w.Series, time.UnixMilli(w.Start).UTC(), time.UnixMilli(w.End).UTC()) {
				if a := r.j.alerter.Observe(cond, r.now()); a != nil {
					batch.Alerts = append(batch.Alerts, a)
				}
			}
			continue
		}
		var primary *processors.WindowAgg
		for _, o := range closed {
			if p := o.Merged; !o.Supplement && p.Series.Model == w.Series.Model && p.Series.Deployment == schemas.DeploymentPrimary &&
				p.Start == w.Start && busier(p, primary) {
				primary = p
			}
		}
		if primary == nil {
			primary = r.j.judgedPrimary(w.Series.Model, w.Start)
		}
		if primary == nil {
			continue // the primary sent nothing in this window: nothing to join
		}
		ref, err := r.shadowReference(ctx, w.Series)
		if err != nil {
			return err
		}
		sw := detectors.ShadowWindow{Shadow: w.Series, PrimaryVersion: primary.Series.Version,
			Start: time.UnixMilli(w.Start).UTC(), End: time.UnixMilli(w.End).UTC()}
		if err := retry.Do(ctx, r.set.policy(), "joining a shadow's predictions", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			var err error
			sw.Counts, err = r.store.JoinShadow(ctx, w.Series, primary.Series.Version, sw.Start)
			return err
		}); err != nil {
			return err
		}
		row := storage.ShadowRow{Window: sw}
		if counts, n := ref.before(w.Start, set.ReferenceWindows); n < set.ReferenceWindows {
			// Still building: the window joins the reference if it has the evidence, and
			// is not judged.
			if sw.Counts.Matched >= set.MinMatched {
				ref.add(w.Start, sw.Counts)
				row.InReference = true
			}
		} else {
			for _, cond := range detectors.JudgeShadow(sw, counts, set) {
				if a := r.j.alerter.Observe(cond, r.now()); a != nil {
					batch.Alerts = append(batch.Alerts, a)
				}
			}
		}
		batch.Shadow = append(batch.Shadow, row)
	}
	return nil
}

// shadowReference returns a shadow series' reference: the one in memory, else the one
// stored (a restart reads it back, so that it is the same however the stream was read).
func (r *Runner) shadowReference(ctx context.Context, k processors.SeriesKey) (*shadowRef, error) {
	if ref, ok := r.shadowRefs[k]; ok {
		return ref, nil
	}
	var stored []detectors.ShadowWindow
	if err := retry.Do(ctx, r.set.policy(), "loading a shadow's reference", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
		var err error
		stored, err = r.store.LoadShadowReference(ctx, k)
		return err
	}); err != nil {
		return nil, fmt.Errorf("shadow %v: %w", k, err)
	}
	ref := &shadowRef{}
	for _, w := range stored {
		ref.add(w.Start.UnixMilli(), w.Counts)
	}
	r.shadowRefs[k] = ref
	return ref, nil
}
