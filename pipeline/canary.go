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
			// The primary of each model and period: the busiest primary version's window,
			// else (a model served by blue/green) the busiest slot's.
			primaries = map[at]*processors.WindowAgg{}
			slots := map[at]*processors.WindowAgg{}
			for _, o := range closed {
				p := o.Merged
				k := at{p.Series.Model, p.Start}
				switch {
				case o.Supplement:
				case p.Series.Deployment == schemas.DeploymentPrimary && busier(p, primaries[k]):
					primaries[k] = p
				case isSlot(p.Series.Deployment) && p.Events > 0 && busier(p, slots[k]):
					slots[k] = p
				}
			}
			for k, p := range slots {
				if primaries[k] == nil {
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
		if w.Events > 0 {
			// A silent canary's empty windows (rolled back) only clear its alerts: a row
			// each would say nothing, and its primary depends on what a flush held.
			batch.Canary = append(batch.Canary, cmp)
		}
		for _, cond := range cmp.Conditions(set) {
			j.observe(cond, now, batch)
		}
		if w.Events > 0 {
			j.clearReplacedCanaries(w, set, now, batch)
		}
	}
}

// clearReplacedCanaries clears the alerts of the model's other canary versions once w's
// version has the canary slot: nothing is left to roll back or promote of them (their
// own empty windows do the same, when they get any). j.canaries holds the canary series
// whose alerts may fire, and forgets each once none does.
func (j *judge) clearReplacedCanaries(w *processors.WindowAgg, set detectors.CanarySettings, now time.Time, batch *storage.Batch) {
	j.canaries[w.Series] = true
	for k := range j.canaries {
		if k.Model != w.Series.Model || k.Version == w.Series.Version {
			continue
		}
		firing := false
		silent := detectors.CanaryComparison{Canary: k, Start: w.Start, End: w.End}
		for _, cond := range silent.Conditions(set) {
			if j.alerter.State(cond.Fingerprint()).Firing {
				j.observe(cond, now, batch)
				firing = firing || j.alerter.State(cond.Fingerprint()).Firing
			}
		}
		if !firing {
			delete(j.canaries, k)
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
