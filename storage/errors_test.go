package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/storage"
)

// The one table of what is retried: only errors that refuse the rows themselves are
// fatal (their rows are set aside); everything else, known or not, is retried until
// limits.max_outage.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want storage.Class
	}{
		{"nil", nil, 0},
		// The rows themselves: fatal.
		{"type mismatch", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}, storage.Fatal},
		{"cannot parse text", fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 6}), storage.Fatal},
		{"value out of range", &clickhouse.Exception{Code: 321}, storage.Fatal},
		{"constraint", &clickhouse.Exception{Code: 469, Message: "Constraint `c` for table t is violated"}, storage.Fatal},
		{"fatal code over http 500", &clickhouse.HTTPError{StatusCode: 500, Err: &clickhouse.Exception{Code: 53}}, storage.Fatal},
		{"client refuses a value", fmt.Errorf("append row to t: %w", &column.ColumnConverterError{Op: "AppendRow", From: "string", To: "UInt64"}), storage.Fatal},
		{"client column error", &column.Error{ColumnType: "UInt8", Err: errors.New("bad")}, storage.Fatal},
		// The server's state, or unknown: retried.
		{"disk full", &clickhouse.Exception{Code: 243, Message: "Cannot reserve 1.00 MiB, not enough space"}, storage.Retryable},
		{"authentication after a password rotation", &clickhouse.HTTPError{StatusCode: 516, Err: &clickhouse.Exception{Code: 516}}, storage.Retryable},
		{"query cancelled", &clickhouse.Exception{Code: 394}, storage.Retryable},
		{"engine timeout", &clickhouse.Exception{Code: 159}, storage.Retryable},
		{"too many partitions or parts", &clickhouse.Exception{Code: 252}, storage.Retryable},
		{"memory limit", fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 241}), storage.Retryable},
		{"unknown table (dropped, or not migrated)", &clickhouse.Exception{Code: 60}, storage.Retryable},
		{"syntax", &clickhouse.Exception{Code: 62}, storage.Retryable},
		{"a code not known today", &clickhouse.Exception{Code: 9999}, storage.Retryable},
		{"http 413 from a proxy", &clickhouse.HTTPError{StatusCode: 413, Err: errors.New(`response body: "Request Entity Too Large"`)}, storage.Retryable},
		{"http 429 from a proxy", &clickhouse.HTTPError{StatusCode: 429, Err: errors.New("slow down")}, storage.Retryable},
		{"http 401", &clickhouse.HTTPError{StatusCode: 401, Err: errors.New("unauthorized")}, storage.Retryable},
		{"http 503", &clickhouse.HTTPError{StatusCode: 503, Err: errors.New("unavailable")}, storage.Retryable},
		{"connection refused", fmt.Errorf("send: %w", syscall.ECONNREFUSED), storage.Retryable},
		{"dial error", &net.OpError{Op: "dial", Err: errors.New("refused")}, storage.Retryable},
		{"deadline", context.DeadlineExceeded, storage.Retryable},
		{"eof", io.ErrUnexpectedEOF, storage.Retryable},
		{"text only", errors.New("something nobody has seen yet"), storage.Retryable},
		{"outage over", fmt.Errorf("write: %w: %w", retry.ErrOutage, &clickhouse.Exception{Code: 243}), storage.Retryable},
	} {
		if got := storage.Classify(c.err); got != c.want {
			t.Errorf("%s: Classify = %v, want %v", c.name, got, c.want)
		}
	}
}

// Reads are retried whatever the server says, until limits.max_outage; a stored value
// driftd cannot read is not the server's state, and is not.
func TestClassifyRead(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want storage.Class
	}{
		{"nil", nil, 0},
		{"a stored profile that does not decode", fmt.Errorf("load reference profiles: %w: %w", storage.ErrUnreadable, errors.New("unexpected end of JSON input")), storage.Fatal},
		{"connection refused", fmt.Errorf("load window: %w", syscall.ECONNREFUSED), storage.Retryable},
		{"memory limit", &clickhouse.Exception{Code: 241}, storage.Retryable},
		{"a code fatal to a write", &clickhouse.Exception{Code: 53}, storage.Retryable},
		{"deadline", context.DeadlineExceeded, storage.Retryable},
		{"text only", errors.New("something nobody has seen yet"), storage.Retryable},
	} {
		if got := storage.ClassifyRead(c.err); got != c.want {
			t.Errorf("%s: ClassifyRead = %v, want %v", c.name, got, c.want)
		}
	}
}

// The fatal codes are the engine's own: each number has the name the table gives it.
func TestFatalCodesAreTheEnginesNames(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	ctx := testenv.Context(t, time.Minute)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: protocol(proto)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var codes []int
	for c := range storage.FatalCodes {
		codes = append(codes, int(c))
	}
	sort.Ints(codes)
	for _, c := range codes {
		var name string
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT errorCodeToName(%d)", c)).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if want := storage.FatalCodes[int32(c)]; name != want {
			t.Errorf("code %d is %s in the engine, %s in the table", c, name, want)
		}
	}
}

func protocol(p string) clickhouse.Protocol {
	if p == "http" {
		return clickhouse.HTTP
	}
	return clickhouse.Native
}
