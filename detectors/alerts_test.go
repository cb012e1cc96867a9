package detectors

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/schemas"
)

// The alerter's state survives a restart: stopped after any window, its changed states
// restored into a new alerter, the rest of the windows give the alerts an uninterrupted
// run gives — also when the window before the stop is judged once more after it (its
// state was stored, its marker rows were not).
func TestAlerterStateSurvivesRestarts(t *testing.T) {
	c := Condition{Kind: schemas.KindDataDrift, Model: "m", Version: "1", Feature: "amount", Metric: "psi", Severity: schemas.SeverityWarning}
	for _, tc := range []struct {
		fire, resolve int
		breaches      string
	}{{2, 2, "BcBBBccBBcc"}, {3, 1, "BBcBBBcBBBc"}, {1, 3, "BcBccBccc"}} {
		run := func(a *Alerter, i int) string {
			c.Breached = tc.breaches[i] == 'B'
			c.WindowEnd = t0.Add(time.Duration(i+1) * time.Minute)
			switch ev := a.Observe(c, t0); {
			case ev == nil:
				return "."
			case ev.State == schemas.StateFiring:
				return "F"
			default:
				return "R"
			}
		}
		var want strings.Builder
		a := NewAlerter(tc.fire, tc.resolve)
		for i := range tc.breaches {
			want.WriteString(run(a, i))
		}
		for stop := 0; stop < len(tc.breaches); stop++ {
			for _, again := range []bool{false, true} {
				var got strings.Builder
				a := NewAlerter(tc.fire, tc.resolve)
				for i := 0; i <= stop; i++ {
					got.WriteString(run(a, i))
				}
				b := NewAlerter(tc.fire, tc.resolve)
				for _, st := range a.Changes() {
					b.RestoreState(st.Fingerprint, st.AlertState)
				}
				if again {
					if ev := run(b, stop); ev != "." {
						t.Errorf("%s stopped after %d: the window judged again raised %s", tc.breaches, stop, ev)
					}
				}
				for i := stop + 1; i < len(tc.breaches); i++ {
					got.WriteString(run(b, i))
				}
				if got.String() != want.String() {
					t.Errorf("%s fire %d resolve %d, stopped after window %d (judged again: %v): %s, uninterrupted %s",
						tc.breaches, tc.fire, tc.resolve, stop, again, got.String(), want.String())
				}
			}
		}
	}
}

// An out-of-range alert covered by its feature's firing drift alert (Condition.ToldIn) is
// one page, not two: it fires silently and resolves silently; it pages on its own when it
// was firing before the drift alert, and when the values stay out of range after the
// distribution stops drifting. Each window is two letters, drift then out of range: B breached, c clean.
// The result is what each window publishes: d/D drift fires/resolves, o/O out of range
// fires/resolves, . nothing. Every prefix is also stopped, stored and restored.
func TestAlerterToldConditionIsOnePage(t *testing.T) {
	for _, tc := range []struct {
		name, windows, want string
	}{
		{"both at once, both end", "BB BB cc cc", "d . . D"},
		{"both at once, drift ends first, values stay out", "BB BB cB cB cc cc", "d . o D . O"},
		{"out of range first, then drift", "cB BB BB cc cc", "o d . . DO"},
		{"drift first, out of range later: covered by the drift alert", "Bc BB BB cc cc", "d . . . D"},
		{"drift first, out of range later, values stay out", "Bc BB cB cc cc", "d . o D O"},
		{"out of range only", "cB cB cc cc", "o . . O"},
	} {
		run := func(a *Alerter, i int, w string) string {
			end := t0.Add(time.Duration(i+1) * time.Minute)
			d := Condition{Kind: schemas.KindDataDrift, Model: "m", Version: "1", Feature: "age", Metric: "psi",
				Severity: schemas.SeverityCritical, Breached: w[0] == 'B', WindowEnd: end}
			o := Condition{Kind: schemas.KindInputQuality, Model: "m", Version: "1", Feature: "age", Metric: "out_of_range_share",
				Severity: schemas.SeverityWarning, Breached: w[1] == 'B', WindowEnd: end}
			if d.Breached && o.Breached {
				o.ToldIn = d.Fingerprint()
			}
			got := ""
			for _, c := range []Condition{d, o} {
				ev := a.Observe(c, t0)
				switch {
				case ev == nil:
				case ev.State == schemas.StateFiring && c.Kind == schemas.KindDataDrift:
					got += "d"
				case ev.State == schemas.StateFiring:
					got += "o"
				case c.Kind == schemas.KindDataDrift:
					got += "D"
				default:
					got += "O"
				}
			}
			if got == "" {
				return "."
			}
			return got
		}
		windows := strings.Fields(tc.windows)
		var want []string
		a := NewAlerter(1, 2)
		for i, w := range windows {
			want = append(want, run(a, i, w))
		}
		if got := strings.Join(want, " "); got != tc.want {
			t.Errorf("%s: %s published %s, want %s", tc.name, tc.windows, got, tc.want)
		}
		for stop := range windows {
			a := NewAlerter(1, 2)
			var got []string
			for i := 0; i <= stop; i++ {
				got = append(got, run(a, i, windows[i]))
			}
			b := NewAlerter(1, 2)
			for _, st := range a.Changes() {
				b.RestoreState(st.Fingerprint, st.AlertState)
			}
			for i := stop + 1; i < len(windows); i++ {
				got = append(got, run(b, i, windows[i]))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("%s: stopped after window %d: %s, uninterrupted %s", tc.name, stop, strings.Join(got, " "), tc.want)
			}
		}
	}
}

func TestAlerterTransitionAndChanges(t *testing.T) {
	a := NewAlerter(3, 3)
	o := Overdue{Since: t0, Deadline: t0.Add(10 * time.Minute), Until: t0.Add(30 * time.Minute), Expected: 10 * time.Minute}
	if ev := a.Transition(FreshnessRecovered("p", "s", o), t0); ev != nil {
		t.Errorf("resolved what never fired: %+v", ev)
	}
	fire := a.Transition(FreshnessBreach("p", "s", o), t0)
	if fire == nil || fire.State != schemas.StateFiring || !fire.WindowEnd.Equal(o.Deadline) {
		t.Fatalf("breach: %+v", fire)
	}
	if ev := a.Transition(FreshnessBreach("p", "s", o), t0.Add(time.Hour)); ev != nil {
		t.Errorf("fired twice: %+v", ev)
	}
	changes := a.Changes()
	if len(changes) != 1 || !changes[0].Firing || !changes[0].Last.Equal(o.Deadline) || a.Changed() {
		t.Fatalf("changes %+v", changes)
	}
	res := a.Transition(FreshnessRecovered("p", "s", o), t0.Add(time.Hour))
	if res == nil || res.State != schemas.StateResolved || res.Fingerprint != fire.Fingerprint || !res.WindowEnd.Equal(o.Until) {
		t.Fatalf("recovery: %+v", res)
	}
	// The same spell seen again (after a restart) changes nothing.
	b := NewAlerter(3, 3)
	for _, st := range a.Changes() {
		b.RestoreState(st.Fingerprint, st.AlertState)
	}
	if ev := b.Transition(FreshnessBreach("p", "s", o), t0); ev != nil {
		t.Errorf("a spell over before the restart fired again: %+v", ev)
	}
}

// TransitionStage fires and resolves as Transition does, building the condition only
// when the state changes; FreshnessFingerprint is the conditions' fingerprint.
func TestTransitionStageBuildsOnlyOnChange(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	o := Overdue{Since: at, Deadline: at.Add(time.Hour), Until: at.Add(2 * time.Hour), Expected: time.Hour}
	fp := FreshnessFingerprint("etl", "load")
	if b, r := FreshnessBreach("etl", "load", o).Fingerprint(), FreshnessRecovered("etl", "load", o).Fingerprint(); b != fp || r != fp {
		t.Fatalf("fingerprints %s, %s, want %s", b, r, fp)
	}
	lazy, eager := NewAlerter(1, 1), NewAlerter(1, 1)
	for i, c := range []struct {
		breached bool
		built    bool
		state    string
	}{{true, true, schemas.StateFiring}, {true, false, ""}, {false, true, schemas.StateResolved}, {false, false, ""}, {true, true, schemas.StateFiring}} {
		o := o
		o.Deadline, o.Until = o.Deadline.Add(time.Duration(i)*3*time.Hour), o.Until.Add(time.Duration(i)*3*time.Hour)
		cond := FreshnessBreach("etl", "load", o)
		if !c.breached {
			cond = FreshnessRecovered("etl", "load", o)
		}
		built := false
		got := lazy.TransitionStage("etl", "load", fp, c.breached, func() Condition { built = true; return cond }, at)
		want := eager.Transition(cond, at)
		if built != c.built || (got == nil) != (want == nil) || (got != nil && (*got).State != c.state) {
			t.Fatalf("step %d: built %v, alert %v; want built %v, alert %v", i, built, got, c.built, want)
		}
		if got != nil && fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
			t.Fatalf("step %d: %+v, Transition %+v", i, *got, *want)
		}
	}
}
