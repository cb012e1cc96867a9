package storage_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/storage"
)

// ClickHouse over TLS with a user and password: the ClickHouse engine behind a TLS
// endpoint that requires them. The right CA and password connect and migrate; a wrong
// password is refused by name and never appears in the error; without the CA the
// certificate is refused.
func TestTLSAndPassword(t *testing.T) {
	const secret = "s3cret-Pa55"
	h := testenv.ClickHouseHandler(t)
	h.User, h.Password = "driftd", secret
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusting := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	system := &tls.Config{MinVersion: tls.VersionTLS12}
	addr := strings.TrimPrefix(srv.URL, "https://")
	ctx := testenv.Context(t, time.Minute)
	db := testenv.UniqueName(t)
	opts := storage.Options{Addr: addr, Protocol: "http", Database: db, Username: "driftd", Password: secret, TLS: trusting}
	s, err := storage.Open(ctx, opts, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		opts storage.Options
		want string
	}{
		{"wrong password", storage.Options{Addr: addr, Protocol: "http", Database: db, Username: "driftd", Password: "wrong-" + secret, TLS: trusting}, "Authentication failed"},
		{"no password", storage.Options{Addr: addr, Protocol: "http", Database: db, Username: "driftd", TLS: trusting}, "Authentication failed"},
		{"untrusted certificate", storage.Options{Addr: addr, Protocol: "http", Database: db, Username: "driftd", Password: secret, TLS: system}, "certificate"},
		{"plain HTTP to a TLS port", storage.Options{Addr: addr, Protocol: "http", Database: db, Username: "driftd", Password: secret}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := storage.Open(ctx, c.opts, testenv.Logger(t))
			if err == nil {
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the password is in the error: %q", err)
			}
		})
	}
}
