package consumers

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Ends is where this member's reading of a partition stands against the partition: the
// offset the current generation began reading it from, and the partition's end offset
// (the offset the next record appended will have).
type Ends struct {
	Start, End int64
}

// Ends asks the brokers for the end offsets of the partitions of tps that the current
// generation gives this member (the others are left out: a standby reads none). A
// partition whose Start is at or past its End had nothing to read when asked; the
// caller compares End with what it has handled since Start. Start is resolved to the
// partition's first (or last) offset when the group had committed none, and raised to
// the partition's first offset when retention deleted the records from there.
func (c *Consumer) Ends(ctx context.Context, tps []TopicPartition) (map[TopicPartition]Ends, error) {
	gen := c.current()
	out := map[TopicPartition]Ends{}
	if gen == nil {
		return out, nil
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range tps {
		if gen.owned[tp] {
			req.Topics[tp.Topic] = append(req.Topics[tp.Topic], kafka.FirstOffsetOf(tp.Partition), kafka.LastOffsetOf(tp.Partition))
		}
	}
	if len(req.Topics) == 0 {
		return out, nil
	}
	resp, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list partition end offsets: %w", err)
	}
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("list end offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			tp := TopicPartition{topic, p.Partition}
			start := gen.from[tp]
			switch start {
			case kafka.FirstOffset:
				start = p.FirstOffset
			case kafka.LastOffset:
				start = p.LastOffset
			}
			// Records committed but never read can be deleted by retention: reading
			// resumes at the log's start (the reader is told the offset is out of range),
			// so that is where this member began.
			start = max(start, p.FirstOffset)
			out[tp] = Ends{Start: start, End: p.LastOffset}
		}
	}
	return out, nil
}
