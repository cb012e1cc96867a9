package processors_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// A window that opened before its layout and kept its events is, once the layout comes,
// the window that opened with it, bit for bit: the layout set while it is open (inline or
// with workers), or adopted once it has closed (the reference built after it closed, before
// it is judged). Past MaxRawValues events a partial keeps no more and stays as it opened;
// a window the caller does not say may come after the reference's windows keeps nothing.
func TestAWindowThatKeptItsEventsCountsAsIfItOpenedWithTheLayout(t *testing.T) {
	evs := events20(3000) // 1 ms apart: three one-second windows
	layout := layoutFor(evs[:1000])
	spec := func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Second} }
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	// run adds evs over two partitions, setting the layout before event setAt (-1:
	// never), and closes every window. keepFrom: the windows from there on keep their
	// events (-1: none).
	run := func(t *testing.T, evs []*schemas.PredictionEvent, setAt int, keepFrom int64, workers int) []processors.Closed {
		t.Helper()
		p := processors.NewProcessor(spec, processors.Limits{})
		if workers > 0 {
			w := processors.NewWorkers(workers)
			t.Cleanup(w.Stop)
			p.SetWorkers(w)
		}
		p.KeepEventsOf(func(model, version string, start int64) bool { return keepFrom >= 0 && start >= keepFrom })
		for i, e := range evs {
			if i == setAt {
				p.SetLayout(e.Model, e.ModelVersion, layout)
			}
			p.Add(e, processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i)}, now)
		}
		return p.CloseAll()
	}
	want := run(t, evs, 0, -1, 0)
	if len(want) != 3 || want[0].Merged.ReferenceID == "" || want[0].Merged.Joint == nil {
		t.Fatalf("opened with the layout: %d windows, want 3 binned with a joint model", len(want))
	}
	same := func(t *testing.T, got []processors.Closed) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d windows, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].KeptEvents() {
				t.Errorf("window %d still keeps its events", i)
			}
			if !reflect.DeepEqual(got[i].Merged, want[i].Merged) {
				t.Errorf("window %d differs from the one opened with the layout", i)
			}
			for k := range want[i].Partials {
				if !reflect.DeepEqual(got[i].Partials[k].WindowAgg, want[i].Partials[k].WindowAgg) {
					t.Errorf("window %d partition %d differs from the one opened with the layout", i, k)
				}
			}
		}
	}
	start := evs[0].Timestamp.UnixMilli()
	t.Run("layout set while open", func(t *testing.T) { same(t, run(t, evs, 1500, start, 0)) })
	t.Run("layout set while open, workers", func(t *testing.T) { same(t, run(t, evs, 1500, start, 2)) })
	t.Run("adopted once closed", func(t *testing.T) {
		got := run(t, evs, -1, start, 0)
		for i := range got {
			if !got[i].KeptEvents() || got[i].Merged.ReferenceID != "" {
				t.Fatalf("window %d: kept %t, binned %t before its layout", i, got[i].KeptEvents(), got[i].Merged.ReferenceID != "")
			}
			got[i].Adopt(layout)
		}
		same(t, got)
	})
	t.Run("not said to come after", func(t *testing.T) {
		got := run(t, evs, 1500, start+1000, 0)
		if got[0].Merged.ReferenceID != "" || !got[0].Unbinned() {
			t.Error("the first window, not kept, was binned by a layout set after it opened")
		}
		if !reflect.DeepEqual(got[1].Merged, want[1].Merged) {
			t.Error("the second window, kept, differs from the one opened with the layout")
		}
	})
	t.Run("more events than a partial keeps", func(t *testing.T) {
		many := events20(2*processors.MaxRawValues + 2) // one window of an hour, two partitions
		p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Hour} }, processors.Limits{})
		p.KeepEventsOf(func(string, string, int64) bool { return true })
		for i, e := range many {
			p.Add(e, processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i)}, now)
		}
		p.SetLayout("fraud-scorer", "3.2.0", layout)
		got := p.CloseAll()
		if len(got) != 1 || len(got[0].Partials) != 2 {
			t.Fatalf("%d windows, want 1 of 2 partitions", len(got))
		}
		for _, part := range got[0].Partials {
			if part.ReferenceID != "" || len(part.Features["num_00"].Raw) != processors.MaxRawValues {
				t.Errorf("partition %d: binned %t with %d values kept, want its first %d values unbinned", part.Partition, part.ReferenceID != "", len(part.Features["num_00"].Raw), processors.MaxRawValues)
			}
		}
	})
}

// A processor keeps MaxKeptBytes of events at most: in a backlog read at full speed, the
// windows opened once that much is kept keep nothing and stay as they opened when the
// layout comes, those that kept their events before count with it. Closed windows' events
// count until they are adopted or dropped (judged), so that the bound holds while closed
// windows wait for the flush.
func TestKeptEventsAreBoundedPerProcessor(t *testing.T) {
	evs := events20(100_000) // 1 ms apart: a hundred one-second windows, each well under MaxRawValues
	layout := layoutFor(evs[:1000])
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Second} }, processors.Limits{})
	p.KeepEventsOf(func(string, string, int64) bool { return true })
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	offset := int64(0)
	// read adds rounds times evs as version, each round 100 s later, closing what is
	// ready as it goes; it returns the windows closed.
	read := func(version string, rounds int, from time.Duration) []processors.Closed {
		var closed []processors.Closed
		for round := range rounds {
			for _, e := range evs {
				c := *e
				c.ModelVersion = version
				c.Timestamp = c.Timestamp.Add(from + time.Duration(round)*100*time.Second)
				p.Add(&c, processors.Source{Topic: "in", Partition: int(offset % 2), Offset: offset}, now)
				offset++
				closed = append(closed, p.Ready()...)
			}
		}
		return append(closed, p.CloseAll()...)
	}
	// binnedPrefix is how many windows, all first, count with the layout.
	binnedPrefix := func(closed []processors.Closed) int {
		t.Helper()
		binned, last := 0, -1
		for i, c := range closed {
			if !c.Unbinned() {
				binned++
				last = i
			}
		}
		if last != binned-1 {
			t.Fatalf("%d windows counted with the layout, the last %d: not the first ones", binned, last)
		}
		return binned
	}
	// Version 3.2.0: 400 windows open, then its layout comes.
	var closed []processors.Closed
	for round := range 4 {
		for _, e := range evs {
			c := *e
			c.Timestamp = c.Timestamp.Add(time.Duration(round) * 100 * time.Second)
			p.Add(&c, processors.Source{Topic: "in", Partition: int(offset % 2), Offset: offset}, now)
			offset++
		}
	}
	p.SetLayout("fraud-scorer", "3.2.0", layout)
	closed = p.CloseAll()
	// An event of 20 features is kept in about 350 bytes: the bound holds some 190,000.
	if n := binnedPrefix(closed); n < 100 || n > 300 {
		t.Fatalf("%d of %d windows counted with the layout, want the first 100 to 300", n, len(closed))
	}
	// Version 3.3.0: windows close as they go, not judged, before its layout: what they
	// kept still counts, and the later ones keep nothing.
	closed = read("3.3.0", 4, time.Hour)
	kept := 0
	for _, c := range closed {
		if c.KeptEvents() {
			kept++
		}
	}
	if kept < 100 || kept > 300 || !closed[len(closed)-1].Unbinned() {
		t.Fatalf("%d of %d closed windows kept their events (the last kept %t), want the first 100 to 300", kept, len(closed), closed[len(closed)-1].KeptEvents())
	}
	// Judged (dropped), they count no more: version 3.4.0's windows keep theirs.
	for _, c := range closed {
		c.DropKept()
	}
	closed = read("3.4.0", 1, 2*time.Hour)
	for i := range closed {
		closed[i].Adopt(layout)
	}
	if n := binnedPrefix(closed); n != len(closed) {
		t.Errorf("%d of %d windows of the next version counted with the layout once the others were judged", n, len(closed))
	}
}
