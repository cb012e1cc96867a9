package pipeline_test

// Adversarial review scenarios (h-review2): traffic the authors did not write, read by
// the real pipeline in memory with the DEFAULT settings (only the window size changed
// where the scenario says so). TestReview... tests that fail on main document a defect;
// the others document a verified behaviour.

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/schemas"
)

// A model that serves only during working hours (09:00–17:00 UTC, 5 events/s, nights
// empty), the same every day for 4 days: its nightly silence is its normal, and once a
// day of history exists (the same hour of the previous days) it must not page every
// evening at 17:00.
// Weekly pattern: 2 events/s on weekdays, 0.2/s at weekends (a B2B model), for 10 days
// starting on a Monday. The weekend is not an outage: once the model has been seen
// through one weekend, the second must not page. (Same-hour history looks only at the
// previous days, whose median is weekday traffic.)
// Shapes that are stationary in their own way: a slow ramp up from 0.2 to 10 events/s
// over 3 hours (a launch), a diurnal cycle with 1-minute windows, and a model that starts
// at 1 event/min and stays there. None is an incident.
// sparseModel is a producer that leaves out parts of the contract at random: each of
// latency_ms, status, deployment, model_version, request_id and the features object is
// omitted with probability omit, and each feature inside it too.
// Producers that omit latency_ms, status, deployment, model_version, request_id and
// features some of the time (independently, 20% each), stationary for 6 hours at
// 5 events/s: nothing fires, nothing is dead-lettered.
// Real changes must fire, at low and high volume, with the default settings: traffic
// falling to a tenth, a model stopping, and a shift of a numeric feature by one standard
// deviation (an effect that matters).
// fiveThousandUsers is a model whose feature user takes 5,000 equally likely values (a
// user id, say); from flood on (if set) half the traffic carries one new value never
// seen before (a bot, a broken client).
func fiveThousandUsers(end, flood time.Time) *revModel {
	m := newRevModel(700, "users", "1", "", revStart, end, 10, constRate(10))
	m.body = func(m *revModel, ts time.Time) string {
		r := m.rng
		user := fmt.Sprintf("u-%d", r.IntN(5000))
		if !flood.IsZero() && !ts.Before(flood) && r.Float64() < 0.5 {
			user = "bot-1"
		}
		return fmt.Sprintf(`"features":{"user":%q,"amount":%.2f},"prediction":%.4f,"latency_ms":%.1f,"status":"ok"`,
			user, 100+15*r.NormFloat64(), r.Float64(), 20+8*r.ExpFloat64())
	}
	return m
}

// The same feature, flooded from 03:00 by one new value on half the traffic: flagged
// within 15 minutes (verified: critical data_drift on user in the first window).
func TestReviewNewValueFloodOnFiveThousandCategoriesFires(t *testing.T) {
	end := revStart.Add(3*time.Hour + 30*time.Minute)
	flood := revStart.Add(3 * time.Hour)
	alerts, _, _ := revRun(t, replay.Backlog, revStart, end, nil, fiveThousandUsers(end, flood))
	var found bool
	for _, x := range replay.Transitions(alerts) {
		if x.State == schemas.StateFiring && x.Feature == "user" && !x.WindowEnd.Before(flood) && x.WindowEnd.Before(flood.Add(15*time.Minute)) {
			found = true
		}
	}
	if !found {
		t.Errorf("half the traffic on one new value of user was not flagged within 15 minutes (%s)%s", countKinds(alerts), summaries(alerts, 4))
	}
}

// The same scenarios read live and from a backlog give the same alerts: the working-
// hours model (empty nights) and a 1-minute-window model with a drop.
func TestReviewLiveEqualsBacklogOnEmptyNightsAndOneMinuteWindows(t *testing.T) {
	end := revStart.Add(34 * time.Hour)
	office := func(t time.Time) float64 {
		if h := t.Hour(); h >= 9 && h < 17 {
			return 2
		}
		return 0
	}
	drop := func(t time.Time) float64 {
		if h := t.Sub(revStart).Hours(); h >= 20 && h < 21 {
			return 0.3
		}
		return 3
	}
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		alerts, _, _ := revRun(t, pace, revStart, end, windowSize(time.Minute),
			newRevModel(900, "office", "1", "", revStart, end, 2, office),
			newRevModel(901, "drop", "1", "", revStart, end, 3, drop))
		got[i] = alerts
		t.Logf("%s: %s", paceName(pace), countKinds(alerts))
	}
	if d := diffTransitions(got[0], got[1], end.Add(-15*time.Minute)); len(d) > 0 {
		t.Errorf("live and backlog differ in %d transitions: %v", len(d), d[:min(6, len(d))])
	}
}

// randomBurstTimes is a model that sends a burst of 200 events (over 20 s) at random
// moments: exponential gaps averaging 10 minutes, so about half its 5-minute windows are
// empty, fixed by seed.
func randomBurstTimes(seed uint64, start, end time.Time) []time.Time {
	rng := newRevModel(seed, "x", "1", "", start, end, 1, constRate(1)).rng
	var out []time.Time
	for at := start; at.Before(end); at = at.Add(time.Duration(rng.ExpFloat64() * float64(10*time.Minute))) {
		out = append(out, burstTimes(at, at.Add(time.Second), time.Hour, 20*time.Second, 200)...)
	}
	return out
}

// A batch every 10 minutes (every other 5-minute window empty), stationary for 12 hours:
// quiet (verified).
func TestReviewBatchEveryTenMinutesIsQuiet(t *testing.T) {
	end := revStart.Add(12 * time.Hour)
	m := newRevModel(1000, "bursty", "1", "", revStart, end, 8, constRate(8))
	m.times = burstTimes(revStart, end, 10*time.Minute, 30*time.Second, 600)
	m.advance()
	alerts, store, _ := revRun(t, replay.Backlog, revStart, end, nil, m)
	if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
	}
}

// Bursts at random moments (randomBurstTimes), stationary, 12 hours, one model, read live
// and from a backlog. Live, every empty window between bursts is judged (empty, on volume
// only), the series' recent windows hold empty ones, so an empty window says nothing:
// quiet. From the backlog, the empty windows of most gaps are never judged (holes in the
// series' windows: 123 judged of 156), so its recent windows look like steady traffic of
// 200 per window, and the gaps that are filled page "stopped sending: 0 events where 200
// were expected" (critical). The rows and alerts depend on how the stream was read.
// Cause (traced with a print in fillGaps, since removed): the backlog's first flush holds
// 00:00–04:35 (24 windows) of a series never judged before; fillGaps fills only series with
// a judged window from an earlier flush (r.j.series[s].hasEnd), so no gap of that flush is
// filled. Any series first seen in a backlog (a first start from the earliest offset, a
// model launched while driftd was down) gets the same holes.
func TestReviewRandomBurstsLiveEqualsBacklog(t *testing.T) {
	end := revStart.Add(12 * time.Hour)
	var got [2][]*schemas.AlertEvent
	var judged [2]int
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		m := newRevModel(1001, "bursty", "1", "", revStart, end, 8, constRate(8))
		m.times = randomBurstTimes(78, revStart, end)
		m.advance()
		alerts, _, src := revRun(t, pace, revStart, end, nil, m)
		got[i], judged[i] = alerts, len(src.verdicts)
		if f := pages(alerts, end.Add(-time.Hour)); len(f) > 0 {
			t.Errorf("%s: %d pages on a stationary bursty model: %v", paceName(pace), len(f), f[:min(3, len(f))])
		}
	}
	if judged[0] != judged[1] {
		t.Errorf("%d windows judged live, %d from the backlog", judged[0], judged[1])
	}
	if d := diffTransitions(got[0], got[1], end.Add(-time.Hour)); len(d) > 0 {
		t.Errorf("live and backlog differ in %d transitions: %v", len(d), d[:min(4, len(d))])
	}
}

// Observed, not asserted as a defect: on/off traffic (8/s, or 0.8/s, switching at random
// every 20 minutes on average) raises volume warnings "11% of the expected" whenever an
// off phase follows more than an hour of on: the last hour's fewest-events guard then has
// no off window in it. A real 90% fall, so left out of the quiet tests.

// A launch: a model that starts at 1 event/min and grows steadily to 5 events/s over
// 3 hours, then stays there; nothing else changes. Not an incident.
func TestReviewLaunchFromOneEventPerMinuteIsQuiet(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	rate := func(t time.Time) float64 {
		f := min(t.Sub(revStart).Hours()/3, 1)
		return 1.0/60 + (5-1.0/60)*f
	}
	alerts, store, _ := revRun(t, replay.Backlog, revStart, end, nil, newRevModel(1100, "launch", "1", "", revStart, end, 5, rate))
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
	}
}

// pages returns the firing transitions of critical alerts (a page) within window end to.
// volumeFirings lists the volume alerts' firing transitions of model, as "Mon 15:04".
// Stationary Poisson traffic at several volumes and window sizes must not page, nor
// raise any alert: a page is a critical alert firing.
// A model at one event every 30 s (10 per 5-minute window) or one a minute (5 per
// window) that stops sending altogether for 8 hours, less than a day after it started,
// must be flagged: a silent model for hours is an incident at any rate. Main's runs of low
// windows (volumeRun) fire for this on the same-hour basis (TestVolumeRun), but before a
// day of history the basis is the recent windows, and recentVolume.expectation gives no
// expectation once an empty window is among them: the stop's first empty window is not
// breached on its own, so it is learned (observe with low=false), the next window has no
// expectation, and the run is reset every window. Nothing fires, however long it lasts.
func TestReviewLowRateModelThatStopsIsFlagged(t *testing.T) {
	for i, perMin := range []float64{1, 2} {
		t.Run(fmt.Sprintf("%g per minute", perMin), func(t *testing.T) {
			end := revStart.Add(14 * time.Hour)
			stop := revStart.Add(6 * time.Hour)
			rate := perMin / 60
			alerts, _, _ := revRun(t, replay.Live, revStart, end, nil,
				newRevModel(uint64(200+i), "rare", "1", "", revStart, stop, rate, constRate(rate)),
				// another model keeps the stream (and its event-time clock) going
				newRevModel(uint64(210+i), "steady", "1", "", revStart, end, 2, constRate(2)))
			t.Logf("all: %v%s", firingAll(alerts, end.Add(time.Hour)), summaries(alerts, 3))
			if f := volumeFirings(alerts, "rare"); len(f) == 0 {
				t.Errorf("a model at %g events/min silent from 06:00 to 14:00 raised no volume alert (%s)", perMin, countKinds(alerts))
			}
			if f := firing(alerts, stop); len(f) > 0 {
				t.Errorf("alerts before the stop: %v", f)
			}
		})
	}
}

// A feature that a producer starts sending an hour in (after the first-windows reference
// was built), stationary afterwards: not an alert.
// A drop to a tenth that starts before the series has its recent windows (the first hour
// with 5-minute windows; the first 6 hours with 1-hour windows) is judged against the
// reference only, which flags a near-stop (5%), so it is not flagged; and the low windows
// are then learned as the series' recent volume (they were not judged low), so the drop
// becomes the normal and is never flagged, however long it lasts. A model broken by its
// own deploy in its first hour is exactly this.
func TestReviewDropBeforeRecentHistoryIsFlagged(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		dropAt time.Duration
	}{
		{"5m windows, drop at 00:40", 5 * time.Minute, 40 * time.Minute},
		{"1h windows, drop at 03:00", time.Hour, 3 * time.Hour},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := revStart.Add(c.dropAt + 10*c.window + time.Hour)
			at := revStart.Add(c.dropAt)
			rate := func(t time.Time) float64 {
				if !t.Before(at) {
					return 0.5
				}
				return 5
			}
			alerts, _, src := revRun(t, replay.Backlog, revStart, end, windowSize(c.window),
				newRevModel(uint64(800+i), "early", "1", "", revStart, end, 5, rate),
				newRevModel(uint64(810+i), "steady", "1", "", revStart, end, 2, constRate(2)))
			// The harness stops every series at end: what fires there is not the drop.
			var drop []string
			for _, x := range replay.Transitions(alerts) {
				if x.Kind == schemas.KindVolume && x.Model == "early" && x.State == schemas.StateFiring && x.WindowStart.Before(end) {
					drop = append(drop, x.String())
				}
			}
			if len(drop) == 0 {
				bw := breachedPerWindow(src.verdicts, "early")
				t.Errorf("traffic at a tenth from %s to %s was never flagged (%s); windows: %v", at.Format("15:04"), end.Format("15:04"), countKinds(alerts), bw[:min(len(bw), 16)])
			}
		})
	}
}
