package storage_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// A spread group writes partials before their windows are judged: a member's restart
// restores the judging state (series ends, hourly events, recent volume) from the windows
// judged only, up to judge_progress (ForSpreadGroup). A window judged from its partials
// read back has its partials' rows written again with its judgement, replacing them (not
// added).
func TestRestoreReadsOnlyJudgedWindows(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	series, end := closed[0].Merged.Series, func(i int) time.Time { return time.UnixMilli(closed[i].Merged.End).UTC() }
	// Partials written unjudged, and three windows judged.
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0,
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(2)}}}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	sp := s.ForSpreadGroup()
	restored := func() string {
		t.Helper()
		ends, err := sp.LoadSeriesEnds(ctx, 48*time.Hour)
		if err != nil || len(ends) != 1 {
			t.Fatalf("series ends %v %v", ends, err)
		}
		hourly, err := sp.LoadHourlyEvents(ctx, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var events uint64
		for _, h := range hourly {
			events += h.Events
		}
		recent, err := sp.LoadVolumeWindows(ctx, 48*time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		last := recent[len(recent)-1]
		return fmt.Sprintf("end %v, %d events, %d windows, last %g/%t", ends[0].End.Sub(t0), events, len(recent), last.Expected, last.Low)
	}
	if got, want := restored(), "end 1h30m0s, 300 events, 3 windows, last 0/false"; got != want {
		t.Errorf("restored %q, want %q", got, want)
	}
	// The fourth window judged from its partials read back.
	judged := &storage.Batch{WrittenAt: t0.Add(time.Hour), Closed: []processors.Closed{{Merged: closed[3].Merged}},
		Verdicts:      []detectors.Verdict{{Window: closed[3].Merged, ExpectedEvents: 400, VolumeLow: true, Judgement: "judged from its partitions"}},
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(3)}}}
	if err := s.WriteWithRetry(ctx, judged, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := restored(), "end 2h0m0s, 400 events, 4 windows, last 400/true"; got != want {
		t.Errorf("after judging the fourth window, restored %q, want %q", got, want)
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT count(), countIf(judgement != ''), sum(events), sum(volume_low) FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if want := "12\t2\t600\t2"; strings.TrimSpace(out) != want {
		t.Errorf("rows (count, judged, events, low) %q, want %q: the fourth window's two partial rows rewritten", out, want)
	}
	// Judge progress only moves forward.
	if err := s.WriteWithRetry(ctx, &storage.Batch{WrittenAt: t0.Add(2 * time.Hour),
		JudgedThrough: []storage.JudgeProgress{{Model: series.Model, Through: end(0)}}}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadJudgeProgress(ctx); err != nil || len(got) != 1 || !got[0].Through.Equal(end(3)) {
		t.Errorf("judge progress %v %v, want the fourth window's end", got, err)
	}
	// Read for named models only (a reader's first record of a model on a partition).
	if got, err := s.LoadJudgeProgress(ctx, series.Model); err != nil || len(got) != 1 || got[0].Model != series.Model {
		t.Errorf("judge progress of %s: %v %v, want its row", series.Model, got, err)
	}
	if got, err := s.LoadJudgeProgress(ctx, "no such model"); err != nil || len(got) != 0 {
		t.Errorf("judge progress of a model never judged: %v %v, want none", got, err)
	}
	// The windows written between two judge progresses (starting after the second
	// window's start, ending by the fourth's end), per partition, with their last offsets
	// (what a member learns with a judgement).
	written, err := s.LoadWrittenWindows(ctx, []string{series.Model, "no such model"}, end(1).Add(-time.Millisecond), end(3))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range written {
		if w.LastOffset <= 0 {
			t.Errorf("written window %+v: no last offset", w)
		}
		got = append(got, fmt.Sprintf("%v %s/%d %d", time.UnixMilli(w.End).UTC().Sub(t0), w.TP.Topic, w.TP.Partition, w.LastOffset))
	}
	slices.Sort(got)
	if len(got) != 4 || !strings.HasPrefix(got[0], "1h30m0s ") || !strings.HasPrefix(got[3], "2h0m0s ") {
		t.Errorf("written windows ending in (end 1, end 3]: %v, want the third and fourth windows, of two partitions each", got)
	}
}

// A model's windows read back together (a spread group's judge) are the windows read
// back one by one.
func TestLoadWindowsEqualsLoadWindow(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	series := closed[0].Merged.Series
	summary := func(w *processors.WindowAgg) string {
		a := w.Features["amount"]
		return fmt.Sprintf("%v %d-%d events %d errors %d latency %g/%g amount %d %.9g %.9g", w.Series, w.Start, w.End, w.Events, w.Errors,
			w.Latency.Count(), w.Latency.Quantile(0.9), a.Count, a.Moments.Mean, a.Sketch.Quantile(0.5))
	}
	// Windows ending after the first one's end and up to the fifth's.
	all, err := s.LoadWindows(ctx, series.Model, time.UnixMilli(closed[0].Merged.End), time.UnixMilli(closed[4].Merged.End))
	if err != nil || len(all) != 4 {
		t.Fatalf("%d windows read back (%v), want 4", len(all), err)
	}
	for i, w := range all {
		one, err := s.LoadWindow(ctx, series, time.UnixMilli(closed[i+1].Merged.Start))
		if err != nil || one == nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		if got, want := summary(w), summary(one); got != want {
			t.Errorf("window %d read back with the others:\n%s\nalone:\n%s", i+1, got, want)
		}
		if got, want := summary(w), summary(closed[i+1].Merged); got != want {
			t.Errorf("window %d read back:\n%s\nwritten:\n%s", i+1, got, want)
		}
	}
}

// The judge's rewrite of a window's partial rows wins over the unjudged rows (the
// ReplacingMergeTree keeps the newest written_at) even when the reader that wrote them,
// on another host, has a clock ahead of the judge's.
func TestJudgementRewriteWinsOverAReaderClockAhead(t *testing.T) {
	st := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := st.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	s := st.ForSpreadGroup()
	closed := sixWindows(t)
	// The reader (clock 2 s ahead) writes its partials unjudged.
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0.Add(time.Hour + 2*time.Second)}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// One second later by the reader's clock, the judge (its clock 2 s behind) judges window 0.
	judged := &storage.Batch{WrittenAt: t0.Add(time.Hour + time.Second), Closed: []processors.Closed{{Merged: closed[0].Merged}},
		Verdicts:      []detectors.Verdict{{Window: closed[0].Merged, ExpectedEvents: 100, Judgement: "judged"}},
		JudgedThrough: []storage.JudgeProgress{{Model: closed[0].Merged.Series.Model, Through: time.UnixMilli(closed[0].Merged.End).UTC()}}}
	if err := s.WriteWithRetry(ctx, judged, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT countIf(judgement != '') FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "2" {
		t.Errorf("judged partial rows after the rewrite: %s, want 2 (window 0's two partitions): the judgement lost to the reader's newer written_at", strings.TrimSpace(out))
	}
}

// A partition's new owner that reads again records its previous owner wrote but had not
// committed writes the same partial again, after the judge rewrote it with its window's
// judgement and with a clock ahead of the judge's: the judged copy stays (the spread
// group's determinism test once lost a judgement so).
func TestJudgementOutlivesAPartialWrittenAgain(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	sp := s.ForSpreadGroup()
	closed := sixWindows(t)
	write := func(b *storage.Batch) {
		t.Helper()
		if err := sp.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	write(&storage.Batch{Closed: closed, WrittenAt: t0.Add(time.Hour)})
	first := closed[0].Merged
	write(&storage.Batch{WrittenAt: t0.Add(time.Hour + time.Second), Closed: []processors.Closed{{Merged: first}},
		Verdicts:      []detectors.Verdict{{Window: first, ExpectedEvents: 100, Judgement: "no reference yet: service thresholds only"}},
		JudgedThrough: []storage.JudgeProgress{{Model: first.Series.Model, Through: time.UnixMilli(first.End).UTC()}}})
	for _, p := range closed[0].Partials {
		write(&storage.Batch{WrittenAt: t0.Add(time.Hour + time.Minute), Closed: []processors.Closed{{Merged: first, Partials: []*processors.Partial{p}}}})
	}
	out, err := testenv.TSV(ctx, s.Conn(), "SELECT count(), sum(events), countIf(judgement = 'no reference yet: service thresholds only'), countIf(expected_events = 100) FROM "+s.Database()+".window_model_stats FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out), "12\t600\t2\t2"; got != want {
		t.Errorf("rows, events, judged rows, rows with the expected events: %q, want %q (window 0's two partitions keep their judgement)", got, want)
	}
}

// Restoring reads the windows of models without a judge_progress row (every model of a
// deployment upgraded from before 0017) also with join_use_nulls = 1 in driftd's profile.
func TestRestoreWithJoinUseNulls(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0,
		JudgedThrough: []storage.JudgeProgress{{Model: closed[0].Merged.Series.Model, Through: time.UnixMilli(closed[5].Merged.End)}}}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// A model with partials and no judge progress: nothing of it is judged, with
	// join_use_nulls either way.
	other := sixWindows(t)
	for _, c := range other {
		c.Merged.Series.Model = "other"
		for _, p := range c.Partials {
			p.Series.Model = "other"
		}
	}
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: other, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if ends, err := s.ForSpreadGroup().LoadSeriesEnds(ctx, 48*time.Hour); err != nil || len(ends) != 1 {
		t.Errorf("series ends %v %v, want the judged model's only", ends, err)
	}
	before, err := s.ForSpreadGroup().LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(before) != 1 {
		t.Fatalf("series ends %v %v", before, err)
	}
	if err := s.Conn().Exec(ctx, "SET join_use_nulls = 1"); err != nil {
		t.Fatal(err)
	}
	defer s.Conn().Exec(ctx, "SET join_use_nulls = 0")
	after, err := s.ForSpreadGroup().LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(after) != 1 {
		t.Errorf("with join_use_nulls = 1: series ends %v %v, want the one series as before", after, err)
	}
}

// Rolling upgrade in active_standby: the new binary runs migration 0017 (which seeds
// judge_progress with max(window_end)) while the old binary, still active, keeps writing
// windows without judge_progress. When the new binary takes over, its restore must see
// every written window, as it did before the seed.
func TestOneMemberRestoreReadsEveryWindowWritten(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	closed := sixWindows(t)
	// old binary: windows 0..2 written before the migration
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed[:3], WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	// Migration 0017's seed, as it runs on the upgraded database (run again: it is
	// skipped once judge_progress holds rows).
	if err := s.Conn().Exec(ctx, "DELETE FROM "+s.Database()+".schema_migrations WHERE version = 17"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadJudgeProgress(ctx); err != nil || len(got) != 1 || !got[0].Through.Equal(time.UnixMilli(closed[2].Merged.End).UTC()) {
		t.Fatalf("seeded judge progress %v %v, want the third window's end", got, err)
	}
	// old binary, still active until the new one takes over: windows 3..5
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed[3:], WrittenAt: t0.Add(time.Hour)}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	ends, err := s.LoadSeriesEnds(ctx, 48*time.Hour)
	if err != nil || len(ends) != 1 {
		t.Fatalf("series ends %v %v", ends, err)
	}
	if want := time.UnixMilli(closed[5].Merged.End).UTC(); !ends[0].End.Equal(want) {
		t.Errorf("restored series end %v, want %v (the last window written): windows 3..5 are hidden from the one-member restore, and its fillGaps gives them empty windows", ends[0].End.Sub(t0), want.Sub(t0))
	}
}

// Several series of a model in the same windows (two versions, two deployments), with
// different volumes and error counts, and an empty window (partition -1) of a third
// series: LoadWindows gives each window its own service counts, as LoadWindow does.
func TestLoadWindowsSeveralSeries(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	p := processors.NewProcessor(func(string) processors.WindowSpec { return processors.WindowSpec{Size: 30 * time.Minute} }, processors.Limits{})
	series := [][2]string{{"1", "primary"}, {"2", "primary"}, {"1", "canary"}}
	for i := 0; i < 900; i++ {
		e := event(rng, time.Duration(i)*6*time.Second, 0)
		sv := series[i%3]
		if i%3 == 2 && i%2 == 0 {
			continue // fewer events on the canary
		}
		e.ModelVersion, e.Deployment = sv[0], sv[1]
		if i%7 == 0 {
			e.Status = schemas.StatusError
		}
		p.Add(e, processors.Source{Topic: "in", Partition: i % 2, Offset: int64(i)}, t0)
	}
	closed := p.CloseAll()
	empty := processors.EmptyWindow(processors.SeriesKey{Model: closed[0].Merged.Series.Model, Version: "3", Deployment: "primary"}, closed[0].Merged.Start, closed[0].Merged.End)
	closed = append(closed, processors.Closed{Merged: empty, Partials: []*processors.Partial{{WindowAgg: empty,
		TopicPartition: processors.TopicPartition{Topic: "in", Partition: -1}, FirstOffset: -1, LastOffset: -1}}})
	if err := s.WriteWithRetry(ctx, &storage.Batch{Closed: closed, WrittenAt: t0}, storage.DefaultBackoff, nil); err != nil {
		t.Fatal(err)
	}
	sum := func(w *processors.WindowAgg) string {
		a := w.Features["amount"]
		return fmt.Sprintf("%v %d events %d errors %d lat %g amount %d %.6g in %v", w.Series, w.Start, w.Events, w.Errors, w.Latency.Count(), a.Count, a.Moments.Mean, w.InputSize)
	}
	model := closed[0].Merged.Series.Model
	all, err := s.LoadWindows(ctx, model, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range closed {
		if c.Merged.Events > 0 {
			want[sum(c.Merged)] = true
		}
	}
	if len(all) != len(want) {
		t.Errorf("%d windows read back, want %d", len(all), len(want))
	}
	for _, w := range all {
		if !want[sum(w)] {
			t.Errorf("read back %s: not a written window", sum(w))
		}
	}
	// A spread judge's rounds count the windows' ends over every series.
	var ends []time.Time
	for _, c := range closed {
		if e := time.UnixMilli(c.Merged.End).UTC(); !slices.ContainsFunc(ends, e.Equal) {
			ends = append(ends, e)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	if len(ends) < 3 {
		t.Fatalf("%d window ends written, want 3 or more", len(ends))
	}
	for _, c := range []struct {
		after time.Time
		nth   int
		want  time.Time
		found bool
	}{
		{t0.Add(-time.Hour), 1, ends[0], true},
		{t0.Add(-time.Hour), len(ends), ends[len(ends)-1], true},
		{t0.Add(-time.Hour), len(ends) + 1, time.Time{}, false},
		{ends[0], 1, ends[1], true},
		{ends[0].Add(-time.Millisecond), 1, ends[0], true},
		{ends[len(ends)-1], 1, time.Time{}, false},
	} {
		got, found, err := s.WindowEnd(ctx, model, c.after, c.nth)
		if err != nil || found != c.found || !got.Equal(c.want) {
			t.Errorf("window %d after %v: %v %v %v, want %v %v", c.nth, c.after, got, found, err, c.want, c.found)
		}
	}
	if _, _, err := s.WindowEnd(ctx, model, t0, 0); err == nil {
		t.Error("window 0: no error")
	}
}

// Rows set aside on the dead-letter topic carry the version the store would have written
// them with: a spread group's unjudged partial its window's end.
func TestRefusedPartialsCarryTheirVersion(t *testing.T) {
	closed := sixWindows(t)
	b := &storage.Batch{Closed: closed[:1], WrittenAt: t0.Add(time.Hour)}
	for _, c := range []struct {
		spread bool
		want   string
	}{{false, "2026-03-04 11:00:00.000"}, {true, "2026-03-04 10:30:00.000"}} {
		refused, err := b.Refused(c.spread)
		if err != nil || len(refused) != 2 {
			t.Fatalf("refused %d, %v", len(refused), err)
		}
		if !strings.Contains(string(refused[0].Rows), `"written_at":"`+c.want+`"`) {
			t.Errorf("spread group %t: %s, want written_at %s", c.spread, refused[0].Rows[:200], c.want)
		}
	}
}

// A partition's progress row written last wins, even when it says less than an earlier
// one (a partition re-read from its commit by the member it moved to), and merges keep
// it (read_progress's version is written_at), with the generation it was written in.
// Rows of partition_progress, which kept the row with the newest through, are copied by
// the migration (generation 0: not known), and the old table dropped.
func TestPartitionProgressNewestRowWins(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	_, exec := migrateThrough(ctx, t, s, 23)
	db := s.Database()
	// Before the migration: p0 of model m written twice (the row with the later through
	// wins there), p1 once; the clock row of p0.
	exec(`INSERT INTO ` + db + `.partition_progress (model, topic, partition, through, event_max, lagging, written_at) VALUES
  ('m', 'preds', 0, '2026-03-04 12:00:00', '2026-03-04 12:59:00', false, '2026-03-04 13:00:00'),
  ('m', 'preds', 0, '2026-03-04 11:00:00', '2026-03-04 11:59:00', true, '2026-03-04 13:00:05'),
  ('m', 'preds', 1, '2026-03-04 10:00:00', '2026-03-04 10:30:00', true, '2026-03-04 13:00:00'),
  ('', 'preds', 0, '2026-03-04 12:59:00', '2026-03-04 12:59:00', false, '2026-03-04 13:00:00')`)
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	tp := func(p int) processors.TopicPartition { return processors.TopicPartition{Topic: "preds", Partition: p} }
	at := func(hm string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", "2026-03-04 "+hm)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	load := func() []storage.PartitionProgress {
		t.Helper()
		ps, err := s.LoadPartitionProgress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	want := []storage.PartitionProgress{
		{Model: "", TP: tp(0), Through: at("12:59"), EventMax: at("12:59")},
		{Model: "m", TP: tp(0), Through: at("12:00"), EventMax: at("12:59")},
		{Model: "m", TP: tp(1), Through: at("10:00"), EventMax: at("10:30"), Lagging: true},
	}
	if got := load(); !slices.Equal(got, want) {
		t.Errorf("copied by the migration:\n%+v\nwant\n%+v", got, want)
	}
	var n uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'partition_progress'", db).Scan(&n); err != nil || n != 0 {
		t.Errorf("partition_progress: %d left (%v)", n, err)
	}
	// p0 moves to a member that re-reads it from its commit: its rows say less, and win.
	for i, p := range []storage.PartitionProgress{
		{Model: "m", TP: tp(0), Through: at("12:00"), EventMax: at("12:59"), Lagging: true, Generation: 5}, // taken over
		{Model: "m", TP: tp(0), Through: at("09:00"), EventMax: at("09:40"), Lagging: true, Generation: 5}, // its own
	} {
		if err := s.WriteWithRetry(ctx, &storage.Batch{Progress: []storage.PartitionProgress{p}, WrittenAt: at("14:00").Add(time.Duration(i) * time.Second)}, storage.DefaultBackoff, nil); err != nil {
			t.Fatal(err)
		}
	}
	want[1] = storage.PartitionProgress{Model: "m", TP: tp(0), Through: at("09:00"), EventMax: at("09:40"), Lagging: true, Generation: 5}
	exec("OPTIMIZE TABLE " + db + ".read_progress FINAL")
	if got := load(); !slices.Equal(got, want) {
		t.Errorf("after the newer rows, merged:\n%+v\nwant\n%+v", got, want)
	}
}
