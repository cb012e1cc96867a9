package storage

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Over HTTP, an insert's column types are asked once per table and used for every
// insert after (clickhouse-go would ask DESCRIBE TABLE before each), and asked again
// after an insert into the table fails: a table changed under a running member is
// written as it is now.
func TestInsertTypesAskedOnceAndAgainAfterAFailure(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	s, _, proto := migratedStore(ctx, t)
	if Protocol(proto) != ProtocolHTTP {
		if s.types != nil {
			t.Fatalf("the native protocol has the server send the block's header: no types to keep, got %+v", s.types)
		}
		return
	}
	tbl := predictionKeys()
	series := processors.SeriesKey{Model: "m", Version: "1", Deployment: schemas.DeploymentPrimary}
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	write := func(id string) error {
		t.Helper()
		k := PredictionKey{Series: series, RequestID: id, EventTime: at, Start: at.UnixMilli(), End: at.Add(time.Minute).UnixMilli(),
			Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
		return s.WriteLabelData(ctx, []PredictionKey{k}, nil, at)
	}
	known := func() ([]clickhouse.ColumnNameAndType, bool) {
		s.types.mu.Lock()
		defer s.types.mu.Unlock()
		cols, ok := s.types.known[tbl.insertSQL(s.db)]
		return cols, ok
	}

	if err := write("a"); err != nil {
		t.Fatal(err)
	}
	cols, ok := known()
	if !ok {
		t.Fatal("the types were not kept after an insert")
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.Name)
		if c.Name == "request_ids" && c.Type != "Array(String)" {
			t.Errorf("request_ids kept as %q, want Array(String)", c.Type)
		}
	}
	if got, want := strings.Join(names, ", "), tbl.cols; got != want {
		t.Errorf("kept columns %q, want the insert's %q", got, want)
	}

	// The kept types are what the next insert is encoded by: one with a kept type that
	// fails the insert (preparing it, or appending a row) is forgotten.
	failsWithKept := func(name, typ string) {
		t.Helper()
		kept := slices.Clone(cols)
		for i := range kept {
			if kept[i].Name == name {
				kept[i].Type = typ
			}
		}
		s.types.mu.Lock()
		s.types.known[tbl.insertSQL(s.db)] = kept
		s.types.mu.Unlock()
		if err := write("b"); err == nil {
			t.Fatalf("an insert with %s kept as %s succeeded: the kept types were not used", name, typ)
		}
		if _, ok := known(); ok {
			t.Fatalf("the types were kept after an insert with %s kept as %s failed", name, typ)
		}
	}
	failsWithKept("model", "NoSuchType") // the client cannot encode it
	if err := write("b"); err != nil {
		t.Fatalf("the insert after a failure (types asked again): %v", err)
	}
	failsWithKept("written_at", "UInt8") // the rows cannot be appended as it

	// A table changed under the member: the insert fails at the server, and the one after
	// the change is undone asks the types again.
	if err := s.Conn().Exec(ctx, "ALTER TABLE "+s.db+".prediction_key_batches RENAME COLUMN request_ids TO request_ids_moved"); err != nil {
		t.Fatal(err)
	}
	if err := write("c"); err == nil {
		t.Fatal("an insert into a renamed column succeeded")
	}
	if _, ok := known(); ok {
		t.Fatal("the types were kept after an insert the server refused")
	}
	if err := s.Conn().Exec(ctx, "ALTER TABLE "+s.db+".prediction_key_batches RENAME COLUMN request_ids_moved TO request_ids"); err != nil {
		t.Fatal(err)
	}
	if err := write("c"); err != nil {
		t.Fatal(err)
	}
	var stored []string
	if err := s.Conn().QueryRow(ctx, "SELECT arraySort(groupArray(id)) FROM (SELECT arrayJoin(request_ids) AS id FROM "+s.db+".prediction_key_batches)").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stored, ","); got != "a,b,c" {
		t.Errorf("stored request ids %q, want a,b,c", got)
	}
}

// The client asks DESCRIBE TABLE before an insert only when not given the types: with
// them kept, three writes into a table read its types once and describe nothing. A table
// that is not there says so.
func TestInsertsAskTheTypesOnce(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	s, addr, proto := migratedStore(ctx, t)
	if Protocol(proto) != ProtocolHTTP {
		t.Logf("protocol %s: inserts describe nothing already", proto)
		return
	}
	var mu sync.Mutex
	var describes, typeReads int
	target, err := url.Parse("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q := strings.ToUpper(r.URL.Query().Get("query") + " " + string(body))
		mu.Lock()
		if strings.Contains(q, "DESCRIBE TABLE") {
			describes++
		}
		if strings.Contains(q, "SYSTEM.COLUMNS") {
			typeReads++
		}
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	open := func(db string) *Store {
		t.Helper()
		v, err := Open(ctx, Options{Addr: strings.TrimPrefix(front.URL, "http://"), Protocol: ProtocolHTTP, Database: db}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	v := open(s.db)
	series := processors.SeriesKey{Model: "m", Version: "1", Deployment: schemas.DeploymentPrimary}
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		k := PredictionKey{Series: series, RequestID: strconv.Itoa(i), EventTime: at, Start: at.UnixMilli(), End: at.Add(time.Minute).UnixMilli()}
		if err := v.WriteLabelData(ctx, []PredictionKey{k}, nil, at); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if describes != 0 || typeReads != 1 {
		t.Errorf("three inserts described %d times and read the types %d times, want 0 and 1", describes, typeReads)
	}
	mu.Unlock()
	var n uint64
	if err := s.Conn().QueryRow(ctx, "SELECT sum(length(request_ids)) FROM "+s.db+".prediction_key_batches").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d keys stored, want 3", n)
	}

	missing := open(testenv.UniqueName(t) + "_none")
	err = missing.WriteLabelData(ctx, []PredictionKey{{Series: series, RequestID: "x", EventTime: at, Start: at.UnixMilli(), End: at.UnixMilli()}}, nil, at)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("an insert into a database without the table: %v, want it to say the table is not found", err)
	}
}
