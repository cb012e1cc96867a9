package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
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

// selfSigned writes a certificate for host (and its key) as PEM files.
func selfSigned(t *testing.T, host string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = dir+"/cert.pem", dir+"/key.pem"
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

// The embedded endpoint over TLS with a password: driftd itself connects to it (pinning
// its own certificate, which names another host than the loopback address it dials) and
// migrates; a client with the certificate and the password reads; one without the
// password is refused; plain HTTP is refused.
func TestEmbeddedEndpointTLSAndPassword(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: make test sets it")
	}
	brokers := testenv.KafkaBrokers(t)
	name := testenv.UniqueName(t)
	certFile, keyFile, cert := selfSigned(t, "clickhouse.example.internal")
	ctx := testenv.Context(t, 2*time.Minute)
	cmd, addr, done := runProcess(t, ctx, []string{
		"DRIFTD_KAFKA_BROKERS=" + brokers, "DRIFTD_KAFKA_GROUP_ID=" + name, "DRIFTD_KAFKA_TOPICS_PREDICTIONS=" + name + ".predictions",
		"DRIFTD_KAFKA_TOPICS_ALERTS=" + name + ".alerts", "DRIFTD_KAFKA_TOPICS_DLQ=" + name + ".dlq", "DRIFTD_KAFKA_TOPICS_PIPELINE=" + name + ".pipeline", "DRIFTD_KAFKA_TOPICS_LABELS=" + name + ".labels",
		"DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED=true", "DRIFTD_CLICKHOUSE_EMBEDDED_DATA_DIR=" + t.TempDir(), "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN=127.0.0.1:0",
		"DRIFTD_CLICKHOUSE_EMBEDDED_TLS_CERT_FILE=" + certFile, "DRIFTD_CLICKHOUSE_EMBEDDED_TLS_KEY_FILE=" + keyFile,
		"DRIFTD_CLICKHOUSE_USERNAME=reader", "DRIFTD_CLICKHOUSE_PASSWORD=endpoint-pa55",
	})
	defer func() { cmd.Process.Signal(syscall.SIGINT); <-done; cmd.Wait() }()

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	_, port, _ := net.SplitHostPort(addr)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "clickhouse.example.internal"},
		// The certificate names clickhouse.example.internal; reach it on the loopback.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	get := func(target string, auth bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if auth {
			req.Header.Set("X-ClickHouse-User", "reader")
			req.Header.Set("X-ClickHouse-Key", "endpoint-pa55")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	q := "https://clickhouse.example.internal:" + port + "/?query=" + url.QueryEscape("SELECT count() > 0 FROM driftd.schema_migrations")
	// driftd migrates through its own TLS connection; once it has, the tables answer.
	for {
		code, body := get(q, true)
		if code == 200 && strings.TrimSpace(body) == "1" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("driftd did not migrate over TLS: %d %s", code, body)
		case <-time.After(300 * time.Millisecond):
		}
	}
	if code, body := get(q, false); code != 401 || !strings.Contains(body, "AUTHENTICATION_FAILED") {
		t.Errorf("without the password: %d %s", code, body)
	}
	resp, err := http.Get("http://" + addr + "/?query=SELECT%201")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP answered: %s", b)
		}
	}
}
