package pipeline

import (
	"context"
	"time"

	"github.com/driftd/driftd/processors"
)

// restoreLate tells the window processors which records were recorded as late before a
// restart (per window and partition, the last such offset): re-read, they are replays,
// not additions to their window — also when their partition has no row in the stored
// window, which would otherwise make them complete it as a supplement.
func (r *Runner) restoreLate(ctx context.Context) error {
	late, err := r.store.LoadLateWindows(ctx, 48*time.Hour)
	if err != nil {
		return err
	}
	for _, l := range late {
		proc := r.proc
		if l.TP.Topic == r.set.PipelineTopic {
			if r.up == nil {
				continue
			}
			proc = r.up.proc
		}
		proc.RestoreLate(l.Model, l.Start, l.End, processors.TopicPartition{Topic: l.TP.Topic, Partition: l.TP.Partition}, l.LastOffset)
	}
	return nil
}
