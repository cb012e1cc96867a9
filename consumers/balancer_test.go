package consumers

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestActiveStandbyGivesEverythingToTheOldestMember(t *testing.T) {
	at := func(ns uint64) []byte { return binary.BigEndian.AppendUint64(nil, ns) }
	parts := []kafka.Partition{{Topic: "p", ID: 2}, {Topic: "p", ID: 0}, {Topic: "q", ID: 0}, {Topic: "p", ID: 1}}
	for _, c := range []struct {
		name    string
		members []kafka.GroupMember
		active  string
	}{
		{"oldest wins", []kafka.GroupMember{{ID: "a", UserData: at(30)}, {ID: "b", UserData: at(10)}, {ID: "c", UserData: at(20)}}, "b"},
		{"a tie goes to the smaller id", []kafka.GroupMember{{ID: "z", UserData: at(5)}, {ID: "y", UserData: at(5)}}, "y"},
		{"unknown user data is youngest", []kafka.GroupMember{{ID: "a", UserData: []byte("x")}, {ID: "b", UserData: at(99)}}, "b"},
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
