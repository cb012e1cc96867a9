package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// A model's windows are complete up to the earliest progress of the partitions carrying
// it, leaving out a partition far behind the newest (as one member's watermark drops it),
// unless it is read behind the others, which holds it ten times longer, or its row was
// written in a generation of the group before the judge's (its reader now not known).
func TestCompleteThrough(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	row := func(part int, through, eventMax time.Duration) storage.PartitionProgress {
		return storage.PartitionProgress{Model: "m", TP: processors.TopicPartition{Topic: "p", Partition: part},
			Through: t0.Add(through), EventMax: t0.Add(eventMax)}
	}
	lagging := func(p storage.PartitionProgress) storage.PartitionProgress {
		p.Lagging = true
		return p
	}
	const gen = 7 // the judge's generation
	current := func(p storage.PartitionProgress) storage.PartitionProgress {
		p.Generation = gen
		return p
	}
	earlier := func(p storage.PartitionProgress) storage.PartitionProgress {
		p.Generation = gen - 1
		return p
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
		{"read behind, it is waited for beyond the skew bound", []storage.PartitionProgress{row(0, 70*time.Minute, 71*time.Minute), lagging(row(1, 0, time.Minute))}, 0, true},
		{"read behind, up to ten skew bounds", []storage.PartitionProgress{row(0, 600*time.Minute, 601*time.Minute), lagging(row(1, 0, time.Minute))}, 0, true},
		{"read behind, beyond ten skew bounds it is not", []storage.PartitionProgress{row(0, 600*time.Minute, 602*time.Minute), lagging(row(1, 0, time.Minute))}, 600 * time.Minute, true},
		{"of this generation, as written", []storage.PartitionProgress{current(row(0, 70*time.Minute, 71*time.Minute)), current(row(1, 0, time.Minute))}, 70 * time.Minute, true},
		{"of an earlier generation, waited for beyond the skew bound", []storage.PartitionProgress{current(row(0, 70*time.Minute, 71*time.Minute)), earlier(row(1, 0, time.Minute))}, 0, true},
		{"of an earlier generation, not beyond ten skew bounds", []storage.PartitionProgress{current(row(0, 600*time.Minute, 602*time.Minute)), earlier(row(1, 0, time.Minute))}, 600 * time.Minute, true},
	} {
		g := int32(0) // rows and judge without a generation: 0 for all
		if c.rows != nil && c.rows[0].Generation != 0 {
			g = gen
		}
		got, ok := completeThrough(c.rows, processors.WindowSpec{Size: time.Minute, MaxSkew: time.Hour}, g)
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

// A partition dates the stream by its newest event while it has unread records, else by
// its reader's caught-up clock (the newest event it read moved on by the wall clock, at
// most a minute ahead of it); one that dates nothing says so (zero).
func TestPartitionClock(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tp := func(p int) consumers.TopicPartition { return consumers.TopicPartition{Topic: "p", Partition: p} }
	c := newStreamClock()
	if got := c.partitionClock(tp(0), wall); !got.IsZero() {
		t.Errorf("nothing read: %v, want zero", got)
	}
	c.position(tp(0), 10) // behind, nothing decoded yet
	if got := c.partitionClock(tp(0), wall); !got.IsZero() {
		t.Errorf("behind and undated: %v, want zero", got)
	}
	c.event(tp(0), t0.Add(time.Minute), wall)
	c.position(tp(1), 0)
	c.event(tp(1), t0.Add(3*time.Minute), wall)
	for _, k := range []struct {
		name string
		p    int
		at   time.Time
		want time.Time
	}{
		{"behind: its newest event", 0, wall.Add(time.Hour), t0.Add(time.Minute)},
		{"caught up: the newest read, moved on by the wall clock", 1, wall.Add(10 * time.Second), t0.Add(3*time.Minute + 10*time.Second)},
		{"never read, caught up alike", 2, wall.Add(10 * time.Second), t0.Add(3*time.Minute + 10*time.Second)},
	} {
		if got := c.partitionClock(tp(k.p), k.at); !got.Equal(k.want) {
			t.Errorf("%s: %v, want %v", k.name, got, k.want)
		}
	}
	// A newest event ahead of the wall clock is held to a minute ahead of it.
	c.event(tp(1), wall.Add(time.Hour), wall)
	if got := c.partitionClock(tp(1), wall); !got.Equal(wall.Add(maxAhead)) {
		t.Errorf("ahead of the wall clock: %v, want %v", got, wall.Add(maxAhead))
	}
}

// A spread judge gives a silent series its empty windows up to where its model is judged,
// and past it only while no partition holds an event of the model not judged and every
// partition's clock is past the window's end plus the lateness.
func TestSilentOwned(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	s := processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	row := func(part int, eventMax time.Duration) storage.PartitionProgress {
		return storage.PartitionProgress{Model: "m", TP: processors.TopicPartition{Topic: "p", Partition: part}, Through: at(2 * time.Minute), EventMax: at(eventMax)}
	}
	for _, c := range []struct {
		name   string
		upTo   map[string]time.Time
		rows   []storage.PartitionProgress
		clock  time.Time
		starts []time.Duration
	}{
		{"within what is judged", map[string]time.Time{"m": at(4 * time.Minute)}, nil, time.Time{}, []time.Duration{2 * time.Minute, 3 * time.Minute}},
		{"past it, quiet, clock past", map[string]time.Time{"m": at(2 * time.Minute)},
			[]storage.PartitionProgress{row(0, 110*time.Second), row(1, 119*time.Second)}, at(4*time.Minute + 5*time.Second), []time.Duration{2 * time.Minute, 3 * time.Minute}},
		{"past it, an event not judged", map[string]time.Time{"m": at(2 * time.Minute)},
			[]storage.PartitionProgress{row(0, 110*time.Second), row(1, 150*time.Second)}, at(4*time.Minute + 5*time.Second), nil},
		{"past it, no clock", map[string]time.Time{"m": at(2 * time.Minute)}, []storage.PartitionProgress{row(0, 110*time.Second)}, time.Time{}, nil},
		{"past it, the clock short of the lateness", map[string]time.Time{"m": at(2 * time.Minute)},
			[]storage.PartitionProgress{row(0, 110*time.Second)}, at(3*time.Minute + 4*time.Second), nil},
		{"another member's model", map[string]time.Time{"other": at(4 * time.Minute)}, nil, at(time.Hour), nil},
	} {
		set := Settings{Spread: true, PredictionTopic: "p",
			WindowSpec: func(string) processors.WindowSpec {
				return processors.WindowSpec{Size: time.Minute, Lateness: 5 * time.Second}
			}}
		r := &Runner{set: set, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r.proc = processors.NewProcessor(set.WindowSpec, processors.Limits{})
		r.j = newJudge(&r.set, r.log, nil)
		r.j.refs[[2]string{"m", "1"}] = &detectors.Profile{Model: "m", Version: "1"}
		w := processors.EmptyWindow(s, t0.Add(time.Minute).UnixMilli(), t0.Add(2*time.Minute).UnixMilli())
		w.Events = 10
		r.fillGaps([]processors.Closed{{Merged: w}}) // the series' windows end at 10:02
		var got []time.Duration
		for _, e := range r.silentOwned(map[string][]storage.PartitionProgress{"m": c.rows}, c.upTo, c.clock) {
			got = append(got, time.UnixMilli(e.Merged.Start).Sub(t0))
		}
		if !slices.Equal(got, c.starts) {
			t.Errorf("%s: empty windows at %v, want %v", c.name, got, c.starts)
		}
	}
}

// fakeOwner reads partitions mine of every topic, of total, in a group that agreed on
// driftd-spread or not (whole), or has not said yet (known false).
type fakeOwner struct {
	mine         []int
	total        int
	whole, known bool
}

func (f fakeOwner) Owned(context.Context, string) ([]int, int, error) { return f.mine, f.total, nil }
func (f fakeOwner) WholeTopics() (bool, bool)                         { return f.whole, f.known }

// A judge waits for the clock of every partition of the pipeline topic, except in a group
// that fell back to range (a member of an older driftd, which writes no clocks): there it
// judges without waiting, rather than not at all until the last member is upgraded.
func TestUpstreamReadInAGroupOnRange(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	clock := func(part int, at time.Time) storage.PartitionProgress {
		return storage.PartitionProgress{TP: processors.TopicPartition{Topic: "pipe", Partition: part}, Through: at, EventMax: at}
	}
	one := []storage.PartitionProgress{clock(0, t0)}
	both := []storage.PartitionProgress{clock(0, t0), clock(1, t0.Add(-time.Hour))}
	for _, c := range []struct {
		name        string
		owner       fakeOwner
		progress    []storage.PartitionProgress
		bounded, ok bool
		bound       time.Time
	}{
		{"driftd-spread, a partition without a clock: wait", fakeOwner{total: 2, whole: true, known: true}, one, false, false, time.Time{}},
		{"driftd-spread, every clock: the least less the lateness", fakeOwner{total: 2, whole: true, known: true}, both, true, true, t0.Add(-61 * time.Minute)},
		{"not known yet: as driftd-spread", fakeOwner{total: 2}, one, false, false, time.Time{}},
		{"range: no bound", fakeOwner{total: 2, known: true}, one, false, true, time.Time{}},
		{"no partitions: no bound", fakeOwner{whole: true, known: true}, nil, false, true, time.Time{}},
	} {
		var logs bytes.Buffer
		r := &Runner{set: Settings{PipelineTopic: "pipe", PipelineWindow: processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}},
			up: &upstream{}, spread: newSpreadState(), log: slog.New(slog.NewTextHandler(&logs, nil)), now: func() time.Time { return t0 }}
		bound, bounded, ok := r.upstreamRead(context.Background(), c.owner, c.progress)
		if bounded != c.bounded || ok != c.ok || !bound.Equal(c.bound) {
			t.Errorf("%s: %v %v %v, want %v %v %v", c.name, bound, bounded, ok, c.bound, c.bounded, c.ok)
		}
		if said := strings.Contains(logs.String(), "level=ERROR"); said != (c.owner.known && !c.owner.whole && c.owner.total > 0) {
			t.Errorf("%s: logged %q", c.name, logs.String())
		}
	}
}

// judgeProgressStore answers LoadJudgeProgress (failing while fail is set) and counts the
// reads, and LoadWrittenWindows with written (failing while failWritten is set); every
// other method of Store is left nil.
type judgeProgressStore struct {
	Store
	fail        bool
	reads       int
	written     []storage.ClosedWindow
	failWritten bool
}

func (s *judgeProgressStore) LoadWrittenWindows(_ context.Context, models []string, from, through time.Time) ([]storage.ClosedWindow, error) {
	if s.failWritten {
		return nil, errors.New("clickhouse down")
	}
	var out []storage.ClosedWindow
	for _, w := range s.written {
		if slices.Contains(models, w.Model) && w.Start > from.UnixMilli() && w.End <= through.UnixMilli() {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *judgeProgressStore) LoadJudgeProgress(_ context.Context, models ...string) ([]storage.JudgeProgress, error) {
	s.reads++
	if s.fail {
		return nil, errors.New("clickhouse down")
	}
	return []storage.JudgeProgress{{Model: models[0], Through: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}}, nil
}

// A partition's first record of a model reads how far the model is judged once: again
// after a failed read (a second later at the soonest, so that an outage does not cost a
// query per record), and again once the processor forgot the model.
func TestFirstDeliveryReadsUntilItKnows(t *testing.T) {
	wall := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	st := &judgeProgressStore{fail: true}
	r := &Runner{store: st, spread: newSpreadState(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return wall },
		proc: processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})}
	tp := processors.TopicPartition{Topic: "p", Partition: 1}
	ctx := context.Background()
	for _, step := range []struct {
		name  string
		after time.Duration
		fail  bool
		forgo bool
		reads int
	}{
		{"first record, ClickHouse down", 0, true, false, 1},
		{"the next record, within a second", 500 * time.Millisecond, true, false, 1},
		{"a second after the failure", 500 * time.Millisecond, false, false, 2},
		{"known: no more reads", time.Second, false, false, 2},
		{"the model forgotten", time.Second, false, true, 3},
		{"known again", time.Second, false, false, 3},
	} {
		wall = wall.Add(step.after)
		st.fail = step.fail
		if step.forgo {
			r.forgetDelivered([]processors.SeriesKey{{Model: "m", Version: "1"}})
		}
		r.firstDelivery(ctx, "m", tp)
		if st.reads != step.reads {
			t.Errorf("%s: %d reads, want %d", step.name, st.reads, step.reads)
		}
	}
	// What was read is what the processor holds: a record of a judged window is late.
	e := &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: time.Date(2026, 3, 4, 9, 59, 0, 0, time.UTC)}
	if out, _, _ := r.proc.Add(e, processors.Source{Topic: "p", Partition: 1}, wall); out != processors.Late {
		t.Errorf("a record of a judged window: outcome %v, want late", out)
	}
}

// progressStore answers LoadPartitionProgress with rows; every other method of Store is
// left nil.
type progressStore struct {
	Store
	rows []storage.PartitionProgress
}

func (s *progressStore) LoadPartitionProgress(context.Context) ([]storage.PartitionProgress, error) {
	return s.rows, nil
}

// groupMember is a member of a consumer group reading partitions mine of four, in
// generation gen.
type groupMember struct {
	fakeOwner
	gen int32
}

func (g *groupMember) Fetch(ctx context.Context) (consumers.Record, error) {
	return consumers.Record{}, ctx.Err()
}
func (g *groupMember) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (g *groupMember) Assigned() int                                                    { return len(g.mine) }
func (g *groupMember) Generation() int32                                                { return g.gen }

// A member given partitions takes over the model rows written of them before (by their
// previous reader, or by itself in an earlier generation) and writes them again in its
// generation: read behind until its start-up grace is over, then as its reading says (a
// partition that delivered nothing although it had records stays read behind), until
// its own rows replace them; a row of another generation written after them is taken
// over again. Nothing is written between generations, nor of partitions not its own; a
// new generation writes every row again. Without this, the previous reader's last row
// (read to its end, its newest event frozen) let the judge stop waiting for the
// partition while its new reader re-read it.
func TestPartitionsTakenOverAreHeldUntilReadAgain(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tp := func(p int) processors.TopicPartition { return processors.TopicPartition{Topic: "preds", Partition: p} }
	stored := []storage.PartitionProgress{
		{Model: "", TP: tp(0), Through: t0, EventMax: t0, Generation: 2},
		{Model: "m", TP: tp(0), Through: t0, EventMax: t0.Add(50 * time.Minute), Generation: 2},
		{Model: "m", TP: tp(1), Through: t0, EventMax: t0.Add(40 * time.Minute), Generation: 2},
		{Model: "m", TP: tp(2), Through: t0, EventMax: t0.Add(30 * time.Minute), Generation: 2},
		{Model: "m", TP: tp(3), Through: t0, EventMax: t0.Add(35 * time.Minute), Generation: 2},
		{Model: "n", TP: tp(1), Through: t0, EventMax: t0.Add(20 * time.Minute), Lagging: true, Generation: 1},
	}
	src := &groupMember{fakeOwner: fakeOwner{mine: []int{0, 1, 3}, total: 4}, gen: 3}
	spec := func(string) processors.WindowSpec {
		return processors.WindowSpec{Size: time.Hour, Lateness: time.Minute}
	}
	r := &Runner{set: Settings{PredictionTopic: "preds", StartupGrace: time.Second, WindowSpec: spec}, src: src, store: &progressStore{rows: stored},
		spread: newSpreadState(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return wall },
		proc: processors.NewProcessor(spec, processors.Limits{}), clock: newStreamClock(),
		lastSeen: map[consumers.TopicPartition]int64{}, grace: startup{began: wall, drained: map[consumers.TopicPartition]bool{}}}
	// again is stored row i taken over in generation gen, read behind or not.
	again := func(i int, gen int32, lagging bool) storage.PartitionProgress {
		p := stored[i]
		p.Lagging, p.Generation = lagging, gen
		return p
	}
	flush := func(step string, want ...storage.PartitionProgress) {
		t.Helper()
		if !r.progressDue() && want != nil {
			t.Errorf("%s: no flush due", step)
		}
		var b storage.Batch
		if err := r.shareWindows(context.Background(), &b, nil); err != nil {
			t.Fatal(err)
		}
		var models []storage.PartitionProgress // clocks are another test's
		for _, p := range b.Progress {
			if p.Model != "" {
				models = append(models, p)
			}
		}
		if !slices.Equal(models, want) {
			t.Errorf("%s: wrote\n%+v\nwant\n%+v", step, models, want)
		}
	}
	flush("assigned, in the grace: read behind", again(1, 3, true), again(2, 3, true), again(4, 3, true), again(5, 3, true))
	flush("nothing changed")
	// The grace over: partition 0 read behind, 1 read to its end (nothing to read when
	// asked), 3 delivered nothing although it had records (it cannot be read).
	r.grace.all, wall = true, wall.Add(10*time.Second)
	r.proc.Read(tp(0), true)
	r.grace.drained[consumers.TopicPartition{Topic: "preds", Partition: 1}] = true
	flush("the grace over: as read here", again(2, 3, false), again(5, 3, false))
	// Partition 0 delivers model m: its own row replaces the one taken over. Partition 2
	// (not this member's; a record fetched before the generation began) writes nothing.
	for i, part := range []int{0, 2} {
		e := &schemas.PredictionEvent{EventID: fmt.Sprint("e", i), Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: t0.Add(90 * time.Minute)}
		if out, _, _ := r.proc.Add(e, processors.Source{Topic: "preds", Partition: part}, wall); out != processors.Added {
			t.Fatalf("outcome %v", out)
		}
	}
	own := storage.PartitionProgress{Model: "m", TP: tp(0), Through: t0.Add(time.Hour), EventMax: t0.Add(90 * time.Minute), Lagging: true, Generation: 3}
	flush("its own row", own)
	// The last judging read a row of partition 1 from another generation, written after
	// the claim (a member that lost the partition and had not learnt it yet).
	zombie := stored[2]
	zombie.Through, zombie.EventMax = t0.Add(time.Hour), t0.Add(70*time.Minute)
	r.spread.progress = []storage.PartitionProgress{zombie}
	taken := zombie
	taken.Generation = 3
	flush("a row of another generation, taken over again", taken)
	r.spread.progress = nil
	// The generation ends: nothing is written until the next.
	src.gen = 0
	flush("between generations")
	// A new generation, the same partitions: every row again, in it.
	src.gen = 4
	own.Generation = 4
	flush("a new generation", own, again(2, 4, false), again(4, 4, true), again(5, 4, false))
}

// A partition's previous reader may write a window after this member restored (its write
// cut off by the rebalance still stored, its commit refused), and the window be judged:
// this member, reading the partition again from the last commit, learns with the judgement
// what was written, so that those records are replays, not late (a spread group then
// counts late records as one member does). Records past what was written are late; when
// the written windows cannot be read, the judgement is not taken either, and the record
// is added (written unjudged, its judged copy wins).
func TestRecordsWrittenByThePreviousReaderAreReplays(t *testing.T) {
	wall := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	start := time.Date(2026, 3, 4, 9, 59, 0, 0, time.UTC)
	tp := processors.TopicPartition{Topic: "p", Partition: 1}
	for _, c := range []struct {
		name        string
		failWritten bool
		offset      int64
		want        processors.Outcome
	}{
		{"a record the previous reader wrote", false, 10, processors.Replayed},
		{"the last record it wrote", false, 20, processors.Replayed},
		{"a record after what it wrote", false, 21, processors.Late},
		{"the written windows not read", true, 10, processors.Added},
	} {
		st := &judgeProgressStore{failWritten: c.failWritten, written: []storage.ClosedWindow{
			{Model: "m", Start: start.UnixMilli(), End: start.Add(time.Minute).UnixMilli(), TP: tp, LastOffset: 20},
			{Model: "other", Start: start.UnixMilli(), End: start.Add(time.Minute).UnixMilli(), TP: tp, LastOffset: 99},
		}}
		r := &Runner{store: st, spread: newSpreadState(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return wall },
			proc: processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: time.Minute} }, processors.Limits{})}
		// Restored before the window was written: nothing known of it.
		r.firstDelivery(context.Background(), "m", tp)
		e := &schemas.PredictionEvent{Model: "m", ModelVersion: "1", Deployment: "primary", Timestamp: start.Add(30 * time.Second)}
		if out, _, _ := r.proc.Add(e, processors.Source{Topic: tp.Topic, Partition: tp.Partition, Offset: c.offset}, wall); out != c.want {
			t.Errorf("%s: outcome %v, want %v", c.name, out, c.want)
		}
	}
}
