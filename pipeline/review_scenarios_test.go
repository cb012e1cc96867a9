package pipeline_test

// Adversarial review scenarios: traffic the authors did not write, read by the real
// pipeline in memory with the DEFAULT settings (only the window size changed where the
// scenario says so). The review's one scenario that still fails (a warning from PSI over
// 5,000 equally likely categories) is open work, kept on the review branch, not here.

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/schemas"
)

// pages returns the firing transitions of critical alerts (a page) within window end to.
func pages(alerts []*schemas.AlertEvent, to time.Time) []string {
	var out []string
	for _, a := range alerts {
		if a.State == schemas.StateFiring && a.Severity == schemas.SeverityCritical && !a.WindowEnd.After(to) {
			out = append(out, fmt.Sprintf("%s %s %s %s–%s: %s", a.Kind, a.Model, a.Feature, a.WindowStart.UTC().Format("Mon 15:04"), a.WindowEnd.UTC().Format("15:04"), a.Summary))
		}
	}
	return out
}

// volumeFirings lists the volume alerts' firing transitions of model, as "Mon 15:04".
func volumeFirings(alerts []*schemas.AlertEvent, model string) []string {
	var out []string
	for _, x := range replay.Transitions(alerts) {
		if x.Kind == schemas.KindVolume && x.Model == model && x.State == schemas.StateFiring {
			out = append(out, x.WindowStart.Format("Mon 15:04"))
		}
	}
	return out
}

func windowSize(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.Windows.Size = config.Duration(d) }
}

// Stationary Poisson traffic at several volumes and window sizes must not page, nor
// raise any alert: a page is a critical alert firing.
func TestReviewStationaryVolumesAndWindowSizesAreQuiet(t *testing.T) {
	cases := []struct {
		name   string
		rate   float64
		window time.Duration
		span   time.Duration
	}{
		{"1/s 1m", 1, time.Minute, 8 * time.Hour},
		{"1/s 5m", 1, 5 * time.Minute, 8 * time.Hour},
		{"1/s 1h", 1, time.Hour, 30 * time.Hour},
		{"10/s 1m", 10, time.Minute, 4 * time.Hour},
		{"100/s 5m", 100, 5 * time.Minute, 90 * time.Minute},
		{"1000/s 1m", 1000, time.Minute, 12 * time.Minute},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := revStart.Add(c.span)
			alerts, store, _ := revRun(t, replay.Backlog, revStart, end, windowSize(c.window),
				newRevModel(uint64(100+i), "steady", "1", "", revStart, end, c.rate, constRate(c.rate)))
			if f := firing(alerts, end.Add(-2*c.window)); len(f) > 0 {
				t.Errorf("%d alerts in %d windows of a stationary stream (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
			}
		})
	}
}

// A model that serves only during working hours (09:00–17:00 UTC, 5 events/s, nights
// empty), the same every day for 4 days: its nightly silence is its normal, and once a
// day of history exists (the same hour of the previous days) it must not page every
// evening at 17:00.
func TestReviewWorkingHoursModelDoesNotPageEveryEvening(t *testing.T) {
	end := revStart.Add(4 * 24 * time.Hour)
	rate := func(t time.Time) float64 {
		if h := t.Hour(); h >= 9 && h < 17 {
			return 5
		}
		return 0
	}
	alerts, _, _ := revRun(t, replay.Backlog, revStart, end, nil, newRevModel(300, "office", "1", "", revStart, end, 5, rate))
	// The first evening is forgiven: there is no history yet to say nights are empty.
	after := revStart.Add(33 * time.Hour)
	var later []string
	for _, p := range pages(alerts, end.Add(-time.Hour)) {
		later = append(later, p)
	}
	var afterFirstDay []string
	for _, x := range replay.Transitions(alerts) {
		if x.State == schemas.StateFiring && x.WindowStart.After(after) {
			afterFirstDay = append(afterFirstDay, x.String())
		}
	}
	t.Logf("volume firings: %v", volumeFirings(alerts, "office"))
	if len(afterFirstDay) > 0 {
		t.Errorf("%d alerts after the first day for a model whose nights are always empty: %v (all pages: %d)", len(afterFirstDay), afterFirstDay[:min(6, len(afterFirstDay))], len(later))
	}
}

// Weekly pattern: 2 events/s on weekdays, 0.2/s at weekends (a B2B model), for 10 days
// starting on a Monday. The weekend is not an outage: once the model has been seen
// through one weekend, the second must not page. (Same-hour history looks only at the
// previous days, whose median is weekday traffic.)
func TestReviewSecondWeekendIsNotAnOutage(t *testing.T) {
	start := revStart // 2026-11-02 is a Monday
	end := start.Add(13 * 24 * time.Hour)
	rate := func(t time.Time) float64 {
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			return 0.2
		}
		return 2
	}
	alerts, _, _ := revRun(t, replay.Backlog, start, end, nil, newRevModel(310, "b2b", "1", "", start, end, 2, rate))
	secondWeekend := start.Add(12 * 24 * time.Hour) // Saturday 14 Nov
	var second []string
	for _, x := range replay.Transitions(alerts) {
		// Windows from end on are empty because the stream ends there: that is a stop.
		if x.State == schemas.StateFiring && !x.WindowStart.Before(secondWeekend) && x.WindowStart.Before(end) {
			second = append(second, x.String())
		}
	}
	t.Logf("volume firings: %v", volumeFirings(alerts, "b2b"))
	if len(second) > 0 {
		t.Errorf("%d alerts on the second weekend of a weekly pattern: %v", len(second), second[:min(6, len(second))])
	}
}

// Shapes that are stationary in their own way: a slow ramp up from 0.2 to 10 events/s
// over 3 hours (a launch), a diurnal cycle with 1-minute windows, and a model that starts
// at 1 event/min and stays there. None is an incident.
func TestReviewRampDiurnalAndTrickleAreQuiet(t *testing.T) {
	cases := []struct {
		name    string
		window  time.Duration
		span    time.Duration
		maxRate float64
		rate    func(time.Time) float64
	}{
		{"ramp up over 3h", 5 * time.Minute, 6 * time.Hour, 10, func(t time.Time) float64 {
			return 0.2 + 9.8*min(t.Sub(revStart).Hours()/3, 1)
		}},
		{"diurnal 1m windows", time.Minute, 30 * time.Hour, 4, func(t time.Time) float64 {
			return 2 * (1 + 0.9*math.Cos(2*math.Pi*t.Sub(revStart).Hours()/24))
		}},
		{"1 event/min", 5 * time.Minute, 30 * time.Hour, 1.0 / 60, constRate(1.0 / 60)},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := revStart.Add(c.span)
			alerts, store, _ := revRun(t, replay.Backlog, revStart, end, windowSize(c.window),
				newRevModel(uint64(400+i), "shape", "1", "", revStart, end, c.maxRate, c.rate))
			if f := firing(alerts, end.Add(-2*c.window)); len(f) > 0 {
				t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
			}
		})
	}
}

// sparseModel is a producer that leaves out parts of the contract at random: each of
// latency_ms, status, deployment, model_version, request_id and the features object is
// omitted with probability omit, and each feature inside it too.
type sparseModel struct {
	*revModel
	omit float64
}

func (m *sparseModel) next() revRec {
	at, r := m.at, m.rng
	m.n++
	drop := func() bool { return r.Float64() < m.omit }
	var f []string
	f = append(f, fmt.Sprintf(`"event_id":"%s-%d"`, m.name, m.n), fmt.Sprintf(`"model":%q`, m.name), fmt.Sprintf(`"timestamp":%d`, at.UnixMilli()))
	if !drop() {
		f = append(f, fmt.Sprintf(`"request_id":"r-%d"`, m.n))
	}
	if !drop() {
		f = append(f, fmt.Sprintf(`"model_version":%q`, m.version))
	}
	if !drop() {
		f = append(f, fmt.Sprintf(`"deployment":%q`, m.deployment))
	}
	if !drop() {
		f = append(f, fmt.Sprintf(`"latency_ms":%.1f`, 20+8*r.ExpFloat64()))
	}
	if !drop() {
		f = append(f, `"status":"ok"`)
	}
	amount := 100 + 15*r.NormFloat64()
	if !drop() {
		var feats []string
		if !drop() {
			feats = append(feats, fmt.Sprintf(`"amount":%.2f`, amount))
		}
		if !drop() {
			feats = append(feats, fmt.Sprintf(`"country":%q`, []string{"DE", "FR", "US"}[r.IntN(3)]))
		}
		f = append(f, `"features":{`+strings.Join(feats, ",")+`}`)
	}
	f = append(f, fmt.Sprintf(`"prediction":%.4f`, 1/(1+math.Exp(-(amount-100)/15))))
	v := "{" + strings.Join(f, ",") + "}"
	m.advance()
	return revRec{at: at, topic: replay.PredictionTopic, key: m.name, value: []byte(v)}
}

// Producers that omit latency_ms, status, deployment, model_version, request_id and
// features some of the time (independently, 20% each), stationary for 6 hours at
// 5 events/s: nothing fires, nothing is dead-lettered.
func TestReviewPartialContractSometimesIsQuiet(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	m := &sparseModel{revModel: newRevModel(500, "sparse", "1", "primary", revStart, end, 5, constRate(5)), omit: 0.2}
	alerts, store, src := revRun(t, replay.Backlog, revStart, end, nil, m)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 6))
	}
	if src.stats.DeadLettered > 0 {
		t.Errorf("%d records dead-lettered", src.stats.DeadLettered)
	}
}

// Real changes must fire, at low and high volume, with the default settings: traffic
// falling to a tenth, a model stopping, and a shift of a numeric feature by one standard
// deviation (an effect that matters).
func TestReviewRealChangesFire(t *testing.T) {
	const changeAt = 4 * time.Hour
	type tc struct {
		name    string
		rate    float64
		window  time.Duration
		change  string // "drop", "stop", "shift"
		kind    string
		feature string
	}
	cases := []tc{
		{"1/s 1m drop to 10%", 1, time.Minute, "drop", schemas.KindVolume, ""},
		{"1/s 5m stop", 1, 5 * time.Minute, "stop", schemas.KindVolume, ""},
		{"1/s 5m shift", 1, 5 * time.Minute, "shift", schemas.KindDataDrift, "amount"},
		{"1/s 1h drop to 10%", 1, time.Hour, "drop", schemas.KindVolume, ""},
		{"50/s 5m shift", 50, 5 * time.Minute, "shift", schemas.KindDataDrift, "amount"},
		{"50/s 5m drop to 10%", 50, 5 * time.Minute, "drop", schemas.KindVolume, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := revStart.Add(changeAt + 90*time.Minute)
			if c.window == time.Hour {
				end = revStart.Add(changeAt + 3*time.Hour)
			}
			at := revStart.Add(changeAt)
			rate := func(t time.Time) float64 {
				if !t.Before(at) && c.change == "drop" {
					return c.rate / 10
				}
				if !t.Before(at) && c.change == "stop" {
					return 0
				}
				return c.rate
			}
			m := newRevModel(uint64(600+i), "changing", "1", "", revStart, end, c.rate, rate)
			m.body = func(m *revModel, ts time.Time) string {
				r := m.rng
				amount := 100 + 15*r.NormFloat64()
				if c.change == "shift" && !ts.Before(at) {
					amount += 15
				}
				return fmt.Sprintf(`"features":{"amount":%.2f,"country":%q},"prediction":%.4f,"latency_ms":%.1f,"status":"ok"`,
					amount, []string{"DE", "FR", "US"}[r.IntN(3)], r.Float64(), 20+8*r.ExpFloat64())
			}
			pace := replay.Backlog
			if c.change == "stop" {
				// The in-memory backlog source reports a record unread on every partition
				// until it is drained, which holds the stream clock back: a stop is read live.
				pace = replay.Live
			}
			alerts, _, _ := revRun(t, pace, revStart, end, windowSize(c.window), m,
				newRevModel(uint64(650+i), "steady", "1", "", revStart, end, 2, constRate(2)))
			if f := firing(alerts, at); len(f) > 0 {
				t.Errorf("alerts before the change: %v", f)
			}
			var found string
			for _, x := range replay.Transitions(alerts) {
				if x.State == schemas.StateFiring && x.Model == "changing" && x.Kind == c.kind && x.Feature == c.feature && !x.WindowEnd.Before(at) {
					found = x.String()
					break
				}
			}
			if found == "" {
				t.Errorf("the %s at %s was not flagged (%s)%s", c.change, at.Format("15:04"), countKinds(alerts), summaries(alerts, 4))
			} else {
				t.Logf("flagged: %s", found)
			}
		})
	}
}

// A feature that a producer starts sending an hour in (after the first-windows reference
// was built), stationary afterwards: not an alert.
func TestReviewFeatureAppearingAfterAnHourIsQuiet(t *testing.T) {
	end := revStart.Add(5 * time.Hour)
	appear := revStart.Add(time.Hour)
	m := newRevModel(710, "late-feature", "1", "", revStart, end, 5, constRate(5))
	m.body = func(m *revModel, ts time.Time) string {
		r := m.rng
		extra := ""
		if !ts.Before(appear) {
			extra = fmt.Sprintf(`,"segment":%q,"score":%.3f`, []string{"a", "b", "c"}[r.IntN(3)], r.NormFloat64())
		}
		return fmt.Sprintf(`"features":{"amount":%.2f%s},"prediction":%.4f,"latency_ms":%.1f,"status":"ok"`,
			100+15*r.NormFloat64(), extra, r.Float64(), 20+8*r.ExpFloat64())
	}
	alerts, store, _ := revRun(t, replay.Backlog, revStart, end, nil, m)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 4))
	}
}

// A categorical feature with a few hundred equally likely values (just above
// limits.max_categories, 200: a country-and-region code, a store id), stationary, 10
// events/s, 90 minutes, read live and from a backlog: no alert. Observed: the first window
// after the first-windows reference is built (00:15–00:20) fires data_drift on it, critical
// for 210 to 600 values (PSI 0.31 at 210, 0.73 at 250, 1.08 at 400, 0.33 at 600), a warning
// at 5,000 (PSI 0.18), nothing at 150 or 1,000; the next window is quiet again. Every new
// model version has a first window after its reference, so this pages on every deploy.
// (A comment left in traffic_scenarios_test.go says that window "was opened before the
// reference's category layout was set".)
func TestReviewCategoricalAboveMaxCategoriesDoesNotPageAfterReference(t *testing.T) {
	for _, k := range []int{210, 400} {
		for _, pace := range []replay.Pace{replay.Live, replay.Backlog} {
			t.Run(fmt.Sprintf("%d values %s", k, paceName(pace)), func(t *testing.T) {
				end := revStart.Add(90 * time.Minute)
				m := newRevModel(700, "stores", "1", "", revStart, end, 10, constRate(10))
				m.body = func(m *revModel, _ time.Time) string {
					r := m.rng
					return fmt.Sprintf(`"features":{"store":"s-%d","amount":%.2f},"prediction":%.4f,"latency_ms":%.1f,"status":"ok"`,
						r.IntN(k), 100+15*r.NormFloat64(), r.Float64(), 20+8*r.ExpFloat64())
				}
				alerts, _, _ := revRun(t, pace, revStart, end, nil, m)
				if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
					t.Errorf("%d alerts on a stationary stream: %v%s", len(f), f[:min(3, len(f))], summaries(alerts, 2))
				}
			})
		}
	}
}
