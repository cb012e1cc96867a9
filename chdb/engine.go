// Package chdb embeds the ClickHouse engine (chDB's libchdb.so, loaded with purego at run
// time) and serves it over ClickHouse's HTTP interface, so that the rest of driftd, and any
// ClickHouse HTTP client, talks to it exactly as to a ClickHouse server.
//
// The library is loaded lazily and only on request: a driftd binary without libchdb.so
// still starts, and says what is missing when the embedded engine is asked for.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrLibraryNotFound is returned by Open when libchdb.so cannot be located.
var ErrLibraryNotFound = errors.New("libchdb.so not found")

// LibEnv names the environment variable that points at libchdb.so.
const LibEnv = "CHDB_LIB_PATH"

// Engine is one chDB session. chDB allows a single connection per process and runs one
// query at a time on it, so every call is serialized here, urgent ones first.
type Engine struct {
	gate gate
	conn unsafe.Pointer // chdb_connection* as returned by chdb_connect; guarded by gate
	path string

	connect   func(argc int32, argv **byte) unsafe.Pointer
	closeConn func(conn unsafe.Pointer)
	// The length-taking variants: a NUL byte inside a query or a parameter value is data,
	// not the end of the string.
	queryN        func(conn unsafe.Pointer, query *byte, queryLen uintptr, format *byte, formatLen uintptr) unsafe.Pointer
	queryParamsN  func(conn unsafe.Pointer, query *byte, queryLen uintptr, format *byte, formatLen uintptr, names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, count uintptr) unsafe.Pointer
	resultBuffer  func(res unsafe.Pointer) unsafe.Pointer
	resultLength  func(res unsafe.Pointer) uintptr
	resultError   func(res unsafe.Pointer) string
	destroyResult func(res unsafe.Pointer)
}

// FindLibrary returns the path of libchdb.so: the explicit path if given, else
// $CHDB_LIB_PATH, else the project cache that scripts/chdb.sh fills.
func FindLibrary(explicit string) (string, error) {
	candidates := []string{explicit, os.Getenv(LibEnv)}
	if wd, err := os.Getwd(); err == nil {
		// Walk up so that tests in sub-packages find the repository's cache too.
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, ".cache", "chdb", "package", "libchdb.so"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if home, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "driftd", "chdb", "package", "libchdb.so"))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
		if c == explicit || c == os.Getenv(LibEnv) {
			return "", fmt.Errorf("%w at %s (set by config or %s)", ErrLibraryNotFound, c, LibEnv)
		}
	}
	return "", fmt.Errorf("%w: set %s or run scripts/chdb.sh to fetch it", ErrLibraryNotFound, LibEnv)
}

// Open loads libchdb.so from libPath and opens a session whose data lives under dataDir
// (":memory:" or "" for a throw-away in-memory session). args are further command-line
// arguments of the engine (clickhouse-local's), such as --config-file=<path>.
func Open(libPath, dataDir string, args ...string) (*Engine, error) {
	lib, err := purego.Dlopen(libPath, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", libPath, err)
	}
	e := &Engine{path: dataDir}
	for name, fn := range map[string]any{
		"chdb_connect":              &e.connect,
		"chdb_close_conn":           &e.closeConn,
		"chdb_query_n":              &e.queryN,
		"chdb_query_with_params_n":  &e.queryParamsN,
		"chdb_result_buffer":        &e.resultBuffer,
		"chdb_result_length":        &e.resultLength,
		"chdb_result_error":         &e.resultError,
		"chdb_destroy_query_result": &e.destroyResult,
	} {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return nil, fmt.Errorf("load %s: symbol %s: %w", libPath, name, err)
		}
		purego.RegisterFunc(fn, sym)
	}

	args = append([]string{"clickhouse"}, args...)
	if dataDir != "" && dataDir != ":memory:" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create chdb data dir: %w", err)
		}
		args = append(args, "--path="+dataDir)
	}
	cargs := make([]*byte, len(args))
	for i, a := range args {
		b := append([]byte(a), 0)
		cargs[i] = &b[0]
	}
	saved := saveSignals()
	conn := e.connect(int32(len(cargs)), &cargs[0])
	saved.restore()
	if conn == nil {
		return nil, fmt.Errorf("chdb_connect %s: failed (another session open in this process, or the path is not writable)", dataDir)
	}
	e.conn = conn
	return e, nil
}

// Request is one run of the engine.
type Request struct {
	// SQL is one statement, or several separated by semicolons.
	SQL string
	// Format is the ClickHouse output format (TabSeparated when empty).
	Format string
	// Params are the values of the {name:Type} placeholders in SQL, in ClickHouse's
	// escaped text format. The engine binds them after parsing, so a value is never SQL
	// and a placeholder inside a string literal stays text.
	Params map[string]string
	// Urgent requests run before every waiting request that is not: driftd's own writes
	// are never queued behind clients' queries.
	Urgent bool
}

// Query runs one statement and returns its output in the given ClickHouse format.
func (e *Engine) Query(query, format string) ([]byte, error) {
	return e.Do(context.Background(), Request{SQL: query, Format: format})
}

// Do waits for the engine (until ctx ends) and runs r on it.
func (e *Engine) Do(ctx context.Context, r Request) ([]byte, error) {
	if r.SQL == "" {
		return nil, &Exception{Message: "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"}
	}
	if r.Format == "" {
		r.Format = "TabSeparated"
	}
	if err := e.gate.acquire(ctx, r.Urgent); err != nil {
		return nil, fmt.Errorf("chdb: waiting for the engine: %w", err)
	}
	defer e.gate.release()
	if e.conn == nil {
		return nil, errors.New("chdb: engine closed")
	}
	query, format := []byte(r.SQL), []byte(r.Format)
	var res unsafe.Pointer
	if len(r.Params) == 0 {
		res = e.queryN(*(*unsafe.Pointer)(e.conn), &query[0], uintptr(len(query)), &format[0], uintptr(len(format)))
	} else {
		names := make([]*byte, 0, len(r.Params))
		values := make([]*byte, 0, len(r.Params))
		nameLens := make([]uintptr, 0, len(r.Params))
		valueLens := make([]uintptr, 0, len(r.Params))
		for k, v := range r.Params {
			// A terminating zero keeps the pointer of an empty value valid; the length
			// leaves it out.
			kb, vb := append([]byte(k), 0), append([]byte(v), 0)
			names, nameLens = append(names, &kb[0]), append(nameLens, uintptr(len(k)))
			values, valueLens = append(values, &vb[0]), append(valueLens, uintptr(len(v)))
		}
		res = e.queryParamsN(*(*unsafe.Pointer)(e.conn), &query[0], uintptr(len(query)), &format[0], uintptr(len(format)),
			&names[0], &nameLens[0], &values[0], &valueLens[0], uintptr(len(names)))
		runtime.KeepAlive(names)
		runtime.KeepAlive(values)
	}
	runtime.KeepAlive(query)
	runtime.KeepAlive(format)
	if res == nil {
		return nil, errors.New("chdb: query returned no result")
	}
	defer e.destroyResult(res)
	if msg := e.resultError(res); msg != "" {
		return nil, &Exception{Message: strings.TrimSpace(msg)}
	}
	n := e.resultLength(res)
	buf := e.resultBuffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	out := make([]byte, n)
	copy(out, unsafe.Slice((*byte)(buf), n))
	return out, nil
}

// Waiting reports whether a query runs and how many wait, urgent and not.
func (e *Engine) Waiting() (running bool, urgent, normal int) {
	return e.gate.state()
}

// Close ends the session. chDB cannot reopen a session in the same process afterwards.
func (e *Engine) Close() error {
	if err := e.gate.acquire(context.Background(), true); err != nil {
		return err
	}
	defer e.gate.release()
	if e.conn != nil {
		e.closeConn(e.conn)
		e.conn = nil
	}
	return nil
}
