package consumers

import (
	"encoding/binary"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

// activeStandby is a group balancer that gives every partition to one member and none to
// the others, which wait as hot standbys and take over when it leaves or dies. Drift is
// judged on whole windows: with the partitions of one model spread over several members,
// each would judge its share only. One active member keeps every window whole; extra
// members buy failover, not throughput.
//
// The active member stays active: each member tells the group whether it reads partitions
// now, and a member that does is preferred, so a newcomer never takes over (which would
// cost the active member its in-memory windows). Without one (start-up, or the active
// member gone), the member that started first is chosen.
type activeStandby struct {
	since  int64        // when this member started, unix ns
	active *atomic.Bool // whether this member reads partitions now
}

func (activeStandby) ProtocolName() string { return "driftd-active-standby" }

// UserData is since (8 bytes, big endian) and 1 if the member is active.
func (b activeStandby) UserData() ([]byte, error) {
	d := binary.BigEndian.AppendUint64(nil, uint64(b.since))
	if b.active != nil && b.active.Load() {
		return append(d, 1), nil
	}
	return append(d, 0), nil
}

func (activeStandby) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	since := func(m kafka.GroupMember) uint64 {
		if len(m.UserData) < 8 {
			return ^uint64(0) // unknown: youngest
		}
		return binary.BigEndian.Uint64(m.UserData)
	}
	active := func(m kafka.GroupMember) bool { return len(m.UserData) >= 9 && m.UserData[8] == 1 }
	better := func(m, than kafka.GroupMember) bool {
		if active(m) != active(than) {
			return active(m)
		}
		if s, t := since(m), since(than); s != t {
			return s < t
		}
		return m.ID < than.ID
	}
	chosen := members[0]
	for _, m := range members[1:] {
		if better(m, chosen) {
			chosen = m
		}
	}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	mine := out[chosen.ID]
	for _, p := range partitions {
		mine[p.Topic] = append(mine[p.Topic], p.ID)
	}
	for _, ids := range mine {
		sort.Ints(ids)
	}
	return out
}

// freshPartitions makes a balancer assign the partitions the group's topics have when it
// assigns, as the brokers said then (the client's metadata, at most a WatchInterval old:
// NewConsumer). kafka-go hands a balancer no partitions at all when one of the group's
// topics does not exist (its lookup fails on that topic and drops the others), so a
// member subscribed to a topic nobody created yet (an unused pipeline topic) would read
// nothing, not even the topics that exist. When the lookup fails, kafka-go's partitions
// are used.
type freshPartitions struct {
	kafka.GroupBalancer
	lookup func(topics []string) ([]kafka.Partition, error)
}

func (b freshPartitions) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	seen := map[string]bool{}
	var topics []string
	for _, m := range members {
		for _, t := range m.Topics {
			if !seen[t] {
				seen[t] = true
				topics = append(topics, t)
			}
		}
	}
	sort.Strings(topics)
	if fresh, err := b.lookup(topics); err == nil {
		partitions = fresh
	}
	return b.GroupBalancer.AssignGroups(members, partitions)
}

// oneReader is a spread group's balancer: Kafka's range assignment, except that every
// partition of each of topics goes to one member (the first by member id of those
// subscribed to it). A pipeline stage's runs may be on any partition of the pipeline topic
// and its freshness, failures and volume are judged over all of them; the topic carries
// few records, so one reader costs the group nothing it would notice.
type oneReader struct {
	topics []string
}

func (oneReader) ProtocolName() string { return "driftd-spread" }

func (oneReader) UserData() ([]byte, error) { return nil, nil }

func (b oneReader) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	var ranged, whole []kafka.Partition
	for _, p := range partitions {
		if slices.Contains(b.topics, p.Topic) {
			whole = append(whole, p)
		} else {
			ranged = append(ranged, p)
		}
	}
	// kafka-go's range hands out partitions in the order given: sorted, every member's
	// share is the same consecutive run whatever order the brokers listed them in.
	sort.Slice(ranged, func(i, j int) bool {
		if ranged[i].Topic != ranged[j].Topic {
			return ranged[i].Topic < ranged[j].Topic
		}
		return ranged[i].ID < ranged[j].ID
	})
	out := kafka.RangeGroupBalancer{}.AssignGroups(members, ranged)
	for _, m := range members {
		if out[m.ID] == nil {
			out[m.ID] = map[string][]int{}
		}
	}
	for _, p := range whole {
		var reader string
		for _, m := range members {
			if slices.Contains(m.Topics, p.Topic) && (reader == "" || m.ID < reader) {
				reader = m.ID
			}
		}
		if reader != "" {
			out[reader][p.Topic] = append(out[reader][p.Topic], p.ID)
		}
	}
	for _, topics := range out {
		for _, t := range b.topics {
			sort.Ints(topics[t])
		}
	}
	return out
}
