package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
)

// The tests below run driftd as its own process (the test binary re-executed with
// DRIFTD_TEST_MAIN=1), because the embedded ClickHouse engine allows one session per
// process and these tests start their own.
func init() {
	if os.Getenv("DRIFTD_TEST_MAIN") == "1" {
		root := newRoot()
		root.SetArgs(strings.Fields(os.Getenv("DRIFTD_TEST_ARGS")))
		ctx, stop := signalContext()
		defer stop()
		if err := root.ExecuteContext(ctx); err != nil {
			os.Stderr.WriteString("driftd: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func driftdProcess(t *testing.T, ctx context.Context, args string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "DRIFTD_TEST_MAIN=1", "DRIFTD_TEST_ARGS="+args, "DRIFTD_HTTP_LISTEN=127.0.0.1:0"), env...)
	return cmd
}

// Without libchdb.so, driftd still starts and says what is missing.
func TestBinaryWithoutEngineSaysWhatIsMissing(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	out, err := driftdProcess(t, ctx, "version", "CHDB_LIB_PATH=/nonexistent/libchdb.so").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "driftd ") {
		t.Fatalf("version: %v %s", err, out)
	}
	out, err = driftdProcess(t, ctx, "migrate", "CHDB_LIB_PATH=/nonexistent/libchdb.so", "DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "libchdb.so not found at /nonexistent/libchdb.so") {
		t.Fatalf("migrate without the engine: %v %s", err, out)
	}
}

// driftd dev as a newcomer runs it: its own broker and embedded engine (data under
// --data-dir), Avro traffic, the live view on stdout, results readable over HTTP, Ctrl-C
// stops cleanly.
func TestBinaryDevWithEmbeddedEngine(t *testing.T) {
	lib := os.Getenv("CHDB_LIB_PATH")
	if lib == "" {
		t.Fatal("CHDB_LIB_PATH is not set: make test sets it")
	}
	ctx := testenv.Context(t, 3*time.Minute)
	dir := t.TempDir()
	cmd := driftdProcess(t, ctx, "dev --kafka-addr 127.0.0.1:0 --clickhouse-listen 127.0.0.1:0 --data-dir "+dir+
		" --scenarios stationary,abrupt-shift --speed 120 --per-window 600 --seed 3 --format avro")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var chAddr string
	banner := regexp.MustCompile(`ClickHouse HTTP on http://(\S+) `)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("driftd dev exited early")
			}
			if m := banner.FindStringSubmatch(l); m != nil {
				chAddr = m[1]
			}
			if strings.Contains(l, "FIRING") && strings.Contains(l, "feature amount of sim-abrupt-shift") {
				break wait
			}
		case <-ctx.Done():
			t.Fatal("no alert from driftd dev in time")
		}
	}
	q := "SELECT count() FROM driftd.window_model_stats FINAL WHERE model = 'sim-stationary' FORMAT TSV"
	resp, err := http.Get("http://" + chAddr + "/?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) == "0" {
		t.Fatalf("query over HTTP: %d %q", resp.StatusCode, body)
	}
	// driftd writes with credentials of its own; any other program on this host reads.
	resp, err = http.Post("http://"+chAddr+"/", "text/plain", strings.NewReader("DROP DATABASE driftd"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a write without credentials: %d %q", resp.StatusCode, body)
	}
	cmd.Process.Signal(syscall.SIGINT)
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driftd dev did not stop cleanly on Ctrl-C: %v", err)
	}
	if _, err := os.Stat(dir + "/clickhouse"); err != nil {
		t.Errorf("no data kept under --data-dir: %v", err)
	}
}
