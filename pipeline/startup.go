package pipeline

import (
	"context"
	"slices"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/processors"
)

// startup is the start-up grace of one member's reading, since Run's start or the last
// rebalance: nothing is judged until every partition it reads has delivered a record or
// had nothing to read, and the grace's time has passed (graceOver).
type startup struct {
	began    time.Time // Run's start, or the join after the last rebalance
	firstRec time.Time // the first record's arrival
	// drained are the partitions that had nothing to read when checkStarted asked.
	drained map[consumers.TopicPartition]bool
	// all: every partition read has delivered or had nothing to read (checkStarted),
	// last asked at asked.
	all   bool
	asked time.Time
	// predParts are the prediction topic's partitions this member read when every
	// partition had started, if each had delivered a record (none had nothing to read):
	// prediction windows may then close before the grace's time is over (placed).
	predParts []processors.TopicPartition
	// addedFrom is stats.Added when the grace began (reset): windows close before its
	// time only after Settings.EarlyCloseRecords more (placed).
	addedFrom uint64
}

// graceOver reports whether the start-up grace has passed: every partition this member
// reads has started (checkStarted), and StartupGrace has passed since the first record
// (the group's partitions start delivering together, some time after Run starts; three
// graces after the start if nothing arrives at all). Until then nothing is judged, no
// label settles and no stage window closes; prediction windows may close earlier
// (placed).
func (r *Runner) graceOver(now time.Time) bool {
	return r.grace.all && r.grace.timeOver(now, r.set.StartupGrace)
}

// placed reports whether one member's prediction windows may close before the grace's
// time is over: it has added Settings.EarlyCloseRecords predictions to windows since the
// grace began (replayed records open none), and every prediction partition it reads has
// delivered a record that placed it in event time.
// Until the grace's time is over, a partition read behind holds the models it has not
// delivered yet about where its reading stands (processors' HoldUnseen), which covers
// what the time does for them: no partition's first fetches can carry a model past
// records another has still to deliver, unless the model trails the partition's others
// by more than the skew bound (then only the time covers it, if it comes within it). A
// backlog is then not read for the whole grace with every window it opens held in
// memory. A partition that had nothing to read when asked keeps the time (records
// arriving there later, with the others', are live and may come from its reader last),
// and so does a spread group, whose judges read progress rows that say nothing of a
// partition that has not delivered a model.
func (r *Runner) placed() bool {
	if !r.grace.all || r.spread != nil || len(r.grace.predParts) == 0 || r.stats.Added-r.grace.addedFrom < uint64(r.set.EarlyCloseRecords) {
		return false
	}
	for _, tp := range r.grace.predParts {
		if !r.proc.Positioned(tp) {
			return false
		}
	}
	return true
}

// timeOver reports whether the grace's time has passed: grace since the first record,
// or three graces since it began if nothing arrived.
func (g *startup) timeOver(now time.Time, grace time.Duration) bool {
	if g.firstRec.IsZero() {
		return now.Sub(g.began) >= 3*grace
	}
	return now.Sub(g.firstRec) >= grace
}

// joinedSource is the Source's view of the group (a *consumers.Consumer): whether it has
// given this member its partitions yet. A source without it is taken as joined.
type joinedSource interface {
	Joined() bool
}

// startWaitGraces bounds, in start-up graces, how long the grace waits for a partition
// that delivers nothing although it has records (checkStarted): a partition that cannot
// be read (its leader down, its records all aborted transactions) must not hold every
// window open in memory for ever.
const startWaitGraces = 12

// checkStarted ends the start-up grace's wait for the partitions this member reads
// (r.grace.all): each must have delivered a record, or have had nothing to read when
// asked (its end offset at or before where this member began reading it). A time alone
// does not do: under load, or with many partitions, a partition's first fetch can come
// after any fixed grace, and windows, labels and stage runs judged before that would be
// judged without its records, differently on each replay. Asked at most every second
// (every 200 ms before the grace's time is over).
func (r *Runner) checkStarted(ctx context.Context, now time.Time) {
	owner, ok := r.src.(partitionOwner)
	ends, ok2 := r.src.(endsSource)
	if r.grace.all || !ok || !ok2 {
		return
	}
	every := time.Second
	if !r.grace.timeOver(now, r.set.StartupGrace) {
		if r.spread != nil {
			return // its windows wait for the grace's time (placed): nothing to ask before
		}
		every = 200 * time.Millisecond // windows may close early (placed): asked often while they can
	}
	if now.Sub(r.grace.asked) < every {
		return
	}
	r.grace.asked = now
	if j, ok := r.src.(joinedSource); ok && !j.Joined() {
		// No generation yet (a slow group join), or between two: Owned would say this
		// member reads nothing. The grace's time and its bound count from the join.
		r.grace.began = now
		return
	}
	since := r.grace.firstRec
	if since.IsZero() {
		since = r.grace.began
	}
	if now.Sub(since) >= startWaitGraces*r.set.StartupGrace {
		// Also when the broker cannot say (its leader down fails ListOffsets): the bound
		// is for exactly that.
		r.log.Error("partitions have not all started; judging without waiting for them", "waited", now.Sub(since).Round(time.Second))
		r.grace.all = true
		return
	}
	var waiting []consumers.TopicPartition
	var preds []processors.TopicPartition
	quick := true // every prediction partition has delivered
	for _, topic := range []string{r.set.PredictionTopic, r.set.LabelTopic, r.set.PipelineTopic} {
		if topic == "" {
			continue
		}
		mine, _, err := owner.Owned(ctx, topic)
		if err != nil {
			r.log.Warn("partitions not known; the start-up grace waits", "topic", topic, "err", err)
			return
		}
		for _, p := range mine {
			tp := consumers.TopicPartition{Topic: topic, Partition: p}
			if topic == r.set.PredictionTopic {
				preds = append(preds, processors.TopicPartition{Topic: topic, Partition: p})
				quick = quick && r.delivered(tp)
			}
			if !r.delivered(tp) {
				waiting = append(waiting, tp)
			}
		}
	}
	if quick {
		r.grace.predParts = preds
	}
	if len(waiting) > 0 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		at, err := ends.Ends(actx, waiting)
		cancel()
		if err != nil {
			r.log.Warn("partition ends not known; the start-up grace waits", "err", err)
			return
		}
		waiting = slices.DeleteFunc(waiting, func(tp consumers.TopicPartition) bool {
			e, ok := at[tp]
			if ok && e.Start >= e.End {
				r.grace.drained[tp] = true
			}
			return !ok || e.Start >= e.End || r.delivered(tp) // not this member's any more, or nothing to read
		})
	}
	if len(waiting) == 0 {
		r.grace.all = true
		return
	}
	if r.grace.timeOver(now, r.set.StartupGrace) {
		r.log.Info("waiting for partitions with records to deliver their first", "partitions", waiting)
	}
}

// delivered reports whether a record of tp has been handled since the last rebalance.
func (r *Runner) delivered(tp consumers.TopicPartition) bool {
	_, ok := r.lastSeen[tp]
	return ok
}

// readOnce reports whether tp has delivered a record since the last rebalance, or had
// nothing to read when asked: a partition neither did can have records this member
// could not read.
func (r *Runner) readOnce(tp consumers.TopicPartition) bool {
	return r.delivered(tp) || r.grace.drained[tp]
}
