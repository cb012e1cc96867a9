package pipeline

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
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

// ownedEnds is a source that reads partitions of the label topic and says where they end.
type ownedEnds struct {
	endsFake
	mine []int
}

func (f ownedEnds) Owned(context.Context, string) ([]int, int, error) {
	return f.mine, len(f.mine), nil
}

// A label partition this member reads that has delivered nothing yet holds settling
// until it delivers a label or is found read to its end: under load a partition's first
// fetch can come after the start-up grace, and settling without it judged its windows
// with part of their labels (a flake of TestLabelsRestartGivesTheSameResults).
func TestLabelPartitionNotDeliveredYetHoldsSettling(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tp := func(p int) consumers.TopicPartition { return consumers.TopicPartition{Topic: "labels", Partition: p} }
	stamp := now.Add(-2 * time.Hour)
	for _, c := range []struct {
		name   string
		ends   consumers.Ends // of partition 1, which delivered nothing
		wantOK bool
		wantWM time.Time
	}{
		{name: "records waiting on it: held", ends: consumers.Ends{Start: 0, End: 5}},
		{name: "nothing on it since this member began: read to its end", ends: consumers.Ends{Start: 5, End: 5}, wantOK: true, wantWM: stamp},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := ownedEnds{endsFake: endsFake{ends: map[consumers.TopicPartition]consumers.Ends{
				tp(0): {Start: 0, End: 10}, tp(1): c.ends}}, mine: []int{0, 1}}
			r := New(Settings{LabelTopic: "labels"}, src, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
			r.lab.models["m"] = true
			r.lab.progress[tp(0)] = labelPart{stamp: stamp}
			r.lastSeen[tp(0)] = 4 // five of its ten records read
			v, ok, err := r.memberLabels(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if ok != c.wantOK || !v.wm.Equal(c.wantWM) {
				t.Errorf("settle view ok=%v watermark %v, want ok=%v %v", ok, v.wm, c.wantOK, c.wantWM)
			}
			if ok && len(v.partitions) != 2 {
				t.Errorf("partitions joined: %v, want both", v.partitions)
			}
		})
	}
}

// A label partition with records that delivers none keeps holding settling, and says so
// at error level once it has held for startWaitGraces graces, at most once a minute.
func TestSilentLabelPartitionIsLogged(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	now := t0
	tp := func(p int) consumers.TopicPartition { return consumers.TopicPartition{Topic: "labels", Partition: p} }
	src := ownedEnds{endsFake: endsFake{ends: map[consumers.TopicPartition]consumers.Ends{
		tp(0): {Start: 0, End: 10}, tp(1): {Start: 0, End: 5}}}, mine: []int{0, 1}}
	var logs bytes.Buffer
	r := New(Settings{LabelTopic: "labels", StartupGrace: 5 * time.Second}, src, nil, nil, nil,
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError})), func() time.Time { return now })
	r.lab.models["m"] = true
	r.lab.progress[tp(0)] = labelPart{stamp: t0.Add(-2 * time.Hour)}
	for _, step := range []struct {
		after    time.Duration
		wantLogs int
	}{
		{0, 0},
		{startWaitGraces*5*time.Second - time.Second, 0},
		{startWaitGraces * 5 * time.Second, 1},
		{startWaitGraces*5*time.Second + 30*time.Second, 1}, // once a minute
		{startWaitGraces*5*time.Second + time.Minute, 2},
	} {
		now = t0.Add(step.after)
		if _, ok, err := r.memberLabels(context.Background()); err != nil || ok {
			t.Fatalf("after %v: settle view ok=%v err=%v, want held", step.after, ok, err)
		}
		if got := strings.Count(logs.String(), "label partitions with records deliver none"); got != step.wantLogs {
			t.Fatalf("after %v: %d error logs, want %d:\n%s", step.after, got, step.wantLogs, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "partitions=[1]") {
		t.Errorf("the log names partition 1 only:\n%s", logs.String())
	}
}

// The start-up grace is over once its time is and every partition this member reads
// has delivered a record or had nothing to read; a partition with records that delivers
// none holds it for startWaitGraces graces at most.
func TestGraceWaitsForEveryPartitionToStart(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tp := func(topic string, p int) consumers.TopicPartition {
		return consumers.TopicPartition{Topic: topic, Partition: p}
	}
	for _, c := range []struct {
		name      string
		ends      map[consumers.TopicPartition]consumers.Ends
		delivered []consumers.TopicPartition
		after     time.Duration // since the first record
		want      bool
	}{
		{name: "every partition delivered within the grace's time", after: time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("p", 1), tp("l", 0), tp("l", 1)}},
		{name: "within the grace's time, one has not delivered", after: time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("p", 1), tp("l", 0)},
			ends: map[consumers.TopicPartition]consumers.Ends{tp("l", 1): {Start: 3, End: 9}}},
		{name: "every partition delivered", after: 3 * time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("p", 1), tp("l", 0), tp("l", 1)}, want: true},
		{name: "a label partition with records delivered none", after: 3 * time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("p", 1), tp("l", 0)},
			ends: map[consumers.TopicPartition]consumers.Ends{tp("l", 1): {Start: 3, End: 9}}},
		{name: "a partition with nothing to read", after: 3 * time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("l", 0), tp("l", 1)},
			ends: map[consumers.TopicPartition]consumers.Ends{tp("p", 1): {Start: 9, End: 9}}, want: true},

		{name: "delivering none for twelve graces", after: startWaitGraces * 2 * time.Second, delivered: []consumers.TopicPartition{tp("p", 0), tp("p", 1), tp("l", 0)},
			ends: map[consumers.TopicPartition]consumers.Ends{tp("l", 1): {Start: 3, End: 9}}, want: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := t0.Add(c.after)
			src := ownedEnds{endsFake: endsFake{ends: c.ends}, mine: []int{0, 1}}
			r := New(Settings{PredictionTopic: "p", LabelTopic: "l", StartupGrace: 2 * time.Second}, src, nil, nil, nil,
				slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
			r.grace.began, r.grace.firstRec = t0.Add(-time.Second), t0
			for _, tp := range c.delivered {
				r.lastSeen[tp] = 0
			}
			if r.graceOver(now) {
				t.Fatal("grace over before any partition was checked")
			}
			r.checkStarted(context.Background(), now) // as Run asks, for every record
			if got := r.graceOver(now); got != c.want {
				t.Errorf("grace over: %v, want %v", got, c.want)
			}
		})
	}
}

// joiningEnds is a group source whose first generation comes when joined is set.
type joiningEnds struct {
	ownedEnds
	joined *bool
}

func (f joiningEnds) Joined() bool { return *f.joined }

func (f joiningEnds) Owned(ctx context.Context, topic string) ([]int, int, error) {
	if !*f.joined {
		return nil, 0, nil // as a consumer before its first generation: it reads nothing
	}
	return f.ownedEnds.Owned(ctx, topic)
}

// A group join slower than the start-up grace does not end the grace's wait for the
// partitions: before the first generation this member reads nothing, and taking that
// for "every partition started" judged windows before the partitions given at the join
// had delivered (review of session 15). The grace's time and bound count from the join.
func TestGraceWaitsForTheFirstGeneration(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	now := t0
	joined := false
	lp1 := consumers.TopicPartition{Topic: "l", Partition: 1}
	src := joiningEnds{ownedEnds: ownedEnds{endsFake: endsFake{ends: map[consumers.TopicPartition]consumers.Ends{lp1: {Start: 3, End: 9}}}, mine: []int{0, 1}}, joined: &joined}
	r := New(Settings{PredictionTopic: "p", LabelTopic: "l", StartupGrace: 2 * time.Second}, src, nil, nil, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	r.grace.began = t0
	check := func(step string, want bool) {
		t.Helper()
		r.checkStarted(context.Background(), now) // as Run asks, for every record
		if got := r.graceOver(now); got != want {
			t.Fatalf("%s: grace over %v, want %v", step, got, want)
		}
	}
	now = t0.Add(10 * time.Second) // three graces and more, no generation yet
	check("not joined after five graces", false)
	joined = true
	now = now.Add(time.Second)
	check("joined a second ago", false)
	for i := range 3 {
		r.lastSeen[consumers.TopicPartition{Topic: "p", Partition: i % 2}] = 0
	}
	r.lastSeen[consumers.TopicPartition{Topic: "l", Partition: 0}] = 0
	r.grace.firstRec = now
	now = now.Add(3 * time.Second)
	check("label partition 1 with records has delivered none", false)
	now = now.Add(time.Second)
	r.lastSeen[lp1] = 3
	check("every partition delivered", true)
}

// One member's prediction windows close before the grace's time is over once every
// prediction partition it reads has delivered a record that placed it in event time: a
// partition read behind then holds the models it has not delivered (processors'
// HoldUnseen, on until the grace's time is over), and a backlog is not read for the
// whole grace with every window it opens held in memory. They wait for the time while
// fewer than Settings.EarlyCloseRecords predictions have been added (a short outage,
// live traffic: the memory is not needed, and the time covers more), when a
// prediction partition had nothing to read (its later records are live and may come
// from its reader last), when a partition's records were all set aside, and in a spread
// group, whose judges read progress rows that say nothing of such a partition. Labels
// and stage windows always wait for the time.
func TestWindowsCloseEarlyOnceEveryPredictionPartitionIsPlaced(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	p0, p1 := consumers.TopicPartition{Topic: "p", Partition: 0}, consumers.TopicPartition{Topic: "p", Partition: 1}
	for _, c := range []struct {
		name   string
		placed []consumers.TopicPartition // delivered a prediction added to a window
		aside  []consumers.TopicPartition // delivered records all set aside (dead-lettered)
		ends   map[consumers.TopicPartition]consumers.Ends
		spread bool
		few    bool // fewer predictions added than Settings.EarlyCloseRecords
		want   bool
	}{
		{name: "every prediction partition placed", placed: []consumers.TopicPartition{p0, p1}, want: true},
		{name: "too few records read", placed: []consumers.TopicPartition{p0, p1}, few: true},
		{name: "one has not delivered yet", placed: []consumers.TopicPartition{p0}, ends: map[consumers.TopicPartition]consumers.Ends{p1: {Start: 3, End: 9}}},
		{name: "one had nothing to read", placed: []consumers.TopicPartition{p0}, ends: map[consumers.TopicPartition]consumers.Ends{p1: {Start: 9, End: 9}}},
		{name: "one delivered records all set aside", placed: []consumers.TopicPartition{p0}, aside: []consumers.TopicPartition{p1}},
		{name: "a spread group", placed: []consumers.TopicPartition{p0, p1}, spread: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := t0
			src := ownedEnds{endsFake: endsFake{ends: c.ends}, mine: []int{0, 1}}
			r := New(Settings{PredictionTopic: "p", StartupGrace: 5 * time.Second, EarlyCloseRecords: 10, WindowSpec: func(string) processors.WindowSpec {
				return processors.WindowSpec{Size: time.Minute}
			}}, src, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
			if c.spread {
				r.spread = newSpreadState()
			}
			r.grace.began, r.grace.firstRec = t0, t0
			for i, tp := range c.placed {
				e := &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(-time.Hour), Status: "ok",
					Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
				r.proc.Read(processors.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, true)
				if o, _, _ := r.proc.Add(e, processors.Source{Topic: tp.Topic, Partition: tp.Partition, Offset: int64(i)}, now); o != processors.Added {
					t.Fatalf("%v: outcome %d", tp, o)
				}
				r.lastSeen[tp] = 0
			}
			for _, tp := range c.aside {
				r.lastSeen[tp] = 0
			}
			r.stats.Added = 10
			if c.few {
				r.stats.Added = 9
			}
			now = t0.Add(time.Second)
			r.checkStarted(context.Background(), now) // as Run asks, for every record
			if got := r.placed(); got != c.want {
				t.Fatalf("a second after the first record: windows may close %v, want %v", got, c.want)
			}
			if r.graceOver(now) {
				t.Fatal("grace over before its time")
			}
			now = t0.Add(5 * time.Second)
			if c.ends[p1].Start < c.ends[p1].End {
				r.lastSeen[p1] = 3 // its first record, for the grace's time
			}
			r.checkStarted(context.Background(), now)
			if !r.graceOver(now) {
				t.Fatal("grace not over after its time")
			}
		})
	}
}
