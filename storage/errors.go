package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Class says what to do about a failed write.
type Class uint8

// Classes of write errors.
const (
	// Retryable errors pass by themselves (the server is down, busy or slow): back off and
	// retry, committing nothing meanwhile.
	Retryable Class = iota + 1
	// Fatal errors will fail again with the same data (a type mismatch, a missing table):
	// send the data to the dead-letter topic with provenance and go on.
	Fatal
)

func (c Class) String() string {
	if c == Retryable {
		return "retryable"
	}
	return "fatal"
}

// retryableCodes are ClickHouse error codes of conditions that pass.
var retryableCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY (replica temporarily read-only)
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// Classify is the one place that decides whether a write error is retried.
func Classify(err error) Class {
	if err == nil {
		return 0
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if retryableCodes[ex.Code] {
			return Retryable
		}
		return Fatal
	}
	var httpErr *clickhouse.HTTPError
	if errors.As(err, &httpErr) && httpErr.StatusCode >= 500 && !errors.As(httpErr.Err, &ex) {
		return Retryable
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.As(err, &netErr):
		return Retryable
	}
	// Errors that reach us only as text (e.g. wrapped by the HTTP transport).
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "EOF"} {
		if strings.Contains(msg, s) {
			return Retryable
		}
	}
	return Fatal
}
