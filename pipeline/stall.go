package pipeline

import (
	"slices"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/processors"
)

// failingSource is the Source's view of partitions it cannot read (a *consumers.Consumer).
type failingSource interface {
	Failing(now time.Time) (failing []consumers.TopicPartition, known bool)
}

// stall is where a partition that cannot be read stands by its last record: what it
// says again once the partition is readable (markStalled).
type stall struct {
	lag     int64 // unread records after it, for the stream clock
	lagging bool  // read behind, for the windows' watermarks
}

// markStalled treats the windowed partitions the source cannot read as read behind:
// records may be waiting there, whatever the last one read said. The windows they feed
// wait for them (up to the skew bounds of a partition read behind), and so does the
// stream clock, and with it the idle close and freshness. Otherwise a partition whose
// leader is gone for longer than windows.idle_close has its models' windows closed under
// it, and the records it delivers once back are late: live, not from a backlog. While
// marked, its records keep it read behind (handle); once the source has not seen it fail
// for a while, what its last record said stands again. The source gives up on it after
// limits.max_outage, which bounds the wait. Asked at most once a second; between
// generations, when the source cannot tell, nothing changes.
func (r *Runner) markStalled(now time.Time) {
	fs, ok := r.src.(failingSource)
	if !ok || now.Sub(r.stallAsked) < time.Second {
		return
	}
	r.stallAsked = now
	failing, known := fs.Failing(now)
	if !known || len(failing) == 0 && len(r.stalled) == 0 {
		return
	}
	for _, tp := range failing {
		p := r.procFor(tp.Topic)
		if _, ok := r.stalled[tp]; ok || p == nil {
			continue
		}
		st := stall{lag: r.clock.part(tp).lag, lagging: p.Lagging(processors.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})}
		r.stalled[tp] = st
		r.readAt(tp, st, true)
		r.log.Warn("partition cannot be read: the windows and clock it holds wait for it", "topic", tp.Topic, "partition", tp.Partition)
	}
	for tp, st := range r.stalled {
		if slices.Contains(failing, tp) {
			continue
		}
		delete(r.stalled, tp)
		r.readAt(tp, st, false)
		r.log.Info("partition readable again", "topic", tp.Topic, "partition", tp.Partition)
	}
}

// procFor is the processor that windows topic's records (nil: none).
func (r *Runner) procFor(topic string) *processors.Processor {
	switch {
	case topic == r.set.PredictionTopic:
		return r.proc
	case r.up != nil && topic == r.set.PipelineTopic:
		return r.up.proc
	}
	return nil
}

// readAt records where tp's reading stands (what each record says, before anything
// sets it aside): st, or read behind while it is stalled.
func (r *Runner) readAt(tp consumers.TopicPartition, st stall, stalled bool) {
	if stalled {
		st = stall{lag: max(st.lag, 1), lagging: true}
	}
	r.clock.position(tp, st.lag)
	if p := r.procFor(tp.Topic); p != nil {
		p.Read(processors.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, st.lagging)
	}
}

// readRecord records where rec's partition stands by rec (readAt); a stalled
// partition's record is what it says once readable again.
func (r *Runner) readRecord(tp consumers.TopicPartition, rec consumers.Record) {
	st := stall{lag: unread(rec), lagging: unread(rec) > 0}
	before, stalled := r.stalled[tp]
	switch {
	case rec.HighWaterMark > 0:
	case stalled: // a record that does not say: the lag stays what it was known to be
		st.lag = before.lag
	default:
		st.lag = r.clock.part(tp).lag
	}
	if stalled {
		r.stalled[tp] = st
	}
	r.readAt(tp, st, stalled)
	r.clock.part(tp).appended = rec.Time
	if st.lag <= 0 {
		r.caughtUp(tp)
	}
}
