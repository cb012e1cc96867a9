package consumers

import "testing"

func TestParseGroupMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    GroupMode
		spread  bool
		wantErr string
	}{
		{in: "active_standby", want: GroupActiveStandby},
		{in: "spread", want: GroupSpread, spread: true},
		{in: "range", wantErr: `group_mode "range" is not one of active_standby, spread`},
		{in: "", wantErr: `group_mode "" is not one of active_standby, spread`},
	} {
		var m GroupMode
		err := m.UnmarshalText([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || m != tc.want || m.String() != tc.in || m.Spread() != tc.spread {
			t.Errorf("%q: %v (spread %v), %v", tc.in, m, m.Spread(), err)
		}
	}
}
