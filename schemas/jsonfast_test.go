package schemas

import (
	"fmt"
	"math"
	"reflect"
	"testing"
)

// decodeBoth decodes b with the fast path (falling back as in production) and with
// encoding/json alone, and fails t if they differ. It reports whether the fast path took
// the record itself.
func decodeBoth(t *testing.T, b []byte) bool {
	t.Helper()
	var fast, std PredictionEvent
	fastTook := fast.scanPrediction(b)
	fast.Reset()
	errFast := DecodePredictionJSON(b, &fast)
	errStd := decodePredictionJSONStd(b, &std)
	switch {
	case (errFast == nil) != (errStd == nil):
		t.Fatalf("%q: fast path error %v, encoding/json error %v", b, errFast, errStd)
	case errFast != nil:
		if errFast.Error() != errStd.Error() {
			t.Fatalf("%q: errors differ:\nfast: %v\nstd:  %v", b, errFast, errStd)
		}
	default:
		if d := eventDiff(&fast, &std); d != "" {
			t.Fatalf("%q: events differ: %s", b, d)
		}
	}
	return fastTook
}

// eventDiff compares the exported fields of two events, numbers bit for bit.
func eventDiff(a, b *PredictionEvent) string {
	ca, cb := *a, *b
	ca.strs, cb.strs, ca.names, cb.names = nil, nil, nil, nil
	if len(ca.Features) == 0 {
		ca.Features = nil
	}
	if len(cb.Features) == 0 {
		cb.Features = nil
	}
	for i := range min(len(ca.Features), len(cb.Features)) {
		if math.Float64bits(ca.Features[i].Value.Num) != math.Float64bits(cb.Features[i].Value.Num) {
			return fmt.Sprintf("feature %d: %v vs %v", i, ca.Features[i], cb.Features[i])
		}
	}
	if !reflect.DeepEqual(ca, cb) {
		return fmt.Sprintf("\n%+v\n%+v", ca, cb)
	}
	return ""
}

// TestJSONFastPathMatchesEncodingJSON: the fast path takes the common records and gives
// encoding/json's event; on what it leaves (escapes, case, repeats, types, nesting), the
// result is encoding/json's, event and error alike.
func TestJSONFastPathMatchesEncodingJSON(t *testing.T) {
	sample, err := MarshalPredictionJSON(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	e20, err := MarshalPredictionJSON(event20(7))
	if err != nil {
		t.Fatal(err)
	}
	const ts = `"timestamp":"2026-03-04T10:00:01.25Z"`
	for _, c := range []struct {
		in   string
		fast bool // the fast path takes it
	}{
		{string(sample), true},
		{string(e20), true},
		{`{"model":"m",` + ts + `}`, true},
		{` { "model" : "m" , ` + ts + ` , "features" : { "a" : 1 , "b" : "x" } } `, true},
		{`{"model":"m","timestamp":1772618400000}`, true},
		{`{"model":"m","timestamp":1772618400000.5}`, true},
		{`{"model":"m",` + ts + `,"unknown":{"deep":[1,2,{"x":null}],"s":"\u00e9\n"},"u2":[]}`, true},
		{`{"model":"m",` + ts + `,"latency_ms":null,"input_size":null,"status":null,"scores":null}`, true},
		{`{"model":"m",` + ts + `,"input_size":0,"scores":{}}`, true},
		{`{"model":"m",` + ts + `,"scores":{"a":1,"a":2}}`, true},
		{`{"model":"Zürich",` + ts + `,"features":{"city":"Zürich"}}`, true},
		{`{"model":"m",` + ts + `,"prediction":"yes"}`, true},
		{`{"model":"m",` + ts + `,"prediction":null}`, true},
		{`{"model":"m",` + ts + `,"latency_ms":-0.0}`, true},
		{`{"model":"m",` + ts + `,"latency_ms":1e400}`, false},
		{`{"model":"m",` + ts + `,"latency_ms":"12"}`, false},
		{`{"Model":"m",` + ts + `}`, false},
		{`{"MODEL":"m",` + ts + `}`, false},
		{`{"modeſ":"m",` + ts + `}`, false},
		{`{"model":"m","model":"n",` + ts + `}`, false},
		{`{"mod\u0065l":"m",` + ts + `}`, false},
		{`{"model":"m\"q",` + ts + `}`, false},
		{"{\"model\":\"m\xff\"," + ts + `}`, false},
		{`{"model":"m",` + ts + `,"features":{"a":1},"features":{"b":2}}`, false},
		{`{"model":"m",` + ts + `,"timestamp":"2026-03-04T10:00:01Z"}`, false},
		{`{"model":"m","timestamp":"yesterday"}`, false},
		{`{"model":"m",` + ts + `,"features":{"a":[1]}}`, false},
		{`{"model":"m",` + ts + `,"features":{"a":1,"a":2}}`, false},
		{`{"model":"m",` + ts + `,"scores":{"a":"1"}}`, false},
		{`{"model":"m",` + ts + `}x`, false},
		{`{"model":"m",` + ts + `,}`, false},
		{`{"model":"m",` + ts + `,"x":01}`, false},
		{`{"model":"m",` + ts + `,"x":1.}`, false},
		{`{"model":"m",` + ts + `,"x":"\x"}`, false},
		{`{"model":"m",` + ts + `,"x":"\u12"}`, false},
		{`{"model":"m",` + ts + `,"x":tru}`, false},
		{`{"model":"",` + ts + `}`, true}, // taken, refused by validation with encoding/json's words
		{`{"model":"m","timestamp":"9999-12-31T23:59:59Z"}`, true},
		{`[]`, false},
		{`null`, false},
		{``, false},
		{`{}`, true},
	} {
		if got := decodeBoth(t, []byte(c.in)); got != c.fast {
			t.Errorf("%s: fast path took it: %t, want %t", c.in, got, c.fast)
		}
	}
}

// FuzzJSONFastMatchesStd: on any bytes, the fast path (with its fallback) and
// encoding/json give the same event or the same error.
func FuzzJSONFastMatchesStd(f *testing.F) {
	for _, e := range []*PredictionEvent{sampleEvent(), event20(3)} {
		b, err := MarshalPredictionJSON(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range refusedAsInvalid(f) {
		f.Add(c.in)
	}
	f.Add([]byte(`{"model":"m","timestamp":1,"features":{"a":"\\u0000"},"scores":{"x":1e3},"x":[{"y":[]}]}`))
	f.Add([]byte(`{"Model":"m","timestamp":"2026-03-04T10:00:01.25Z","input_size":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, b)
	})
}
