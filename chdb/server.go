package chdb

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Querier runs one statement on an engine; *Engine is the production one.
type Querier interface {
	Query(query, format string) ([]byte, error)
}

// Server serves an engine over the subset of ClickHouse's HTTP interface that
// clickhouse-go (Protocol: HTTP), curl and Grafana's ClickHouse data source use:
// the query in the body or the "query" parameter, data after it for INSERT,
// default_format, database, and client_protocol_version for Native results.
type Server struct {
	engine  Querier
	log     *slog.Logger
	tmpDir  string
	maxBody int64
	// RemoteWrites lets clients from other hosts than loopback change data or schema.
	// Off by default: anyone who can reach the port may read, only this host may write.
	RemoteWrites bool
	// User and Password, when Password is set, are required of every request (but
	// /ping), given as ClickHouse's clients do: X-ClickHouse-User/X-ClickHouse-Key
	// headers, HTTP basic auth, or user/password URL parameters.
	User, Password string
}

// NewServer returns a handler for engine. Insert bodies are spooled to files under
// tmpDir (chDB cuts data inlined in the query at max_query_size).
func NewServer(engine Querier, tmpDir string, log *slog.Logger) *Server {
	return &Server{engine: engine, log: log, tmpDir: tmpDir, maxBody: 1 << 30}
}

var (
	insertRE = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*(?:\r?\n)?`)
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ping":
		io.WriteString(w, "Ok.\n")
		return
	case r.URL.Path != "/" && r.URL.Path != "":
		http.NotFound(w, r)
		return
	}
	params := r.URL.Query()
	if s.Password != "" && !s.authenticated(r, params) {
		// ClickHouse's wording and code, so clients report it as they would a server's.
		s.fail(w, http.StatusUnauthorized, errors.New("Code: 516. DB::Exception: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody))
	if err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}
	query := params.Get("query")
	var data []byte
	if query == "" {
		query = string(body)
	} else {
		data = body
	}
	if r.Method == http.MethodGet && query == "" {
		io.WriteString(w, "Ok.\n")
		return
	}
	if strings.TrimSpace(query) == "" {
		s.fail(w, http.StatusBadRequest, errors.New("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"))
		return
	}
	if !s.RemoteWrites && !fromLoopback(r) && !readOnly(query) {
		s.fail(w, http.StatusForbidden, errors.New("Code: 164. DB::Exception: the embedded endpoint accepts only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN from other hosts than this one. (READONLY)"))
		return
	}
	if placeholderRE.MatchString(query) {
		if query, err = bindParams(query, params); err != nil {
			s.fail(w, http.StatusBadRequest, err)
			return
		}
	}

	if m := insertRE.FindStringSubmatchIndex(query); m != nil && data == nil {
		// Data written inline after "FORMAT X" (curl style).
		data = []byte(query[m[1]:])
		query = query[:m[1]]
	}
	// Each request is independent on a real server; here the session is shared, so every
	// request starts by choosing its database.
	db := params.Get("database")
	if db == "" {
		db = "default"
	}
	if !identRE.MatchString(db) {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("Code: 81. DB::Exception: invalid database name %q. (UNKNOWN_DATABASE)", db))
		return
	}
	use := "USE " + db + "; "

	if m := insertRE.FindStringSubmatch(query); m != nil && len(bytes.TrimSpace(data)) > 0 {
		s.insert(w, use+m[1], m[2], data)
		return
	}
	query = use + query

	format := params.Get("default_format")
	if format == "" {
		format = "TabSeparated"
	}
	s.log.Debug("embedded clickhouse query", "query", query, "format", format)
	out, err := s.engine.Query(query, format)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if format == "Native" && len(out) > 0 {
		rev, _ := strconv.ParseUint(params.Get("client_protocol_version"), 10, 64)
		if rev > 0 {
			if out, err = reencodeNative(out, rev); err != nil {
				s.fail(w, http.StatusInternalServerError, fmt.Errorf("re-encode result for client revision %d: %w", rev, err))
				return
			}
		}
	}
	w.Header().Set("X-ClickHouse-Format", format)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

var readOnlyRE = regexp.MustCompile(`(?is)^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b`)

// readOnly reports whether query only reads. One statement is checked: the engine would
// run a second one after a semicolon, so any semicolon that is not trailing disqualifies.
func readOnly(query string) bool {
	q := strings.TrimRight(strings.TrimSpace(query), "; \t\r\n")
	return readOnlyRE.MatchString(q) && !strings.Contains(q, ";")
}

func (s *Server) authenticated(r *http.Request, params url.Values) bool {
	user, pass := r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
	if u, p, ok := r.BasicAuth(); ok {
		user, pass = u, p
	}
	if params.Has("password") {
		user, pass = params.Get("user"), params.Get("password")
	}
	if user == "" {
		user = "default"
	}
	want := s.User
	if want == "" {
		want = "default"
	}
	// Both compared in constant time: neither the name nor the password leaks by timing.
	u := subtle.ConstantTimeCompare([]byte(user), []byte(want))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.Password))
	return u&p == 1
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// insert spools data to a file and lets the engine read it with file(): chDB cuts data
// inlined in a query at max_query_size.
func (s *Server) insert(w http.ResponseWriter, target, format string, data []byte) {
	f, err := os.CreateTemp(s.tmpDir, "insert-*."+strings.ToLower(format))
	if err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("spool insert: %w", err))
		return
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("spool insert: %w", err))
		return
	}
	q := fmt.Sprintf("%s SELECT * FROM file('%s', %s)", target, f.Name(), format)
	if _, err := s.engine.Query(q, "TabSeparated"); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) fail(w http.ResponseWriter, status int, err error) {
	code := 1001
	var ex *Exception
	if errors.As(err, &ex) {
		code = ex.Code()
	} else if m := codeRE.FindStringSubmatch(err.Error()); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	s.log.Debug("embedded clickhouse query failed", "code", code, "err", err)
	w.Header().Set("X-ClickHouse-Exception-Code", strconv.Itoa(code))
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	msg := err.Error()
	if !strings.HasPrefix(msg, "Code:") {
		msg = fmt.Sprintf("Code: %d. DB::Exception: %s", code, msg)
	}
	io.WriteString(w, msg+"\n")
}

// reencodeNative turns chDB's revision-0 Native output into the block layout of the
// client's protocol revision (block info and custom-serialization flags).
func reencodeNative(in []byte, revision uint64) ([]byte, error) {
	rd := chproto.NewReader(bytes.NewReader(in))
	var out chproto.Buffer
	for {
		blk := proto.Block{ServerContext: &column.ServerContext{Timezone: time.UTC}}
		if err := blk.Decode(rd, 0); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if err := blk.Encode(&out, revision); err != nil {
			return nil, err
		}
	}
	return out.Buf, nil
}
