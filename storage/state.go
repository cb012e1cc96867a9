package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/driftd/driftd/detectors"
)

// Detection state written with the windows that changed it and read back at start-up
// (migration 0006): the alerter's hysteresis, pipeline stages as of each judged window's
// end, and the samples of references still being built.

// StageState is a pipeline stage as of the end of one judged window (event time).
type StageState struct {
	Pipeline, Stage string
	Start, End      time.Time
	// ConsecutiveFailures is the run of failures the stage ended the window with.
	ConsecutiveFailures int
	// Successes are the stage's latest successes up to the window's end (oldest first);
	// Failures the window's failed runs.
	Successes, Failures []time.Time
	// Point is what the window adds to the baselines of later ones (its RecordsOut is
	// not stored here: it is the sum of the window's partials).
	Point detectors.StagePoint
}

// ReferenceSample is what one of a model version's first windows adds to the reference
// being built from them (detectors.Sample.MarshalBinary).
type ReferenceSample struct {
	Model, Version string
	Start          time.Time
	Sample         []byte
}

func (s *Store) writeState(ctx context.Context, b *Batch) error {
	at := b.WrittenAt.UTC()
	samples := s.inserter(ctx, table{name: "reference_samples", cols: "model, model_version, window_start, sample, written_at"})
	for _, r := range b.ReferenceSamples {
		if err := samples.append([]any{r.Model, r.Version, r.Start.UTC(), string(r.Sample), at}); err != nil {
			return err
		}
	}
	if err := samples.flush(); err != nil {
		return err
	}
	stages := s.inserter(ctx, table{name: "pipeline_stage_state", cols: "pipeline, stage, window_start, window_end, consecutive_failures, successes, failures, " +
		"log_duration_n, log_duration_mean, log_duration_m2, lost_in, lost, null_out, nulls, written_at"})
	for _, st := range b.StageStates {
		p := st.Point
		if err := stages.append([]any{st.Pipeline, st.Stage, st.Start.UTC(), st.End.UTC(), uint32(max(st.ConsecutiveFailures, 0)),
			utcTimes(st.Successes), utcTimes(st.Failures), finite(p.LogDuration.N), finite(p.LogDuration.Mean), finite(p.LogDuration.M2),
			finite(p.LostIn), finite(p.Lost), finite(p.NullOut), finite(p.Nulls), at}); err != nil {
			return err
		}
	}
	return stages.flush()
}

// writeAlertStates runs after the alerts are written: a restart that finds a state
// stored finds the alerts its change raised stored too.
func (s *Store) writeAlertStates(ctx context.Context, b *Batch) error {
	in := s.inserter(ctx, table{name: "alert_state", cols: "fingerprint, firing, severity, bad, good, last, told, written_at"})
	for _, st := range b.AlertStates {
		// An alert firing silently (Told) is stored as told, not firing: a driftd that
		// does not know the column (a rollback) then never resolves what was never
		// published.
		if err := in.append([]any{st.Fingerprint, flag(st.Firing && !st.Told), st.Severity, uint32(max(st.Bad, 0)), uint32(max(st.Good, 0)), st.Last.UTC(), flag(st.Told), b.WrittenAt.UTC()}); err != nil {
			return err
		}
	}
	return in.flush()
}

func utcTimes(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

// LoadAlertStates returns the stored hysteresis of the fingerprints that matter to a
// restart: firing, counting breached windows, or observed within lookback of the newest
// observation (a window judged again after a crash must find its fingerprint's state).
func (s *Store) LoadAlertStates(ctx context.Context, lookback time.Duration) ([]detectors.FingerprintState, error) {
	q := fmt.Sprintf(`SELECT fingerprint, firing, severity, bad, good, last, told FROM %[1]s.alert_state FINAL
WHERE firing = 1 OR told = 1 OR bad > 0 OR last >= (SELECT max(last) FROM %[1]s.alert_state) - toIntervalSecond(%[2]d)
ORDER BY fingerprint`, s.db, int64(lookback.Seconds()))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load alert states: %w", err)
	}
	defer rows.Close()
	var out []detectors.FingerprintState
	for rows.Next() {
		var (
			st           detectors.FingerprintState
			firing, told uint8
			bad, good    uint32
		)
		if err := rows.Scan(&st.Fingerprint, &firing, &st.Severity, &bad, &good, &st.Last, &told); err != nil {
			return nil, fmt.Errorf("load alert states: %w", err)
		}
		st.Firing, st.Bad, st.Good, st.Told = firing == 1 || told == 1, int(bad), int(good), told == 1
		if st.Last.UnixMilli() == 0 {
			st.Last = time.Time{}
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// LoadStageStates returns every stage's states within lookback of its newest judged
// window, oldest first.
func (s *Store) LoadStageStates(ctx context.Context, lookback time.Duration) ([]StageState, error) {
	q := fmt.Sprintf(`SELECT w.pipeline, w.stage, w.window_start, w.window_end, w.consecutive_failures, w.successes, w.failures
FROM %[1]s.pipeline_stage_state AS w FINAL
GLOBAL INNER JOIN (SELECT pipeline, stage, max(window_start) AS latest FROM %[1]s.pipeline_stage_state GROUP BY pipeline, stage) AS l
  ON w.pipeline = l.pipeline AND w.stage = l.stage
WHERE w.window_start >= l.latest - toIntervalSecond(%[2]d)
ORDER BY w.window_start, w.pipeline, w.stage`, s.db, int64(lookback.Seconds()))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load stage states: %w", err)
	}
	defer rows.Close()
	var out []StageState
	for rows.Next() {
		var (
			st     StageState
			consec uint32
		)
		if err := rows.Scan(&st.Pipeline, &st.Stage, &st.Start, &st.End, &consec, &st.Successes, &st.Failures); err != nil {
			return nil, fmt.Errorf("load stage states: %w", err)
		}
		st.ConsecutiveFailures = int(consec)
		out = append(out, st)
	}
	return out, rows.Err()
}

// LoadReferenceSamples returns the stored window samples of the model versions that have
// no reference yet, by version and window start.
func (s *Store) LoadReferenceSamples(ctx context.Context) ([]ReferenceSample, error) {
	q := fmt.Sprintf(`SELECT model, model_version, window_start, sample FROM %[1]s.reference_samples FINAL
WHERE (model, model_version) GLOBAL NOT IN (SELECT model, model_version FROM %[1]s.reference_profiles)
ORDER BY model, model_version, window_start`, s.db)
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load reference samples: %w", err)
	}
	defer rows.Close()
	var out []ReferenceSample
	for rows.Next() {
		var (
			r    ReferenceSample
			body string
		)
		if err := rows.Scan(&r.Model, &r.Version, &r.Start, &body); err != nil {
			return nil, fmt.Errorf("load reference samples: %w", err)
		}
		r.Sample = []byte(body)
		out = append(out, r)
	}
	return out, rows.Err()
}

// LoadLateWindows returns, per model (pipeline for stage runs), window and partition, the
// last offset of the events recorded as late within lookback of the model's newest late
// window: a restart must not add them to their window (they are in late_events already).
func (s *Store) LoadLateWindows(ctx context.Context, lookback time.Duration) ([]ClosedWindow, error) {
	return s.loadClosed(ctx, "late_events", "model", "offset", lookback)
}
