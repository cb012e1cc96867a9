package pipeline_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/schemas"
)

var revStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// A model version served by a primary and a canary (5% of the traffic) and mirrored to a
// shadow, all the same version, nothing changing: no alert of any kind should fire.
// A routine deploy: version 1.0 serves for 3 hours, then 2.0 takes all the traffic. The
// model never stopped sending; nothing should page.
func TestTrafficVersionRolloutIsNotAnOutage(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	switchAt := revStart.Add(3 * time.Hour)
	alerts, _, _ := revRun(t, replay.Live, revStart, end, nil,
		newRevModel(1, "fraud", "1.0", "", revStart, switchAt, 10, constRate(10)),
		newRevModel(2, "fraud", "2.0", "", switchAt, end, 10, constRate(10)),
	)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts for a version rollout (%s); first: %v%s", len(f), countKinds(alerts), f[:min(5, len(f))], summaries(alerts, 4))
	}
}

// An event-driven pipeline: runs start when data lands, at irregular (exponential)
// intervals averaging 10 minutes; every run succeeds. Freshness should not fire.
// A pipeline running every 5 minutes (three stages), read live and as a backlog: none of
// its events is late (each hourly stage window holds its 12 runs), and both reads give the
// same alerts (none).
func TestTrafficRegularPipelineRunsAreNotLateLive(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	var runs []time.Time
	for at := revStart; at.Before(end.Add(-time.Minute)); at = at.Add(5 * time.Minute) {
		runs = append(runs, at)
	}
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		p := &revPipeline{name: "orders", stages: []string{"extract", "join", "build"}, runs: runs, rng: rand.New(rand.NewPCG(1, 2))}
		alerts, _, src := revRun(t, pace, revStart, end, nil, newRevModel(1, "fraud", "1.0", "", revStart, end, 5, constRate(5)), p)
		got[i] = alerts
		if src.stats.Late > 0 {
			t.Errorf("%s: %d of %d pipeline events counted late (only the first run of each hour lands in its stage window)", paceName(pace), src.stats.Late, len(runs)*3)
		}
		if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
			t.Errorf("%s: %d alerts on a healthy pipeline (%s)%s", paceName(pace), len(f), countKinds(alerts), summaries(alerts, 4))
		}
	}
	if d := diffTransitions(got[0], got[1], end.Add(-15*time.Minute)); len(d) > 0 {
		t.Errorf("live and backlog differ: %v", d)
	}
}

// burstTimes returns arrival times: every period, a burst of n events spread over span.
func burstTimes(start, end time.Time, period, span time.Duration, n int) []time.Time {
	var out []time.Time
	for at := start; at.Before(end); at = at.Add(period) {
		for i := 0; i < n; i++ {
			out = append(out, at.Add(time.Duration(i)*span/time.Duration(n)))
		}
	}
	return out
}

// A model whose traffic comes in bursts (a batch of 300 requests every 5 minutes, e.g. a
// scheduled scoring job), with 30-minute windows. Live and backlog must give the same
// windows and alerts, and none of its events is late: they are all on time.
func TestTrafficBurstyModelLiveEqualsBacklog(t *testing.T) {
	end := revStart.Add(8 * time.Hour)
	edit := func(c *config.Config) { c.Windows.Size = config.Duration(30 * time.Minute) }
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		m := newRevModel(1, "batch", "1.0", "", revStart, end, 1, constRate(1))
		m.times = burstTimes(revStart, end, 5*time.Minute, 30*time.Second, 300)
		m.advance()
		alerts, _, src := revRun(t, pace, revStart, end, edit, m)
		got[i] = alerts
		if src.stats.Late > 0 {
			t.Errorf("%s: %d of %d on-time events counted late", paceName(pace), src.stats.Late, len(m.times))
		}
		if f := firing(alerts, end.Add(-time.Hour)); len(f) > 0 {
			t.Errorf("%s: %d alerts on a stationary bursty model (%s)%s", paceName(pace), len(f), countKinds(alerts), summaries(alerts, 4))
		}
	}
	if d := diffTransitions(got[0], got[1], end.Add(-time.Hour)); len(d) > 0 {
		t.Errorf("live and backlog differ: %v", d[:min(5, len(d))])
	}
}

// A batch model scoring 3,000 requests in the first minute of every hour, 5-minute windows:
// a stationary stream (same batch every hour) must not raise volume alerts for the 11
// empty windows of each hour.
// A model that stops for an hour and resumes (an outage of the service), with another
// model on the same topic going on: the outage is flagged (volume) for the same windows
// live and from a backlog.
func TestTrafficStopAndResumeLiveEqualsBacklog(t *testing.T) {
	end := revStart.Add(8 * time.Hour)
	stop, resume := revStart.Add(5*time.Hour), revStart.Add(6*time.Hour)
	rate := func(t time.Time) float64 {
		if !t.Before(stop) && t.Before(resume) {
			return 0
		}
		return 5
	}
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		alerts, _, _ := revRun(t, pace, revStart, end, nil,
			newRevModel(1, "outage", "1.0", "", revStart, end, 5, rate),
			newRevModel(2, "steady", "1.0", "", revStart, end, 5, constRate(5)))
		got[i] = alerts
		t.Logf("%s: %s%s", paceName(pace), countKinds(alerts), summaries(alerts, 3))
	}
	if d := diffTransitions(got[0], got[1], end.Add(-time.Hour)); len(d) > 0 {
		t.Errorf("live and backlog differ: %v", d[:min(6, len(d))])
	}
}

// Three independent, stationary numeric features (nothing ever changes) at 10 events/s
// for 12 hours with 5-minute windows: the joint (PCA) detector must not fire.
func TestTrafficPCAQuietOnIndependentStationaryFeatures(t *testing.T) {
	end := revStart.Add(12 * time.Hour)
	m := newRevModel(4, "plain", "1.0", "", revStart, end, 10, constRate(10))
	m.body = func(m *revModel, _ time.Time) string {
		r := m.rng
		return fmt.Sprintf(`"features":{"x1":%.4f,"x2":%.4f,"x3":%.4f},"prediction":%.4f,"latency_ms":%.1f,"status":"ok"`,
			r.NormFloat64(), r.NormFloat64(), r.ExpFloat64(), r.Float64(), 20+r.ExpFloat64()*8)
	}
	alerts, store, _ := revRun(t, replay.Live, revStart, end, nil, m)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows of a stationary stream (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
	}
}

// The default body (amount, age with 1% nulls, a country, a boolean) at 10 events/s for 12
// hours, 5-minute windows, nothing changing: no alert of any kind.
func TestTrafficStationaryDefaultBodyIsQuiet(t *testing.T) {
	end := revStart.Add(12 * time.Hour)
	alerts, store, _ := revRun(t, replay.Live, revStart, end, nil, newRevModel(7, "fraud", "1.0", "", revStart, end, 10, constRate(10)))
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows of a stationary stream (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(4, len(f))], summaries(alerts, 4))
	}
}

// Producers sending only part of the contract, stationary for 6 hours at 5 events/s each:
// nothing fires and nothing is dead-lettered.
func TestTrafficPartialContractProducersAreQuiet(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	mk := func(seed uint64, name string, body func(m *revModel, _ time.Time) string) *revModel {
		m := newRevModel(seed, name, "1", "", revStart, end, 5, constRate(5))
		m.body = body
		return m
	}
	feats := func(r *rand.Rand) string {
		return fmt.Sprintf(`"features":{"amount":%.2f,"country":%q}`, 100+15*r.NormFloat64(), []string{"DE", "FR", "US"}[r.IntN(3)])
	}
	gens := []revGen{
		mk(11, "no-latency", func(m *revModel, _ time.Time) string {
			return feats(m.rng) + fmt.Sprintf(`,"prediction":%.3f,"status":"ok"`, m.rng.Float64())
		}),
		mk(12, "no-status", func(m *revModel, _ time.Time) string {
			return feats(m.rng) + fmt.Sprintf(`,"prediction":%.3f,"latency_ms":%.1f`, m.rng.Float64(), 20+8*m.rng.ExpFloat64())
		}),
		mk(13, "no-features", func(m *revModel, _ time.Time) string {
			return fmt.Sprintf(`"prediction":%.3f,"latency_ms":%.1f,"status":"ok"`, m.rng.Float64(), 20+8*m.rng.ExpFloat64())
		}),
		mk(14, "null-features", func(m *revModel, _ time.Time) string {
			return fmt.Sprintf(`"features":{"a":null,"b":null},"prediction":%.3f,"latency_ms":%.1f,"status":"ok"`, m.rng.Float64(), 20+8*m.rng.ExpFloat64())
		}),
		mk(15, "string-predictions", func(m *revModel, _ time.Time) string {
			p := "legit"
			if m.rng.Float64() < 0.02 {
				p = "fraud"
			}
			return feats(m.rng) + fmt.Sprintf(`,"prediction":%q,"scores":{"fraud":%.3f,"legit":%.3f},"latency_ms":%.1f,"status":"ok"`, p, 0.1, 0.9, 20+8*m.rng.ExpFloat64())
		}),
		mk(17, "integer-latency", func(m *revModel, _ time.Time) string {
			// Latency reported in whole milliseconds, mostly 1–3 ms (a fast model).
			return feats(m.rng) + fmt.Sprintf(`,"prediction":%.3f,"latency_ms":%d,"status":"ok"`, m.rng.Float64(), 1+int(m.rng.ExpFloat64()))
		}),
	}
	alerts, store, src := revRun(t, replay.Live, revStart, end, nil, gens...)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 6))
	}
	if src.stats.DeadLettered > 0 {
		t.Errorf("%d records dead-lettered", src.stats.DeadLettered)
	}
}

// A categorical feature with more categories than limits.max_categories (200), e.g. a
// user agent or a merchant, stationary: no drift. (The first window after the reference
// is built was opened before the reference's category layout was set.)
// windows.size 45m (within the documented 30 s – 1 h), a stationary model at 2 events/s
// for 2.5 days: once a day of history exists, volume is expected from the same hour of
// the previous days; it must not fire.
// A daily traffic cycle (peak 9/s at midnight, trough 1/s at noon), otherwise stationary,
// for 30 hours with 5-minute windows: the nightly dip is not an outage.
// The default body at 5 events/s with 15-minute windows (4,500 events each), nothing
// changing for 24 hours: the joint (PCA) detector must stay quiet (issue 10: a minimum
// relative rise, not only mean + 3σ of 20 reference chunks).
// Several models of different volumes sharing 3 partitions with a pipeline every 5
// minutes, all stationary for 8 hours: the same alerts (ideally none) live and from a
// backlog.
func TestTrafficMultiModelLiveEqualsBacklog(t *testing.T) {
	end := revStart.Add(8 * time.Hour)
	var runs []time.Time
	for at := revStart; at.Before(end.Add(-time.Minute)); at = at.Add(5 * time.Minute) {
		runs = append(runs, at)
	}
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		gens := []revGen{
			newRevModel(41, "tiny", "1", "", revStart, end, 0.2, constRate(0.2)),
			newRevModel(42, "small", "1", "", revStart, end, 1, constRate(1)),
			newRevModel(43, "medium", "1", "", revStart, end, 5, constRate(5)),
			newRevModel(44, "large", "1", "", revStart, end, 20, constRate(20)),
			&revPipeline{name: "orders", stages: []string{"extract", "join", "build"}, runs: runs, rng: rand.New(rand.NewPCG(1, 2))},
		}
		alerts, _, src := revRun(t, pace, revStart, end, nil, gens...)
		got[i] = alerts
		t.Logf("%s: late %d; %s%s", paceName(pace), src.stats.Late, countKinds(alerts), summaries(alerts, 4))
	}
	if d := diffTransitions(got[0], got[1], end.Add(-30*time.Minute)); len(d) > 0 {
		t.Errorf("live and backlog differ in %d transitions: %v", len(d), d[:min(6, len(d))])
	}
}

// Low-volume models (one event every 20 s and every 4 s), judged over merged windows,
// stationary for 24 hours with 5-minute windows: no alert.
// A feature that a producer starts sending mid-stream (a new input of the same model
// version), and another that goes from always present to 1% present: the first is not an
// alarm of missing values; the second is (a feature that vanished).
func TestTrafficFeatureAppearsMidStream(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	appear := revStart.Add(3 * time.Hour)
	m := newRevModel(61, "fraud", "1", "", revStart, end, 5, constRate(5))
	m.body = func(m *revModel, at time.Time) string {
		extra := ""
		if !at.Before(appear) {
			extra = fmt.Sprintf(`,"device_score":%.3f`, m.rng.Float64())
		}
		return fmt.Sprintf(`"features":{"amount":%.2f%s},"prediction":%.3f,"latency_ms":%.1f,"status":"ok"`, 100+15*m.rng.NormFloat64(), extra, m.rng.Float64(), 20+8*m.rng.ExpFloat64())
	}
	alerts, store, _ := revRun(t, replay.Live, revStart, end, nil, m)
	if f := firing(alerts, end.Add(-15*time.Minute)); len(f) > 0 {
		t.Errorf("%d alerts in %d windows (%s); first: %v%s", len(f), store.Verdicts, countKinds(alerts), f[:min(6, len(f))], summaries(alerts, 4))
	}
}

// Traffic that falls to a tenth before a day of same-hour history exists (issue 10: it
// was missed in the first day): flagged in the first window against the series' last
// hour, and kept firing for as long as the drop lasts — the windows judged low are not
// learned from, so three hours at a tenth do not become the normal — then resolved once
// traffic is back; the same live and from a backlog. A slow evening ramp from 10 to 2
// events/s over two hours on another model is not a drop.
func TestTrafficVolumeDropFiresAtOnceAndLasts(t *testing.T) {
	end := revStart.Add(9 * time.Hour)
	drop, back := revStart.Add(4*time.Hour), revStart.Add(7*time.Hour)
	rate := func(t time.Time) float64 {
		if !t.Before(drop) && t.Before(back) {
			return 0.5
		}
		return 5
	}
	ramp := func(t time.Time) float64 {
		h := t.Sub(revStart).Hours()
		return 10 - 8*min(max(h-3, 0)/2, 1)
	}
	var got [2][]*schemas.AlertEvent
	for i, pace := range []replay.Pace{replay.Live, replay.Backlog} {
		alerts, _, _ := revRun(t, pace, revStart, end, nil,
			newRevModel(1, "orders", "1.0", "", revStart, end, 5, rate),
			newRevModel(2, "evening", "1.0", "", revStart, end, 10, ramp))
		got[i] = alerts
		var volume []string
		for _, x := range replay.Transitions(alerts) {
			if x.Kind == schemas.KindVolume && x.WindowEnd.Before(end) {
				volume = append(volume, fmt.Sprintf("%s %s %s", x.Model, x.State, x.WindowStart.Format("15:04")))
			}
		}
		want := []string{"orders firing 04:00", "orders resolved 07:05"}
		if strings.Join(volume, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: volume transitions %v, want %v (%s)%s", paceName(pace), volume, want, countKinds(alerts), summaries(alerts, 3))
		}
		if f := firing(alerts, end.Add(-15*time.Minute)); len(f) != 1 {
			t.Errorf("%s: %d alerts, want the drop's only: %v", paceName(pace), len(f), f)
		}
	}
	if d := diffTransitions(got[0], got[1], end.Add(-15*time.Minute)); len(d) > 0 {
		t.Errorf("live and backlog differ: %v", d[:min(6, len(d))])
	}
}

// A producer that sends no latency_ms, and from the third hour on does (the team added
// it mid-version), must not page for latency: a latency not sent is not measured, where
// before it was taken for 0 ms, the reference's latency was 0 and every window after the
// change was "infinitely" slower. The windows after the change record the latency sent.
// The errors stay judged throughout: a burst of them in the fifth hour, sent without a
// latency, is found, and leaves the latency quiet.
func TestTrafficLatencyAddedMidVersionDoesNotPage(t *testing.T) {
	end := revStart.Add(6 * time.Hour)
	added, burst := revStart.Add(3*time.Hour), revStart.Add(5*time.Hour)
	m := newRevModel(61, "fraud", "1", "", revStart, end, 5, constRate(5))
	m.body = func(m *revModel, at time.Time) string {
		b := defaultBody(m, at)
		if !at.Before(burst) && at.Before(burst.Add(10*time.Minute)) && m.rng.Float64() < 0.3 {
			b = strings.NewReplacer(`"status":"ok"`, `"status":"error"`, `"status":"timeout"`, `"status":"error"`).Replace(b)
		}
		if at.Before(added) || strings.Contains(b, `"status":"error"`) {
			i := strings.Index(b, `"latency_ms":`)
			b = b[:i] + b[i+strings.Index(b[i:], ",")+1:]
		}
		return b
	}
	alerts, store, _ := revRun(t, replay.Backlog, revStart, end, nil, m)
	var latency []string
	errors := false
	for _, x := range replay.Transitions(alerts) {
		if x.State != schemas.StateFiring {
			continue
		}
		switch x.Kind {
		case schemas.KindLatency:
			latency = append(latency, x.String())
		case schemas.KindErrors:
			errors = errors || !x.WindowEnd.Before(burst)
		}
	}
	if len(latency) > 0 {
		t.Errorf("latency paged %d times, first: %v", len(latency), latency[:min(3, len(latency))])
	}
	if !errors {
		t.Errorf("the burst of errors (30%% for 10 minutes) was not found; %s", countKinds(alerts))
	}
	measured := 0
	for _, w := range store.Windows() {
		switch {
		case w.End <= added.UnixMilli() && w.Latency.Count() > 0:
			t.Fatalf("window at %v has %v latencies before any was sent", time.UnixMilli(w.Start).UTC(), w.Latency.Count())
		case w.Start >= added.UnixMilli() && w.Latency.Count() > 0:
			if p50 := w.Latency.Quantile(0.5); p50 < 20 || p50 > 40 {
				t.Errorf("window at %v: p50 latency %v ms, want that of the latencies sent (20 ms + Exp(8))", time.UnixMilli(w.Start).UTC(), p50)
			}
			measured++
		}
	}
	if measured == 0 {
		t.Error("no window after the change measured a latency")
	}
}
