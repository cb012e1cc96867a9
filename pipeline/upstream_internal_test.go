package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/schemas"
)

// A window's consecutive failures depend on its runs' event times only: whatever order
// the runs arrive in (partitions interleave differently live and from a backlog), the
// same run of failures comes out, carried on from the previous window when the window
// had no success.
func TestRunTailIsOrderFree(t *testing.T) {
	type run struct {
		ms     int64
		failed bool
	}
	for _, tc := range []struct {
		name  string
		runs  []run
		carry int
		want  int
	}{
		{"healthy", []run{{1, false}, {2, false}, {3, false}}, 48, 0},
		{"fails after its last success", []run{{1, false}, {2, true}, {3, false}, {4, true}, {5, true}}, 7, 2},
		{"no success: carries on", []run{{1, true}, {2, true}}, 3, 5},
		{"a failure at the same moment as a success counts before it", []run{{1, true}, {2, false}, {2, true}}, 0, 0},
		{"empty", nil, 2, 2},
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 20; i++ {
			runs := append([]run(nil), tc.runs...)
			rng.Shuffle(len(runs), func(a, b int) { runs[a], runs[b] = runs[b], runs[a] })
			var tail runTail
			for _, r := range runs {
				tail.add(r.ms, r.failed)
			}
			if got := tail.consecutive(tc.carry); got != tc.want {
				t.Errorf("%s, order %v: %d in a row, want %d", tc.name, runs, got, tc.want)
			}
		}
	}
}

func TestCarryIsThePreviousJudgedWindow(t *testing.T) {
	st := &stageState{judged: map[int64]int{100: 1, 200: 4, 400: 0}}
	for start, want := range map[int64]int{50: 0, 150: 1, 200: 1, 300: 4, 500: 0} {
		if got := st.carry(start); got != want {
			t.Errorf("carry before %d: %d, want %d", start, got, want)
		}
	}
}

func TestInsertTimeKeepsRecentSortedRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	var ts []time.Time
	for _, m := range []int{5, 1, 3, 3, 2, 4} {
		ts = insertTime(ts, t0.Add(time.Duration(m)*time.Minute), true)
	}
	if len(ts) != 5 || !ts[0].Equal(t0.Add(time.Minute)) || !ts[4].Equal(t0.Add(5*time.Minute)) {
		t.Errorf("sorted, deduplicated: %v", ts)
	}
	// Older than keepRunsFor behind the newest: dropped, but never below keepSuccesses.
	ts = nil
	for m := 0; m < 3000; m++ { // a run a minute for 50 hours
		ts = insertTime(ts, t0.Add(time.Duration(m)*time.Minute), false)
	}
	if len(ts) != 48*60+1 || !ts[0].Equal(t0.Add(119*time.Minute)) {
		t.Errorf("%d runs kept from %v", len(ts), ts[0])
	}
	ts = nil
	for d := 0; d < keepSuccesses+30; d++ {
		ts = insertTime(ts, t0.Add(time.Duration(d)*24*time.Hour), false)
	}
	if len(ts) != keepSuccesses {
		t.Errorf("%d daily runs kept, want %d", len(ts), keepSuccesses)
	}
}

// The stream clock: held by the partitions that have unread records; once none has, the
// newest event time moved on by the wall clock; never backwards.
func TestStreamClock(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p0, p1 := consumers.TopicPartition{Topic: "pred", Partition: 0}, consumers.TopicPartition{Topic: "pipe", Partition: 0}
	c := newStreamClock()
	if !c.now(wall).IsZero() {
		t.Fatal("a clock before any event")
	}
	c.position(p0, 100)
	c.event(p0, t0, wall)
	c.position(p1, 0)
	c.event(p1, t0.Add(5*time.Hour), wall) // read to its end, hours ahead
	if got := c.now(wall.Add(time.Hour)); !got.Equal(t0) {
		t.Errorf("behind: %v, want the lagging partition's %v", got, t0)
	}
	if c.readPast("pipe", t0.Add(6*time.Hour)) != true || c.readPast("pred", t0.Add(time.Minute)) {
		t.Error("readPast")
	}
	c.position(p0, 0)
	c.event(p0, t0.Add(time.Hour), wall.Add(time.Minute))
	if got := c.now(wall.Add(time.Hour)); !got.Equal(t0.Add(6 * time.Hour)) {
		t.Errorf("caught up: %v, want the newest event moved on by the wall clock", got)
	}
	c.position(p0, 5)
	if got := c.now(wall.Add(time.Hour)); !got.Equal(t0.Add(6 * time.Hour)) {
		t.Errorf("went back to %v", got)
	}
	// Live, one event stamped a day ahead does not carry the clock with it.
	live := newStreamClock()
	live.position(p0, 0)
	live.event(p0, wall.Add(-time.Second), wall)
	live.event(p0, wall.Add(23*time.Hour), wall)
	if got := live.now(wall.Add(time.Minute)); !got.Equal(wall.Add(time.Minute + maxAhead)) {
		t.Errorf("a future event moved the clock to %v", got)
	}
}

// checkFreshness judges only the stages whose spells may have changed (freshSchedule,
// nextFreshnessChange): it raises exactly the alerts, in the same order, that judging
// every stage at every check raises, on stages that run regularly, irregularly, stop,
// resume, have successes read ahead of the clock or late, and with a configured interval.
func TestFreshnessScheduleRaisesWhatEveryCheckRaises(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 77))
			t0 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
			set := Settings{PipelineTopic: "pipe", StageInterval: func(p, _ string) time.Duration {
				if p == "fixed" {
					return 7 * time.Minute
				}
				return 0
			}}
			r := New(set, nil, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			ref := detectors.NewAlerter(0, 0)
			var refTo time.Time
			stages := []stageKey{{"etl", "a"}, {"etl", "b"}, {"fixed", "c"}, {"ml", "d"}, {"ml", "e"}}
			every := []time.Duration{time.Minute, 5 * time.Minute, 5 * time.Minute, 3 * time.Minute, 10 * time.Minute}
			next := make([]time.Time, len(stages))
			for i := range next {
				next[i] = t0.Add(time.Duration(rng.IntN(300)) * time.Second)
			}
			tp := consumers.TopicPartition{Topic: "pipe"}
			wall, clock := t0.Add(24*time.Hour), t0
			var want []string
			checks := 0
			for step := 0; step < 6000; step++ {
				clock = clock.Add(time.Duration(rng.IntN(40)) * time.Second)
				wall = wall.Add(150 * time.Millisecond)
				for i, k := range stages {
					for !next[i].After(clock.Add(2 * time.Minute)) { // read up to 2 minutes ahead
						at := next[i]
						gap := every[i]
						if k.stage == "d" { // irregular: runs when data lands
							gap = time.Duration(rng.ExpFloat64() * float64(every[i]))
						}
						if (step/700)%3 == 2 && i%2 == 0 {
							gap *= 20 // outages
						}
						next[i] = at.Add(max(gap, time.Second))
						if rng.Float64() < 0.05 {
							continue // a run lost
						}
						if rng.Float64() < 0.05 {
							at = at.Add(-time.Duration(rng.IntN(600)) * time.Second) // read late
						}
						r.up.observe(&schemas.PipelineEvent{Pipeline: k.pipeline, Stage: k.stage, Status: "succeeded", Timestamp: at}, 0, 0)
					}
				}
				r.clock.position(tp, 1)
				r.clock.event(tp, clock, wall)
				before := r.up.freshTo
				r.checkFreshness(wall)
				if r.up.freshTo.Equal(before) {
					continue
				}
				checks++
				// Every stage, every check, every condition built.
				keys := make([]stageKey, 0, len(r.up.stages))
				for k := range r.up.stages {
					keys = append(keys, k)
				}
				sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
				for _, k := range keys {
					st := r.up.stages[k]
					exp := func(i int) (time.Duration, bool) {
						if d := set.StageInterval(k.pipeline, k.stage); d > 0 {
							return d, true
						}
						return detectors.LearnedInterval(st.successes, i, 2)
					}
					for _, o := range detectors.OverdueSpells(st.successes, refTo, r.up.freshTo, exp) {
						if a := ref.Transition(detectors.FreshnessBreach(k.pipeline, k.stage, o), wall); a != nil {
							want = append(want, fmt.Sprintf("%+v", *a))
						}
						if !o.Until.IsZero() {
							if a := ref.Transition(detectors.FreshnessRecovered(k.pipeline, k.stage, o), wall); a != nil {
								want = append(want, fmt.Sprintf("%+v", *a))
							}
						}
					}
				}
				refTo = r.up.freshTo
			}
			var got []string
			for _, a := range r.extraAlerts {
				got = append(got, fmt.Sprintf("%+v", *a))
			}
			if len(want) < 10 {
				t.Fatalf("%d alerts in %d checks: the streams do not test freshness", len(want), checks)
			}
			if len(got) != len(want) {
				t.Fatalf("%d alerts, judging every stage at every check %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("alert %d:\n%s\nwant\n%s", i, got[i], want[i])
				}
			}
			t.Logf("%d checks, %d alerts", checks, len(want))
		})
	}
}
