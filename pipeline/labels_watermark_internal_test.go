package pipeline

import (
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
)

// The label watermark: a partition is past a cutoff once it delivered a label stamped
// after it or a record appended more than labelIdle after it, or, read to its end, once
// the wall clock is labelIdle + labelSkew past it; one with unread records holds the
// others back however far behind.
func TestLabelWatermark(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 3, 4, h, m, 0, 0, time.UTC) }
	p0, p1 := consumers.TopicPartition{Topic: "labels", Partition: 0}, consumers.TopicPartition{Topic: "labels", Partition: 1}
	for _, c := range []struct {
		name     string
		parts    map[consumers.TopicPartition]labelPart
		unread   map[consumers.TopicPartition]bool
		now      time.Time
		want     time.Time
		wantZero bool
	}{
		{name: "both reading: the older stamp", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(10, 0)}, p1: {stamp: at(11, 0)}},
			unread: map[consumers.TopicPartition]bool{p0: true, p1: true}, now: at(23, 0), want: at(10, 0)},
		{name: "quiet and read to its end: the wall clock less an hour and the skew", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(11, 30)}},
			unread: map[consumers.TopicPartition]bool{p1: true}, now: at(12, 0), want: at(10, 59)},
		{name: "quiet a short while: its stamp", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(8, 40)}},
			unread: map[consumers.TopicPartition]bool{p1: true}, now: at(8, 45), want: at(8, 0)},
		{name: "unread holds however far behind", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(11, 30)}},
			unread: map[consumers.TopicPartition]bool{p0: true}, now: at(23, 0), want: at(8, 0)},
		{name: "appended later than its stamps: an hour before its record time", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0), appended: at(12, 0)}, p1: {stamp: at(11, 30)}},
			unread: map[consumers.TopicPartition]bool{p0: true, p1: true}, now: at(12, 0), want: at(11, 0)},
		{name: "no record time", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}},
			unread: map[consumers.TopicPartition]bool{p0: true}, now: at(12, 0), want: at(8, 0)},
		{name: "every partition read to its end", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(9, 0)}},
			now: at(12, 0), want: at(10, 59)},
		{name: "no label partition", now: at(12, 0), wantZero: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLabelState()
			for tp, p := range c.parts {
				l.progress[tp] = p
			}
			got := l.watermark(c.now, func(tp consumers.TopicPartition) bool { return c.unread[tp] })
			if c.wantZero {
				if !got.IsZero() {
					t.Errorf("watermark %v, want none", got)
				}
				return
			}
			if !got.Equal(c.want) {
				t.Errorf("watermark %v, want %v", got, c.want)
			}
		})
	}
}
