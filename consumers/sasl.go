package consumers

import (
	"fmt"
	"strings"

	"github.com/driftd/driftd/internal/enum"
)

// SASL names a SASL mechanism (kafka.sasl.mechanism): none (""), PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512.
type SASL string

// SASL mechanisms.
const (
	SASLNone     SASL = ""
	SASLPlain    SASL = "PLAIN"
	SASLScram256 SASL = "SCRAM-SHA-256"
	SASLScram512 SASL = "SCRAM-SHA-512"
)

// ParseSASL parses a mechanism in any case, as Kafka's own configuration does; "" is none.
func ParseSASL(s string) (SASL, error) {
	if s == "" {
		return SASLNone, nil
	}
	if m, err := enum.Parse("SASL mechanism", strings.ToUpper(s), SASLPlain, SASLScram256, SASLScram512); err == nil {
		return m, nil
	}
	// The error shows the value as written, not upper-cased.
	return "", fmt.Errorf("SASL mechanism %q is not one of %s", s, enum.Join([]SASL{SASLPlain, SASLScram256, SASLScram512}))
}

func (m SASL) String() string               { return string(m) }
func (m SASL) MarshalText() ([]byte, error) { return []byte(m), nil }

// UnmarshalText parses a mechanism from YAML or the environment.
func (m *SASL) UnmarshalText(b []byte) error {
	v, err := ParseSASL(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
