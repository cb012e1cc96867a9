package consumers_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
)

// A paused partition hands nothing over until it is resumed, while the others go on.
// A reader with nothing left to read says how long it has waited on the broker; a
// paused one, holding the record it fetched, does not wait on the broker.
func TestPausedPartitionHandsNothingOverUntilResumed(t *testing.T) {
	o, ctx, write := numberedTopic(t, 2)
	topic := o.Topics[0]
	p0, p1 := consumers.TopicPartition{Topic: topic, Partition: 0}, consumers.TopicPartition{Topic: topic, Partition: 1}
	const n = 40
	var on [2]int // records per partition, as the writer's hash places them
	for i := range n {
		on[(&kafka.Hash{}).Balance(kafka.Message{Key: []byte(strconv.Itoa(i))}, 0, 1)]++
	}
	if on[0] == 0 || on[1] == 0 {
		t.Fatalf("keys hash to one partition: %v", on)
	}
	c, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Pause(p1)
	if got := c.Paused(); got != 1 {
		t.Fatalf("Paused() = %d after pausing one partition", got)
	}
	write(0, n)
	recs, errs := fetchInBackground(t, ctx, c)
	read := func(want int, from consumers.TopicPartition) {
		t.Helper()
		for range want {
			select {
			case r := <-recs:
				if r.Partition != from.Partition {
					t.Fatalf("record %q of partition %d handed over; only %d's expected", r.Value, r.Partition, from.Partition)
				}
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
	}
	read(on[0], p0)
	waitUntil(ctx, t, "partition 0's reader waits on the broker, partition 1's holds a record", func() bool {
		return c.Waiting(p0) >= 500*time.Millisecond && c.Waiting(p1) == 0
	})
	select {
	case r := <-recs:
		t.Fatalf("record %q of partition %d handed over while paused", r.Value, r.Partition)
	default:
	}
	c.Resume(p1)
	read(on[1], p1)
	if got := c.Paused(); got != 0 {
		t.Errorf("Paused() = %d after resuming", got)
	}
	if w := c.Waiting(consumers.TopicPartition{Topic: topic, Partition: 7}); w != 0 {
		t.Errorf("Waiting of a partition not read = %v", w)
	}
}

// waitUntil polls cond until it holds, within ctx.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
