package consumers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
)

// readyConsumer is a Consumer with a generation whose channel holds n records of
// partition 0, without Kafka: Fetch never gets to join (ctx ends first).
func readyConsumer(n int) (*Consumer, *generation) {
	c := &Consumer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), delivered: map[TopicPartition]*int64{}}
	gen := &generation{recs: make(chan Record, 256), ended: make(chan struct{}), failed: make(chan struct{}, 1)}
	for i := range n {
		gen.recs <- Record{Topic: "t", Offset: int64(i)}
	}
	c.gen = gen
	return c, gen
}

// TestFetchNeverReturnsAnEndedGenerationsRecords: records ready in the channel of
// a generation that has ended are dropped, though Fetch takes a ready record before
// looking at ended.
func TestFetchNeverReturnsAnEndedGenerationsRecords(t *testing.T) {
	c, gen := readyConsumer(200)
	close(gen.ended)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // so that Fetch, between generations, returns instead of joining
	rec, err := c.Fetch(ctx)
	if err == nil || c.gen != nil || len(c.delivered) != 0 {
		t.Fatalf("Fetch = %v, %v after the generation ended; delivered %v", rec, err, c.delivered)
	}
}

// TestFetchSaysAReaderFailedWithRecordsReady: a reader that gave up is reported by
// the next Fetch even while other partitions' records are ready.
func TestFetchSaysAReaderFailedWithRecordsReady(t *testing.T) {
	c, gen := readyConsumer(200)
	if _, err := c.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.giveUp(errors.New("broker gone"))
	gen.failed <- struct{}{}
	if _, err := c.Fetch(context.Background()); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Fetch after a reader gave up: %v", err)
	}
}
