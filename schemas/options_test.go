package schemas

import (
	"errors"
	"strings"
	"testing"
)

// A stage status parses to the constant whose text is the wire's, and a status outside
// the contract makes the event invalid (so it goes to the dead-letter topic) with the
// accepted values in the reason.
func TestStageStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StageStatus
	}{{"started", StageStarted}, {"succeeded", StageSucceeded}, {"failed", StageFailed}} {
		got, err := ParseStageStatus(tc.in)
		text, _ := got.MarshalText()
		if err != nil || got != tc.want || got.String() != tc.in || string(text) != tc.in {
			t.Errorf("%q: %q (text %q), %v", tc.in, got, text, err)
		}
		var e PipelineEvent
		if err := DecodePipelineJSON([]byte(`{"pipeline":"p","stage":"s","status":"`+tc.in+`","timestamp":1700000000000}`), &e); err != nil || e.Status != tc.want {
			t.Errorf("decode %q: %q, %v", tc.in, e.Status, err)
		}
		b, err := MarshalPipelineJSON(&e)
		if err != nil || !strings.Contains(string(b), `"status":"`+tc.in+`"`) {
			t.Errorf("marshal %q: %s, %v", tc.in, b, err)
		}
	}
	for _, bad := range []string{"SUCCEEDED", "running", ""} {
		if _, err := ParseStageStatus(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
		var e PipelineEvent
		err := DecodePipelineJSON([]byte(`{"pipeline":"p","stage":"s","status":"`+bad+`","timestamp":1700000000000}`), &e)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `status "`+bad+`" is not one of started, succeeded, failed`) {
			t.Errorf("decode %q: %v", bad, err)
		}
	}
}

func TestFormatText(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: "json", want: "json"}, {in: "avro", want: "avro"}, {in: "auto", want: "auto"}, {in: "", want: "auto"},
		{in: "xml", wantErr: `format "xml" is not one of json, avro, auto`},
	} {
		var f Format
		err := f.UnmarshalText([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		text, _ := f.MarshalText()
		if err != nil || f.String() != tc.want || string(text) != tc.want {
			t.Errorf("%q: %q, %v", tc.in, f, err)
		}
	}
}
