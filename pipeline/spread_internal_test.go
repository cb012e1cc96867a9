package pipeline

import (
	"testing"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// A model's windows are complete up to the earliest progress of the partitions carrying
// it, leaving out a partition far behind the newest (as one member's watermark drops it).
func TestCompleteThrough(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	row := func(part int, through, eventMax time.Duration) storage.PartitionProgress {
		return storage.PartitionProgress{Model: "m", TP: processors.TopicPartition{Topic: "p", Partition: part},
			Through: t0.Add(through), EventMax: t0.Add(eventMax)}
	}
	for _, c := range []struct {
		name string
		rows []storage.PartitionProgress
		want time.Duration
		ok   bool
	}{
		{"no partition", nil, 0, false},
		{"one partition", []storage.PartitionProgress{row(0, 5*time.Minute, 6*time.Minute)}, 5 * time.Minute, true},
		{"the slowest partition holds it", []storage.PartitionProgress{row(0, 5*time.Minute, 6*time.Minute), row(1, 2*time.Minute, 3*time.Minute), row(2, 9*time.Minute, 9*time.Minute)}, 2 * time.Minute, true},
		{"a partition beyond the skew bound is not waited for", []storage.PartitionProgress{row(0, 70*time.Minute, 71*time.Minute), row(1, 0, time.Minute)}, 70 * time.Minute, true},
		{"at the skew bound it is", []storage.PartitionProgress{row(0, 70*time.Minute, 71*time.Minute), row(1, 0, 11*time.Minute)}, 0, true},
	} {
		got, ok := completeThrough(c.rows, time.Hour)
		if ok != c.ok || (ok && !got.Equal(t0.Add(c.want))) {
			t.Errorf("%s: %v %v, want %v %v", c.name, got, ok, t0.Add(c.want), c.ok)
		}
	}
}

// Every member computes a model's judge alike, and models spread over the partitions.
func TestOwnerPartition(t *testing.T) {
	counts := make([]int, 6)
	for i := 0; i < 600; i++ {
		m := "model-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p := ownerPartition(m, 6)
		if p != ownerPartition(m, 6) || p < 0 || p >= 6 {
			t.Fatalf("owner of %s: %d", m, p)
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 60 {
			t.Errorf("partition %d judges %d of 600 models", p, n)
		}
	}
	// Fixed values, computed apart (FNV-1a, 32 bits, in Python): members of different
	// builds and versions must agree on a model's judge.
	for m, want := range map[string][2]int{"fraud-scorer": {0, 0}, "churn-model": {1, 1}, "a": {4, 1}, "b": {1, 1}} {
		if got := [2]int{ownerPartition(m, 6), ownerPartition(m, 3)}; got != want {
			t.Errorf("owner of %q over 6 and 3 partitions: %v, want %v", m, got, want)
		}
	}
}

// One member records how far each model is judged: the last judged window's end, per
// model, supplements left out.
func TestJudgedThrough(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC).UnixMilli()
	w := func(model string, start int64) *processors.WindowAgg {
		return processors.EmptyWindow(processors.SeriesKey{Model: model, Version: "1"}, start, start+60000)
	}
	got := judgedThrough([]processors.Closed{{Merged: w("b", t0)}, {Merged: w("a", t0+60000)}, {Merged: w("a", t0)},
		{Merged: w("a", t0+120000), Supplement: true}})
	want := []storage.JudgeProgress{{Model: "a", Through: time.UnixMilli(t0 + 120000).UTC()}, {Model: "b", Through: time.UnixMilli(t0 + 60000).UTC()}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("judged through %v, want %v", got, want)
	}
}
