package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
)

// endpointCall sends one request to a running embedded endpoint; user "" sends none.
func endpointCall(t *testing.T, method, addr, query, user, password string) (int, string) {
	t.Helper()
	target := "http://" + addr + "/"
	var body io.Reader
	if method == http.MethodGet {
		target += "?query=" + url.QueryEscape(query)
	} else {
		body = strings.NewReader(query)
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitMigrated waits until driftd has written its migrations through its own connection.
func waitMigrated(t *testing.T, ctx context.Context, addr, user, password string) {
	t.Helper()
	for {
		code, body := endpointCall(t, http.MethodGet, addr, "SELECT count() > 0 FROM driftd.schema_migrations", user, password)
		if code == 200 && strings.TrimSpace(body) == "1" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("driftd did not migrate through its own endpoint: %d %s", code, body)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// nonLoopbackIP returns an address of this host that is not loopback.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatal("this host has no non-loopback IPv4 address to listen on")
	return ""
}

// driftd's embedded endpoint as a user runs it. Without a password it listens on loopback
// only; driftd writes with credentials of its own while everyone else reads, so neither a
// local program nor a web page can change or drop the data. With a password it may listen
// on another address, where driftd's own writes still work (they were refused with 403
// when only loopback could write) and the password lets a client on this host write.
func TestEmbeddedEndpointAccess(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: make test sets it")
	}
	brokers := testenv.KafkaBrokers(t)

	t.Run("no password", func(t *testing.T) {
		name := testenv.UniqueName(t)
		ctx := testenv.Context(t, 2*time.Minute)
		cmd, addr, done := runProcess(t, ctx, runEnv(brokers, name, name, "DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true",
			"DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR="+t.TempDir(), "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN=127.0.0.1:0"))
		defer func() { cmd.Process.Signal(syscall.SIGINT); <-done; cmd.Wait() }()
		waitMigrated(t, ctx, addr, "", "")
		for _, c := range []struct{ method, query, user, password string }{
			{http.MethodPost, "CREATE DATABASE " + name, "", ""},
			{http.MethodPost, "DROP DATABASE driftd", "default", ""},
			{http.MethodGet, "DROP DATABASE driftd", "", ""},
		} {
			if code, body := endpointCall(t, c.method, addr, c.query, c.user, c.password); code != http.StatusForbidden {
				t.Errorf("%s %q as %q: %d %s, want 403", c.method, c.query, c.user, code, body)
			}
		}
		if code, body := endpointCall(t, http.MethodGet, addr, "SELECT count() FROM system.databases WHERE name IN ('driftd', '"+name+"')", "", ""); code != 200 || body != "1\n" {
			t.Fatalf("databases: %d %q, want driftd only", code, body)
		}
	})

	t.Run("password on another address", func(t *testing.T) {
		name := testenv.UniqueName(t)
		ctx := testenv.Context(t, 2*time.Minute)
		cmd, addr, done := runProcess(t, ctx, runEnv(brokers, name, name, "DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true",
			"DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR="+t.TempDir(), "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN="+nonLoopbackIP(t)+":0",
			"DRIFTD_CLICKHOUSE_USERNAME=analyst", "DRIFTD_CLICKHOUSE_PASSWORD=an4lyst-pw"))
		defer func() { cmd.Process.Signal(syscall.SIGINT); <-done; cmd.Wait() }()
		waitMigrated(t, ctx, addr, "analyst", "an4lyst-pw")
		if code, body := endpointCall(t, http.MethodGet, addr, "SELECT 1", "", ""); code != http.StatusUnauthorized {
			t.Errorf("without the password: %d %s", code, body)
		}
		if code, body := endpointCall(t, http.MethodPost, addr, "CREATE DATABASE "+name, "analyst", "an4lyst-pw"); code != 200 {
			t.Errorf("a write with the password from this host: %d %s", code, body)
		}
	})

	t.Run("another address without a password", func(t *testing.T) {
		ctx := testenv.Context(t, time.Minute)
		out, err := driftdProcess(t, ctx, "run", "DRIFTD_KAFKA_BROKERS="+brokers, "DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true",
			"DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR="+t.TempDir(), "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN=0.0.0.0:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "clickhouse.embedded.listen") || !strings.Contains(string(out), "clickhouse.password") {
			t.Fatalf("driftd run: %v %s", err, out)
		}
	})
}
