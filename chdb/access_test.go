package chdb_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftd/driftd/chdb"
	"github.com/driftd/driftd/internal/testenv"
)

// own are the credentials driftd's own client uses in these tests.
var own = chdb.Credentials{User: "driftd-internal", Password: "0123456789abcdef"}

// embedded is the endpoint as driftd runs it when the user configured no password:
// driftd's own credentials write, everyone else reads.
func embedded(t *testing.T) *chdb.Server {
	t.Helper()
	h := chdb.NewServer(testenv.Engine(t), t.TempDir(), slog.New(slog.DiscardHandler))
	h.Own = own
	return h
}

// call is one HTTP request to a handler.
type call struct {
	method string // POST when empty
	remote string // 127.0.0.1:5000 when empty
	host   string // 127.0.0.1:8123 when empty
	query  string // in the URL
	body   string
	params url.Values
	header map[string]string
	creds  *chdb.Credentials // basic auth
}

func serve(h http.Handler, c call) (int, string) {
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	v := url.Values{}
	for k, vs := range c.params {
		v[k] = vs
	}
	if c.query != "" {
		v.Set("query", c.query)
	}
	req := httptest.NewRequest(method, "/?"+v.Encode(), strings.NewReader(c.body))
	req.RemoteAddr, req.Host = "127.0.0.1:5000", "127.0.0.1:8123"
	if c.remote != "" {
		req.RemoteAddr = c.remote
	}
	if c.host != "" {
		req.Host = c.host
	}
	for k, val := range c.header {
		req.Header.Set(k, val)
	}
	if c.creds != nil {
		req.SetBasicAuth(c.creds.User, c.creds.Password)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// exists asks the engine directly whether a database exists.
func exists(t *testing.T, db string) bool {
	t.Helper()
	out, err := testenv.Engine(t).Query("EXISTS DATABASE "+db, "TSV")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)) == "1"
}

// Who may write: driftd's own credentials always (also from another address of this
// host); a client's password from this host, or from others with RemoteWrites; nobody
// without credentials when driftd runs the endpoint; nobody with GET or readonly=1.
func TestServerAccess(t *testing.T) {
	pw := &chdb.Credentials{User: "reader", Password: "pw"}
	withPassword := func(remoteWrites bool) *chdb.Server {
		h := embedded(t)
		h.User, h.Password, h.RemoteWrites = pw.User, pw.Password, remoteWrites
		return h
	}
	open := testenv.ClickHouseHandler(t) // a passwordless ClickHouse default user
	for _, c := range []struct {
		name   string
		h      *chdb.Server
		c      call
		writes bool // the call tries to create a database
		want   int
	}{
		{"anonymous loopback write", embedded(t), call{}, true, 403},
		{"anonymous loopback read", embedded(t), call{method: "GET", query: "SELECT 1"}, false, 200},
		{"own write", embedded(t), call{creds: &own}, true, 200},
		{"own write from another host", embedded(t), call{creds: &own, remote: "10.1.2.3:5000"}, true, 200},
		{"own write with GET", embedded(t), call{method: "GET", creds: &own}, true, 403},
		{"own write with readonly=1", embedded(t), call{creds: &own, params: url.Values{"readonly": {"1"}}}, true, 403},
		{"own user, wrong password", embedded(t), call{creds: &chdb.Credentials{User: own.User, Password: "guess"}}, true, 401},
		{"a password where none is set", embedded(t), call{creds: pw}, true, 401},
		{"password set, anonymous", withPassword(false), call{method: "GET", query: "SELECT 1"}, false, 401},
		{"password write from loopback", withPassword(false), call{creds: pw}, true, 200},
		{"password write from another host", withPassword(false), call{creds: pw, remote: "10.1.2.3:5000"}, true, 403},
		{"password read from another host", withPassword(false), call{creds: pw, remote: "10.1.2.3:5000", body: "SELECT 1"}, false, 200},
		{"password write from another host, remote_writes", withPassword(true), call{creds: pw, remote: "10.1.2.3:5000"}, true, 200},
		{"open: anonymous loopback write", open, call{}, true, 200},
		{"open: anonymous IPv6 loopback write", open, call{remote: "[::1]:5000"}, true, 200},
		{"open: anonymous remote write", open, call{remote: "10.1.2.3:5000"}, true, 403},
		{"open: anonymous remote read", open, call{remote: "10.1.2.3:5000", body: "  with x as (select 1) select * from x"}, false, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := testenv.UniqueName(t)
			if c.writes {
				c.c.body = "CREATE DATABASE " + db
				if c.c.method == "GET" {
					c.c.body, c.c.query = "", "CREATE DATABASE "+db
				}
			}
			status, body := serve(c.h, c.c)
			if status != c.want {
				t.Fatalf("status %d (%s), want %d", status, body, c.want)
			}
			if c.writes {
				if got := exists(t, db); got != (c.want == 200) {
					t.Fatalf("database created: %v, want %v", got, c.want == 200)
				}
				testenv.Engine(t).Query("DROP DATABASE IF EXISTS "+db, "TSV")
			}
		})
	}
	// A multi-statement from another host does not run its second statement.
	db := testenv.UniqueName(t)
	serve(open, call{body: "CREATE DATABASE " + db})
	if status, _ := serve(open, call{remote: "10.1.2.3:5000", body: "SELECT 1; DROP DATABASE " + db}); status == 200 || !exists(t, db) {
		t.Fatalf("SELECT 1; DROP from another host: status %d, database exists %v", status, exists(t, db))
	}
	testenv.Engine(t).Query("DROP DATABASE "+db, "TSV")
}

// probe is an HTTP server that counts the requests it gets: the engine must send none.
func probe(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// A read-only request (no credentials, another host, or GET) runs under the engine's
// readonly=1 and cannot write or reach the host's files or network: not through table
// functions, a SETTINGS clause in a subquery, the scalar file(), INTO OUTFILE in any
// spelling, DESCRIBE of a table function, PARALLEL WITH, or url() back to the endpoint.
func TestReadOnlyRequestsCannotReachTheHost(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(secret, []byte("token_header,b\nsup3rsecret,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := embedded(t)
	self, selfHits := probe(t, h)
	outside, outsideHits := probe(t, nil)
	created := testenv.UniqueName(t)
	out := func(n int) string { return filepath.Join(dir, fmt.Sprintf("out%d", n)) }
	for i, q := range []string{
		"SELECT * FROM file('" + secret + "', 'LineAsString')",
		"SELECT * FROM (SELECT * FROM file('" + secret + "', 'LineAsString') SETTINGS readonly = 0)",
		"select * from ( select * from file('" + secret + "', 'LineAsString') /* x */ settings\n`readonly`=0 )",
		"SELECT file('" + secret + "')",
		"SELECT `file`('" + secret + "')",
		"SELECT 'x' INTO OUTFILE '" + out(1) + "' FORMAT TSVRaw",
		"select 'x' into   outfile '" + out(2) + "'",
		"SELECT 'x' INTO /* comment */ OUTFILE '" + out(3) + "'",
		"SELECT 'x' INTO -- comment\n OUTFILE '" + out(4) + "' SETTINGS readonly = 1",
		"SELECT 'x' INTO OUTFILE '" + out(5) + "' AND STDOUT",
		"DESCRIBE file('" + secret + "', 'CSVWithNames')",
		"desc TABLE url('" + outside.URL + "/x.csv', 'CSVWithNames')",
		"SELECT * FROM url('" + outside.URL + "/', 'LineAsString')",
		"SELECT * FROM url('" + self.URL + "/?query=CREATE+DATABASE+" + created + "', 'LineAsString')",
		"SELECT * FROM url($$" + self.URL + "/?query=CREATE+DATABASE+" + created + "$$, 'LineAsString')",
		"SELECT * FROM executable('id', 'TSV', 'x String')",
		"SELECT 1 PARALLEL WITH CREATE DATABASE " + created,
		"(SELECT * FROM file('" + secret + "', 'LineAsString')) UNION ALL (SELECT 'x')",
		"SELECT 'x' EXCEPT SELECT * FROM file('" + secret + "', 'LineAsString')",
		"WITH t AS (SELECT * FROM file('" + secret + "', 'LineAsString')) SELECT * FROM t",
		"SELECT * FROM view(SELECT * FROM file('" + secret + "', 'LineAsString'))",
		"SET readonly = 0",
		"SELECT 1 SETTINGS max_execution_time = 0",
		"INSERT INTO FUNCTION file('" + out(6) + "', 'TSV') SELECT 1",
	} {
		for _, c := range []call{
			{method: "GET", query: q},
			{remote: "10.1.2.3:5000", body: q},
			{body: q}, // anonymous from this host
		} {
			status, body := serve(h, c)
			if status == 200 || strings.Contains(body, "sup3rsecret") || strings.Contains(body, "token_header") {
				t.Errorf("%d %q %s from %s: %d %q", i, q, c.method, c.remote, status, body)
			}
		}
	}
	for i := 1; i <= 6; i++ {
		if _, err := os.Stat(out(i)); err == nil {
			t.Errorf("%s was written", out(i))
		}
	}
	if exists(t, created) {
		t.Error("a read-only request created a database")
	}
	if n := selfHits.Load() + outsideHits.Load(); n != 0 {
		t.Errorf("the engine sent %d requests", n)
	}

	// What reads may do, they still do; words in string literals are only text.
	for _, c := range []struct{ q, want string }{
		{"SELECT value FROM system.settings WHERE name = 'readonly'", "1\n"},
		{"SELECT 'INTO OUTFILE', 'SETTINGS readonly = 0', 'file(x)' FORMAT CSV", "\"INTO OUTFILE\",\"SETTINGS readonly = 0\",\"file(x)\"\n"},
		{"SELECT count() FROM numbers(10) -- a comment", "10\n"},
		{"SELECT 'tab\there',\n 'back\\\\slash', 'it''s', '\\x41', $$heredoc$$ FORMAT TSVRaw", "tab\there\tback\\slash\tit's\tA\theredoc\n"},
		{"DESCRIBE TABLE system.one", "dummy\tUInt8"},
		{"SHOW DATABASES", "system"},
		{"EXISTS TABLE system.one", "1\n"},
		{"SELECT * FROM ((SELECT 1) UNION ALL (SELECT 2)) ORDER BY 1", "1\n2\n"},
	} {
		if status, body := serve(h, call{method: "GET", query: c.q}); status != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%q: %d %q, want %q", c.q, status, body, c.want)
		}
	}

	// A syntax error is about the request's query.
	if status, body := serve(h, call{method: "GET", query: "SELEC 1"}); status != 500 || !strings.Contains(body, "SYNTAX_ERROR") || strings.Contains(body, "formatQuery") {
		t.Errorf("SELEC 1: %d %q", status, body)
	}

	// A client with the password may write, but not to the host's files over HTTP.
	h.User, h.Password = "reader", "pw"
	if status, _ := serve(h, call{creds: &chdb.Credentials{User: "reader", Password: "pw"}, body: "SELECT 1 INTO OUTFILE '" + out(7) + "'"}); status != 403 {
		t.Errorf("INTO OUTFILE with the password: %d", status)
	}
	if _, err := os.Stat(out(7)); err == nil {
		t.Error("INTO OUTFILE with the password wrote the file")
	}
}

// Requests a web page can make a browser send are refused: cross-site (Origin,
// Sec-Fetch-Site), GET that writes (an <img> needs no script), a DNS-rebound host name,
// and a CORS preflight. A person typing the URL still reads.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	h := embedded(t)
	h.AllowedHosts = []string{"driftd.internal"}
	db := testenv.UniqueName(t)
	if status, body := serve(h, call{creds: &own, body: "CREATE DATABASE " + db}); status != 200 {
		t.Fatalf("create: %d %s", status, body)
	}
	t.Cleanup(func() { testenv.Engine(t).Query("DROP DATABASE IF EXISTS "+db, "TSV") })
	drop := "DROP DATABASE " + db
	for _, c := range []struct {
		name string
		c    call
		want int
	}{
		{"GET drop, no headers", call{method: "GET", query: drop}, 403},
		{"GET drop with driftd's credentials", call{method: "GET", query: drop, creds: &own}, 403},
		{"fetch from another origin", call{body: drop, creds: &own, header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"fetch from a null origin", call{body: drop, creds: &own, header: map[string]string{"Origin": "null"}}, 403},
		{"fetch from a local page on another port", call{body: drop, creds: &own, header: map[string]string{"Origin": "http://localhost:3000"}}, 403},
		{"cross-site navigation", call{method: "GET", query: "SELECT 1", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"same-site page", call{method: "GET", query: "SELECT 1", header: map[string]string{"Sec-Fetch-Site": "same-site"}}, 403},
		{"DNS rebinding", call{method: "GET", query: "SELECT 1", host: "evil.example:8123"}, 403},
		{"DNS rebinding with driftd's credentials", call{body: drop, creds: &own, host: "rebind.evil.example:8123"}, 403},
		{"preflight", call{method: "OPTIONS"}, 405},
		{"typed in the address bar", call{method: "GET", query: "SELECT 1", header: map[string]string{"Sec-Fetch-Site": "none"}}, 200},
		{"localhost", call{method: "GET", query: "SELECT 1", host: "localhost:8123"}, 200},
		{"IPv6 loopback", call{method: "GET", query: "SELECT 1", host: "[::1]:8123"}, 200},
		{"allowed name", call{method: "GET", query: "SELECT 1", host: "driftd.internal:8123"}, 200},
	} {
		if status, body := serve(h, c.c); status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
	}
	if !exists(t, db) {
		t.Fatal("the database was dropped")
	}
}

// Queries that are not driftd's own run within the time and memory limits, reads of
// clients with the password included.
func TestClientQueriesAreLimited(t *testing.T) {
	h := embedded(t)
	h.User, h.Password = "reader", "pw"
	h.MaxExecutionTime, h.MaxMemoryUsage = time.Second, 100<<20
	pw := &chdb.Credentials{User: "reader", Password: "pw"}
	for _, c := range []struct {
		name string
		c    call
		want string
	}{
		{"endless read", call{method: "GET", query: "SELECT count() FROM numbers(1e13)", creds: pw}, "TIMEOUT_EXCEEDED"},
		{"endless read with the password", call{body: "SELECT count() FROM numbers(1e13)", creds: pw}, "TIMEOUT_EXCEEDED"},
		{"800 MB read", call{method: "GET", query: "SELECT length(groupArray(number)) FROM numbers(1e8)", creds: pw}, "MEMORY_LIMIT_EXCEEDED"},
	} {
		start := time.Now()
		status, body := serve(h, c.c)
		if status == 200 || !strings.Contains(body, c.want) || time.Since(start) > 20*time.Second {
			t.Errorf("%s: %d %q after %v, want %s", c.name, status, body, time.Since(start), c.want)
		}
	}
	// Its own SETTINGS are the password holder's to choose.
	if status, body := serve(h, call{body: "SELECT count() FROM numbers(1e6) SETTINGS max_execution_time = 60", creds: pw}); status != 200 || body != "1000000\n" {
		t.Errorf("own settings: %d %q", status, body)
	}
}

// Clients' long queries never hold driftd's own write back by more than the one that
// is already running: four endless reads arrive first, each limited to one second; the
// write runs after the first, not after all four.
func TestOwnWritesGoFirst(t *testing.T) {
	h := embedded(t)
	h.MaxExecutionTime = time.Second
	eng := testenv.Engine(t)
	ctx := testenv.Context(t, time.Minute)
	const readers = 4
	var wg sync.WaitGroup
	results := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, body := serve(h, call{method: "GET", query: "SELECT count() FROM numbers(1e13)"})
			results <- body
		}()
	}
	// Each read is two engine runs: printing the query (a millisecond), then the query.
	// Once one runs and the others wait for 200 ms on end, an endless query is running,
	// and the write arrives behind all four.
	var steady time.Time
	for {
		if running, _, waiting := eng.Waiting(); running && waiting == readers-1 {
			if steady.IsZero() {
				steady = time.Now()
			}
			if time.Since(steady) > 200*time.Millisecond {
				break
			}
		} else {
			steady = time.Time{}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the reads did not start")
		case <-time.After(5 * time.Millisecond):
		}
	}
	db := testenv.UniqueName(t)
	start := time.Now()
	status, body := serve(h, call{creds: &own, body: "CREATE DATABASE " + db})
	took := time.Since(start)
	t.Cleanup(func() { eng.Query("DROP DATABASE IF EXISTS "+db, "TSV") })
	wg.Wait()
	close(results)
	if status != 200 {
		t.Fatalf("own write: %d %s", status, body)
	}
	for r := range results {
		if !strings.Contains(r, "TIMEOUT_EXCEEDED") {
			t.Errorf("a read ended with %q", r)
		}
	}
	t.Logf("driftd's write waited %v behind %d endless reads limited to %v", took, readers, h.MaxExecutionTime)
	if took > 2*h.MaxExecutionTime {
		t.Fatalf("driftd's write waited %v, more than two reads' limits", took)
	}
}

// A body over the cap is refused with 413 and nothing of it lands; driftd's own bodies
// have a cap of their own.
func TestBodiesAreCapped(t *testing.T) {
	h := embedded(t)
	h.AnonymousWrites = true
	h.MaxBody = 64 << 10
	db := testenv.UniqueName(t)
	eng := testenv.Engine(t)
	if _, err := eng.Query("CREATE DATABASE "+db+"; CREATE TABLE "+db+".t (n UInt64) ENGINE = MergeTree ORDER BY n", "TSV"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Query("DROP DATABASE IF EXISTS "+db, "TSV") })
	rows := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%d\n", i)
		}
		return b.String()
	}
	big := rows(20000) // 108,890 bytes
	count := func() string {
		out, err := eng.Query("SELECT count() FROM "+db+".t", "TSV")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		name string
		c    call
		want int
		rows string
	}{
		{"data after the query parameter", call{query: "INSERT INTO " + db + ".t FORMAT TSV", body: big}, 413, "0"},
		{"data after the query in the body", call{body: "INSERT INTO " + db + ".t FORMAT TSV\n" + big}, 413, "0"},
		{"a query over the cap", call{body: "SELECT 1 -- " + strings.Repeat("x", 70<<10)}, 413, "0"},
		{"under the cap", call{query: "INSERT INTO " + db + ".t FORMAT TSV", body: rows(1000)}, 200, "1000"},
		{"driftd's own", call{query: "INSERT INTO " + db + ".t FORMAT TSV", body: big, creds: &own}, 200, "21000"},
	} {
		status, body := serve(h, c.c)
		if status != c.want || count() != c.rows {
			t.Errorf("%s: %d %q, %s rows; want %d, %s rows", c.name, status, body, count(), c.want, c.rows)
		}
	}
}

// Comparing a guess one byte longer than the password takes as long as comparing one of
// its length: the comparison does not tell an attacker the password's length.
func TestPasswordLengthDoesNotLeak(t *testing.T) {
	h := chdb.NewServer(nil, t.TempDir(), slog.New(slog.DiscardHandler))
	h.User, h.Password = "reader", strings.Repeat("p", 1<<20)
	sameLength, longer := strings.Repeat("q", 1<<20), strings.Repeat("q", 1<<20+1)
	median := func(guess string) time.Duration {
		var ds []time.Duration
		for range 21 {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("SELECT 1"))
			req.Host = "127.0.0.1"
			req.Header.Set("X-ClickHouse-User", "reader")
			req.Header.Set("X-ClickHouse-Key", guess)
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			ds = append(ds, time.Since(start))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", rec.Code)
			}
		}
		for i := range ds { // insertion sort: 21 values
			for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
				ds[j], ds[j-1] = ds[j-1], ds[j]
			}
		}
		return ds[len(ds)/2]
	}
	a, b := median(sameLength), median(longer)
	ratio := float64(a) / float64(b)
	t.Logf("median: same length %v, one byte longer %v (ratio %.2f)", a, b, ratio)
	if ratio > 3 || ratio < 1.0/3 {
		t.Fatalf("the time to refuse a guess depends on whether its length is right: %v vs %v", a, b)
	}
}
