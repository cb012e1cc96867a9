package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// A window's cutoff on a label partition is found by reading a granule or two, not the
// labels stamped (or appended) after it: here a million records, 10 ms apart, appended a
// second after their stamp, and one stamped out of order and appended late (a label
// backfilled). Without the skip indexes the read in order reads every record up to the
// cutoff; without the settings, threads read ahead (seen: 254,000 rows for a cutoff in
// the middle).
func TestLabelCutsReadLittle(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	s, addr, proto := migratedStore(ctx, t)
	for _, q := range []string{
		`INSERT INTO ` + s.db + `.label_offsets (topic, partition, offset, event_time, record_time, written_at)
SELECT 'labels', 0, number, toDateTime64('2026-03-04 10:00:00', 3, 'UTC') + toIntervalMillisecond(number * 10),
  toDateTime64('2026-03-04 10:00:01', 3, 'UTC') + toIntervalMillisecond(number * 10), now64(3) FROM numbers(1000000)`,
		// offset 1,000,000 is stamped an hour before the start (out of order, not a cut by
		// its stamp) and appended at 13:00, after the others; offset 5 of partition 1 has no
		// record time (1970).
		`INSERT INTO ` + s.db + `.label_offsets (topic, partition, offset, event_time, record_time, written_at)
VALUES ('labels', 0, 1000000, '2026-03-04 09:00:00', '2026-03-04 13:00:00', now64(3)), ('labels', 1, 5, '2026-03-04 11:00:00', 0, now64(3))`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	parts := []LabelPartition{{"labels", 0}, {"labels", 1}, {"labels", 2}, {"other", 0}}
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at, appended time.Time
		want         map[LabelPartition]int64
	}{
		{start.Add(5000 * time.Second), time.Time{}, map[LabelPartition]int64{{"labels", 0}: 500001}},
		// appended after 10:50: number × 10 ms + 1 s > 3,000 s
		{start.Add(5000 * time.Second), start.Add(3000 * time.Second), map[LabelPartition]int64{{"labels", 0}: 299901}},
		{start.Add(3 * time.Hour), start.Add(2 * time.Hour), map[LabelPartition]int64{{"labels", 0}: 719901}},
		// none stamped after 13:00; the backfilled label is the first appended after 12:50
		{start.Add(3 * time.Hour), start.Add(170 * time.Minute), map[LabelPartition]int64{{"labels", 0}: 1000000}},
		{start.Add(3 * time.Hour), start.Add(3 * time.Hour), map[LabelPartition]int64{}},
		{start.Add(time.Hour - time.Millisecond), time.Time{}, map[LabelPartition]int64{{"labels", 0}: 360000, {"labels", 1}: 5}},
		{start.Add(9999 * time.Second), time.Time{}, map[LabelPartition]int64{{"labels", 0}: 999901}},
		{start.Add(3 * time.Hour), time.Time{}, map[LabelPartition]int64{}},
		{start.Add(-2 * time.Hour), time.Time{}, map[LabelPartition]int64{{"labels", 0}: 0, {"labels", 1}: 5}},
	} {
		got, err := s.LabelCuts(ctx, c.at, c.appended, parts)
		if err != nil {
			t.Fatalf("cut at %v (appended %v): %v", c.at, c.appended, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("cut at %v (appended %v): %v, want %v", c.at, c.appended, got, c.want)
		}
		if proto != "http" {
			continue // the statistics below are read over the embedded engine's HTTP endpoint (CI's)
		}
		// The same query, with the engine's statistics.
		q, params := s.labelCutsQuery(c.at, c.appended, parts)
		rows, read := engineStats(t, addr, q, params)
		if len(rows) < len(c.want) {
			t.Fatalf("cut at %v over HTTP: %v", c.at, rows)
		}
		if reads := 1 + btoi(!c.appended.IsZero()); read > reads*3*8192 {
			t.Errorf("cut at %v read %d rows", c.at, read)
		}
		t.Logf("cut at %v: %d rows read", c.at, read)
	}
}

// A window's join reads the labels of its label range's hours, by the index, about once
// over all its pages: 864,000 labels of other requests in those three hours (80 a
// second) and a day's worth before them, around a window of 3,000 predictions with their
// labels an hour later, request ids random hex throughout (the pages' ranges of ids
// interleave with the others'), read in 7 pages of 500. Each page reads its range of
// ids in each hour, and the granules (8,192 rows) at the range's ends.
func TestLabelJoinReadsTheRangesHours(t *testing.T) {
	ctx := testenv.Context(t, 3*time.Minute)
	s, addr, proto := migratedStore(ctx, t)
	for _, q := range []string{
		// labels of other requests: 80 a second in the label range's hours (11:00-14:00), and
		// 10 a second in the hours before them
		`INSERT INTO ` + s.db + `.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT 'm', hex(cityHash64(number)), '', toDateTime64('2026-03-04 11:00:00', 3, 'UTC') + toIntervalMillisecond(number * 12.5), 1, 1, '', '', 'labels', 0, number, now64(3)
FROM numbers(864000)`,
		`INSERT INTO ` + s.db + `.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT 'm', hex(cityHash64(number + 2000000000)), '', toDateTime64('2026-03-04 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 100), 1, 1, '', '', 'labels', 2, number, now64(3)
FROM numbers(396000)`,
		// the window's 3,000 predictions (10 a second from 12:00) and their labels an hour later
		`INSERT INTO ` + s.db + `.prediction_key_batches (model, model_version, deployment, window_start, window_end, request_ids, event_times, prediction_kinds, prediction_nums, prediction_classes, scores, written_at)
SELECT 'm', '1', 'primary', toDateTime64('2026-03-04 12:00:00', 3, 'UTC'), toDateTime64('2026-03-04 12:05:00', 3, 'UTC'),
  groupArray(hex(cityHash64(number + 1000000000))), groupArray(toDateTime64('2026-03-04 12:00:00', 3, 'UTC') + toIntervalMillisecond(number * 100)),
  groupArray(toUInt8(1)), groupArray(0.7), groupArray(''), groupArray(CAST(map(), 'Map(String, Float64)')), now64(3)
FROM numbers(3000)`,
		`INSERT INTO ` + s.db + `.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT 'm', hex(cityHash64(number + 1000000000)), '', toDateTime64('2026-03-04 12:55:00', 3, 'UTC') + toIntervalMillisecond(number * 100), 1, 1, '', '', 'labels', 1, number, now64(3)
FROM numbers(3000)`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.joinPage = 500
	start := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	w := SettledWindow{Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}, Start: start, End: start.Add(5 * time.Minute)}
	js := JoinSpec{From: start.Add(-5 * time.Minute), Until: w.End.Add(time.Hour), Cutoff: w.End.Add(time.Hour + 5*time.Minute), Horizon: 7 * 24 * time.Hour}
	labelled, inOrder := 0, true
	var last time.Time
	var losses []float64
	var sc detectors.Scorer
	if _, err := s.LoadWindowPairs(ctx, w, js, func(p detectors.PerfPair) {
		if p.Label.Kind != schemas.Missing {
			labelled++
		}
		inOrder = inOrder && !p.EventTime.Before(last)
		last = p.EventTime
		sc.Add(p)
	}); err != nil || labelled != 3000 || inOrder {
		t.Fatalf("%d of 3,000 labelled, in time order %v (%v): want all labelled, in request id order", labelled, inOrder, err)
	}
	if _, losses, _ = sc.Result(); len(losses) != 3000 {
		t.Fatalf("%d losses", len(losses))
	}
	if proto != "http" {
		return // the statistics below are read over the embedded engine's HTTP endpoint (CI's)
	}
	// The same pages, with the engine's statistics.
	read, pages := 0, 0
	afterID, afterTime := "", chTime(w.Start.Add(-time.Millisecond))
	for {
		params := map[string]string{"model": "m", "version": "1", "deployment": "primary", "start": chTime(w.Start),
			"after_time": afterTime, "after_id": afterID, "page": "500", "horizon": strconv.FormatInt(js.Horizon.Milliseconds(), 10),
			"from": chTime(js.From), "until": chTime(js.Until), "cut_keys": "[]", "cut_offsets": "[]", "before": "0"}
		data, n := engineStats(t, addr, s.joinQuery(), params)
		read += n
		pages++
		if len(data) < 500 {
			break
		}
		lastRow := data[len(data)-1]
		afterID, afterTime = fmt.Sprint(lastRow[0]), fmt.Sprint(lastRow[1])
	}
	// The hours' 867,000 labels once, plus two granules an hour a page at most (344,000):
	// each page reading the hours would be 6.1 million (as it did with the pages in time
	// order, their ids all over the id space).
	t.Logf("%d pages of the join read %d rows in all (the label range's hours hold 867,000 labels)", pages, read)
	if pages != 7 || read > 867_000+344_000+50_000 {
		t.Errorf("%d pages read %d rows", pages, read)
	}
}

// migratedStore is a store on a database of the test's own, migrated, with the engine's
// address and protocol.
func migratedStore(ctx context.Context, t *testing.T) (*Store, string, string) {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	s, err := Open(ctx, Options{Addr: addr, Protocol: Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	return s, addr, proto
}

// engineStats runs q with params over the embedded engine's HTTP endpoint and returns its
// rows and how many rows the engine read for them.
func engineStats(t *testing.T, addr, q string, params map[string]string) ([][]any, int) {
	t.Helper()
	v := url.Values{}
	for k, p := range params {
		v.Set("param_"+k, p)
	}
	resp, err := http.Post("http://"+addr+"/?"+v.Encode(), "text/plain", strings.NewReader(q+"\nFORMAT JSONCompact"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Data       [][]any `json:"data"`
		Statistics struct {
			RowsRead int `json:"rows_read"`
		} `json:"statistics"`
	}
	if err != nil || json.Unmarshal(body, &out) != nil {
		t.Fatalf("query over HTTP: %.300s (%v)", body, err)
	}
	return out.Data, out.Statistics.RowsRead
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
