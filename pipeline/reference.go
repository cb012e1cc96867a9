package pipeline

import (
	"sort"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// refBuilder collects the events of a model version's first windows, per window, until
// enough windows have closed to build its reference profile. Events are kept per window
// and partition and merged in partition order when the window closes: a sample's first
// values (and its chunks, which set learned and joint thresholds) then follow the
// partitions' offset order, not the order partitions happened to be fetched in, so a
// backlog builds the same reference as a live read.
type refBuilder struct {
	model, version string
	open           map[int64]map[processors.TopicPartition]*detectors.Sample
	done           *detectors.Sample
	closed         map[int64]bool
}

func (r *Runner) builder(model, version string) *refBuilder {
	key := [2]string{model, version}
	b, ok := r.building[key]
	if !ok {
		b = &refBuilder{model: model, version: version, open: map[int64]map[processors.TopicPartition]*detectors.Sample{}, done: detectors.NewSample(), closed: map[int64]bool{}}
		r.building[key] = b
	}
	return b
}

func (b *refBuilder) add(windowStart int64, tp processors.TopicPartition, e *schemas.PredictionEvent) {
	parts, ok := b.open[windowStart]
	if !ok {
		parts = map[processors.TopicPartition]*detectors.Sample{}
		b.open[windowStart] = parts
	}
	s, ok := parts[tp]
	if !ok {
		s = detectors.NewSample()
		parts[tp] = s
	}
	s.AddEvent(e)
}

// windowClosed folds a closed window in; after n windows holding minEvents events in all
// it returns the profile.
func (b *refBuilder) windowClosed(start int64, n int, minEvents uint64, now time.Time) *detectors.Profile {
	if !b.closed[start] {
		b.closed[start] = true
		if parts, ok := b.open[start]; ok {
			tps := make([]processors.TopicPartition, 0, len(parts))
			for tp := range parts {
				tps = append(tps, tp)
			}
			sort.Slice(tps, func(i, j int) bool {
				if tps[i].Topic != tps[j].Topic {
					return tps[i].Topic < tps[j].Topic
				}
				return tps[i].Partition < tps[j].Partition
			})
			for _, tp := range tps {
				b.done.Merge(parts[tp])
			}
			delete(b.open, start)
		}
	}
	if len(b.closed) < n || b.done.Events == 0 || b.done.Events < minEvents {
		return nil
	}
	return b.done.Build(b.model, b.version, detectors.SourceFirstWindows, len(b.closed), now)
}
