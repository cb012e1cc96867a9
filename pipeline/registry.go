package pipeline

import (
	"github.com/driftd/driftd/processors"
)

// seriesState is everything the judge keeps about one series (a model version in a
// deployment slot) between windows. It lives as long as the processor tracks the series:
// when the processor forgets an idle series to make room (limits.max_series), forget
// drops this state with it, so memory is bounded by the series limit, not by every
// series ever seen.
type seriesState struct {
	// previous is the last judged window (rolling references).
	previous *processors.WindowAgg
	// trail holds the recent windows a low-volume merge may need; trailFrom is the first
	// window this member closed (earlier ones are read from ClickHouse).
	trail     trail
	trailFrom int64
	trailed   bool
	// volume counts events per hour (same-hour volume expectations); recent keeps the
	// latest windows not judged low (the expectation before a day of history).
	volume hourlyVolume
	recent recentVolume
	// run is the series' latest windows in a row below their volume expectation.
	run volumeRun
	// hadRecent: the recent windows have given an expectation at some point. Until then
	// the series is new, and its reference's windows are its latest ones.
	hadRecent bool
	// end is where judged windows end (empty windows of a series that fell silent).
	end    seriesEnd
	hasEnd bool
}

func (j *judge) state(k processors.SeriesKey) *seriesState {
	st, ok := j.series[k]
	if !ok {
		st = &seriesState{}
		j.series[k] = st
	}
	return st
}

// forget drops the state of the series the processor forgot, and what hangs on them: the
// alerter's states of their conditions that are not firing, the reference builders of
// versions left without a series, and the blue/green state of models left without a
// slot.
func (j *judge) forget(gone []processors.SeriesKey) {
	if len(gone) == 0 {
		return
	}
	versions, models := map[[2]string]bool{}, map[string]bool{}
	for _, k := range gone {
		delete(j.series, k)
		j.alerter.Forget(k.Model, k.Version, k.Deployment)
		versions[[2]string{k.Model, k.Version}] = true
		if isSlot(k.Deployment) {
			models[k.Model] = true
		}
	}
	for k := range j.series {
		delete(versions, [2]string{k.Model, k.Version})
		if isSlot(k.Deployment) {
			delete(models, k.Model)
		}
	}
	for v := range versions {
		delete(j.building, v)
	}
	for m := range models {
		delete(j.slots, m)
	}
}
