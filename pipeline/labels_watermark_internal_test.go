package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
)

// The label watermark: a partition is past a cutoff once it delivered a label stamped
// after it or a record appended more than labelIdle after it, or once it was found read
// to its end more than labelIdle + labelSkew after it; otherwise it holds the others
// back however far behind.
func TestLabelWatermark(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 3, 4, h, m, 0, 0, time.UTC) }
	p0, p1 := consumers.TopicPartition{Topic: "labels", Partition: 0}, consumers.TopicPartition{Topic: "labels", Partition: 1}
	for _, c := range []struct {
		name     string
		parts    map[consumers.TopicPartition]labelPart
		caughtAt time.Time
		want     time.Time
	}{
		{name: "reading both: the older stamp", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(10, 0)}, p1: {stamp: at(11, 0)}}, want: at(10, 0)},
		{name: "quiet, found read to its end at 12:00: an hour and the skew before", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0), caught: at(12, 0)}, p1: {stamp: at(11, 30)}},
			want: at(10, 59)},
		{name: "quiet a short while: its stamp", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0), caught: at(8, 45)}, p1: {stamp: at(8, 40)}},
			want: at(8, 0)},
		{name: "never found read to its end: its stamp, however far behind", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(11, 30)}},
			want: at(8, 0)},
		{name: "appended later than its stamps: an hour before its record time", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0), appended: at(12, 0)}, p1: {stamp: at(11, 30)}},
			want: at(11, 0)},
		{name: "all found read to their end now", parts: map[consumers.TopicPartition]labelPart{p0: {stamp: at(8, 0)}, p1: {stamp: at(9, 0)}},
			caughtAt: at(12, 0), want: at(10, 59)},
		{name: "no label partition", want: time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLabelState()
			for tp, p := range c.parts {
				l.progress[tp] = p
			}
			if got := l.watermark(c.caughtAt); !got.Equal(c.want) {
				t.Errorf("watermark %v, want %v", got, c.want)
			}
		})
	}
}

// endsFake says where partitions end and where this member began reading them.
type endsFake struct {
	Source
	ends map[consumers.TopicPartition]consumers.Ends
}

func (f endsFake) Ends(_ context.Context, tps []consumers.TopicPartition) (map[consumers.TopicPartition]consumers.Ends, error) {
	out := map[consumers.TopicPartition]consumers.Ends{}
	for _, tp := range tps {
		if e, ok := f.ends[tp]; ok {
			out[tp] = e
		}
	}
	return out, nil
}

// A label partition is found read to its end only when the records handled reach the
// end offset the broker gives now (not the lag the last fetch said): one with records
// appended since, or one this member does not read (a standby), is not.
func TestRefreshCaught(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tp := func(p int) consumers.TopicPartition { return consumers.TopicPartition{Topic: "labels", Partition: p} }
	src := endsFake{ends: map[consumers.TopicPartition]consumers.Ends{
		tp(0): {Start: 10, End: 20}, // handled up to 19: read to its end
		tp(1): {Start: 10, End: 21}, // handled up to 19, one appended since
		tp(2): {Start: 7, End: 7},   // nothing to read since this member began
		tp(3): {Start: 7, End: 9},   // two records, none handled yet
		// tp(4): not this member's
	}}
	r := New(Settings{LabelTopic: "labels"}, src, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	for p := 0; p < 5; p++ {
		r.lab.progress[tp(p)] = labelPart{}
	}
	r.lastSeen[tp(0)], r.lastSeen[tp(1)] = 19, 19
	if err := r.refreshCaught(context.Background(), now, []consumers.TopicPartition{tp(0), tp(1), tp(2), tp(3), tp(4)}); err != nil {
		t.Fatal(err)
	}
	for p, want := range []bool{true, false, true, false, false} {
		if got := r.lab.progress[tp(p)].caught.Equal(now); got != want {
			t.Errorf("partition %d found read to its end: %v, want %v", p, got, want)
		}
	}
}
