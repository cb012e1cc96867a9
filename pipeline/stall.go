package pipeline

import (
	"slices"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/processors"
)

// failingSource is the Source's view of partitions it cannot read (a *consumers.Consumer).
type failingSource interface {
	Failing(now time.Time) []consumers.TopicPartition
}

// stall is where a partition that cannot be read stood, by its last record, when it
// stopped being readable.
type stall struct {
	offset  int64 // the last record handled (-1: none)
	lag     int64 // its unread records, for the stream clock
	lagging bool  // read behind, for the windows' watermarks
}

// markStalled treats the partitions the source cannot read as read behind: records may
// be waiting there, whatever its last record said. The windows they feed wait for them
// (up to the skew bounds of a partition read behind), and so does the stream clock, and
// with it the idle close and freshness. Otherwise a partition whose leader is gone for
// longer than windows.idle_close has its models' windows closed under it, and the records
// it delivers once back are late: live, not from a backlog. Once readable again, its
// next record says where it stands; if it has none (it was quiet), what its last said is
// restored. The source gives up on it after limits.max_outage, which bounds the wait.
// Asked at most once a second.
func (r *Runner) markStalled(now time.Time) {
	fs, ok := r.src.(failingSource)
	if !ok || now.Sub(r.stallAsked) < time.Second {
		return
	}
	r.stallAsked = now
	failing := fs.Failing(now)
	if len(failing) == 0 && len(r.stalled) == 0 {
		return
	}
	for _, tp := range failing {
		if _, ok := r.stalled[tp]; ok {
			continue
		}
		st := stall{offset: r.lastOffset(tp), lag: r.clock.part(tp).lag}
		if p := r.procFor(tp.Topic); p != nil {
			st.lagging = p.Lagging(processors.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
		}
		r.stalled[tp] = st
		r.readAt(tp, max(st.lag, 1), true)
		r.log.Warn("partition cannot be read: the windows and clock it holds wait for it", "topic", tp.Topic, "partition", tp.Partition)
	}
	for tp, st := range r.stalled {
		if slices.Contains(failing, tp) {
			continue
		}
		delete(r.stalled, tp)
		if r.lastOffset(tp) == st.offset { // nothing delivered since
			r.readAt(tp, st.lag, st.lagging)
		}
		r.log.Info("partition readable again", "topic", tp.Topic, "partition", tp.Partition)
	}
}

// lastOffset is the offset of the last record handled from tp since the last
// rebalance (-1: none).
func (r *Runner) lastOffset(tp consumers.TopicPartition) int64 {
	if o, ok := r.lastSeen[tp]; ok {
		return o
	}
	return -1
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

// readAt records where tp's reading stands: lag records after the last one read, and
// whether it is read behind (what each record says, before anything sets it aside).
func (r *Runner) readAt(tp consumers.TopicPartition, lag int64, lagging bool) {
	r.clock.position(tp, lag)
	if p := r.procFor(tp.Topic); p != nil {
		p.Read(processors.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, lagging)
	}
}
