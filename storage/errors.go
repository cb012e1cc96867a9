package storage

import (
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/driftd/driftd/internal/retry"
)

// Class says what to do about a failed write (retry's classes: one for every dependency).
type Class = retry.Class

// Classes of write errors.
const (
	// Retryable errors may pass (the server is down, busy, full, slow, or refuses
	// driftd's credentials until someone fixes them): back off and retry, committing
	// nothing meanwhile; after limits.max_outage driftd exits so that a standby takes over.
	Retryable = retry.Retryable
	// Fatal errors refuse these rows themselves and fail again whatever the server's state
	// (a value that does not fit its column, a constraint): the rows go to the dead-letter
	// topic with their provenance, and the other rows of the flush are written.
	Fatal = retry.Fatal
)

// FatalCodes are the ClickHouse error codes that say the rows themselves are refused, with
// ClickHouse's names for them. Every other error — a code not here, an HTTP status from a
// proxy (401, 403, 413, 429, 5xx), a network error, a timeout — is retried: a fatal
// classification dead-letters results, so it is kept for errors certain to come back.
var FatalCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	128: "TOO_LARGE_ARRAY_SIZE",
	131: "TOO_LARGE_STRING_SIZE",
	190: "SIZES_OF_ARRAYS_DONT_MATCH",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
	469: "VIOLATED_CONSTRAINT",
}

// ErrUnreadable is wrapped by the error of a read that found a stored value driftd cannot
// read (a reference profile or a window's sketch written by a newer driftd, or damaged):
// reading it again cannot help, so it is not retried as an outage. The run that needs it
// ends at once, saying which value.
var ErrUnreadable = errors.New("a stored value driftd cannot read")

// ClassifyRead is the one place that decides whether a read error is retried: every
// error is (the server's state), except a stored value driftd cannot read.
func ClassifyRead(err error) Class {
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrUnreadable) {
		return Fatal
	}
	return Retryable
}

// Classify is the one place that decides whether a write error is retried.
func Classify(err error) Class {
	if err == nil {
		return 0
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if _, ok := FatalCodes[ex.Code]; ok {
			return Fatal
		}
		return Retryable
	}
	// The client refused a value for its column before sending it: the same row is
	// refused again.
	var conv *column.ColumnConverterError
	var colErr *column.Error
	var unsupported *column.UnsupportedColumnTypeError
	if errors.As(err, &conv) || errors.As(err, &colErr) || errors.As(err, &unsupported) {
		return Fatal
	}
	return Retryable
}
