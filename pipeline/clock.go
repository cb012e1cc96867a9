package pipeline

import (
	"time"

	"github.com/driftd/driftd/consumers"
)

// streamClock is the event-time clock of the whole stream (every partition of the
// prediction and pipeline topics): what judges moments rather than windows (freshness)
// runs on it, so that a stream gives the same alerts read live or as a backlog.
//
// While any partition has unread records, the clock is the oldest newest-event-time among
// those partitions: everything before it has been read (up to the allowed lateness). A
// partition read to its end does not hold it back; nothing older will come from it. Once
// no partition has unread records, driftd has caught up and the clock is the newest
// event time moved on by the wall clock since it was read — which is what lets it run
// when a live stream goes quiet — bounded by the wall clock plus maxAhead. The clock never
// goes back.
type streamClock struct {
	newest, newestWall time.Time
	// parts are the partitions read, in the order first seen, indexed by index: the
	// clock is asked for at every record, and a slice is quicker to go through than a map.
	parts []partClock
	index map[consumers.TopicPartition]int
	last  time.Time
	// recent is 1 + the index of the partition last asked for: records come in runs of
	// one partition, and each asks twice (position, event).
	recent int
}

// partClock is what the clock knows of one partition.
type partClock struct {
	tp consumers.TopicPartition
	// lag is the partition's unread records after the last one read (0 until known).
	lag int64
	// appended is the Kafka timestamp of the last record read (catchingUp).
	appended time.Time
	// max is the newest event time decoded from it; dated says there is one.
	max   time.Time
	dated bool
	// recent are the event times of its last three events decoded, the newest at
	// recent[n%3] (at).
	recent [3]time.Time
	n      int
}

// at is where the partition's reading stands in event time, for aligning the partitions
// (align.go): the median of its last three events, so that one event stamped hours off
// its neighbours, ahead (a broken clock) or behind (a client that buffered it), does not
// take the partition for read hours ahead or behind: it would be paused until the others
// reached the stamp, or have them paused, live. Before three events, the earliest.
func (p *partClock) at() time.Time {
	a, b, c := p.recent[0], p.recent[1], p.recent[2]
	switch p.n {
	case 1:
		return a
	case 2:
		return minTime(a, b)
	}
	// The median of three: the largest of the pairwise least.
	return maxTime(maxTime(minTime(a, b), minTime(b, c)), minTime(a, c))
}

// maxAhead is how far a caught-up clock may run ahead of the wall clock (producers'
// clocks are not driftd's).
const maxAhead = time.Minute

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func newStreamClock() *streamClock {
	return &streamClock{index: map[consumers.TopicPartition]int{}}
}

func (c *streamClock) part(tp consumers.TopicPartition) *partClock {
	if c.recent > 0 && c.parts[c.recent-1].tp == tp {
		return &c.parts[c.recent-1]
	}
	i, ok := c.index[tp]
	if !ok {
		i = len(c.parts)
		c.index[tp] = i
		c.parts = append(c.parts, partClock{tp: tp})
	}
	c.recent = i + 1
	return &c.parts[i]
}

// position records a partition's lag after a record (before decoding: a record set aside
// is read all the same).
func (c *streamClock) position(tp consumers.TopicPartition, lag int64) {
	c.part(tp).lag = lag
}

// event records a decoded record's event time, read at wall time now, and returns its
// partition's clock; first says the record is the first to date it.
func (c *streamClock) event(tp consumers.TopicPartition, t, now time.Time) (p *partClock, first bool) {
	p = c.part(tp)
	if t.After(p.max) {
		first = !p.dated
		p.max, p.dated = t, true
	}
	p.recent[p.n%3] = t
	p.n++
	if t.After(c.newest) {
		c.newest, c.newestWall = t, now
	}
	return p, first
}

// behind returns the clock of the partitions of topic that have unread records (all
// topics for ""), and whether there are any.
func (c *streamClock) behind(topic string) (time.Time, bool) {
	var t time.Time
	any := false
	for i := range c.parts {
		p := &c.parts[i]
		if p.lag <= 0 || (topic != "" && p.tp.Topic != topic) {
			continue
		}
		if !p.dated {
			continue // nothing decoded from it yet: it cannot date anything
		}
		if !any || p.max.Before(t) {
			t = p.max
		}
		any = true
	}
	return t, any
}

// now returns the clock at wall time now (zero before any event).
func (c *streamClock) now(wall time.Time) time.Time {
	if c.newest.IsZero() {
		return c.last
	}
	t, behind := c.behind("")
	if !behind {
		t = c.newest.Add(max(wall.Sub(c.newestWall), 0))
		// One event stamped hours ahead (a broken clock, within limits.max_future) must not
		// carry a caught-up clock with it: no stage is overdue before it is due.
		t = minTime(t, wall.Add(maxAhead))
	}
	if t.After(c.last) {
		c.last = t
	}
	return c.last
}

// readPast reports whether every record of topic up to t has been read: no partition of
// it with unread records is behind t.
func (c *streamClock) readPast(topic string, t time.Time) bool {
	b, behind := c.behind(topic)
	return !behind || !b.Before(t)
}

// partitionClock is how far partition tp dates the stream, for a spread group's judges
// (the least over every partition is their clock): its newest event time while it has
// unread records, else this member's caught-up clock (as now: its newest event time
// moved on by the wall clock); zero when it dates nothing yet. A member's caught-up clock
// is at most the one member's (its newest event is at most the stream's newest): a judge
// gives silent windows no earlier than one member would.
func (c *streamClock) partitionClock(tp consumers.TopicPartition, wall time.Time) time.Time {
	if i, ok := c.index[tp]; ok && c.parts[i].lag > 0 {
		if !c.parts[i].dated {
			return time.Time{}
		}
		return c.parts[i].max
	}
	if c.newest.IsZero() {
		return time.Time{}
	}
	return minTime(c.newest.Add(max(wall.Sub(c.newestWall), 0)), wall.Add(maxAhead))
}

// readThrough is how far partition tp is read, for a spread group's judges waiting for
// the pipeline topic (upstreamRead): its newest event time while it has unread records
// (zero when it dates nothing yet), else the wall clock, as readPast holds for any time
// once nothing is unread. A member reading it later (a restart, a rebalance) re-reads
// from the committed offset, before which every run read is written: the claim a row
// made stays true.
func (c *streamClock) readThrough(tp consumers.TopicPartition, wall time.Time) time.Time {
	if i, ok := c.index[tp]; ok && c.parts[i].lag > 0 {
		if !c.parts[i].dated {
			return time.Time{}
		}
		return c.parts[i].max
	}
	return wall
}
