package consumers

import (
	"encoding/binary"
	"sort"

	"github.com/segmentio/kafka-go"
)

// activeStandby is a group balancer that gives every partition to one member, the one
// that joined first, and none to the others, which wait as hot standbys and take over
// when it leaves or dies. Drift is judged on whole windows: with the partitions of one
// model spread over several members, each would judge its share only. One active member
// keeps every window whole; extra members buy failover, not throughput.
type activeStandby struct {
	since int64 // when this member started, unix ns: the oldest member stays active
}

func (activeStandby) ProtocolName() string { return "driftd-active-standby" }

func (b activeStandby) UserData() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(b.since)), nil
}

func (activeStandby) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	since := func(m kafka.GroupMember) uint64 {
		if len(m.UserData) != 8 {
			return ^uint64(0) // unknown: youngest
		}
		return binary.BigEndian.Uint64(m.UserData)
	}
	active := members[0]
	for _, m := range members[1:] {
		if s, a := since(m), since(active); s < a || (s == a && m.ID < active.ID) {
			active = m
		}
	}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	mine := out[active.ID]
	for _, p := range partitions {
		mine[p.Topic] = append(mine[p.Topic], p.ID)
	}
	for _, ids := range mine {
		sort.Ints(ids)
	}
	return out
}
