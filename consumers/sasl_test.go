package consumers

import "testing"

// SASL mechanisms parse in any case, as Kafka's own configuration does, and print as
// Kafka names them.
func TestParseSASL(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    SASL
		wantErr string
	}{
		{in: "", want: SASLNone},
		{in: "PLAIN", want: SASLPlain},
		{in: "plain", want: SASLPlain},
		{in: "SCRAM-SHA-256", want: SASLScram256},
		{in: "scram-sha-512", want: SASLScram512},
		{in: "GSSAPI", wantErr: `SASL mechanism "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{in: "oauthbearer", wantErr: `SASL mechanism "oauthbearer" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
	} {
		got, err := ParseSASL(c.in)
		var viaText SASL
		textErr := viaText.UnmarshalText([]byte(c.in))
		m, mechErr := SASLMechanism(SASL(c.in), "u", "p")
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr || textErr == nil || mechErr == nil || mechErr.Error() != c.wantErr {
				t.Errorf("%q: errors %v / %v / %v, want %q", c.in, err, textErr, mechErr, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want || textErr != nil || viaText != c.want {
			t.Errorf("%q: %q, %v / %q, %v; want %q", c.in, got, err, viaText, textErr, c.want)
		}
		if mechErr != nil || (m == nil) != (c.want == SASLNone) || m != nil && m.Name() != c.want.String() {
			t.Errorf("%q: mechanism %v, %v", c.in, m, mechErr)
		}
	}
}
