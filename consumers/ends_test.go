package consumers_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
)

// Where a member began reading a partition is the log's start when retention deleted the
// records from the group's committed offset on: the reader resumes there. Taking the
// committed offset left the partition "with records to read" for ever once every
// remaining record was read, and a label partition in that state held settling (review
// of session 15).
func TestEndsStartAtTheLogStartWhenRecordsWereDeleted(t *testing.T) {
	o, ctx, write := numberedTopic(t, 1)
	tp := consumers.TopicPartition{Topic: o.Topics[0]}
	write(0, 10)
	c, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, map[consumers.TopicPartition]int64{tp: 3}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	for _, step := range []struct {
		deleteBefore int64
		wantFirst    int64 // the first record the next member reads; -1: none
		want         consumers.Ends
	}{
		{deleteBefore: 8, wantFirst: 8, want: consumers.Ends{Start: 8, End: 10}},
		{deleteBefore: 10, wantFirst: -1, want: consumers.Ends{Start: 10, End: 10}},
	} {
		deleteRecords(ctx, t, o.Brokers[0], tp, step.deleteBefore)
		c, err := consumers.NewConsumer(o, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if step.wantFirst >= 0 {
			r, err := c.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Offset != step.wantFirst {
				t.Fatalf("records before %d deleted: the next member reads %d first, want %d", step.deleteBefore, r.Offset, step.wantFirst)
			}
		} else {
			waitJoined(ctx, t, c)
		}
		got, err := c.Ends(ctx, []consumers.TopicPartition{tp})
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got[tp] != step.want {
			t.Errorf("records before %d deleted, 3 committed: ends %+v, want %+v", step.deleteBefore, got[tp], step.want)
		}
	}
}

// waitJoined waits until the group has given c its first generation.
func waitJoined(ctx context.Context, t *testing.T, c *consumers.Consumer) {
	t.Helper()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = c.Fetch(fctx) }() // fetching is what joins the group
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !c.Joined() {
		select {
		case <-ctx.Done():
			t.Fatal("the group gave no generation")
		case <-tick.C:
		}
	}
}

// deleteRecords deletes tp's records before offset (what retention does to old
// segments), with franz-go: kafka-go has no DeleteRecords request.
func deleteRecords(ctx context.Context, t *testing.T, brokers string, tp consumers.TopicPartition, before int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = tp.Topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = int32(tp.Partition), before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("delete records of %v before %d: %v", tp, before, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("delete records of %v before %d: %v", tp, before, err)
			}
		}
	}
}

// A member's generation is the group's while it reads in it, and 0 before it has one and
// once its generation ended: a spread group's judge does not judge on what readers that
// stopped last said (pipeline/spread.go). A second member's joining begins a newer
// generation, in which the first reads again.
func TestGenerationIsTheOneReadIn(t *testing.T) {
	o, ctx, write := numberedTopic(t, 2)
	write(0, 10)
	a, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if g := a.Generation(); g != 0 {
		t.Errorf("before joining: generation %d, want 0", g)
	}
	waitJoined(ctx, t, a)
	first := a.Generation()
	if first <= 0 {
		t.Fatalf("joined: generation %d", first)
	}
	b, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitJoined(ctx, t, b)
	// a reads on (fetching is what moves it to the next generation) until it is in b's.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for fctx.Err() == nil {
			_, _ = a.Fetch(fctx)
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for a.Generation() != b.Generation() || a.Generation() <= first {
		select {
		case <-ctx.Done():
			t.Fatalf("generations %d and %d, want both past %d", a.Generation(), b.Generation(), first)
		case <-tick.C:
		}
	}
	cancel()
	b.Close()
	for b.Generation() != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("closed: generation %d, want 0", b.Generation())
		case <-tick.C:
		}
	}
}
