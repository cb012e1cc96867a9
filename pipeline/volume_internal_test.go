package pipeline

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// A series' recent windows: an expectation once an hour of them (at least 6) is there,
// none with an empty window among them, windows judged low left out, and a change of
// window size starting afresh (five-minute counts are no expectation for one-minute
// windows).
func TestRecentVolume(t *testing.T) {
	var v recentVolume
	five := 5 * time.Minute
	for i := 0; i < 11; i++ {
		v.observe(300+uint64(i), five, false)
	}
	if _, ok := v.expectation(five, nil); ok {
		t.Fatal("an expectation from 11 of 12 windows")
	}
	v.observe(30, five, true) // judged low: not learned from
	if _, ok := v.expectation(five, nil); ok {
		t.Fatal("a window judged low was learned from")
	}
	v.observe(311, five, false)
	exp, ok := v.expectation(five, nil)
	if !ok || exp.PerWindow != 305.5 || exp.Fewest != 300 || exp.Windows != 12 || exp.Dispersion <= 0 || exp.Dispersion > 0.2 {
		t.Fatalf("expectation %+v %v, want the median 305.5 of 12 windows, the fewest 300", exp, ok)
	}
	if _, ok := v.expectation(time.Minute, nil); ok {
		t.Fatal("five-minute windows taken as the expectation of one-minute ones")
	}
	v.observe(60, time.Minute, false)
	if len(v.counts) != 1 || v.size != time.Minute {
		t.Fatalf("after a change of window size: %v of %s", v.counts, v.size)
	}
	var bursty recentVolume
	for i := 0; i < 12; i++ {
		bursty.observe(uint64(i%2)*100, five, false)
	}
	if _, ok := bursty.expectation(five, nil); ok {
		t.Fatal("an expectation for a series with empty windows among its recent ones")
	}
	if n := recentWindows(30 * time.Second); n != 120 {
		t.Errorf("30-second windows: %d recent, want 120", n)
	}
	if n := recentWindows(45 * time.Minute); n != 6 {
		t.Errorf("45-minute windows: %d recent, want 6", n)
	}
}

// The sums of consecutive recent windows a run's span is judged with: their dispersion and
// fewest events per window, over a quarter of the recent windows at most, none until
// there are enough of them. Held windows count in the expectation's dispersion only.
func TestRecentVolumeBlocks(t *testing.T) {
	five := 5 * time.Minute // 12 recent windows: blocks of 3 at most
	var v recentVolume
	for i := range 11 {
		v.observe(uint64(4+2*(i%2)), five, false)
	}
	if d, f := v.blocks(five, 2); d != 0 || f != 0 {
		t.Fatalf("blocks of 11 windows: %g, %g, want none", d, f)
	}
	v.observe(6, five, false) // 4, 6, 4, 6, …
	for _, c := range []struct {
		l            int
		disp, fewest float64
	}{
		{1, 0, 0},                    // one window is no block
		{2, 0, 5},                    // every sum 10
		{3, 10.0 / 9 / 15, 14.0 / 3}, // sums 14, 16, …: variance 10/9, mean 15
		{5, 10.0 / 9 / 15, 14.0 / 3}, // taken as 3
	} {
		d, f := v.blocks(five, c.l)
		if math.Abs(d-c.disp) > 1e-12 || math.Abs(f-c.fewest) > 1e-12 {
			t.Errorf("blocks of %d: %g, %g, want %g, %g", c.l, d, f, c.disp, c.fewest)
		}
	}
	exp, _ := v.expectation(five, nil)
	held, _ := v.expectation(five, []runWindow{{start: 0, end: five.Milliseconds(), events: 1, expected: 5}})
	if held.Dispersion <= exp.Dispersion || held.PerWindow != exp.PerWindow || held.Fewest != exp.Fewest {
		t.Errorf("with a held window of 1 event: %+v, without: %+v; want a larger dispersion, the same median and fewest", held, exp)
	}
}

// TestVolumeRun: a model at one event a minute (5 per 5-minute window) that stops fires
// within a few windows, before a day of history (against its recent windows, which its
// first empty window must not spoil) and after (against the same hour of previous days);
// windows wandering around their expectation never fire; a restart that rebuilds the
// state from the stored windows fires at the same window as an uninterrupted run.
func TestVolumeRun(t *testing.T) {
	const size = 5 * 60 * 1000
	series := processors.SeriesKey{Model: "rare", Version: "1", Deployment: "primary"}
	baseline := []uint64{4, 6, 5, 5, 4, 6, 5, 5, 4, 6, 5, 5, 4, 6}
	type judged struct {
		breached bool
		stored   storage.WindowVolume
	}
	judgeAt := func(j *judge, i int, events uint64) judged {
		w := &processors.WindowAgg{Series: series, Start: int64(i) * size, End: int64(i+1) * size, Events: events}
		var v detectors.Verdict
		j.judgeVolume(&v, w, nil)
		return judged{v.VolumeLow, storage.WindowVolume{Series: series, Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End),
			Events: events, Expected: v.ExpectedEvents, Low: v.VolumeLow}}
	}
	run := func(j *judge, from int, counts []uint64) (fired int, stored []storage.WindowVolume) {
		fired = -1
		for k, n := range counts {
			got := judgeAt(j, from+k, n)
			stored = append(stored, got.stored)
			if got.breached && fired < 0 {
				fired = k
			}
		}
		return fired, stored
	}
	stop := make([]uint64, 12)
	for _, c := range []struct {
		name string
		days int // of same-hour history first
	}{{"recent windows", 0}, {"same hour of previous days", 2}} {
		t.Run(c.name, func(t *testing.T) {
			j := testJudge()
			var history []uint64
			for range c.days * 288 / len(baseline) {
				history = append(history, baseline...)
			}
			history = append(history, baseline...)
			if f, _ := run(j, 0, history); f >= 0 {
				t.Fatalf("the stationary history fired at window %d", f)
			}
			if f, _ := run(j, len(history), stop); f < 1 || f > 4 {
				t.Fatalf("a stop at 5 events per window fired at its window %d, want the 2nd to 5th", f)
			}
		})
	}
	t.Run("wandering", func(t *testing.T) {
		j := testJudge()
		counts := append(append([]uint64{}, baseline...), 4, 3, 4, 6, 4, 5, 3, 4, 5, 4, 4, 3, 4, 5, 4, 4)
		if f, _ := run(j, 0, counts); f >= 0 {
			t.Fatalf("window %d of a model wandering around 5 events fired", f)
		}
	})
	// Two days of 10-second windows of traffic bursty by the minute (each minute's rate
	// the mean times a gamma variable of CV 0.5, as simulate.TrafficBursty), judged
	// against recent windows, then the same hour of the previous day: a slow minute is
	// six slow windows, a run of them no more unusual than one of them. The run is held
	// to the window's burst size, so no slow minute is judged low (433 of 17,280 windows
	// were before); a stop still is.
	t.Run("bursty by the minute, short windows", func(t *testing.T) {
		const short = 10 * 1000
		rng := rand.New(rand.NewPCG(3, 4))
		j := testJudge()
		fired := 0
		i := 0
		for minute := 0; minute < 48*60; minute++ {
			rate := 100 * gammaDraw(rng, 4) / 4 // events per 10 s window, CV 0.5 by the minute
			for range 6 {
				w := &processors.WindowAgg{Series: series, Start: int64(i) * short, End: int64(i+1) * short, Events: uint64(poissonDraw(rng, rate))}
				var v detectors.Verdict
				j.judgeVolume(&v, w, nil)
				if v.VolumeLow {
					fired++
				}
				i++
			}
		}
		if fired > 0 {
			t.Fatalf("%d of %d windows of minute-bursty traffic judged low", fired, i)
		}
		for k := range 3 {
			w := &processors.WindowAgg{Series: series, Start: int64(i+k) * short, End: int64(i+k+1) * short}
			var v detectors.Verdict
			j.judgeVolume(&v, w, nil)
			if v.VolumeLow {
				return
			}
		}
		t.Fatal("a stop after two days of 100 events per window was not judged low in 3 windows")
	})
	// A series at about 10 events a minute (Poisson) falls to a fifth, judged against its
	// recent windows. Before, 17 of these 24 falls were never judged low: the run's
	// windows joined the recent ones at once, and the fewest events learned fell with
	// them; a run that began with a window or two just below expectation was judged
	// diluted by them, above the quarter the rule needs; and a run's events had to fall
	// below the fewest of any single recent window per window. Now every fall is found,
	// 21 within 5 windows, the last in 10.
	t.Run("a fall to a fifth at 10 events a window", func(t *testing.T) {
		const minute = 60 * 1000
		var late []int
		for seed := range uint64(24) {
			rng := rand.New(rand.NewPCG(seed, 9))
			j := testJudge()
			i, found := 0, -1
			judgeOne := func(mu float64) bool {
				w := &processors.WindowAgg{Series: series, Start: int64(i) * minute, End: int64(i+1) * minute, Events: uint64(poissonDraw(rng, mu))}
				var v detectors.Verdict
				j.judgeVolume(&v, w, nil)
				i++
				return v.VolumeLow
			}
			for range 6 * 60 {
				if judgeOne(10) {
					t.Fatalf("seed %d: window %d of stationary traffic at 10 events a window judged low", seed, i-1)
				}
			}
			for k := range 30 {
				if judgeOne(2) && found < 0 {
					found = k
				}
			}
			if found < 0 || found > 11 {
				late = append(late, found)
			}
		}
		if len(late) > 0 {
			t.Errorf("falls found after their 12th window or never (-1): %v of 24, want none", late)
		}
	})
	// windows.size changed in the middle of a run: five-minute windows judged low, then
	// one-minute windows at 80% of the traffic before them. A run over both would expect
	// the one-minute windows to hold five minutes' events each.
	t.Run("a change of window size in a run", func(t *testing.T) {
		j := testJudge()
		const five, one = 5 * 60 * 1000, 60 * 1000
		i := int64(0)
		judge := func(size int64, events uint64) bool {
			w := &processors.WindowAgg{Series: series, Start: i, End: i + size, Events: events}
			i += size
			var v detectors.Verdict
			j.judgeVolume(&v, w, nil)
			return v.VolumeLow
		}
		for k := range 2 * 288 {
			if judge(five, 500+uint64(k%3)*10) {
				t.Fatalf("five-minute window %d of the history judged low", k)
			}
		}
		for range 3 {
			judge(five, 225)
		}
		for k := range 10 {
			if judge(one, 80) {
				t.Fatalf("one-minute window %d at 80%% of the traffic judged low (a run across the change of size)", k)
			}
		}
	})
	t.Run("restart", func(t *testing.T) {
		live := testJudge()
		_, stored := run(live, 0, append(append([]uint64{}, baseline...), 0, 0))
		restarted := testJudge()
		restarted.state(series).restoreVolume(stored)
		n := len(baseline) + 2
		for k := range 4 {
			a, b := judgeAt(live, n+k, 0), judgeAt(restarted, n+k, 0)
			if a.breached != b.breached || a.stored != b.stored {
				t.Fatalf("window %d after the restart: uninterrupted %+v, restarted %+v", k, a, b)
			}
		}
	})
}

// gammaDraw draws from a gamma distribution of shape k (an integer) and scale 1.
func gammaDraw(rng *rand.Rand, k int) float64 {
	x := 0.0
	for range k {
		x += rng.ExpFloat64()
	}
	return x
}

// poissonDraw draws a Poisson count of mean mu (Knuth's, for the small means here).
func poissonDraw(rng *rand.Rand, mu float64) int {
	l, p, k := math.Exp(-mu), 1.0, 0
	for {
		p *= rng.Float64()
		if p < l {
			return k
		}
		k++
	}
}
