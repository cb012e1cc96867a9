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

// validate applies the contract's defaults and rejects what no statistic could use.
func (e *PredictionEvent) validate() error {
	if e.Model == "" {
		return invalid("model is empty")
	}
	if e.Timestamp.IsZero() {
		return invalid("timestamp is missing")
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
