package consumers

import "github.com/driftd/driftd/internal/enum"

// GroupMode is how a consumer group shares partitions (kafka.group_mode): active_standby
// (one member reads everything, the others take over when it goes) or spread (Kafka's
// range assignment, Options.Spread).
type GroupMode string

// Group modes.
const (
	GroupActiveStandby GroupMode = "active_standby"
	GroupSpread        GroupMode = "spread"
)

// ParseGroupMode parses active_standby or spread.
func ParseGroupMode(s string) (GroupMode, error) {
	return enum.Parse("group_mode", s, GroupActiveStandby, GroupSpread)
}

// Spread says whether partitions are spread over the members (Options.Spread).
func (m GroupMode) Spread() bool { return m == GroupSpread }

func (m GroupMode) String() string               { return string(m) }
func (m GroupMode) MarshalText() ([]byte, error) { return []byte(m), nil }

// UnmarshalText parses a group mode from YAML or the environment.
func (m *GroupMode) UnmarshalText(b []byte) error {
	v, err := ParseGroupMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
