// Package chdb embeds the ClickHouse engine (chDB's libchdb.so, loaded with purego at run
// time) and serves it over ClickHouse's HTTP interface, so that the rest of driftd, and any
// ClickHouse HTTP client, talks to it exactly as to a ClickHouse server.
//
// The library is loaded lazily and only on request: a driftd binary without libchdb.so
// still starts, and says what is missing when the embedded engine is asked for.
package chdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrLibraryNotFound is returned by Open when libchdb.so cannot be located.
var ErrLibraryNotFound = errors.New("libchdb.so not found")

// LibEnv names the environment variable that points at libchdb.so.
const LibEnv = "CHDB_LIB_PATH"

// Engine is one chDB session. chDB allows a single connection per process and runs one
// query at a time on it, so every call is serialized here.
type Engine struct {
	mu   sync.Mutex
	conn unsafe.Pointer // chdb_connection* as returned by chdb_connect
	path string

	connect       func(argc int32, argv **byte) unsafe.Pointer
	closeConn     func(conn unsafe.Pointer)
	query         func(conn unsafe.Pointer, query string, format string) unsafe.Pointer
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
// (":memory:" or "" for a throw-away in-memory session).
func Open(libPath, dataDir string) (*Engine, error) {
	lib, err := purego.Dlopen(libPath, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", libPath, err)
	}
	e := &Engine{path: dataDir}
	for name, fn := range map[string]any{
		"chdb_connect":              &e.connect,
		"chdb_close_conn":           &e.closeConn,
		"chdb_query":                &e.query,
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

	args := []string{"clickhouse"}
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

// Query runs one statement and returns its output in the given ClickHouse format.
func (e *Engine) Query(query, format string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil, errors.New("chdb: engine closed")
	}
	res := e.query(*(*unsafe.Pointer)(e.conn), query, format)
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

// Close ends the session. chDB cannot reopen a session in the same process afterwards.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		e.closeConn(e.conn)
		e.conn = nil
	}
	return nil
}
