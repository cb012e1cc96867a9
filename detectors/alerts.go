package detectors

import (
	"crypto/sha256"
	"encoding/hex"
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
}

// Fingerprint identifies the condition across windows: the same feature of the same
// model version in the same slot, judged by the same metric.
func (c Condition) Fingerprint() string {
	h := sha256.Sum256([]byte(strings.Join([]string{c.Kind, c.Model, c.Version, c.Deployment, c.Feature, c.Pipeline, c.Stage, c.Metric}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// AlertState is what the alerter remembers of one fingerprint.
type AlertState struct {
	Firing    bool
	Severity  string
	Bad, Good int // consecutive breached / clean windows
}

// Alerter turns judged conditions into firing and resolved alerts: a fingerprint fires
// after FireAfter consecutive breached windows and resolves after ResolveAfter
// consecutive clean ones; it never fires twice without resolving in between.
type Alerter struct {
	FireAfter, ResolveAfter int
	states                  map[string]*AlertState
}

// NewAlerter returns an alerter (fireAfter default 1, resolveAfter default 2).
func NewAlerter(fireAfter, resolveAfter int) *Alerter {
	if fireAfter < 1 {
		fireAfter = 1
	}
	if resolveAfter < 1 {
		resolveAfter = 2
	}
	return &Alerter{FireAfter: fireAfter, ResolveAfter: resolveAfter, states: map[string]*AlertState{}}
}

// Restore sets a fingerprint's state after a restart (from the stored alerts).
func (a *Alerter) Restore(fingerprint string, firing bool, severity string) {
	a.states[fingerprint] = &AlertState{Firing: firing, Severity: severity}
}

// State returns a copy of a fingerprint's state.
func (a *Alerter) State(fingerprint string) AlertState {
	if s, ok := a.states[fingerprint]; ok {
		return *s
	}
	return AlertState{}
}

// Observe feeds one judged condition; it returns the alert to publish, if any. now is
// the emission time.
func (a *Alerter) Observe(c Condition, now time.Time) *schemas.AlertEvent {
	fp := c.Fingerprint()
	s, ok := a.states[fp]
	if !ok {
		s = &AlertState{}
		a.states[fp] = s
	}
	if c.Breached {
		s.Bad++
		s.Good = 0
		if s.Firing || s.Bad < a.FireAfter {
			return nil
		}
		s.Firing, s.Severity = true, c.Severity
		return alertEvent(c, fp, schemas.StateFiring, c.Severity, c.FiringSummary, now)
	}
	s.Good++
	s.Bad = 0
	if !s.Firing || s.Good < a.ResolveAfter {
		return nil
	}
	s.Firing = false
	return alertEvent(c, fp, schemas.StateResolved, s.Severity, c.ResolvedSummary, now)
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
