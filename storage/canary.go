package storage

import (
	"context"
	"time"

	"github.com/driftd/driftd/detectors"
)

func canaryRows() table {
	return table{"canary_analysis", "model, canary_version, canary_deployment, primary_version, window_start, window_end, verdict, canary_events, primary_events, reason, metrics, values, thresholds, breached, confounded, written_at", byDay(4)}
}

// canaryRow is a canary comparison's row: the comparisons' metrics (a feature's drift
// named by the feature), values, thresholds and whether each breached.
func canaryRow(c detectors.CanaryComparison, at time.Time) []any {
	n := len(c.Evidence)
	metrics, values, thresholds, breached := make([]string, 0, n), make([]float64, 0, n), make([]float64, 0, n), make([]uint8, 0, n)
	for _, e := range c.Evidence {
		m := e.Metric
		switch {
		case e.Feature != "":
			m = e.Feature + ":" + m
		case e.Kind == "prediction_drift":
			m = "prediction:" + m
		}
		metrics, values, thresholds = append(metrics, m), append(values, finite(e.Value)), append(thresholds, finite(e.Threshold))
		breached = append(breached, flag(e.Breached))
	}
	confounded := c.Confounded
	if confounded == nil {
		confounded = []string{}
	}
	return []any{c.Canary.Model, c.Canary.Version, c.Canary.Deployment, c.Primary.Version, ms(c.Start), ms(c.End), c.Outcome.String(),
		c.CanaryEvents, c.PrimaryEvents, c.Reason, metrics, values, thresholds, breached, confounded, at}
}

// writeCanary writes the batch's canary comparisons.
func (s *Store) writeCanary(ctx context.Context, b *Batch) error {
	at := b.WrittenAt.UTC()
	in := s.inserter(ctx, canaryRows())
	for _, c := range b.Canary {
		if err := in.append(canaryRow(c, at)); err != nil {
			return err
		}
	}
	return in.flush()
}
