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
// labels stamped after it: here a million records, 10 ms apart, one out of order. Without
// the skip index the read in order reads every record up to the cutoff; without the
// settings, threads read ahead (seen: 254,000 rows for a cutoff in the middle).
func TestLabelCutsReadLittle(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	ctx := testenv.Context(t, 2*time.Minute)
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
	for _, q := range []string{
		`INSERT INTO ` + s.db + `.label_offsets (topic, partition, offset, event_time, written_at)
SELECT 'labels', 0, number, toDateTime64('2026-03-04 10:00:00', 3, 'UTC') + toIntervalMillisecond(number * 10), now64(3) FROM numbers(1000000)`,
		// offset 1,000,000 is stamped an hour before the start: out of order, not a cut.
		`INSERT INTO ` + s.db + `.label_offsets (topic, partition, offset, event_time, written_at)
VALUES ('labels', 0, 1000000, '2026-03-04 09:00:00', now64(3)), ('labels', 1, 5, '2026-03-04 11:00:00', now64(3))`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	parts := []LabelPartition{{"labels", 0}, {"labels", 1}, {"labels", 2}, {"other", 0}}
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		want map[LabelPartition]int64
	}{
		{start.Add(5000 * time.Second), map[LabelPartition]int64{{"labels", 0}: 500001}},
		{start.Add(time.Hour - time.Millisecond), map[LabelPartition]int64{{"labels", 0}: 360000, {"labels", 1}: 5}},
		{start.Add(9999 * time.Second), map[LabelPartition]int64{{"labels", 0}: 999901}},
		{start.Add(3 * time.Hour), map[LabelPartition]int64{}},
		{start.Add(-2 * time.Hour), map[LabelPartition]int64{{"labels", 0}: 0, {"labels", 1}: 5}},
	} {
		got, err := s.LabelCuts(ctx, c.at, parts)
		if err != nil {
			t.Fatalf("cut at %v: %v", c.at, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("cut at %v: %v, want %v", c.at, got, c.want)
		}
		if proto != "http" {
			continue // the statistics below are read over the embedded engine's HTTP endpoint (CI's)
		}
		// The same query, with the engine's statistics.
		q, params := s.labelCutsQuery(c.at, parts)
		v := url.Values{}
		for k, p := range params {
			v.Set("param_"+k, p)
		}
		resp, err := http.Post("http://"+addr+"/?"+v.Encode(), "text/plain", strings.NewReader(q+"\nFORMAT JSON"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			Rows       int `json:"rows"`
			Statistics struct {
				RowsRead int `json:"rows_read"`
			} `json:"statistics"`
		}
		if err != nil || json.Unmarshal(body, &out) != nil || out.Rows != len(c.want) {
			t.Fatalf("cut at %v over HTTP: %s (%v)", c.at, body, err)
		}
		if out.Statistics.RowsRead > 3*8192 {
			t.Errorf("cut at %v read %d rows", c.at, out.Statistics.RowsRead)
		}
		t.Logf("cut at %v: %d rows read", c.at, out.Statistics.RowsRead)
	}
}

// A page of a window's join reads the model's labels of the label range's hours, not the
// day's: a day of labels (864,000, 10 a second) around a window of 3,000 predictions
// with its labels an hour later. The label range (the window less 5 minutes, to its end
// plus an hour) touches two hours of label_events' index.
func TestLabelJoinReadsTheRangesHours(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	ctx := testenv.Context(t, 3*time.Minute)
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
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	start := day.Add(12 * time.Hour)
	for _, q := range []string{
		// the day's labels of other requests, 10 a second
		`INSERT INTO ` + s.db + `.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT 'm', concat('other-', toString(number)), '', toDateTime64('2026-03-04 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 100), 1, 1, '', '', 'labels', 0, number, now64(3)
FROM numbers(864000)`,
		// the window's 3,000 predictions (10 a second from 12:00) and their labels an hour later
		`INSERT INTO ` + s.db + `.prediction_keys_by_window (model, model_version, deployment, window_start, window_end, event_time, request_id, prediction_kind, prediction_num, prediction_class, scores, written_at)
SELECT 'm', '1', 'primary', toDateTime64('2026-03-04 12:00:00', 3, 'UTC'), toDateTime64('2026-03-04 12:05:00', 3, 'UTC'),
  toDateTime64('2026-03-04 12:00:00', 3, 'UTC') + toIntervalMillisecond(number * 100), concat('req-', toString(number)), 1, 0.7, '', map(), now64(3)
FROM numbers(3000)`,
		`INSERT INTO ` + s.db + `.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT 'm', concat('req-', toString(number)), '', toDateTime64('2026-03-04 12:55:00', 3, 'UTC') + toIntervalMillisecond(number * 100), 1, 1, '', '', 'labels', 1, number, now64(3)
FROM numbers(3000)`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	w := SettledWindow{Series: processors.SeriesKey{Model: "m", Version: "1", Deployment: "primary"}, Start: start, End: start.Add(5 * time.Minute)}
	js := JoinSpec{From: start.Add(-5 * time.Minute), Until: w.End.Add(time.Hour), Cutoff: w.End.Add(time.Hour + 5*time.Minute), Horizon: 7 * 24 * time.Hour}
	labelled := 0
	if _, err := s.LoadWindowPairs(ctx, w, js, func(p detectors.PerfPair) {
		if p.Label.Kind != schemas.Missing {
			labelled++
		}
	}); err != nil || labelled != 3000 {
		t.Fatalf("%d of 3,000 labelled (%v)", labelled, err)
	}
	if proto != "http" {
		return // the statistics below are read over the embedded engine's HTTP endpoint (CI's)
	}
	params := map[string]string{"model": "m", "version": "1", "deployment": "primary", "start": chTime(w.Start),
		"after_time": chTime(w.Start.Add(-time.Millisecond)), "after_id": "", "page": "250000", "horizon": strconv.FormatInt(js.Horizon.Milliseconds(), 10),
		"from": chTime(js.From), "until": chTime(js.Until), "cut_keys": "[]", "cut_offsets": "[]"}
	v := url.Values{}
	for k, p := range params {
		v.Set("param_"+k, p)
	}
	resp, err := http.Post("http://"+addr+"/?"+v.Encode(), "text/plain", strings.NewReader(s.joinQuery()+"\nFORMAT JSON"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Rows       int `json:"rows"`
		Statistics struct {
			RowsRead int `json:"rows_read"`
		} `json:"statistics"`
	}
	if err != nil || json.Unmarshal(body, &out) != nil || out.Rows != 3000 {
		t.Fatalf("join over HTTP: %.300s (%v)", body, err)
	}
	// Two hours of other labels (72,000), the window's labels and keys (twice: the page
	// is read for the join and for the labels' IN), and the index's granules around them.
	t.Logf("one page of the join read %d rows (the day holds 867,000 labels)", out.Statistics.RowsRead)
	if out.Statistics.RowsRead > 150_000 {
		t.Errorf("one page of the join read %d rows", out.Statistics.RowsRead)
	}
}
