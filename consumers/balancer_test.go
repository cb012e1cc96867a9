package consumers

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestActiveStandbyGivesEverythingToOneMember(t *testing.T) {
	data := func(since uint64, active bool) []byte {
		d := binary.BigEndian.AppendUint64(nil, since)
		if active {
			return append(d, 1)
		}
		return append(d, 0)
	}
	parts := []kafka.Partition{{Topic: "p", ID: 2}, {Topic: "p", ID: 0}, {Topic: "q", ID: 0}, {Topic: "p", ID: 1}}
	for _, c := range []struct {
		name    string
		members []kafka.GroupMember
		active  string
	}{
		{"the oldest, when none is active", []kafka.GroupMember{{ID: "a", UserData: data(30, false)}, {ID: "b", UserData: data(10, false)}, {ID: "c", UserData: data(20, false)}}, "b"},
		{"the active member stays, though a member is older", []kafka.GroupMember{{ID: "a", UserData: data(30, true)}, {ID: "b", UserData: data(10, false)}}, "a"},
		{"of two that say they are active, the older", []kafka.GroupMember{{ID: "a", UserData: data(30, true)}, {ID: "b", UserData: data(20, true)}}, "b"},
		{"a tie goes to the smaller id", []kafka.GroupMember{{ID: "z", UserData: data(5, false)}, {ID: "y", UserData: data(5, false)}}, "y"},
		{"unknown user data is youngest", []kafka.GroupMember{{ID: "a", UserData: []byte("x")}, {ID: "b", UserData: data(99, false)}}, "b"},
		{"alone", []kafka.GroupMember{{ID: "solo"}}, "solo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := activeStandby{}.AssignGroups(c.members, parts)
			for _, m := range c.members {
				want := map[string][]int{}
				if m.ID == c.active {
					want = map[string][]int{"p": {0, 1, 2}, "q": {0}}
				}
				if !reflect.DeepEqual(got[m.ID], want) {
					t.Errorf("member %s got %v, want %v", m.ID, got[m.ID], want)
				}
			}
		})
	}
}

func TestOneReaderRangesTheRestAndGivesTheTopicToOneMember(t *testing.T) {
	parts := []kafka.Partition{{Topic: "pred", ID: 3}, {Topic: "pred", ID: 0}, {Topic: "pipe", ID: 1}, {Topic: "pred", ID: 2},
		{Topic: "pipe", ID: 0}, {Topic: "pred", ID: 1}, {Topic: "pipe", ID: 2}}
	both := []string{"pred", "pipe"}
	for _, c := range []struct {
		name    string
		members []kafka.GroupMember
		want    map[string]map[string][]int
	}{
		{"alone", []kafka.GroupMember{{ID: "a", Topics: both}},
			map[string]map[string][]int{"a": {"pred": {0, 1, 2, 3}, "pipe": {0, 1, 2}}}},
		{"two: range, and the pipeline topic to the first by id", []kafka.GroupMember{{ID: "b", Topics: both}, {ID: "a", Topics: both}},
			map[string]map[string][]int{"a": {"pred": {0, 1}, "pipe": {0, 1, 2}}, "b": {"pred": {2, 3}}}},
		{"three", []kafka.GroupMember{{ID: "c", Topics: both}, {ID: "b", Topics: both}, {ID: "a", Topics: both}},
			map[string]map[string][]int{"a": {"pred": {0}, "pipe": {0, 1, 2}}, "b": {"pred": {1}}, "c": {"pred": {2, 3}}}}, // kafka-go's range
		{"only members subscribed to it read it", []kafka.GroupMember{{ID: "a", Topics: []string{"pred"}}, {ID: "b", Topics: both}},
			map[string]map[string][]int{"a": {"pred": {0, 1}}, "b": {"pred": {2, 3}, "pipe": {0, 1, 2}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := oneReader{topics: []string{"pipe"}}.AssignGroups(c.members, parts)
			if !reflect.DeepEqual(map[string]map[string][]int(got), c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
