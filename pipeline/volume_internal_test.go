package pipeline

import (
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
	if _, ok := v.expectation(five); ok {
		t.Fatal("an expectation from 11 of 12 windows")
	}
	v.observe(30, five, true) // judged low: not learned from
	if _, ok := v.expectation(five); ok {
		t.Fatal("a window judged low was learned from")
	}
	v.observe(311, five, false)
	exp, ok := v.expectation(five)
	if !ok || exp.PerWindow != 305.5 || exp.Fewest != 300 || exp.Windows != 12 || exp.Dispersion <= 0 || exp.Dispersion > 0.2 {
		t.Fatalf("expectation %+v %v, want the median 305.5 of 12 windows, the fewest 300", exp, ok)
	}
	if _, ok := v.expectation(time.Minute); ok {
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
	if _, ok := bursty.expectation(five); ok {
		t.Fatal("an expectation for a series with empty windows among its recent ones")
	}
	if n := recentWindows(30 * time.Second); n != 120 {
		t.Errorf("30-second windows: %d recent, want 120", n)
	}
	if n := recentWindows(45 * time.Minute); n != 6 {
		t.Errorf("45-minute windows: %d recent, want 6", n)
	}
}

// TestVolumeRun: a model expected to send 5 events per window that stops fires once the
// run of empty windows is evidence enough (one empty window is not); windows wandering
// around their expectation never do; a restart rebuilds the run from the stored windows
// and fires at the same window.
func TestVolumeRun(t *testing.T) {
	const size = 5 * 60 * 1000
	th := detectors.DefaultThresholds
	exp := detectors.VolumeExpectation{PerWindow: 5, Size: 5 * time.Minute, Windows: 84, Basis: "the same hour of the previous days"}
	series := processors.SeriesKey{Model: "rare", Version: "1", Deployment: "primary"}
	judge := func(r *volumeRun, i int, events uint64) (bool, string) {
		w := &processors.WindowAgg{Series: series, Start: int64(i) * size, End: int64(i+1) * size, Events: events}
		c, ok := detectors.ModelVolumeCondition(w, exp, th)
		if !ok {
			t.Fatalf("window %d: no condition", i)
		}
		c = r.judge(w, c, exp, th)
		return c.Breached, c.Details["run_windows"]
	}
	t.Run("stop", func(t *testing.T) {
		var r volumeRun
		fired := -1
		for i := 0; i < 12 && fired < 0; i++ {
			if breached, _ := judge(&r, i, 0); breached {
				fired = i
			}
		}
		if fired < 1 || fired > 4 {
			t.Fatalf("a stop at 5 events per window fired at window %d, want the 2nd to 5th", fired)
		}
	})
	t.Run("wandering", func(t *testing.T) {
		var r volumeRun
		for i, n := range []uint64{4, 3, 2, 4, 6, 1, 3, 2, 5, 4, 4, 3, 2, 3, 4, 3} {
			if breached, run := judge(&r, i, n); breached {
				t.Fatalf("window %d (%d events, run %s) fired", i, n, run)
			}
		}
	})
	t.Run("restart", func(t *testing.T) {
		var live volumeRun
		var stored []storage.WindowVolume
		for i := 0; i < 2; i++ {
			if breached, _ := judge(&live, i, 0); breached {
				t.Fatalf("window %d fired before the restart's point", i)
			}
			stored = append(stored, storage.WindowVolume{Series: series, Start: time.UnixMilli(int64(i) * size), End: time.UnixMilli(int64(i+1) * size), Expected: 5})
		}
		var st seriesState
		st.restoreVolume(stored)
		for i := 2; i < 6; i++ {
			a, _ := judge(&live, i, 0)
			b, _ := judge(&st.run, i, 0)
			if a != b {
				t.Fatalf("window %d: uninterrupted %t, restarted %t", i, a, b)
			}
		}
	})
}
