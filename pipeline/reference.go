package pipeline

import (
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/schemas"
)

// refBuilder collects the events of a model version's first windows, per window, until
// enough windows have closed to build its reference profile.
type refBuilder struct {
	model, version string
	open           map[int64]*detectors.Sample
	done           *detectors.Sample
	closed         map[int64]bool
}

func (r *Runner) builder(model, version string) *refBuilder {
	key := [2]string{model, version}
	b, ok := r.building[key]
	if !ok {
		b = &refBuilder{model: model, version: version, open: map[int64]*detectors.Sample{}, done: detectors.NewSample(), closed: map[int64]bool{}}
		r.building[key] = b
	}
	return b
}

func (b *refBuilder) add(windowStart int64, e *schemas.PredictionEvent) {
	s, ok := b.open[windowStart]
	if !ok {
		s = detectors.NewSample()
		b.open[windowStart] = s
	}
	s.AddEvent(e)
}

// windowClosed folds a closed window in; after n windows holding minEvents events in all
// it returns the profile.
func (b *refBuilder) windowClosed(start int64, n int, minEvents uint64, now time.Time) *detectors.Profile {
	if !b.closed[start] {
		b.closed[start] = true
		if s, ok := b.open[start]; ok {
			b.done.Merge(s)
			delete(b.open, start)
		}
	}
	if len(b.closed) < n || b.done.Events == 0 || b.done.Events < minEvents {
		return nil
	}
	return b.done.Build(b.model, b.version, detectors.SourceFirstWindows, len(b.closed), now)
}
