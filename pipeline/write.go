package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// The failure paths of a flush and of the records it stands on: every wait for a
// dependency goes through retry.Do with the runner's policy, so it backs off, says what
// it retries, and gives up after Settings.MaxOutage with an error that ends Run (driftd
// exits non-zero and a standby takes over) — committing nothing past what is not done.

// judged is a flush's batch, judged once. The flush that judged it writes it and
// publishes its alerts; when the end of ctx cuts that off, the next flush (Shutdown's)
// finishes it as it is: the alerter has moved on, so judging the windows again would
// lose their alerts.
type judged struct {
	// refs are references built while judging the batch, saved before it is written
	// (saved counts those saved).
	refs                  []*detectors.Profile
	saved                 int
	batch                 *storage.Batch
	closedAt              []time.Time
	windows, stageWindows int
	supplements           int // of windows
	// stored: the batch is written; toPublish are the alerts stored with it.
	stored    bool
	toPublish []*schemas.AlertEvent
}

// policy is how driftd waits for a dependency.
func (s *Settings) policy() retry.Policy {
	p := s.Backoff
	p.MaxOutage = s.MaxOutage
	return p
}

// logAttempts returns the observer that logs each failed attempt that is retried.
func logAttempts(log *slog.Logger) func(retry.Attempt) {
	return func(a retry.Attempt) {
		if a.Wait > 0 {
			log.Warn(a.What+" failed; retrying", "err", a.Err, "class", a.Class, "attempt", a.N,
				"failing_for", a.Elapsed.Round(time.Millisecond), "in", a.Wait.Round(time.Millisecond))
		}
	}
}

// attempt logs a failed attempt that is retried.
func (r *Runner) attempt(a retry.Attempt) { logAttempts(r.log)(a) }

// writeJudged writes r.unwritten, publishes the alerts stored with it and forgets it.
func (r *Runner) writeJudged(ctx context.Context) error {
	j := r.unwritten
	for ; j.saved < len(j.refs); j.saved++ {
		if err := r.saveReference(ctx, j.refs[j.saved]); err != nil {
			return err
		}
	}
	if !j.stored {
		for _, a := range j.batch.Alerts {
			finiteAlert(a)
		}
		stored, err := r.write(ctx, j.batch)
		if err != nil {
			return err
		}
		j.stored, j.toPublish = true, stored
	}
	if len(j.toPublish) > 0 {
		if err := r.publish(ctx, j.toPublish); err != nil {
			return err
		}
		for _, a := range j.toPublish {
			r.set.Observer.Alert(a.Kind, a.State)
			if r.on.alert != nil {
				r.on.alert(a)
			}
			r.log.Info("alert", "state", a.State, "kind", a.Kind, "severity", a.Severity, "summary", a.Summary)
		}
	}
	waited := make([]time.Duration, len(j.closedAt))
	for i, at := range j.closedAt {
		waited[i] = r.now().Sub(at)
	}
	r.set.Observer.WindowsWritten(waited)
	r.stats.WindowsClosed += uint64(j.windows)
	r.stats.Supplements += uint64(j.supplements)
	r.stats.StageWindowsClosed += uint64(j.stageWindows)
	r.stats.AlertsEmitted += uint64(len(j.toPublish))
	r.unwritten = nil
	return nil
}

// write writes b and returns the alerts stored with it. Rows ClickHouse refuses for good
// are found by writing b's units apart (halving), and set aside on the dead-letter topic;
// the rest is written. It fails only when ctx ends, ClickHouse stays down past
// Settings.MaxOutage, or the dead-letter topic cannot take what is set aside.
func (r *Runner) write(ctx context.Context, b *storage.Batch) ([]*schemas.AlertEvent, error) {
	if b.Empty() {
		// A spread member's flush with no window closed and no progress moved: no insert
		// to time.
		return nil, nil
	}
	began := r.now()
	err := r.store.WriteWithRetry(ctx, b, r.set.policy(), func(error) { r.set.Observer.Insert(0, storage.Retryable.String()) })
	switch {
	case err == nil:
		r.set.Observer.Insert(r.now().Sub(began), "")
		return b.Alerts, nil
	case ctx.Err() != nil:
		return nil, err
	case errors.Is(err, retry.ErrOutage) || storage.Classify(err) != storage.Fatal:
		return nil, fmt.Errorf("write the results of %d windows: %w", len(b.Closed), err)
	}
	r.set.Observer.Insert(r.now().Sub(began), storage.Fatal.String())
	units := b.Units()
	if len(units) == 1 {
		return nil, r.setAside(ctx, b, err)
	}
	half := len(units) / 2
	first, err := r.write(ctx, storage.Merge(units[:half]))
	if err != nil {
		return nil, err
	}
	second, err := r.write(ctx, storage.Merge(units[half:]))
	return append(first, second...), err
}

// setAside puts what ClickHouse refused for good on the dead-letter topic: per window and
// source partition, the rows it would have written, with the topic, partition and offset
// range of the records they come from (see storage.Refused). Its alerts are not published.
func (r *Runner) setAside(ctx context.Context, b *storage.Batch, cause error) error {
	refused, err := b.Refused(r.spread != nil)
	if err != nil {
		return err
	}
	r.log.Error("clickhouse refused rows for good; set aside on the dead-letter topic", "err", cause,
		"windows", len(b.Closed), "stages", len(b.Stages), "late_events", len(b.Late), "alerts", len(b.Alerts))
	for _, x := range refused {
		rec := consumers.Record{Topic: x.Topic, Partition: x.Partition, Offset: x.FirstOffset, Value: x.Rows,
			Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/json")},
				{Key: consumers.HeaderSourceLastOffset, Value: []byte(strconv.FormatInt(x.LastOffset, 10))}}}
		if err := r.deadLetter(ctx, rec, consumers.ClassWriteFatal, cause); err != nil {
			return err
		}
	}
	return nil
}

// classifyPublish: an alert that does not encode, or that the topic refuses for what it
// is, is refused again.
func classifyPublish(err error) retry.Class {
	var ue *UnencodableError
	if errors.As(err, &ue) {
		return retry.Fatal
	}
	return consumers.ClassifyWrite(err)
}

// alertRecord is an alert as the dead-letter topic keeps it when it cannot be published.
func alertRecord(a *schemas.AlertEvent) consumers.Record {
	body, err := json.Marshal(a)
	ctype := "application/json"
	if err != nil {
		body, ctype = fmt.Appendf(nil, "%+v", *a), "text/plain"
	}
	return consumers.Record{Partition: -1, Offset: -1, Key: []byte(a.Fingerprint), Value: body,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(ctype)}, {Key: "driftd.alert.id", Value: []byte(a.AlertID)}}}
}
