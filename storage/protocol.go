package storage

import "github.com/driftd/driftd/internal/enum"

// Protocol is how driftd talks to ClickHouse (clickhouse.protocol).
type Protocol string

// Protocols. Options.Protocol empty is native.
const (
	ProtocolNative Protocol = "native"
	ProtocolHTTP   Protocol = "http"
)

// ParseProtocol parses native or http.
func ParseProtocol(s string) (Protocol, error) {
	return enum.Parse("protocol", s, ProtocolNative, ProtocolHTTP)
}

func (p Protocol) String() string               { return string(p) }
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p), nil }

// UnmarshalText parses a protocol from YAML or the environment.
func (p *Protocol) UnmarshalText(b []byte) error {
	v, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
