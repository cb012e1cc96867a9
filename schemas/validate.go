package schemas

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid marks an event that decoded but breaks the event contract.
var ErrInvalid = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Event times are refused outside [1900-01-01, 2262-01-01) UTC, in unix ms: ClickHouse's
// DateTime64 holds 1900–2299, and Go's UnixNano, through which clickhouse-go writes a
// DateTime64, overflows after 2262-04-11 (and before 1677), which would store a garbage
// window — or, near the int64 limit, a window whose end is before its start. The upper
// bound leaves room for the end of a window of up to 100 days.
const (
	minEventMillis = -2208988800000 // 1900-01-01
	maxEventMillis = 9214646400000  // 2262-01-01
)

// checkTime refuses a missing timestamp and one outside the range storage can hold.
func checkTime(t time.Time) error {
	if t.IsZero() {
		return invalid("timestamp is missing")
	}
	// Compared in seconds first: UnixMilli itself overflows for times far enough out.
	if s := t.Unix(); s < minEventMillis/1000 || s >= maxEventMillis/1000 {
		return invalid("timestamp %s is outside 1900-01-01 … 2262-01-01", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// validate applies the contract's defaults and rejects what no statistic could use.
func (e *PredictionEvent) validate() error {
	if e.Model == "" {
		return invalid("model is empty")
	}
	if err := checkTime(e.Timestamp); err != nil {
		return err
	}
	if e.Deployment == "" {
		e.Deployment = DeploymentPrimary
	}
	switch e.Deployment {
	case DeploymentPrimary, DeploymentCanary, DeploymentShadow, DeploymentBlue, DeploymentGreen:
	default:
		return invalid("deployment %q is not one of primary, canary, shadow, blue, green", e.Deployment)
	}
	if e.Status == "" {
		e.Status = StatusOK
	}
	switch e.Status {
	case StatusOK, StatusError, StatusTimeout:
	default:
		return invalid("status %q is not one of ok, error, timeout", e.Status)
	}
	if !finite(e.LatencyMs) || e.LatencyMs < 0 {
		return invalid("latency_ms %v is not a finite, non-negative number", e.LatencyMs)
	}
	if e.HasInputSize && !finite(e.InputSize) {
		return invalid("input_size %v is not finite", e.InputSize)
	}
	if e.Prediction.Kind == Number && !finite(e.Prediction.Num) {
		return invalid("prediction %v is not finite", e.Prediction.Num)
	}
	for _, f := range e.Features {
		if f.Value.Kind == Number && !finite(f.Value.Num) {
			return invalid("feature %q is %v", f.Name, f.Value.Num)
		}
	}
	return nil
}

func epochMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
