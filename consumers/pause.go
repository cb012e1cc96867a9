package consumers

import (
	"context"
	"sync/atomic"
	"time"
)

// gate is one partition's reading as its caller steers it: held back (Pause), and how
// long its reader has waited on the broker for a record (Waiting). Kept across
// generations, so that a partition held back stays held whoever reads it next.
type gate struct {
	// held is non-nil while the partition is paused; Resume closes the channel.
	held atomic.Pointer[chan struct{}]
	// waiting is when the reader began to wait on the broker for its next record (unix
	// ns; 0 while it holds one, or hands one over).
	waiting atomic.Int64
}

// pass waits while the gate is held; false when ctx ended first.
func (g *gate) pass(ctx context.Context) bool {
	for {
		ch := g.held.Load()
		if ch == nil {
			return true
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (c *Consumer) gateOf(tp TopicPartition) *gate {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.gates[tp]
	if !ok {
		g = &gate{}
		c.gates[tp] = g
	}
	return g
}

// Pause stops handing over tp's records until Resume: its reader keeps the next one and
// waits, and the broker's records wait where they are. A reader of a backlog pauses the
// partitions it has read far ahead of the others in event time, so that which records
// meet in a window does not depend on how fast each partition was read
// (pipeline/align.go). Records fetched before the pause are still returned. Safe from
// any goroutine; a partition this member does not read stays paused until resumed, if
// it comes back.
func (c *Consumer) Pause(tp TopicPartition) {
	ch := make(chan struct{})
	c.gateOf(tp).held.CompareAndSwap(nil, &ch) // paused already: stays as it is
}

// Resume hands over tp's records again after Pause.
func (c *Consumer) Resume(tp TopicPartition) {
	if ch := c.gateOf(tp).held.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Paused returns how many partitions are paused.
func (c *Consumer) Paused() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.gates {
		if g.held.Load() != nil {
			n++
		}
	}
	return n
}

// Waiting is how long tp's reader has been waiting on the broker for its next record:
// 0 while records come (or a paused reader holds one), and when no generation of this
// member reads tp (between generations: a rejoin is no sign that tp has nothing left).
// A partition with nothing more to read, although its last record said more would come
// (the records after it are a transaction's markers, or were deleted), or whose broker
// does not answer, waits; one read through a backlog does not.
func (c *Consumer) Waiting(tp TopicPartition) time.Duration {
	c.mu.Lock()
	g := c.gates[tp]
	reading := c.gen != nil && c.gen.owned[tp]
	c.mu.Unlock()
	if g == nil || !reading {
		return 0 // between generations nothing is read: no reader waits
	}
	since := g.waiting.Load()
	if since == 0 {
		return 0
	}
	return max(time.Since(time.Unix(0, since)), 0)
}
