package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want Class
	}{
		{"too many parts", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, Retryable},
		{"memory limit", fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 241}), Retryable},
		{"type mismatch", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}, Fatal},
		{"unknown table", &clickhouse.Exception{Code: 60}, Fatal},
		{"syntax", &clickhouse.Exception{Code: 62}, Fatal},
		{"http 503 without exception", &clickhouse.HTTPError{StatusCode: 503, Err: errors.New("unavailable")}, Retryable},
		{"http 500 with fatal exception", &clickhouse.HTTPError{StatusCode: 500, Err: &clickhouse.Exception{Code: 60}}, Fatal},
		{"connection refused", fmt.Errorf("send: %w", syscall.ECONNREFUSED), Retryable},
		{"dial error", &net.OpError{Op: "dial", Err: errors.New("refused")}, Retryable},
		{"deadline", context.DeadlineExceeded, Retryable},
		{"eof", io.ErrUnexpectedEOF, Retryable},
		{"text-only refused", errors.New(`Post "http://127.0.0.1:8123": dial tcp: connection refused`), Retryable},
		{"bad data", errors.New("converting string to UInt64 is unsupported"), Fatal},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: Classify = %v, want %v", c.name, got, c.want)
		}
	}
}
