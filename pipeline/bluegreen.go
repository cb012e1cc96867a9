package pipeline

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// switchWindows is how many windows after a blue/green switch the new slot is compared
// with the old slot's last window before it (and longer while that comparison's alert
// fires, until it resolves).
const switchWindows = 3

// slots is what the judge knows of a model's blue and green slots.
type slots struct {
	// start is the window they were last seen at; last each slot's busiest window there;
	// active the busiest slot's last window with traffic (a quiet spell between two slots
	// is a switch too).
	start  int64
	last   map[string]*processors.WindowAgg
	active *processors.WindowAgg
	// After a switch: the slot traffic went to, the old slot's last window before it, and
	// how many more windows are compared (then more while the comparison's alert fires).
	to   string
	old  *processors.WindowAgg
	left int
	// away are slots' series traffic switched away from while their comparison's alert
	// fired: it resolves ("switched back") over the model's next windows.
	away []processors.SeriesKey
}

// slotWindow names a model's window (its start, unix ms).
type slotWindow struct {
	model string
	start int64
}

// countSlotEvents adds closed's serving events (every slot but shadow) per model and
// window to j.slotEvents (what a canary's or blue/green slot's volume is judged with),
// and forgets those a day older than the oldest window of closed.
func (j *judge) countSlotEvents(closed []processors.Closed) {
	oldest := int64(math.MaxInt64)
	for _, c := range closed {
		if w := c.Merged; !c.Supplement && w.Series.Deployment != schemas.DeploymentShadow {
			j.slotEvents[slotWindow{w.Series.Model, w.Start}] += w.Events
			oldest = min(oldest, w.Start)
		}
	}
	for k := range j.slotEvents {
		if k.start < oldest-(24*time.Hour).Milliseconds() {
			delete(j.slotEvents, k)
		}
	}
}

func isSlot(deployment string) bool {
	return deployment == schemas.DeploymentBlue || deployment == schemas.DeploymentGreen
}

// compareSwitches finds blue/green switches in closed (the slot with most of a model's
// blue and green traffic changes from one window to the next), marks each with an info
// alert (metric traffic_switch: "switched at T" in the alert timeline), and compares the
// new slot's first windows with the old slot's last one as a canary (canary_analysis;
// metric switch_regression, critical, recommends switching back). An error only when a
// slot's previous window cannot be read back (ClickHouse down past Settings.MaxOutage, or
// ctx's end).
func (j *judge) compareSwitches(ctx context.Context, closed []processors.Closed, now time.Time, batch *storage.Batch) error {
	type at struct {
		model string
		start int64
	}
	byWindow := map[at]map[string]*processors.WindowAgg{}
	var order []at
	for _, c := range closed {
		w := c.Merged
		if c.Supplement || !isSlot(w.Series.Deployment) {
			continue
		}
		k := at{w.Series.Model, w.Start}
		if byWindow[k] == nil {
			byWindow[k] = map[string]*processors.WindowAgg{}
			order = append(order, k)
		}
		if busier(w, byWindow[k][w.Series.Deployment]) {
			byWindow[k][w.Series.Deployment] = w
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return order[a].start < order[b].start })
	set := j.set.Canary
	if set == (detectors.CanarySettings{}) {
		set = detectors.DefaultCanarySettings
	}
	for _, k := range order {
		cur := byWindow[k]
		size := j.set.WindowSpec(k.model).Size.Milliseconds()
		st := j.slots[k.model]
		switch {
		case st != nil && k.start <= st.start:
			continue // a silent slot's empty window, closed after the model's next ones
		case st == nil:
			loaded, err := j.loadSlots(ctx, k.model, k.start-size, cur)
			if err != nil {
				return err
			}
			st = loaded
			j.slots[k.model] = st
		case k.start != st.start+size:
			loaded, err := j.loadSlots(ctx, k.model, k.start-size, cur) // a gap: the window before, from ClickHouse
			if err != nil {
				return err
			}
			st.last = loaded.last
		}
		prev, active := busiestSlot(st.last), busiestSlot(cur)
		if prev == nil {
			prev = st.active
		}
		switched := prev != nil && active != nil && prev.Series.Deployment != active.Series.Deployment
		if active != nil {
			j.observe(switchCondition(k.model, prev, active, switched), now, batch)
		}
		if switched {
			// The slot traffic left: an alert its comparison left firing resolves over the
			// next windows (the alerter's state says whether one fires, after a restart too).
			st.away = append(st.away, prev.Series)
			st.to, st.old, st.left = active.Series.Deployment, prev, switchWindows
			if j.alerter.State(switchRegression(detectors.CanaryComparison{Canary: prev.Series}).Fingerprint()).Firing {
				// A rollback: traffic left a slot found regressed. The slot it went back to
				// is not judged against the one it replaced.
				st.old, st.left = nil, 0
			}
		}
		if w := cur[st.to]; w != nil && st.old != nil {
			cmp := detectors.CompareCanary(w, st.old, func(feature string) detectors.Thresholds { return j.set.Thresholds(k.model, feature) }, set, now)
			cond := switchRegression(cmp)
			// Compared for switchWindows windows, and on while the alert fires: it resolves
			// once the new slot is healthy against the old one's last window.
			if st.left > 0 || j.alerter.State(cond.Fingerprint()).Firing {
				batch.Canary = append(batch.Canary, cmp)
				j.observe(cond, now, batch)
				st.left = max(st.left-1, 0)
			} else {
				st.old = nil
			}
		}
		// A slot traffic left while its comparison's alert fired: switched back, resolved.
		away := st.away[:0]
		for _, key := range st.away {
			cond := switchRegression(detectors.CanaryComparison{Canary: key, Primary: processors.SeriesKey{Model: key.Model}, Start: k.start, End: k.start + size,
				Outcome: detectors.CanaryHealthy, Reason: "traffic switched away from it"})
			if j.alerter.State(cond.Fingerprint()).Firing {
				j.observe(cond, now, batch)
				away = append(away, key)
			}
		}
		st.away = away
		st.start, st.last = k.start, cur
		if active != nil {
			st.active = active
		}
	}
	return nil
}

// observe passes a condition to the alerter, keeping the alert it raises.
func (j *judge) observe(c detectors.Condition, now time.Time, batch *storage.Batch) {
	if c.Metric == "" {
		return
	}
	if a := j.alerter.Observe(c, now); a != nil {
		batch.Alerts = append(batch.Alerts, a)
	}
}

// loadSlots is a model's slots at the window starting at start, read back from
// ClickHouse (after a restart, or a gap): the windows there of the slots' series this
// judge knows (those of cur, and those it judged). An error as loadWindow's.
func (j *judge) loadSlots(ctx context.Context, model string, start int64, cur map[string]*processors.WindowAgg) (*slots, error) {
	st := &slots{start: start, last: map[string]*processors.WindowAgg{}}
	keys := map[processors.SeriesKey]bool{}
	for _, w := range cur {
		keys[w.Series] = true
	}
	for k := range j.series {
		if k.Model == model && isSlot(k.Deployment) {
			keys[k] = true
		}
	}
	for k := range keys {
		if p := j.state(k).previous; p != nil && p.Start == start {
			if busier(p, st.last[k.Deployment]) {
				st.last[k.Deployment] = p
			}
			continue
		}
		w, err := j.loadWindow(ctx, k, time.UnixMilli(start), "a blue/green slot's previous window")
		if err != nil {
			return nil, err
		}
		if w != nil && busier(w, st.last[k.Deployment]) {
			st.last[k.Deployment] = w
		}
	}
	return st, nil
}

// busiestSlot is the slot window with most events (nil: none with any).
func busiestSlot(ws map[string]*processors.WindowAgg) *processors.WindowAgg {
	var best *processors.WindowAgg
	for _, d := range []string{schemas.DeploymentBlue, schemas.DeploymentGreen} {
		if w := ws[d]; w != nil && w.Events > 0 && (best == nil || w.Events > best.Events) {
			best = w
		}
	}
	return best
}

// switchCondition marks the window in which a model's blue/green traffic switched to
// active's slot (info: a mark on the timeline; it resolves once windows pass without one).
func switchCondition(model string, prev, active *processors.WindowAgg, switched bool) detectors.Condition {
	start, end := time.UnixMilli(active.Start).UTC(), time.UnixMilli(active.End).UTC()
	c := detectors.Condition{Kind: schemas.KindCanary, Model: model, Metric: "traffic_switch", Severity: schemas.SeverityInfo,
		WindowStart: start, WindowEnd: end, Breached: switched, Threshold: 0.5, Value: 0}
	if prev != nil {
		c.FiringSummary = fmt.Sprintf("%s switched from %s %s to %s %s at %s UTC (%s had %d requests in the window before; %s has %d in this one)",
			model, prev.Series.Deployment, prev.Series.Version, active.Series.Deployment, active.Series.Version, start.Format("2006-01-02 15:04"),
			prev.Series.Deployment, prev.Events, active.Series.Deployment, active.Events)
		c.Details = map[string]string{"from": prev.Series.Deployment, "from_version": prev.Series.Version, "to": active.Series.Deployment,
			"to_version": active.Series.Version}
	}
	c.ResolvedSummary = fmt.Sprintf("%s's blue/green traffic has stayed on %s %s since the switch", model, active.Series.Deployment, active.Series.Version)
	return c
}

// switchRegression is a post-switch comparison's condition on the new slot: critical,
// firing on the first regressed window, recommending a switch back.
func switchRegression(cmp detectors.CanaryComparison) detectors.Condition {
	start, end := time.UnixMilli(cmp.Start).UTC(), time.UnixMilli(cmp.End).UTC()
	regressed := cmp.Outcome == detectors.CanaryRegression
	c := detectors.Condition{Kind: schemas.KindCanary, Model: cmp.Canary.Model, Version: cmp.Canary.Version, Deployment: cmp.Canary.Deployment,
		Metric: "switch_regression", Severity: schemas.SeverityCritical, FireAfter: 1, WindowStart: start, WindowEnd: end,
		Breached: regressed, Threshold: 1, Details: map[string]string{"verdict": cmp.Outcome.String(), "reason": cmp.Reason,
			"old_slot": cmp.Primary.Deployment, "old_version": cmp.Primary.Version}}
	if regressed {
		c.Value = 1
	}
	c.FiringSummary = fmt.Sprintf("%s %s (%s) regressed against %s %s's last window before the switch; recommend switching back: %s",
		cmp.Canary.Model, cmp.Canary.Version, cmp.Canary.Deployment, cmp.Primary.Deployment, cmp.Primary.Version, cmp.Reason)
	c.ResolvedSummary = fmt.Sprintf("%s %s (%s) is no longer found regressed since the switch: %s",
		cmp.Canary.Model, cmp.Canary.Version, cmp.Canary.Deployment, cmp.Reason)
	return c
}
