package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
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
