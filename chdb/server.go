package chdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/driftd/driftd/internal/webguard"
)

// Querier runs requests on an engine; *Engine is the production one.
type Querier interface {
	Do(ctx context.Context, r Request) ([]byte, error)
}

// Credentials are a user name and password as ClickHouse's clients send them.
type Credentials struct {
	User, Password string
}

// Server serves an engine over the subset of ClickHouse's HTTP interface that
// clickhouse-go (Protocol: HTTP), curl and Grafana's ClickHouse data source use:
// the query in the body or the "query" parameter, data after it for INSERT,
// default_format, database, param_<name> and client_protocol_version for Native results.
//
// Access follows ClickHouse's own model. A request is one of three kinds:
//   - driftd's own (the Own credentials): goes to the engine before every waiting
//     request of the others and runs without limits;
//   - a client's: may write, with the User/Password credentials (or without any when no
//     Password is set and AnonymousWrites), from this host, or from any host with
//     RemoteWrites; its reads run within the limits unless it sets its own SETTINGS;
//   - read-only: everything else that is let in (GET, readonly=1, no credentials,
//     other hosts), run by the engine with readonly=1 and the limits.
//
// Requests a web page could have sent (a cross-site Origin or Sec-Fetch-Site, or over
// plain HTTP a Host that names neither an IP address, localhost nor AllowedHosts, as after
// DNS rebinding) are refused.
type Server struct {
	engine Querier
	log    *slog.Logger
	tmpDir string
	// MaxBody caps a request body (the query, or the data of an INSERT) of everyone but
	// driftd itself; a larger one is refused with 413, never cut.
	MaxBody int64
	// Own are driftd's own credentials (unset: no request is driftd's own).
	Own Credentials
	// User and Password, when Password is set, are required of every request but /ping
	// (given as X-ClickHouse-User/X-ClickHouse-Key headers, HTTP basic auth, or
	// user/password URL parameters) and let a client write.
	User, Password string
	// AnonymousWrites lets requests without credentials from this host write when no
	// Password is set, like a ClickHouse server's passwordless default user. Off: they read.
	AnonymousWrites bool
	// RemoteWrites lets clients on other hosts than this one write. Off: they read.
	RemoteWrites bool
	// AllowedHosts are the names, besides IP addresses and localhost, by which clients
	// reach the endpoint over plain HTTP.
	AllowedHosts []string
	// MaxExecutionTime and MaxMemoryUsage bound every query but driftd's own (0: none).
	MaxExecutionTime time.Duration
	MaxMemoryUsage   int64

	mu               sync.Mutex
	refusedFunctions map[string]bool // see tableFunctions

	spoolMu    sync.Mutex
	spools     []string // spool files free for the next insert (spool)
	spoolCount int      // spool files made
}

// ownMaxBody caps driftd's own request bodies: its largest batch is far below it.
const ownMaxBody = 1 << 30

// NewServer returns a handler for engine with safe defaults: clients without the
// password only read, within a 30 s and 1 GiB budget per query, with bodies up to 256 MiB.
// Insert bodies are spooled to files under tmpDir (chDB cuts data inlined in the query
// at max_query_size), a directory of this server's alone: the files are reused by name.
func NewServer(engine Querier, tmpDir string, log *slog.Logger) *Server {
	return &Server{engine: engine, log: log, tmpDir: tmpDir, MaxBody: 256 << 20,
		MaxExecutionTime: 30 * time.Second, MaxMemoryUsage: 1 << 30}
}

// kind is what a request may do.
type kind int

const (
	readOnly kind = iota
	client
	own
)

var (
	printScopeRE = regexp.MustCompile(`(?s):? In scope SELECT formatQuery\(.*\)\. (\([A-Z_]+\))$`)
	insertRE     = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*(?:\r?\n)?`)
	identRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// settingsRE finds an insert's own SETTINGS clause (not a name containing the word).
	settingsRE = regexp.MustCompile(`(?i)\bSETTINGS\b`)
)

// Errors in ClickHouse's words and codes, so clients report them as they would a server's.
var (
	errAuth  = errors.New("Code: 516. DB::Exception: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")
	errEmpty = errors.New("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ping":
		io.WriteString(w, "Ok.\n")
		return
	case r.URL.Path != "/" && r.URL.Path != "":
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodPost:
		// OPTIONS among them: a browser's preflight fails, so its request is never sent.
		w.Header().Set("Allow", "GET, POST")
		s.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("Code: 1001. DB::Exception: method %s is not supported", r.Method))
		return
	}
	if why := s.crossSite(r); why != "" {
		s.fail(w, http.StatusForbidden, fmt.Errorf("Code: 497. DB::Exception: %s. (ACCESS_DENIED)", why))
		return
	}
	params := r.URL.Query()
	k, ok := s.access(r, params)
	if !ok {
		s.fail(w, http.StatusUnauthorized, errAuth)
		return
	}
	limit := s.MaxBody
	if k == own {
		limit = ownMaxBody
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	query := params.Get("query")
	var inline []byte // data after the query in the body (curl style)
	if query == "" {
		b, err := io.ReadAll(body)
		if err != nil {
			s.failBody(w, err)
			return
		}
		query = string(b)
		if r.Method == http.MethodGet && query == "" {
			io.WriteString(w, "Ok.\n")
			return
		}
		if m := insertRE.FindStringSubmatchIndex(query); m != nil {
			inline, query = []byte(query[m[1]:]), query[:m[1]]
		}
	}
	if strings.TrimSpace(query) == "" {
		s.fail(w, http.StatusBadRequest, errEmpty)
		return
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
	req := Request{Params: queryParams(params), Urgent: k == own}
	run := query
	if k != own {
		var err error
		if run, err = s.vet(r.Context(), k, query); err != nil {
			status := http.StatusInternalServerError
			var ex *Exception
			if !errors.As(err, &ex) {
				status = http.StatusForbidden
			}
			s.fail(w, status, err)
			return
		}
	}
	req.SQL = "USE " + db + "; " + run

	if m := insertRE.FindStringSubmatch(query); m != nil {
		var data io.Reader = body
		if params.Get("query") == "" {
			data = bytes.NewReader(inline)
		}
		target := m[1]
		if params.Get("optimize_on_insert") == "0" && !settingsRE.MatchString(target) {
			// An insert into a table read with FINAL only (driftd's prediction keys): the
			// engine's deduplication of the block is work for nothing. A server takes the
			// setting from the URL; the engine, from the statement.
			target += " SETTINGS optimize_on_insert = 0"
		}
		s.insert(w, r.Context(), req, "USE "+db+"; "+target, m[2], data)
		return
	}
	req.Format = params.Get("default_format")
	if req.Format == "" {
		req.Format = "TabSeparated"
	}
	s.log.Debug("embedded clickhouse query", "query", req.SQL, "format", req.Format)
	out, err := s.engine.Do(r.Context(), req)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if req.Format == "Native" && len(out) > 0 {
		rev, _ := strconv.ParseUint(params.Get("client_protocol_version"), 10, 64)
		if rev > 0 {
			if out, err = reencodeNative(out, rev); err != nil {
				s.fail(w, http.StatusInternalServerError, fmt.Errorf("re-encode result for client revision %d: %w", rev, err))
				return
			}
		}
	}
	w.Header().Set("X-ClickHouse-Format", req.Format)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// vet returns the statement to run for a request that is not driftd's own: the query as
// the engine's parser prints it, checked, with the limits appended where they apply.
// A client's statement that is not a read (or that the engine cannot print alone, such
// as several statements) runs as sent: a client may write.
func (s *Server) vet(ctx context.Context, k kind, query string) (string, error) {
	printed, err := s.engine.Do(ctx, Request{SQL: "SELECT formatQuery({q:String})", Format: "RawBLOB",
		Params: map[string]string{"q": escapedText.Replace(query)}})
	if err != nil {
		if k == client {
			return query, nil
		}
		var ex *Exception
		if errors.As(err, &ex) {
			// The error is about the request's query, not the call that printed it.
			return "", &Exception{Message: printScopeRE.ReplaceAllString(ex.Message, ". $1")}
		}
		return "", err
	}
	st, err := parseStatement(string(printed))
	if err != nil {
		return "", fmt.Errorf("Code: 62. DB::Exception: the printed query does not lex: %v. (SYNTAX_ERROR)", err)
	}
	if k == readOnly {
		tf, err := s.tableFunctions(ctx)
		if err != nil {
			return "", err
		}
		if why := st.readOnlyViolation(tf); why != "" {
			return "", fmt.Errorf("Code: 164. DB::Exception: %s. (READONLY)", why)
		}
		return string(printed) + s.limits(true), nil
	}
	if t := st.fileTransfer(); t != "" {
		return "", fmt.Errorf("Code: 164. DB::Exception: %s is not allowed over HTTP. (READONLY)", t)
	}
	if st.reads() && !st.keyword("SETTINGS") {
		return string(printed) + s.limits(false), nil
	}
	return query, nil
}

// tableFunctions returns the (lower-case) names of the table functions the engine's
// readonly refuses, asking the engine once. format() is left out: it only parses its
// argument, and a scalar function has its name.
func (s *Server) tableFunctions(ctx context.Context) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusedFunctions != nil {
		return s.refusedFunctions, nil
	}
	out, err := s.engine.Do(ctx, Request{SQL: "SELECT name FROM system.table_functions WHERE NOT allow_readonly", Format: "TSVRaw"})
	if err != nil {
		return nil, fmt.Errorf("list the engine's table functions: %w", err)
	}
	m := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		m[strings.ToLower(name)] = true
	}
	delete(m, "format")
	s.refusedFunctions = m
	return m, nil
}

// limits is the SETTINGS clause that bounds a query that is not driftd's own.
func (s *Server) limits(readonly bool) string {
	var set []string
	if readonly {
		set = append(set, "readonly = 1")
	}
	if s.MaxExecutionTime > 0 {
		set = append(set, "max_execution_time = "+strconv.FormatFloat(s.MaxExecutionTime.Seconds(), 'f', -1, 64))
	}
	if s.MaxMemoryUsage > 0 {
		set = append(set, "max_memory_usage = "+strconv.FormatInt(s.MaxMemoryUsage, 10))
	}
	if len(set) == 0 {
		return ""
	}
	return "\nSETTINGS " + strings.Join(set, ", ")
}

// access authenticates a request and says what it may do; false: wrong credentials.
func (s *Server) access(r *http.Request, params url.Values) (kind, bool) {
	user, pass, given := credentials(r, params)
	var k kind
	switch {
	case given && s.Own.Password != "" && sameSecret(user, s.Own.User) && sameSecret(pass, s.Own.Password):
		k = own
	case s.Password != "":
		// Both compared whatever the first gave, in constant time and on digests, so
		// that neither the name nor the password leaks by timing, not even its length.
		want := s.User
		if want == "" {
			want = "default"
		}
		if user == "" {
			user = "default"
		}
		u, p := sameSecret(user, want), sameSecret(pass, s.Password)
		if !u || !p {
			return 0, false
		}
		k = client
	case given && pass != "":
		// No client password exists, so a password that is not driftd's own is wrong.
		return 0, false
	case s.AnonymousWrites:
		k = client
	default:
		k = readOnly
	}
	// As on ClickHouse's HTTP interface, GET only reads, whoever sends it: a link or an
	// image on a web page can make a browser send one.
	if r.Method == http.MethodGet || params.Get("readonly") != "" && params.Get("readonly") != "0" {
		return readOnly, true
	}
	if k == client && !s.RemoteWrites && !fromThisHost(r) {
		return readOnly, true
	}
	return k, true
}

// credentials returns the user and password a request carries, in any of the three ways
// ClickHouse's clients send them, and whether it carries any.
func credentials(r *http.Request, params url.Values) (user, pass string, given bool) {
	user, pass = r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
	given = user != "" || pass != ""
	if u, p, ok := r.BasicAuth(); ok {
		user, pass, given = u, p, true
	}
	if params.Has("password") || params.Has("user") {
		user, pass, given = params.Get("user"), params.Get("password"), true
	}
	return user, pass, given
}

// sameSecret compares two secrets in time that depends on neither's content nor on the
// length of the expected one: it compares their SHA-256 digests in constant time.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// crossSite says why a request looks sent by a web page on another site, or "".
func (s *Server) crossSite(r *http.Request) string {
	// Browsers mark every request they send; a user typing the URL is "none".
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "none" && site != "same-origin" {
		return "requests from web pages of another site (Sec-Fetch-Site: " + site + ") are refused"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return "requests from web pages of another origin (" + origin + ") are refused"
		}
	}
	// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 is the
	// same origin as the endpoint to the browser, but its requests still name evil.example.
	// Over TLS the certificate does not match such a name, so the browser never gets this far.
	if r.TLS == nil && !webguard.HostAllowed(r.Host, s.AllowedHosts) {
		return fmt.Sprintf("host %q is not a name of this endpoint (an IP address, localhost, or a name in clickhouse.embedded.allowed_hosts)", r.Host)
	}
	return ""
}

// fromThisHost reports whether a request comes from this host: over loopback, or to one
// of its own addresses from that same address (driftd reaching an endpoint that listens
// on a non-loopback address).
func fromThisHost(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, _, err := net.SplitHostPort(local.String())
	return err == nil && net.ParseIP(lhost).Equal(ip)
}

// insert spools an INSERT's data to a file and lets the engine read it with file():
// chDB cuts data inlined in a query at max_query_size. Data beyond the body's cap is
// refused with 413 before anything runs. Without data, the statement runs as it is.
func (s *Server) insert(w http.ResponseWriter, ctx context.Context, req Request, target, format string, data io.Reader) {
	f, err := s.spool()
	if err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("spool insert: %w", err))
		return
	}
	defer s.unspool(f.Name())
	n, werr := io.Copy(f, data)
	cerr := f.Close()
	if werr != nil {
		s.failBody(w, werr)
		return
	}
	if cerr != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("spool insert: %w", cerr))
		return
	}
	if n > 0 {
		req.SQL = fmt.Sprintf("%s SELECT * FROM file('%s', %s)", target, f.Name(), format)
	}
	if _, err := s.engine.Do(ctx, req); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// spool opens a file for an insert's body, emptied: one an earlier insert has given back
// (unspool), or a new one when every file is in use. The files are kept, not removed
// after each insert: an insert is a file made and removed besides the engine's part, and
// on ext4 without a journal every new file is placed past the inodes freed in the last
// minutes (they are not reused at once), a search that grows with the files removed.
func (s *Server) spool() (*os.File, error) {
	s.spoolMu.Lock()
	var name string
	if n := len(s.spools); n > 0 {
		name, s.spools = s.spools[n-1], s.spools[:n-1]
	} else {
		s.spoolCount++
		name = filepath.Join(s.tmpDir, fmt.Sprintf("insert-%d.spool", s.spoolCount))
	}
	s.spoolMu.Unlock()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		s.unspool(name)
		return nil, err
	}
	return f, nil
}

// unspool gives an insert's spool file back for the next, emptied: a large body does not
// keep its space.
func (s *Server) unspool(name string) {
	if err := os.Truncate(name, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not empty an insert's spool file; it is emptied when next used", "file", name, "err", err)
	}
	s.spoolMu.Lock()
	s.spools = append(s.spools, name)
	s.spoolMu.Unlock()
}

// failBody answers a body that could not be read: 413 when it is over the cap.
func (s *Server) failBody(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("Code: 1001. DB::Exception: the request body is larger than the endpoint accepts (%d bytes); nothing of it was run", tooLarge.Limit))
		return
	}
	s.fail(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
}

func (s *Server) fail(w http.ResponseWriter, status int, err error) {
	code := 1001
	var ex *Exception
	if errors.As(err, &ex) {
		code = ex.Code()
	} else if m := codeRE.FindStringSubmatch(err.Error()); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	if code == 164 && status == http.StatusInternalServerError {
		// The engine's own readonly refusal, answered as ClickHouse's HTTP interface does.
		status = http.StatusForbidden
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
