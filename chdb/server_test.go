package chdb_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/chdb"
	"github.com/driftd/driftd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newClient serves a fresh endpoint over the shared engine and connects clickhouse-go to it.
func newClient(t *testing.T) clickhouse.Conn {
	t.Helper()
	srv := httptest.NewServer(testenv.ClickHouseHandler(t))
	t.Cleanup(srv.Close)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{strings.TrimPrefix(srv.URL, "http://")}, Protocol: clickhouse.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestServerRoundTripWithClickHouseGo(t *testing.T) {
	conn := newClient(t)
	ctx := testenv.Context(t, 30*time.Second)
	db := testenv.UniqueName(t)

	if v, err := conn.ServerVersion(); err != nil || v.Revision == 0 {
		t.Fatalf("server version %+v: %v", v, err)
	}
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".t (id UInt64, name String, ts DateTime64(3, 'UTC'), tags Array(String), m Map(String, Float64), x Nullable(Float64)) ENGINE = MergeTree ORDER BY id",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".t")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	const n = 20000 // well above max_query_size when inlined
	for i := 0; i < n; i++ {
		var x *float64
		if i%2 == 0 {
			v := float64(i) / 2
			x = &v
		}
		name := fmt.Sprintf("it's \"%d\" \\ ; DROP TABLE t", i)
		if err := batch.Append(uint64(i), name, base.Add(time.Duration(i)*time.Second), []string{"a", "b"}, map[string]float64{"k": float64(i)}, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	var count, sum uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(id) FROM "+db+".t").Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != n || sum != n*(n-1)/2 {
		t.Fatalf("count=%d sum=%d, want %d %d", count, sum, n, n*(n-1)/2)
	}
	var (
		name string
		ts   time.Time
		tags []string
		m    map[string]float64
		x    *float64
	)
	if err := conn.QueryRow(ctx, "SELECT name, ts, tags, m, x FROM "+db+".t WHERE id = 7").Scan(&name, &ts, &tags, &m, &x); err != nil {
		t.Fatal(err)
	}
	if name != `it's "7" \ ; DROP TABLE t` || !ts.Equal(base.Add(7*time.Second)) || len(tags) != 2 || m["k"] != 7 || x != nil {
		t.Fatalf("row 7 = %q %v %v %v %v", name, ts, tags, m, x)
	}
	rows, err := conn.Query(ctx, "SELECT id FROM "+db+".t WHERE id < 3 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[0 1 2]" {
		t.Fatalf("ids = %v", ids)
	}

	// Errors come back as ClickHouse exceptions with their code.
	err = conn.Exec(ctx, "SELECT * FROM "+db+".missing")
	var ex *clickhouse.Exception
	if err == nil || !strings.Contains(err.Error(), "UNKNOWN_TABLE") {
		t.Fatalf("query of a missing table: err = %v (%T, exception %v)", err, err, ex)
	}
}

func TestServerPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(testenv.ClickHouseHandler(t))
	t.Cleanup(srv.Close)
	db := testenv.UniqueName(t)
	post := func(query, body string) (int, string) {
		t.Helper()
		u := srv.URL + "/"
		if query != "" {
			u += "?query=" + url.QueryEscape(query)
		}
		resp, err := http.Post(u, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		query, body string
		status      int
		want        string
	}{
		{"", "CREATE DATABASE " + db, 200, ""},
		{"", "CREATE TABLE " + db + ".kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k", 200, ""},
		{"INSERT INTO " + db + ".kv FORMAT JSONEachRow", `{"k":"a","v":1}` + "\n" + `{"k":"b","v":2}`, 200, ""},
		{"", "INSERT INTO " + db + ".kv FORMAT TSV\nc\t3\n", 200, ""},
		{"", "SELECT k, v FROM " + db + ".kv ORDER BY k", 200, "a\t1\nb\t2\nc\t3\n"},
		{"SELECT sum(v) FROM " + db + ".kv FORMAT JSONEachRow", "", 200, "{\"sum(v)\":6}\n"},
		{"", "SELEC 1", 500, "SYNTAX_ERROR"},
	} {
		status, got := post(c.query, c.body)
		if status != c.status || !strings.Contains(got, c.want) || (c.want == "" && got != "") {
			t.Errorf("%q %q: status %d body %q; want %d %q", c.query, c.body, status, got, c.status, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Ok.\n" {
		t.Fatalf("ping = %q", b)
	}
}

func TestServerBindsQueryParameters(t *testing.T) {
	conn := newClient(t)
	ctx := testenv.Context(t, 30*time.Second)
	evil := `a'b\c"; DROP DATABASE x; --` + "\n\t"
	var (
		s  string
		n  int64
		f  float64
		ts time.Time
	)
	err := conn.QueryRow(ctx, "SELECT {s:String}, {n:Int64} + 1, {f:Float64}, {ts:DateTime64(3)}",
		clickhouse.Named("s", evil), clickhouse.Named("n", "41"), clickhouse.Named("f", "0.5"),
		clickhouse.Named("ts", "2026-01-02 03:04:05.678")).Scan(&s, &n, &f, &ts)
	if err != nil {
		t.Fatal(err)
	}
	if s != evil || n != 42 || f != 0.5 || ts.UnixMilli() != time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC).UnixMilli() {
		t.Fatalf("got %q %d %v %v", s, n, f, ts)
	}
	if err := conn.QueryRow(ctx, "SELECT {n:Int64}", clickhouse.Named("n", "1; DROP TABLE x")).Scan(&n); err == nil || !strings.Contains(err.Error(), "BAD_QUERY_PARAMETER") {
		t.Fatalf("a non-number for Int64: err = %v", err)
	}
	// The engine binds after parsing: a placeholder inside a string literal stays text,
	// and a NUL byte is a byte of the value, not the end of the query.
	var lit, tail string
	var length uint64
	if err := conn.QueryRow(ctx, "SELECT '{s:String}', {s:String}, length({s:String}), 'after'", clickhouse.Named("s", "a\x00b")).Scan(&lit, &s, &length, &tail); err != nil {
		t.Fatal(err)
	}
	if lit != "{s:String}" || s != "a\x00b" || length != 3 || tail != "after" {
		t.Fatalf("got %q %q %d %q", lit, s, length, tail)
	}
	var m map[string]uint8
	var arr []string
	if err := conn.QueryRow(ctx, "SELECT {m:Map(String, UInt8)}, {a:Array(String)}", clickhouse.Named("m", "{'k':1}"), clickhouse.Named("a", "['x','y']")).Scan(&m, &arr); err != nil {
		t.Fatal(err)
	}
	if m["k"] != 1 || len(arr) != 2 {
		t.Fatalf("got %v %v", m, arr)
	}
}

// With a password set, every request but /ping must carry the credentials, in any of the
// three ways ClickHouse's clients send them.
func TestPasswordIsRequired(t *testing.T) {
	h := testenv.ClickHouseHandler(t)
	h.User, h.Password = "reader", "pw"
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	q := url.QueryEscape("SELECT 1")
	for _, c := range []struct {
		name   string
		target string
		header map[string]string
		basic  [2]string
		want   int
	}{
		{"none", "/?query=" + q, nil, [2]string{}, http.StatusUnauthorized},
		{"ping", "/ping", nil, [2]string{}, http.StatusOK},
		{"headers", "/?query=" + q, map[string]string{"X-ClickHouse-User": "reader", "X-ClickHouse-Key": "pw"}, [2]string{}, http.StatusOK},
		{"wrong key", "/?query=" + q, map[string]string{"X-ClickHouse-User": "reader", "X-ClickHouse-Key": "pw2"}, [2]string{}, http.StatusUnauthorized},
		{"wrong user", "/?query=" + q, map[string]string{"X-ClickHouse-User": "default", "X-ClickHouse-Key": "pw"}, [2]string{}, http.StatusUnauthorized},
		{"basic", "/?query=" + q, nil, [2]string{"reader", "pw"}, http.StatusOK},
		{"params", "/?user=reader&password=pw&query=" + q, nil, [2]string{}, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+c.target, nil)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			if c.basic[0] != "" {
				req.SetBasicAuth(c.basic[0], c.basic[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.want)
			}
			if c.want == http.StatusUnauthorized && !strings.Contains(string(body), "AUTHENTICATION_FAILED") {
				t.Errorf("body %q", body)
			}
		})
	}
}

// An insert's optimize_on_insert=0, which a server takes from the URL, reaches the
// engine: a block with a key twice is stored as it is (two rows until a merge or FINAL),
// not deduplicated at insert. (The table's name contains the word settings.)
func TestServerPassesOptimizeOnInsert(t *testing.T) {
	conn := newClient(t)
	ctx := testenv.Context(t, 30*time.Second)
	db := testenv.UniqueName(t)
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".settings_t (id UInt64, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY id",
		"SYSTEM STOP MERGES " + db + ".settings_t",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range []struct {
		settings clickhouse.Settings
		id       uint64
		want     uint64
	}{
		{nil, 1, 1},
		{clickhouse.Settings{"optimize_on_insert": 0}, 2, 2},
	} {
		batch, err := conn.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithSettings(c.settings)), "INSERT INTO "+db+".settings_t")
		if err != nil {
			t.Fatal(err)
		}
		for v := range uint64(2) {
			if err := batch.Append(c.id, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatalf("insert with %v: %v", c.settings, err)
		}
		var rows, final uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), (SELECT count() FROM %s.settings_t FINAL WHERE id = %d) FROM %s.settings_t WHERE id = %d", db, c.id, db, c.id)).Scan(&rows, &final); err != nil {
			t.Fatal(err)
		}
		if rows != c.want || final != 1 {
			t.Errorf("settings %v: %d rows stored, %d read with FINAL; want %d and 1", c.settings, rows, final, c.want)
		}
	}
}

// Insert bodies are spooled to files that the next inserts reuse, emptied after each: a
// file made and removed per insert is costly on some filesystems (spool). Concurrent
// inserts each have a file of their own, and every row arrives once.
func TestInsertSpoolFilesAreReused(t *testing.T) {
	dir := t.TempDir()
	h := chdb.NewServer(testenv.Engine(t), dir, slog.New(slog.DiscardHandler))
	h.AnonymousWrites = true
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx := testenv.Context(t, time.Minute)
	db := testenv.UniqueName(t)
	post := func(query, body string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/?query="+url.QueryEscape(query), strings.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d: %s", query, resp.StatusCode, b)
		}
		return nil
	}
	for _, q := range []string{"CREATE DATABASE " + db, "CREATE TABLE " + db + ".kv (k UInt32, v String) ENGINE = MergeTree ORDER BY k"} {
		if err := post(q, ""); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(from int) error {
		var b strings.Builder
		for k := from; k < from+100; k++ {
			fmt.Fprintf(&b, "%d\tvalue %d\n", k, k)
		}
		return post("INSERT INTO "+db+".kv FORMAT TSV", b.String())
	}
	// One after another: one file serves them all.
	for i := range 5 {
		if err := insert(i * 100); err != nil {
			t.Fatal(err)
		}
	}
	spools := func() []os.DirEntry {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if info, err := e.Info(); err != nil || info.Size() != 0 {
				t.Errorf("spool file %s after the inserts: %v, %v bytes; want it emptied", e.Name(), err, info.Size())
			}
		}
		return es
	}
	if es := spools(); len(es) != 1 {
		t.Fatalf("%d spool files after 5 inserts one after another; want 1", len(es))
	}
	// Four at once, five times: at most four files, each insert's rows once.
	const writers = 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*5)
	for w := range writers {
		wg.Go(func() {
			for i := range 5 {
				errs <- insert(500 + (w*5+i)*100)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if es := spools(); len(es) < 1 || len(es) > writers {
		t.Fatalf("%d spool files after inserts by %d writers; want 1 to %d", len(es), writers, writers)
	}
	resp, err := http.Get(srv.URL + "/?query=" + url.QueryEscape("SELECT count(), uniqExact(k), min(k), max(k) FROM "+db+".kv"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if want := "2500\t2500\t0\t2499\n"; string(got) != want {
		t.Fatalf("rows stored: %q; want %q", got, want)
	}
}
