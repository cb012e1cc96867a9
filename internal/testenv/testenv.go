// Package testenv gives tests the real engines: the Kafka broker started by
// scripts/kafka.sh (KAFKA_BROKERS) and the ClickHouse engine, either a server named by
// CLICKHOUSE_ADDR (native protocol) or the embedded chDB endpoint of this process.
//
// A test that needs an engine and cannot reach it fails; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/chdb"
)

// chDB allows one session per process, so the engine and its endpoint are shared by every
// test of a package binary; tests keep apart by using their own database.
var shared struct {
	once   sync.Once
	engine *chdb.Engine
	dir    string
	addr   string
	err    error
}

// EngineConfigEnv names a ClickHouse configuration file (server format: remote_servers,
// macros, …) for the shared engine; a test that needs one runs its package's binary again
// with it set (the engine is one per process).
const EngineConfigEnv = "DRIFTD_TEST_CHDB_CONFIG"

// Main runs the tests and releases the shared engine afterwards.
func Main(m *testing.M) {
	code := m.Run()
	if shared.engine != nil {
		shared.engine.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func openShared() {
	shared.once.Do(func() {
		lib, err := chdb.FindLibrary("")
		if err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp("", "driftd-chdb-test-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		var args []string
		if cfg := os.Getenv(EngineConfigEnv); cfg != "" {
			args = append(args, "--config-file="+cfg)
		}
		shared.engine, shared.err = chdb.Open(lib, dir+"/data", args...)
		if shared.err != nil {
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			shared.err = err
			return
		}
		shared.addr = ln.Addr().String()
		srv := &http.Server{Handler: openHandler(shared.engine, dir), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
	})
}

// Engine returns the process's chDB engine.
func Engine(t testing.TB) *chdb.Engine {
	t.Helper()
	openShared()
	if shared.err != nil {
		t.Fatalf("the embedded ClickHouse engine is needed: %v (make test fetches it)", shared.err)
	}
	return shared.engine
}

// ClickHouseHandler returns a fresh HTTP endpoint over the shared engine, open as a
// ClickHouse server's passwordless default user is (see openHandler).
func ClickHouseHandler(t testing.TB) *chdb.Server {
	t.Helper()
	return openHandler(Engine(t), t.TempDir())
}

// openHandler is an endpoint that stands in for a ClickHouse server whose default user
// has no password: this host writes without credentials, as the tests' clients do.
func openHandler(e *chdb.Engine, tmpDir string) *chdb.Server {
	h := chdb.NewServer(e, tmpDir, slog.New(slog.DiscardHandler))
	h.AnonymousWrites = true
	return h
}

// ClickHouse returns the address and protocol of the ClickHouse engine under test:
// CLICKHOUSE_ADDR over the native protocol when set, else the embedded endpoint over HTTP.
func ClickHouse(t testing.TB) (addr, protocol string) {
	t.Helper()
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" {
		return addr, "native"
	}
	Engine(t)
	return shared.addr, "http"
}

// KafkaBrokers returns the bootstrap address of the real broker (KAFKA_BROKERS), after
// checking that it accepts connections.
func KafkaBrokers(t testing.TB) string {
	t.Helper()
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		t.Fatal("KAFKA_BROKERS is not set: start a broker with scripts/kafka.sh start (make test does)")
	}
	first := strings.Split(brokers, ",")[0]
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", first)
	if err != nil {
		t.Fatalf("Kafka broker %s unreachable: %v", first, err)
	}
	c.Close()
	return brokers
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// UniqueName returns a name for a topic or database that no other test or run uses.
func UniqueName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t_%s_%s", name, hex.EncodeToString(b))
}

// Context returns a context bounded by d and cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Logger returns a logger that writes through t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TSV runs a query on a clickhouse-go connection and returns its rows formatted as TSV
// lines, in text order (a subquery's ORDER BY does not bind the outer query), so that
// two results compare as text.
func TSV(ctx context.Context, conn driver.Conn, q string) (string, error) {
	rows, err := conn.Query(ctx, "SELECT formatRow('TSV', *) AS line FROM ("+q+") ORDER BY line")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		b.WriteString(line)
	}
	return b.String(), rows.Err()
}

// Header returns the value of a record header, or "".
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Broker is a Kafka broker of one test's own (scripts/kafka.sh on free ports), for tests
// that disturb it; the shared broker of KAFKA_BROKERS is never stopped.
type Broker struct {
	Addr string
	port int
	root string
	env  []string
}

// OwnKafka starts a private broker and stops it (removing its data) when the test ends.
// Starting one takes seconds; use it only to restart or stop the broker under a client,
// or for a broker configured otherwise: env (NAME=value) goes to scripts/kafka.sh, e.g.
// KAFKA_AUTO_CREATE_TOPICS=false.
func OwnKafka(t testing.TB, env ...string) *Broker {
	t.Helper()
	KafkaBrokers(t) // the shared broker's presence proves the jars are fetched
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// scripts/kafka.sh listens on port (PLAINTEXT), +1 (controller), +2 (SASL), +3 (SSL).
	b := &Broker{port: freePorts(t, 4), root: root, env: env}
	t.Cleanup(func() {
		b.script(t, "stop")
		os.RemoveAll(filepath.Join(root, ".cache", fmt.Sprintf("kafka-run-%d", b.port)))
	})
	b.Addr = strings.TrimSpace(b.script(t, "start"))
	return b
}

// Restart stops the broker and starts it again on the same data.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.script(t, "restart")
}

func (b *Broker) script(t testing.TB, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join(b.root, "scripts", "kafka.sh"), cmd)
	c.Env = append(append(os.Environ(), b.env...), fmt.Sprintf("KAFKA_PORT=%d", b.port))
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("scripts/kafka.sh %s on port %d: %v: %s", cmd, b.port, err, stderr.String())
	}
	return string(out)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// freePorts returns the first of n consecutive free TCP ports on 127.0.0.1, below Linux's
// ephemeral range (32768 up): a port from that range may be taken by some client's
// outgoing connection while the broker is down for a restart.
func freePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := 20000 + mathrand.IntN(12000-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports")
	return 0
}

// Proxy forwards TCP to a target until it is switched off; then it refuses and cuts every
// connection, as a server that went away would.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

// NewProxy listens on a free loopback port and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.SetDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[u] = true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// SetDown switches the proxy off (cutting open connections) or on again.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}
