package schemas

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// decodeBoth decodes b with the fast path (falling back as in production) and with
// encoding/json alone, and fails t if they differ. It reports whether the fast path took
// the record itself. The fast path decodes into an event that held prev (a 20-feature
// record: prevRecord) before, as the consumer's ring of events does, so that reusing
// memory is tested too.
func decodeBoth(t *testing.T, prev, b []byte) bool {
	t.Helper()
	var fast, std PredictionEvent
	if err := DecodePredictionJSON(prev, &fast); err != nil {
		t.Fatal(err)
	}
	fast.Reset()
	fastTook := fast.scanPrediction(b)
	if err := DecodePredictionJSON(prev, &fast); err != nil {
		t.Fatal(err)
	}
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

func prevRecord(t testing.TB) []byte {
	t.Helper()
	b, err := MarshalPredictionJSON(event20(11))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventDiff compares the exported fields of two events, every number bit for bit (an
// accepted event holds no NaN: the validator refuses them, so bits decide).
func eventDiff(a, b *PredictionEvent) string {
	ca, cb := *a, *b
	ca.strs, cb.strs, ca.names, cb.names = nil, nil, nil, nil
	if len(ca.Features) == 0 {
		ca.Features = nil
	}
	if len(cb.Features) == 0 {
		cb.Features = nil
	}
	bits := math.Float64bits
	for i := range min(len(ca.Features), len(cb.Features)) {
		if bits(ca.Features[i].Value.Num) != bits(cb.Features[i].Value.Num) {
			return fmt.Sprintf("feature %d: %v vs %v", i, ca.Features[i], cb.Features[i])
		}
	}
	for _, n := range []struct {
		name string
		x, y float64
	}{
		{"prediction", ca.Prediction.Num, cb.Prediction.Num},
		{"latency_ms", ca.LatencyMs, cb.LatencyMs},
		{"input_size", ca.InputSize, cb.InputSize},
	} {
		if bits(n.x) != bits(n.y) {
			return fmt.Sprintf("%s: %v (%#x) vs %v (%#x)", n.name, n.x, bits(n.x), n.y, bits(n.y))
		}
	}
	for k, x := range ca.Scores {
		if y, ok := cb.Scores[k]; ok && bits(x) != bits(y) {
			return fmt.Sprintf("scores[%q]: %v vs %v", k, x, y)
		}
	}
	if !reflect.DeepEqual(ca, cb) {
		return fmt.Sprintf("\n%+v\n%+v", ca, cb)
	}
	return ""
}

// jsonFastCase is a record and whether the fast path takes it itself.
type jsonFastCase struct {
	in   string
	fast bool
}

// jsonFastCases are the records TestJSONFastPathMatchesEncodingJSON checks and
// FuzzJSONFastMatchesStd starts from: the common shapes, and each thing the fast path
// leaves to encoding/json.
func jsonFastCases(t testing.TB) []jsonFastCase {
	t.Helper()
	sample, err := MarshalPredictionJSON(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	e20, err := MarshalPredictionJSON(event20(7))
	if err != nil {
		t.Fatal(err)
	}
	const ts = `"timestamp":"2026-03-04T10:00:01.25Z"`
	deep := strings.Repeat(`[`, maxFastDepth+2) + strings.Repeat(`]`, maxFastDepth+2)
	return []jsonFastCase{
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
		// Strings longer than the eight bytes plainString skips at once, with what
		// stops it in the first, second and third word and at the end.
		{`{"model":"fraud-scorer-eu-west-1-canary",` + ts + `,"features":{"device_family_long":"android-tablet-xl"}}`, true},
		{`{"model":"fraud-scorer-\u0065u-west",` + ts + `}`, false},
		{`{"model":"fraud-scorer-eu-west-1\"x",` + ts + `}`, false},
		{`{"model":"fraud-sco\trer",` + ts + `}`, false},
		{"{\"model\":\"fraud-scorer\tx\"," + ts + "}", false},
		{`{"model":"fraud-scorer-Zürich-süd",` + ts + `,"features":{"city_of_the_customer":"Zürich-Süd"}}`, true},
		{"{\"model\":\"fraud-scorer-\xff\xfe-west\"," + ts + "}", false},
		{"{\"model\":\"fraud-scorer-eu-wes\xc3\"," + ts + "}", false},
		{`{"model":"m",` + ts + `,"prediction":-12.5e-3}`, true},
		{`{"model":"m",` + ts + `,"prediction":1e400}`, false},
		{`{"model":"m",` + ts + `,"prediction":01}`, false},
		{`{"model":"m",` + ts + `,"prediction":-}`, false},
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
		// Strings: escapes, surrogate pairs, a lone surrogate, bytes that are not UTF-8.
		{`{"model":"m",` + ts + `,"features":{"e":"\ud83d\ude00","f":"\ud800"}}`, true},
		{`{"model":"m",` + ts + `,"features":{"\u0061":1}}`, true},
		{"{\"model\":\"m\"," + ts + ",\"features\":{\"a\xff\":\"b\xc3\"}}", true},
		{"{\"model\":\"m\"," + ts + ",\"prediction\":\"\xed\xa0\x80\"}", true},
		{`{"model":"m",` + ts + `,"prediction":"\ud83d\ude00"}`, true},
		{`{"model":"m\ud83d\ude00",` + ts + `}`, false},
		{`{"model":"m",` + ts + `,"event_id":"\ud800x"}`, false},
		{"{\"model\":\"m\"," + ts + ",\"status\":\"o\x00k\"}", false},
		{"{\"model\":\"m\"," + ts + ",\"unknown\":\"\xff\xfe\"}", true},
		// Numbers in every form, and out of range.
		{`{"model":"m",` + ts + `,"latency_ms":1E+2,"input_size":-0,"prediction":0.5e-3}`, true},
		{`{"model":"m",` + ts + `,"latency_ms":1e-400,"input_size":123456789012345678901234567890}`, true},
		{`{"model":"m",` + ts + `,"features":{"a":-0,"b":1e-400,"c":0.1E1}}`, true},
		{`{"model":"m",` + ts + `,"features":{"a":1e400}}`, false},
		{`{"model":"m",` + ts + `,"features":{"a":01}}`, false},
		{`{"model":"m",` + ts + `,"prediction":-}`, false},
		{`{"model":"m",` + ts + `,"input_size":1e309}`, false},
		{`{"model":"m",` + ts + `,"scores":{"a":-1e-400,"b":1E0}}`, true},
		{`{"model":"m",` + ts + `,"scores":{"a":null}}`, false},
		{`{"model":"m",` + ts + `,"scores":[]}`, false},
		// Timestamps in every accepted form, and refused ones.
		{`{"model":"m","timestamp":"2026-03-04T10:00:01+02:00"}`, true},
		{`{"model":"m","timestamp":"2026-03-04T10:00:01.123456789-07:30"}`, true},
		{`{"model":"m","timestamp":1.7726184e12}`, true},
		{`{"model":"m","timestamp":-1.5}`, true},
		{`{"model":"m","timestamp":null}`, true},
		{`{"model":"m","timestamp":"2026-03-04T10:00:01\u005a"}`, true},
		{`{"model":"m","timestamp":true}`, false},
		{`{"model":"m","timestamp":1e16}`, false},
		// null for each field.
		{`{"event_id":null,"request_id":null,"model":"m","model_version":null,"deployment":null,` + ts +
			`,"features":null,"prediction":null,"scores":null,"latency_ms":null,"status":null,"input_size":null}`, true},
		{`{"model":null,` + ts + `}`, true},
		// Whitespace anywhere; trailing garbage; two values.
		{"\t\r\n{\n\"model\"\t:\r\"m\" ,\n" + ts + "\n,\"features\" :\n{ \"a\" :\t1 ,\"b\":\ttrue\n}\r}\n\t", true},
		{`{"model":"m",` + ts + `} {"model":"n"}`, false},
		{`{"model":"m",` + ts + `}]`, false},
		{`{"model":"m",` + ts, false},
		{`{"model":"m",` + ts + `,"features":{"a":1`, false},
		// Types encoding/json refuses (and keeps decoding after).
		{`{"model":"m",` + ts + `,"event_id":5}`, false},
		{`{"model":"m",` + ts + `,"input_size":"4"}`, false},
		{`{"model":"m",` + ts + `,"features":[{"name":"a","value":1}]}`, false},
		{`{"model":"m",` + ts + `,"features":"a"}`, false},
		{`{"model":"m",` + ts + `,"prediction":[1]}`, false},
		// Unknown fields nested deeper than the fast path goes.
		{`{"model":"m",` + ts + `,"x":` + deep + `}`, false},
		{`{"model":"m",` + ts + `,"x":` + deep[1:len(deep)-1] + `}`, true},
		// Keys: other cases, Unicode folding (the Kelvin sign folds to k), unknown ones.
		{`{"model":"m",` + ts + `,"Latency_MS":3}`, false},
		{`{"model":"m",` + ts + `,"statuſ":"ok"}`, false},
		{`{"model":"m",` + ts + `,"ſtatus_":"ok","":1,"latency":2}`, false},
		{`{"model":"m",` + ts + `,"latency":2,"":1,"model_":{}}`, true},
		// What validation refuses, after decoding.
		{`{"model":"m",` + ts + `,"deployment":"blue-ish"}`, true},
		{`{"model":"m",` + ts + `,"latency_ms":-1}`, true},
	}
}

// TestJSONFastPathMatchesEncodingJSON: the fast path takes the common records and gives
// encoding/json's event; on what it leaves (escapes, case, repeats, types, nesting), the
// result is encoding/json's, event and error alike.
func TestJSONFastPathMatchesEncodingJSON(t *testing.T) {
	prev := prevRecord(t)
	for _, c := range jsonFastCases(t) {
		if got := decodeBoth(t, prev, []byte(c.in)); got != c.fast {
			t.Errorf("%q: fast path took it: %t, want %t", c.in, got, c.fast)
		}
	}
}

// FuzzJSONFastMatchesStd: on any bytes, the fast path (with its fallback) and
// encoding/json give the same event or the same error.
func FuzzJSONFastMatchesStd(f *testing.F) {
	for _, e := range []*PredictionEvent{sampleEvent(), event20(3), event6(5)} {
		b, err := MarshalPredictionJSON(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range refusedAsInvalid(f) {
		f.Add(c.in)
	}
	for _, c := range jsonFastCases(f) {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"model":"m","timestamp":1,"features":{"a":"\\u0000"},"scores":{"x":1e3},"x":[{"y":[]}]}`))
	f.Add([]byte(`{"Model":"m","timestamp":"2026-03-04T10:00:01.25Z","input_size":null}`))
	prev := prevRecord(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, prev, b)
	})
}

// TestDuplicateFeature: names that share the bytes nameKey packs are still compared
// whole, on both sides of the 32-feature switch to sorting.
func TestDuplicateFeature(t *testing.T) {
	seq := func(n int, extra ...string) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("num_%02d", i))
		}
		return append(s, extra...)
	}
	for _, c := range []struct {
		name  string
		names []string
		dup   bool
		which string
	}{
		{"none", nil, false, ""},
		{"one", []string{"a"}, false, ""},
		{"empty and one byte", []string{"", "a", "b"}, false, ""},
		{"empty twice", []string{"", "a", ""}, true, ""},
		{"same key, other middle", []string{"abXcd", "abYcd", "ab"}, false, ""},
		{"same key, twice", []string{"abXcd", "abYcd", "abXcd"}, true, "abXcd"},
		{"one byte twice", []string{"a", "b", "a"}, true, "a"},
		{"20 distinct", seq(20), false, ""},
		{"32 distinct", seq(32), false, ""},
		{"last of 32 repeats the first", seq(31, "num_00"), true, "num_00"},
		{"33 distinct", seq(33), false, ""},
		{"33, one repeated", seq(32, "num_07"), true, "num_07"},
	} {
		var e PredictionEvent
		for _, n := range c.names {
			e.Features = append(e.Features, Feature{Name: n})
		}
		got, dup := e.duplicateFeature()
		if dup != c.dup || got != c.which {
			t.Errorf("%s: duplicateFeature() = %q, %t; want %q, %t", c.name, got, dup, c.which, c.dup)
		}
	}
}

// TestJSONFastPathRandomRecords composes records from fragments that each stress one
// rule (keys in other cases or escaped, fields twice, null for each field, values of the
// wrong type, escapes, bytes that are not UTF-8, numbers out of range, whitespace), so
// that their combinations are checked too, not only the mutations the fuzzer finds. The
// generator is seeded: the same records every run.
func TestJSONFastPathRandomRecords(t *testing.T) {
	keys := []string{"event_id", "request_id", "model", "model_version", "deployment", "timestamp", "features",
		"prediction", "scores", "latency_ms", "status", "input_size",
		"Model", "FEATURES", "x", "", `mod\u0065l`, "ſtatus", "latency", "input_sizE"}
	str := []string{`"m"`, `"primary"`, `"canary"`, `"ok"`, `"timeout"`, `null`, `"a\u00e9"`, `"\ud800"`, "\"\xff\"", `"é"`, `""`}
	pools := map[string][]string{
		"timestamp":  {`"2026-03-04T10:00:01.25Z"`, `1772618400000`, `null`, `"x"`, `1e16`, `-1.5`, `"2026-03-04T10:00:01+02:00"`, `"\u0032026-03-04T10:00:01Z"`},
		"features":   {`{"a":1,"b":"x","c":true,"d":null}`, `{}`, `null`, `{"a":1,"a":2}`, `{"\u0061":"\u00e9"}`, `{"a":[1]}`, `[]`, `{"a":01}`, `{ "a" : -0 , "b":false }`, "{\"\xff\":\"\xfe\"}"},
		"prediction": {`0.5`, `"yes"`, `true`, `null`, `{}`, `1e400`, `"\ud83d\ude00"`, `-0`},
		"scores":     {`{"a":1,"a":2}`, `{}`, `null`, `{"a":null}`, `{"b":1e-400}`, `[]`, `{"\u0062":2}`},
		"latency_ms": {`0`, `-0`, `1e400`, `1.5`, `"1"`, `null`, `1E-2`, `-1`},
		"input_size": {`0`, `1e308`, `1e309`, `null`, `4`, `true`},
		"x":          {`{"deep":[1,{"y":null}]}`, `[]`, `"s"`, `tru`, `1.`, `[1,]`},
	}
	pools["model"], pools["event_id"], pools["status"], pools["deployment"] = str, str, str, str
	var all []string
	for _, p := range pools {
		all = append(all, p...)
	}
	slices.Sort(all) // map order is random; the records must not be
	space := []string{"", "", "", " ", "\n\t", "\r\n "}
	rng := rand.New(rand.NewPCG(12, 34))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	prev := prevRecord(t)
	took := 0
	const n = 5000
	for range n {
		var b strings.Builder
		b.WriteString(pick(space) + "{")
		fields := []string{`"model":"m"`, `"timestamp":1772618400000`}[:rng.IntN(3)]
		for range rng.IntN(6) {
			k := pick(keys[:12])
			if rng.IntN(4) == 0 {
				k = pick(keys)
			}
			v, ok := pools[k]
			if !ok || rng.IntN(5) == 0 {
				v = all
			}
			fields = append(fields, pick(space)+`"`+k+`"`+pick(space)+":"+pick(space)+pick(v))
		}
		rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		b.WriteString(strings.Join(fields, pick(space)+","+pick(space)))
		b.WriteString(pick(space) + "}" + pick([]string{"", "", "", "", "", " ", "x", "}"}))
		if decodeBoth(t, prev, []byte(b.String())) {
			took++
		}
	}
	// The fast path must take a fair share, or this test would only test the fallback.
	if took < n/8 {
		t.Errorf("the fast path took %d of %d records", took, n)
	}
	t.Logf("the fast path took %d of %d records", took, n)
}

// TestJSONFastPathCopiesStrings: the consumer reuses a record's bytes for the next one, so
// no string of a decoded event may be a view of them.
func TestJSONFastPathCopiesStrings(t *testing.T) {
	sample, err := MarshalPredictionJSON(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		string(sample),
		`{"event_id":"ev-9","request_id":"rq-9","model":"new-model","model_version":"v9","deployment":"blue",` +
			`"timestamp":"2026-03-04T10:00:01Z","features":{"fresh":"value","caf\u00e9":"cr\u00e8me"},` +
			`"prediction":"label","scores":{"key":1},"status":"timeout"}`,
	} {
		b := []byte(in)
		var e PredictionEvent
		if !e.scanPrediction(b) {
			t.Fatalf("%s: the fast path did not take it", in)
		}
		if err := DecodePredictionJSON(b, &e); err != nil {
			t.Fatal(err)
		}
		want, _ := MarshalPredictionJSON(&e)
		for i := range b {
			b[i] = 'X'
		}
		if got, _ := MarshalPredictionJSON(&e); !bytes.Equal(got, want) {
			t.Errorf("the event changed with the record's bytes:\n%s\n%s", want, got)
		}
	}
}

// TestLatencyAbsentOrNullIsNotMeasured: a prediction without latency_ms, or with null,
// has no latency (NoLatency), on the fast path and through encoding/json alike; 0 is a
// latency. Marshalling leaves the field out again.
func TestLatencyAbsentOrNullIsNotMeasured(t *testing.T) {
	const head = `{"model":"m","timestamp":"2026-03-04T10:00:01Z"`
	for _, c := range []struct {
		in        string
		noLatency bool
		latency   float64
	}{
		{head + `}`, true, 0},
		{head + `,"latency_ms":null}`, true, 0},
		{head + `,"latency_ms":0}`, false, 0},
		{head + `,"latency_ms":12.5}`, false, 12.5},
		{head + `,"status":"error"}`, true, 0},
	} {
		for name, decode := range map[string]func([]byte, *PredictionEvent) error{"fast": DecodePredictionJSON, "encoding/json": decodePredictionJSONStd} {
			var e PredictionEvent
			if err := decode([]byte(c.in), &e); err != nil {
				t.Fatalf("%s %s: %v", name, c.in, err)
			}
			if e.NoLatency != c.noLatency || e.LatencyMs != c.latency {
				t.Errorf("%s %s: latency %v, no latency %t; want %v, %t", name, c.in, e.LatencyMs, e.NoLatency, c.latency, c.noLatency)
			}
			b, err := MarshalPredictionJSON(&e)
			if err != nil {
				t.Fatal(err)
			}
			if has := strings.Contains(string(b), `"latency_ms"`); has == c.noLatency {
				t.Errorf("%s %s: marshalled %s", name, c.in, b)
			}
		}
	}
}

// TestLookMask: the eight-byte test of plainString finds the first byte that is a
// quote, a backslash, a control character or not ASCII, wherever it sits among bytes
// that need no look, or among random ones, and finds none where there is none.
func TestLookMask(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	first := func(w []byte) int {
		m := lookMask(binary.LittleEndian.Uint64(w))
		if m == 0 {
			return -1
		}
		return bits.TrailingZeros64(m) / 8
	}
	for c := range 256 {
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			want := -1
			if special(byte(c)) {
				want = pos
			}
			if got := first(w); got != want {
				t.Fatalf("byte %#x at %d: first byte to look at %d, want %d", c, pos, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200_000 {
		var w [8]byte
		want := -1
		for i := range w {
			// Mostly bytes that need no look, so that words without any come up too.
			w[i] = byte(0x20 + rng.IntN(0x60))
			if rng.IntN(12) == 0 {
				w[i] = byte(rng.IntN(256))
			}
			if want < 0 && special(w[i]) {
				want = i
			}
		}
		if got := first(w[:]); got != want {
			t.Fatalf("%q: first byte to look at %d, want %d", w, got, want)
		}
	}
}

// TestPlainStringMatchesByteByByte: plainString's eight-byte steps find what reading one
// byte at a time finds, on random strings of plain bytes, quotes, backslashes, control
// bytes and UTF-8 (valid or cut), of every length around the eight-byte steps.
func TestPlainStringMatchesByteByByte(t *testing.T) {
	slow := func(b []byte) ([]byte, []byte, bool) {
		if len(b) == 0 || b[0] != '"' {
			return nil, b, false
		}
		for i := 1; i < len(b); i++ {
			switch c := b[i]; {
			case c == '"':
				if !utf8.Valid(b[1:i]) {
					return nil, b, false
				}
				return b[1:i], b[i+1:], true
			case c == '\\' || c < 0x20:
				return nil, b, false
			}
		}
		return nil, b, false
	}
	pieces := []string{"a", "b", "x", "-", " ", "é", "\xc3", "\xff", "\"", "\\", "\t", "\x00", "\x7f", "~", "😀"}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		var sb strings.Builder
		sb.WriteByte('"')
		for range rng.IntN(30) {
			p := pieces[rng.IntN(len(pieces))]
			if rng.IntN(3) > 0 {
				p = pieces[rng.IntN(4)] // mostly plain
			}
			sb.WriteString(p)
		}
		b := []byte(sb.String())
		gv, gr, gok := plainString(b)
		wv, wr, wok := slow(b)
		if gok != wok || !bytes.Equal(gv, wv) || !bytes.Equal(gr, wr) {
			t.Fatalf("%q: plainString = %q, %q, %t; byte by byte %q, %q, %t", b, gv, gr, gok, wv, wr, wok)
		}
	}
}

// TestInternGivesOneStringPerValue: intern returns a copy equal to its bytes, and the
// same string for the same bytes, whether the recent slot holds it, holds another string
// (many strings share each of the 256 slots here), or the string was first seen long ago.
func TestInternGivesOneStringPerValue(t *testing.T) {
	var e PredictionEvent
	var vals []string
	for i := range 3000 {
		vals = append(vals, fmt.Sprintf("model-%04d", i), fmt.Sprintf("c%d", i%97), strings.Repeat("x", i%40))
	}
	first := map[string]string{}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 50_000 {
		v := vals[rng.IntN(len(vals))]
		b := []byte(v)
		got := e.intern(b)
		if len(b) > 0 {
			b[0] ^= 0xff // the record's bytes are reused: the string must not be a view of them
		}
		if got != v {
			t.Fatalf("intern(%q) = %q", v, got)
		}
		if f, ok := first[v]; ok && v != "" && unsafe.StringData(f) != unsafe.StringData(got) {
			t.Fatalf("intern(%q) gave another copy than the first time", v)
		} else if !ok {
			first[v] = got
		}
	}
	if len(first) > maxInterned {
		t.Fatalf("%d strings, more than maxInterned: the test would not show sharing", len(first))
	}
}

// TestJSONFastPathEventsOutliveTheRecord: an event the fast path decoded is unchanged when
// the record's bytes are overwritten afterwards (the consumer reuses them), for records
// with long plain strings that the eight-byte scan ends at a quote.
func TestJSONFastPathEventsOutliveTheRecord(t *testing.T) {
	ins := [][]byte{}
	for _, c := range jsonFastCases(t) {
		ins = append(ins, []byte(c.in))
	}
	for _, e := range []*PredictionEvent{sampleEvent(), event20(3), event6(5)} {
		b, err := MarshalPredictionJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, b)
	}
	ins = append(ins, []byte(`{"event_id":"evt-0123456789abcdef","request_id":"req-0123456789abcdef","model":"fraud-scorer-eu-west-1","model_version":"2026.11.02-rc1","deployment":"primary-canary","timestamp":"2026-03-04T10:00:01.25Z","features":{"device_family_long":"android-tablet-xl","country_code_iso":"DE"},"prediction":0.25,"scores":{"fraud_probability":0.25},"status":"ok_and_long_status"}`))
	var fast PredictionEvent
	for _, in := range ins {
		rec := bytes.Clone(in)
		if err := DecodePredictionJSON(rec, &fast); err != nil {
			continue
		}
		for i := range rec {
			rec[i] = 'Z'
		}
		var std PredictionEvent
		if err := decodePredictionJSONStd(in, &std); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if d := eventDiff(&fast, &std); d != "" {
			t.Fatalf("%s: after the record was overwritten: %s", in, d)
		}
	}
}
