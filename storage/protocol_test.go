package storage

import "testing"

func TestParseProtocol(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Protocol
		wantErr string
	}{
		{in: "native", want: ProtocolNative},
		{in: "http", want: ProtocolHTTP},
		{in: "grpc", wantErr: `protocol "grpc" is not one of native, http`},
		{in: "", wantErr: `protocol "" is not one of native, http`},
	} {
		got, err := ParseProtocol(c.in)
		var viaText Protocol
		textErr := viaText.UnmarshalText([]byte(c.in))
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr || textErr == nil {
				t.Errorf("%q: errors %v / %v, want %q", c.in, err, textErr, c.wantErr)
			}
			continue
		}
		b, _ := got.MarshalText()
		if err != nil || got != c.want || textErr != nil || viaText != c.want || got.String() != c.in || string(b) != c.in {
			t.Errorf("%q: %q (%q), %v / %q, %v; want %q", c.in, got, b, err, viaText, textErr, c.want)
		}
	}
}
