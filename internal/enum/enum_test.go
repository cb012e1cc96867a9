package enum

import "testing"

type color string

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    color
		wantErr string
	}{
		{in: "red", want: "red"},
		{in: "blue", want: "blue"},
		{in: "Red", wantErr: `color "Red" is not one of red, blue`},
		{in: "", wantErr: `color "" is not one of red, blue`},
	} {
		got, err := Parse[color]("color", tc.in, "red", "blue")
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Parse(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
