package detectors

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/schemas"
)

// Condition is one judged condition of one window: breached or clean.
type Condition struct {
	Kind, Model, Version, Deployment, Feature, Pipeline, Stage string
	Metric                                                     string
	Value, Threshold                                           float64
	Breached                                                   bool
	Severity                                                   string
	WindowStart, WindowEnd                                     time.Time
	FiringSummary, ResolvedSummary                             string
	Details                                                    map[string]string
	// FireAfter and ResolveAfter, when above 0, are how many consecutive breached (clean)
	// windows fire (resolve) this condition instead of the alerter's.
	FireAfter, ResolveAfter int
	// ToldIn is the fingerprint of a condition breached in the same window whose alert
	// covers this one (foldOutOfRange: the feature's drift alert, whose page says how many
	// values left the range). While that alert fires, this one fires silently
	// (AlertState.Told): one page per cause.
	ToldIn string
}

// Fingerprint identifies the condition across windows: the same feature of the same
// model version in the same slot, judged by the same metric.
func (c Condition) Fingerprint() string {
	h := sha256.Sum256([]byte(strings.Join([]string{c.Kind, c.Model, c.Version, c.Deployment, c.Feature, c.Pipeline, c.Stage, c.Metric}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// AlertState is what the alerter remembers of one fingerprint. It is persisted with the
// windows that changed it (storage.Batch.AlertStates) and restored at start, so that a
// restart between two breached windows fires exactly as an uninterrupted run.
type AlertState struct {
	Firing    bool
	Severity  string
	Bad, Good int // consecutive breached / clean windows
	// Last is the end of the last window observed (zero if none): a window ending no
	// later is one observed before (judged again after a restart that lost its marker
	// rows but not this state) and changes nothing.
	Last time.Time
	// Told says the alert fired silently, covered by another firing alert
	// (Condition.ToldIn): it resolves silently too, and is published after all if it is
	// still breached in a window where the other condition is not.
	Told bool
}

// Alerter turns judged conditions into firing and resolved alerts: a fingerprint fires
// after FireAfter consecutive breached windows and resolves after ResolveAfter
// consecutive clean ones; it never fires twice without resolving in between.
type Alerter struct {
	FireAfter, ResolveAfter int
	states                  map[string]*AlertState
	changed                 map[string]bool
	// bySeries lists the fingerprints observed per series (model, version, deployment),
	// so that a series forgotten as idle takes its states with it (Forget).
	bySeries map[[3]string]map[string]bool
}

// NewAlerter returns an alerter (fireAfter default 1, resolveAfter default 2).
func NewAlerter(fireAfter, resolveAfter int) *Alerter {
	if fireAfter < 1 {
		fireAfter = 1
	}
	if resolveAfter < 1 {
		resolveAfter = 2
	}
	return &Alerter{FireAfter: fireAfter, ResolveAfter: resolveAfter, states: map[string]*AlertState{}, changed: map[string]bool{},
		bySeries: map[[3]string]map[string]bool{}}
}

// Restore sets a fingerprint's state after a restart (from the stored alerts).
func (a *Alerter) Restore(fingerprint string, firing bool, severity string) {
	a.states[fingerprint] = &AlertState{Firing: firing, Severity: severity}
}

// RestoreState sets a fingerprint's whole state after a restart (from the stored states).
func (a *Alerter) RestoreState(fingerprint string, s AlertState) {
	a.states[fingerprint] = &s
}

// State returns a copy of a fingerprint's state.
func (a *Alerter) State(fingerprint string) AlertState {
	if s, ok := a.states[fingerprint]; ok {
		return *s
	}
	return AlertState{}
}

// FingerprintState is one fingerprint's state, as persisted.
type FingerprintState struct {
	Fingerprint string
	AlertState
}

// Changes returns the states changed since the last call, by fingerprint, and forgets
// that they changed.
func (a *Alerter) Changes() []FingerprintState {
	out := make([]FingerprintState, 0, len(a.changed))
	for fp := range a.changed {
		out = append(out, FingerprintState{Fingerprint: fp, AlertState: *a.states[fp]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	clear(a.changed)
	return out
}

// state returns fp's state for an observation of a window ending at end, or nil when that
// window was observed already.
func (a *Alerter) state(fp string, end time.Time) *AlertState {
	s, ok := a.states[fp]
	if !ok {
		s = &AlertState{}
		a.states[fp] = s
	}
	if !end.IsZero() {
		if !s.Last.IsZero() && !end.After(s.Last) {
			return nil
		}
		s.Last = end
	}
	a.changed[fp] = true
	return s
}

// Observe feeds one judged condition; it returns the alert to publish, if any. now is
// the emission time.
func (a *Alerter) Observe(c Condition, now time.Time) *schemas.AlertEvent {
	fp := c.Fingerprint()
	a.index(c, fp)
	s := a.state(fp, c.WindowEnd)
	if s == nil {
		return nil
	}
	if c.Breached {
		s.Bad++
		s.Good = 0
		fireAfter := a.FireAfter
		if c.FireAfter > 0 {
			fireAfter = c.FireAfter
		}
		if s.Firing {
			if s.Told && c.ToldIn == "" {
				// Still breached where the alert that told it is not: its own page now.
				s.Told, s.Severity = false, c.Severity
				return alertEvent(c, fp, schemas.StateFiring, c.Severity, c.FiringSummary, now)
			}
			return nil
		}
		if s.Bad < fireAfter {
			return nil
		}
		s.Firing, s.Severity = true, c.Severity
		if c.ToldIn != "" && a.State(c.ToldIn).Firing {
			s.Told = true
			return nil
		}
		return alertEvent(c, fp, schemas.StateFiring, c.Severity, c.FiringSummary, now)
	}
	s.Good++
	s.Bad = 0
	resolveAfter := a.ResolveAfter
	if c.ResolveAfter > 0 {
		resolveAfter = c.ResolveAfter
	}
	if !s.Firing || s.Good < resolveAfter {
		return nil
	}
	s.Firing = false
	if s.Told {
		s.Told = false
		return nil // never published: nothing to resolve
	}
	return alertEvent(c, fp, schemas.StateResolved, s.Severity, c.ResolvedSummary, now)
}

// Forget drops the states of a series' conditions that are not firing (the series fell
// idle and is no longer tracked). A firing one is kept: it resolves when the series
// comes back and is judged clean.
func (a *Alerter) Forget(model, version, deployment string) {
	a.forget([3]string{model, version, deployment})
}

// ForgetStage is Forget for a pipeline stage.
func (a *Alerter) ForgetStage(pipeline, stage string) {
	a.forget([3]string{pipeline, stage, stageSeries})
}

// stageSeries stands in the deployment slot of a stage's series key: no deployment slot
// contains a NUL byte, so a stage never shares a key with a model.
const stageSeries = "\x00stage"

// Len is how many fingerprints the alerter keeps a state of.
func (a *Alerter) Len() int { return len(a.states) }

// index remembers which series a fingerprint belongs to.
func (a *Alerter) index(c Condition, fp string) {
	if k, ok := seriesOf(c); ok {
		a.indexKey(k, fp)
	}
}

func (a *Alerter) indexKey(k [3]string, fp string) {
	if a.bySeries[k] == nil {
		a.bySeries[k] = map[string]bool{}
	}
	a.bySeries[k][fp] = true
}

func seriesOf(c Condition) ([3]string, bool) {
	switch {
	case c.Model != "":
		return [3]string{c.Model, c.Version, c.Deployment}, true
	case c.Pipeline != "":
		return [3]string{c.Pipeline, c.Stage, stageSeries}, true
	}
	return [3]string{}, false
}

func (a *Alerter) forget(k [3]string) {
	for fp := range a.bySeries[k] {
		if s, ok := a.states[fp]; ok && !s.Firing {
			delete(a.states, fp)
			delete(a.changed, fp)
		}
	}
	delete(a.bySeries, k)
}

// Transition fires or resolves at once, without counting windows: for conditions judged
// at a moment rather than over windows (freshness), whose condition already waited its
// expected interval. It returns nil when the fingerprint is already in that state.
func (a *Alerter) Transition(c Condition, now time.Time) *schemas.AlertEvent {
	fp := c.Fingerprint()
	a.index(c, fp)
	if a.State(fp).Firing == c.Breached {
		return nil
	}
	s := a.state(fp, c.WindowEnd)
	if s == nil {
		return nil
	}
	if c.Breached {
		s.Bad, s.Good, s.Firing, s.Severity = 1, 0, true, c.Severity
		return alertEvent(c, fp, schemas.StateFiring, c.Severity, c.FiringSummary, now)
	}
	s.Bad, s.Good, s.Firing = 0, 1, false
	return alertEvent(c, fp, schemas.StateResolved, s.Severity, c.ResolvedSummary, now)
}

// TransitionStage is Transition for a condition of a pipeline stage whose fingerprint fp
// is known, built (by build) only when the fingerprint is not already in the state
// breached says: freshness is judged again and again, and its summaries and details are
// formatted only for a condition that may change the state.
func (a *Alerter) TransitionStage(pipeline, stage, fp string, breached bool, build func() Condition, now time.Time) *schemas.AlertEvent {
	a.indexKey([3]string{pipeline, stage, stageSeries}, fp)
	if a.State(fp).Firing == breached {
		return nil
	}
	return a.Transition(build(), now)
}

func alertEvent(c Condition, fp, state, severity, summary string, now time.Time) *schemas.AlertEvent {
	// The id is derived, not random: re-emitting the same transition (after a restart)
	// yields the same id, so stores and consumers can deduplicate.
	h := sha256.Sum256([]byte(fp + "\x00" + state + "\x00" + strconv.FormatInt(c.WindowEnd.UnixMilli(), 10)))
	if severity == "" {
		severity = schemas.SeverityWarning
	}
	return &schemas.AlertEvent{
		AlertID: hex.EncodeToString(h[:16]), Fingerprint: fp, State: state, Severity: severity, Kind: c.Kind,
		Model: c.Model, ModelVersion: c.Version, Deployment: c.Deployment, Feature: c.Feature,
		Pipeline: c.Pipeline, Stage: c.Stage, Metric: c.Metric, Value: c.Value, Threshold: c.Threshold,
		WindowStart: c.WindowStart, WindowEnd: c.WindowEnd, EmittedAt: now.UTC(), Summary: summary, Details: c.Details,
	}
}

// Changed reports whether a state changed since the last Changes.
func (a *Alerter) Changed() bool { return len(a.changed) > 0 }
