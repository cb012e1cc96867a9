package consumers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
)

// Status is this member's place in its group, as of the last check (every
// Options.WatchInterval, and as each generation starts).
type Status struct {
	Group string
	// Joined: a generation is current (false while joining or between generations).
	Joined bool
	// Assigned is how many partitions this member reads.
	Assigned int
	// GroupAssigned is how many partitions the group's members read together (-1: not
	// known, the group could not be described).
	GroupAssigned int
	// Members is how many members the group has (-1: not known).
	Members int
	// Partitions is how many partitions the subscribed topics have (-1: not known).
	Partitions int
	// Missing lists the subscribed topics that do not exist (yet).
	Missing []string
	// GroupLag is the records of the subscribed topics that the group has not committed
	// (each partition's end offset less its committed offset, or less its first offset
	// before any commit), as of the last check; -1 when not known. Unlike the lag of the
	// last record read, it grows while the group stalls.
	GroupLag int64
	// LagErr is why GroupLag is not known, or a partition the group cannot read on from
	// (its committed offset is beyond the partition's end: the topic was recreated).
	LagErr error
	// Protocol is the assignment strategy the group agreed on ("driftd-spread",
	// "range", "driftd-active-standby"), as of the last check that found the group
	// stable; "" while not known. Checked only in a spread group (Options.Spread), where
	// an older member that does not speak driftd-spread makes the group fall back to
	// range, and one member no longer reads each of Options.OneReader's topics whole.
	Protocol string
	// Err is why the last check failed, if it did.
	Err error
}

// Ready says whether this member does its job: nil with a line for a person when it reads
// partitions or stands by for a member that does; an error saying why not otherwise.
func (s Status) Ready() (string, error) {
	missing := ""
	if len(s.Missing) > 0 {
		missing = "; topics that do not exist yet: " + strings.Join(s.Missing, ", ")
	}
	switch {
	case !s.Joined:
		return "", fmt.Errorf("joining consumer group %s", s.Group)
	case s.Assigned > 0:
		return fmt.Sprintf("ready: reading %d partitions in consumer group %s%s", s.Assigned, s.Group, missing), nil
	case s.GroupAssigned > 0:
		return fmt.Sprintf("standby: another member of consumer group %s reads its %d partitions; this one takes over if it stops%s", s.Group, s.GroupAssigned, missing), nil
	case s.Partitions > 0:
		return "", fmt.Errorf("consumer group %s: the topics have %d partitions and no member reads them yet (rejoining to have them assigned)%s", s.Group, s.Partitions, missing)
	case len(s.Missing) > 0:
		return "", fmt.Errorf("consumer group %s: nothing to read%s", s.Group, missing)
	case s.Err != nil:
		return "", fmt.Errorf("consumer group %s: no partitions assigned; checking the topics failed: %w", s.Group, s.Err)
	}
	return "", fmt.Errorf("consumer group %s: no partitions assigned", s.Group)
}

// Status returns this member's place in its group.
func (c *Consumer) Status() Status {
	gen := c.current()
	if gen == nil {
		return Status{Group: c.o.GroupID, GroupAssigned: -1, Members: -1, Partitions: -1, GroupLag: -1}
	}
	if st := gen.status.Load(); st != nil {
		return *st
	}
	return Status{Group: c.o.GroupID, Joined: true, Assigned: len(gen.owned), GroupAssigned: -1, Members: -1, Partitions: -1, GroupLag: -1}
}

// watch checks, as the generation starts and every WatchInterval, that every partition of
// the subscribed topics is read by some member of the group, and ends the generation when
// one is not (returning ends it: the member joins again, and the group leader assigns the
// partitions as they are now). A topic created after the group formed, or partitions
// added to one, are then read within seconds: without this the group keeps the
// assignment it made when they did not exist.
//
// kafka-go's own watch (WatchPartitionChanges) compares partition counts with those it
// reads after the join, so a topic created during the join is never noticed, and a topic
// that does not exist ends every generation as it starts: the member rejoins in a loop.
//
// Every member checks: a follower's join changes nothing while its metadata is
// unchanged, but the group leader, who reads the same topics, rejoins too and rebalances.
func (c *Consumer) watch(ctx context.Context, gen *generation) {
	t := time.NewTicker(c.o.WatchInterval)
	defer t.Stop()
	for {
		st, unread, parts := c.check(ctx, gen)
		if ctx.Err() != nil {
			return
		}
		if parts != nil {
			// After the membership check and with a time limit of its own, so that a
			// broker slow to answer for offsets never delays the check that keeps every
			// partition read.
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st.GroupLag, st.LagErr = groupLag(lctx, c.client, c.o.GroupID, parts)
			cancel()
		}
		gen.status.Store(&st)
		if len(unread) > 0 && time.Since(time.Unix(0, c.rejoined.Load())) >= c.o.WatchInterval {
			c.rejoined.Store(time.Now().UnixNano())
			c.log.Info("partitions that no member of the consumer group reads: joining again to have them assigned",
				"group", c.o.GroupID, "generation", gen.g.ID, "partitions", strings.Join(unread, " "))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check compares the subscribed topics' partitions with what the group reads; it returns
// the status, the partitions no member reads, and the partitions of the topics (nil when
// they could not be listed).
func (c *Consumer) check(ctx context.Context, gen *generation) (Status, []string, []kafka.Partition) {
	st := Status{Group: c.o.GroupID, Joined: true, Assigned: len(gen.owned), GroupAssigned: -1, Members: -1, Partitions: -1, GroupLag: -1}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	parts, missing, err := topicPartitions(ctx, c.client, c.o.Topics)
	if err != nil {
		st.Err = err
		return st, nil, nil
	}
	st.Missing = missing
	exist := map[TopicPartition]bool{}
	for _, p := range parts {
		exist[TopicPartition{p.Topic, p.ID}] = true
	}
	st.Partitions = len(exist)
	read := gen.owned
	if desc, err := c.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.o.GroupID}}); err != nil || len(desc.Groups) != 1 || desc.Groups[0].Error != nil {
		if err == nil && len(desc.Groups) == 1 {
			err = desc.Groups[0].Error
		}
		// Not known who else reads what: a member that reads partitions still sees the
		// ones it lacks, which in active/standby are all the group's.
		st.Err = fmt.Errorf("describe consumer group: %w", err)
		if len(gen.owned) == 0 {
			return st, nil, parts
		}
	} else if g := desc.Groups[0]; g.GroupState != "Stable" {
		// A rebalance is under way: it assigns the partitions as they are now.
		return st, nil, parts
	} else {
		if c.o.Spread {
			if st.Protocol, err = groupProtocol(ctx, c.client, c.o.GroupID); err != nil {
				st.Err = err
			}
		}
		read = map[TopicPartition]bool{}
		for _, m := range g.Members {
			for _, t := range m.MemberAssignments.Topics {
				for _, p := range t.Partitions {
					read[TopicPartition{t.Topic, p}] = true
				}
			}
		}
		st.GroupAssigned, st.Members = len(read), len(g.Members)
	}
	var unread []string
	for tp := range exist {
		if !read[tp] {
			unread = append(unread, fmt.Sprintf("%s/%d", tp.Topic, tp.Partition))
		}
	}
	sort.Strings(unread)
	return st, unread, parts
}

// groupProtocol returns the assignment strategy group agreed on (kafka-go's
// DescribeGroups leaves it out of its answer, so the request is made here).
func groupProtocol(ctx context.Context, client *kafka.Client, group string) (string, error) {
	resp, err := client.Transport.RoundTrip(ctx, client.Addr, &describegroups.Request{Groups: []string{group}})
	if err != nil {
		return "", fmt.Errorf("describe the protocol of consumer group %s: %w", group, err)
	}
	r, ok := resp.(*describegroups.Response)
	if !ok || len(r.Groups) != 1 {
		return "", fmt.Errorf("describe the protocol of consumer group %s: an answer of %T", group, resp)
	}
	g := r.Groups[0]
	if g.ErrorCode != 0 {
		return "", fmt.Errorf("describe the protocol of consumer group %s: %w", group, kafka.Error(g.ErrorCode))
	}
	if g.GroupState != "Stable" {
		return "", nil // a rebalance is under way: the next check says
	}
	return g.ProtocolData, nil
}

// topicPartitions returns the partitions of the topics that exist, and the topics that do
// not (sorted). It never creates a topic (a metadata request may, on brokers that create
// topics on first use, when the client asks for it; this one does not).
func topicPartitions(ctx context.Context, client *kafka.Client, topics []string) ([]kafka.Partition, []string, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, nil, fmt.Errorf("read topic metadata: %w", err)
	}
	var parts []kafka.Partition
	var missing []string
	for _, t := range md.Topics {
		switch {
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition) || (t.Error == nil && len(t.Partitions) == 0):
			missing = append(missing, t.Name)
		case t.Error != nil:
			return nil, nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		default:
			parts = append(parts, t.Partitions...)
		}
	}
	sort.Strings(missing)
	return parts, missing, nil
}

// groupLag is the records of parts that group has not committed: each partition's end
// offset less its committed offset (less its first offset when it has none), as Kafka's
// tools count it (offsets: a transaction's markers and a compacted topic's removed
// records count too). -1 with an error when it is not known.
func groupLag(ctx context.Context, client *kafka.Client, group string, parts []kafka.Partition) (int64, error) {
	if len(parts) == 0 {
		return 0, nil
	}
	list := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	fetch := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, p := range parts {
		list.Topics[p.Topic] = append(list.Topics[p.Topic], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		fetch.Topics[p.Topic] = append(fetch.Topics[p.Topic], p.ID)
	}
	offsets, err := client.ListOffsets(ctx, list)
	if err != nil {
		return -1, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, fetch)
	if err == nil {
		err = committed.Error
	}
	if err != nil {
		return -1, fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}
	done := map[TopicPartition]int64{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return -1, fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				done[TopicPartition{topic, p.Partition}] = p.CommittedOffset
			}
		}
	}
	var lag int64
	var beyond []string
	for topic, ps := range offsets.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return -1, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			from, ok := done[TopicPartition{topic, p.Partition}]
			switch {
			case ok && from > p.LastOffset:
				beyond = append(beyond, fmt.Sprintf("%s/%d (committed %d, end %d)", topic, p.Partition, from, p.LastOffset))
				from = p.FirstOffset
			case !ok || from < p.FirstOffset:
				from = p.FirstOffset // nothing committed, or the committed records are deleted
			}
			lag += p.LastOffset - from
		}
	}
	if len(beyond) > 0 {
		sort.Strings(beyond)
		return lag, fmt.Errorf("the group's committed offset is beyond the end of %s: the topic was recreated? reading waits there; reset the group's offsets", strings.Join(beyond, ", "))
	}
	return lag, nil
}
