package pipeline

import (
	"testing"
	"time"
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
