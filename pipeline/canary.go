package pipeline

import (
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// compareCanaries compares each canary window of closed with the primary's window of the
// same model and period (detectors.CompareCanary) at time now: the comparisons go into
// batch, and the alerts their conditions raise. A model's windows close together (one
// watermark per model), so the primary's window is in the same flush; failing that, it
// is the one its series judged last.
func (j *judge) compareCanaries(closed []processors.Closed, now time.Time, batch *storage.Batch) {
	set := j.set.Canary
	if set == (detectors.CanarySettings{}) {
		set = detectors.DefaultCanarySettings
	}
	type at struct {
		model string
		start int64
	}
	var primaries map[at]*processors.WindowAgg
	for _, c := range closed {
		w := c.Merged
		if c.Supplement || w.Series.Deployment != schemas.DeploymentCanary {
			continue
		}
		if primaries == nil {
			// The primary of each model and period: the busiest primary version's window.
			primaries = map[at]*processors.WindowAgg{}
			for _, o := range closed {
				p := o.Merged
				if k := (at{p.Series.Model, p.Start}); !o.Supplement && p.Series.Deployment == schemas.DeploymentPrimary && busier(p, primaries[k]) {
					primaries[k] = p
				}
			}
		}
		primary := primaries[at{w.Series.Model, w.Start}]
		if primary == nil {
			primary = j.judgedPrimary(w.Series.Model, w.Start)
		}
		model := w.Series.Model
		cmp := detectors.CompareCanary(w, primary, func(feature string) detectors.Thresholds { return j.set.Thresholds(model, feature) }, set, now)
		batch.Canary = append(batch.Canary, cmp)
		for _, cond := range cmp.Conditions(set) {
			if a := j.alerter.Observe(cond, now); a != nil {
				batch.Alerts = append(batch.Alerts, a)
			}
		}
	}
}

// judgedPrimary is the window starting at start that a primary series of model judged
// last (nil: none), the busiest if several.
func (j *judge) judgedPrimary(model string, start int64) *processors.WindowAgg {
	var best *processors.WindowAgg
	for k, st := range j.series {
		if p := st.previous; k.Model == model && k.Deployment == schemas.DeploymentPrimary && p != nil && p.Start == start && busier(p, best) {
			best = p
		}
	}
	return best
}

// busier reports whether window a had more events than b (nil: none), or as many and the
// lower version: the primary a canary is compared with does not depend on map order.
func busier(a, b *processors.WindowAgg) bool {
	return b == nil || a.Events > b.Events || a.Events == b.Events && a.Series.Version < b.Series.Version
}
