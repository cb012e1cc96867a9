package schemas

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The fast path of JSON predictions. encoding/json spent most of a prediction's decoding
// on the top-level object (validating the whole record first, then reflecting over the
// struct, allocating per field), and decoding was most of the pipeline's CPU; so the
// object is scanned here in one pass, by hand, because that is the hot path.
//
// It decodes only what it can decode exactly as encoding/json would, and hands every
// other record to the encoding/json path (decodePredictionJSONStd), which then decides
// and words the error: keys written with escapes, in another case or given twice,
// top-level strings with escapes or invalid UTF-8, values of an unexpected type, numbers
// out of range, a feature name given twice, nesting deeper than maxFastDepth, anything
// invalid. Features are decoded in the pass as featureList decodes them (escapes
// included, through the same scanString); a number prediction is read as jsonValue
// reads it; a timestamp that is not a plain string and any other prediction go through
// the very UnmarshalJSON methods encoding/json calls, once their bytes are known to be
// valid JSON. FuzzJSONFastMatchesStd and
// TestJSONFastPathRandomRecords hold the two paths to the same events and errors.
//
// Strings are copies, never views of the record, which the consumer reuses: interned
// (model, deployment, feature names, categories…), or event_id and request_id copied
// together in one allocation, the only one of a common record.

// The fields of a prediction, as bits of what the scan has seen.
const (
	fEventID = 1 << iota
	fRequestID
	fModel
	fModelVersion
	fDeployment
	fTimestamp
	fFeatures
	fPrediction
	fScores
	fLatency
	fStatus
	fInputSize
)

var predictionKeys = [...]string{"event_id", "request_id", "model", "model_version", "deployment",
	"timestamp", "features", "prediction", "scores", "latency_ms", "status", "input_size"}

// maxFastDepth bounds the nesting of unknown values the fast path skips; deeper records
// go to encoding/json (whose own limit is 10,000).
const maxFastDepth = 64

// keyBit returns the field a key names: its bit, 0 for a key encoding/json would not
// match to any field, or -1 for one it might match without regard to case (left to
// encoding/json).
func keyBit(k []byte) int {
	// A switch, not a loop over predictionKeys: the compiler searches it by length and
	// value, and this runs for every key of every record.
	switch string(k) {
	case "event_id":
		return fEventID
	case "request_id":
		return fRequestID
	case "model":
		return fModel
	case "model_version":
		return fModelVersion
	case "deployment":
		return fDeployment
	case "timestamp":
		return fTimestamp
	case "features":
		return fFeatures
	case "prediction":
		return fPrediction
	case "scores":
		return fScores
	case "latency_ms":
		return fLatency
	case "status":
		return fStatus
	case "input_size":
		return fInputSize
	}
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return -1 // Unicode case folding: 'ſ' matches 's', 'K' matches 'k'
		}
	}
	for _, name := range predictionKeys {
		if len(k) == len(name) && asciiEqualFold(k, name) {
			return -1
		}
	}
	return 0
}

func asciiEqualFold(a []byte, b string) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// scanPrediction decodes b into e (reset) and reports true, or reports false when
// encoding/json must decide (e is then in any state).
func (e *PredictionEvent) scanPrediction(b []byte) bool {
	s := skipSpace(b)
	if len(s) == 0 || s[0] != '{' {
		return false
	}
	s = skipSpace(s[1:])
	seen := 0
	var ids recordIDs
	e.NoLatency = true // until a number says otherwise
	if len(s) > 0 && s[0] == '}' {
		s = s[1:]
	} else {
		for {
			key, rest, ok := plainString(s)
			if !ok {
				return false
			}
			bit := keyBit(key)
			if bit < 0 || seen&bit != 0 {
				return false
			}
			seen |= bit
			rest = skipSpace(rest)
			if len(rest) == 0 || rest[0] != ':' {
				return false
			}
			rest = skipSpace(rest[1:])
			if rest, ok = e.scanField(bit, rest, &ids); !ok {
				return false
			}
			rest = skipSpace(rest)
			if len(rest) == 0 {
				return false
			}
			if rest[0] == '}' {
				s = rest[1:]
				break
			}
			if rest[0] != ',' {
				return false
			}
			s = skipSpace(rest[1:])
		}
	}
	if len(skipSpace(s)) != 0 {
		return false
	}
	e.EventID, e.RequestID = ids.strings()
	return true
}

// recordIDs holds event_id and request_id as views of the record until it is decoded:
// they differ in every record, so they cannot be interned, and they must be copied (the
// consumer reuses the record's bytes), but both fit in one allocation.
type recordIDs struct{ event, request []byte }

func (r *recordIDs) strings() (event, request string) {
	if len(r.event)+len(r.request) == 0 {
		return "", ""
	}
	var b strings.Builder // one allocation, which String does not copy
	b.Grow(len(r.event) + len(r.request))
	b.Write(r.event)
	b.Write(r.request)
	s := b.String()
	return s[:len(r.event)], s[len(r.event):]
}

// scanField decodes the value of one field at the start of b and returns what follows.
func (e *PredictionEvent) scanField(bit int, b []byte, ids *recordIDs) ([]byte, bool) {
	switch bit {
	case 0:
		return skipValue(b, 0)
	case fEventID, fRequestID, fModel, fModelVersion, fDeployment, fStatus:
		if rest, ok := literal(b, "null"); ok {
			return rest, true // encoding/json leaves the field as it is: empty
		}
		v, rest, ok := plainString(b)
		if !ok {
			return b, false
		}
		switch bit {
		case fEventID:
			ids.event = v
		case fRequestID:
			ids.request = v
		case fModel:
			e.Model = e.intern(v)
		case fModelVersion:
			e.ModelVersion = e.intern(v)
		case fDeployment:
			e.Deployment = e.intern(v)
		case fStatus:
			e.Status = e.intern(v)
		}
		return rest, true
	case fLatency, fInputSize:
		if rest, ok := literal(b, "null"); ok {
			return rest, true
		}
		f, rest, ok := readNumber(b)
		if !ok {
			return b, false
		}
		if bit == fLatency {
			e.LatencyMs, e.NoLatency = f, false
		} else {
			e.InputSize, e.HasInputSize = f, true
		}
		return rest, true
	case fScores:
		return e.scanScores(b)
	case fFeatures:
		return e.scanFeatures(b)
	}
	if bit == fPrediction && len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9') {
		// A number, the common prediction, read as jsonValue reads it (scanScalar).
		x, rest, ok := readNumber(b)
		if !ok {
			return b, false
		}
		e.Prediction = Value{Kind: Number, Num: x}
		return rest, true
	}
	if bit == fTimestamp {
		// The common form, a string without escapes, parsed as jsonTime parses it, without
		// its round trip through encoding/json.
		if v, rest, ok := plainString(b); ok {
			t, err := time.Parse(time.RFC3339Nano, unsafeString(v))
			if err != nil {
				return b, false
			}
			e.Timestamp = t.UTC()
			return rest, true
		}
	}
	// timestamp, prediction: the methods encoding/json calls, on the value's bytes once
	// they are known to be valid JSON.
	rest, ok := skipValue(b, 0)
	if !ok {
		return b, false
	}
	raw := b[:len(b)-len(rest)]
	switch bit {
	case fTimestamp:
		var t jsonTime
		if t.UnmarshalJSON(raw) != nil {
			return b, false
		}
		e.Timestamp = t.t
	case fPrediction:
		var v jsonValue
		if v.UnmarshalJSON(raw) != nil {
			return b, false
		}
		e.Prediction = v.v
	}
	return rest, true
}

// scanFeatures decodes "features" as featureList.UnmarshalJSON does, in the same pass
// that validates it: null, or an object of names and scalars (strings, numbers in
// range, true, false, null) with no name twice. Anything else (nesting, a name twice,
// invalid JSON) goes to encoding/json, which words the error.
//
// Names and string values are usually those of the record decoded into e before (the
// same model sends the same features in the same order), and that event's features are
// still in e.Features' backing array: comparing with the one at the same place costs
// less than interning through the map. Those strings are copies, never views of a
// record, so sharing them is as safe as interning.
func (e *PredictionEvent) scanFeatures(b []byte) ([]byte, bool) {
	if rest, ok := literal(b, "null"); ok {
		return rest, true
	}
	if len(b) == 0 || b[0] != '{' {
		return b, false
	}
	s := skipSpace(b[1:])
	if len(s) > 0 && s[0] == '}' {
		return s[1:], true
	}
	for {
		i := len(e.Features)
		var prev Feature
		if i < cap(e.Features) {
			prev = e.Features[:i+1][i]
		}
		var f Feature
		var rest []byte
		var ok bool
		if f.Name, rest, ok = e.featureString(s, prev.Name); !ok {
			return b, false
		}
		rest = skipSpace(rest)
		if len(rest) == 0 || rest[0] != ':' {
			return b, false
		}
		rest = skipSpace(rest[1:])
		if len(rest) == 0 {
			return b, false
		}
		switch c := rest[0]; {
		case c == '"':
			if prev.Value.Kind != String {
				prev.Value.Str = ""
			}
			f.Value.Kind = String
			if f.Value.Str, rest, ok = e.featureString(rest, prev.Value.Str); !ok {
				return b, false
			}
		case c == 't':
			if rest, ok = literal(rest, "true"); !ok {
				return b, false
			}
			f.Value = Value{Kind: Bool, Num: 1}
		case c == 'f':
			if rest, ok = literal(rest, "false"); !ok {
				return b, false
			}
			f.Value = Value{Kind: Bool}
		case c == 'n':
			if rest, ok = literal(rest, "null"); !ok {
				return b, false
			}
		default:
			x, r, ok := readNumber(rest)
			if !ok {
				return b, false
			}
			f.Value = Value{Kind: Number, Num: x}
			rest = r
		}
		e.Features = append(e.Features, f)
		rest = skipSpace(rest)
		if len(rest) == 0 {
			return b, false
		}
		if rest[0] == '}' {
			if _, dup := e.duplicateFeature(); dup {
				return b, false
			}
			return rest[1:], true
		}
		if rest[0] != ',' {
			return b, false
		}
		s = skipSpace(rest[1:])
	}
}

// featureString reads a feature name or string value at the start of b as featureList
// does (e.scanString: escapes decoded, other bytes kept as they are, interned), reusing
// prev when it is the same string.
func (e *PredictionEvent) featureString(b []byte, prev string) (string, []byte, bool) {
	if v, rest, ok := plainString(b); ok {
		if prev == string(v) { // the comparison does not allocate
			return prev, rest, true
		}
		return e.intern(v), rest, true
	}
	// Escapes, or bytes that are not UTF-8: valid JSON only if skipString says so, which
	// scanString does not check.
	if _, ok := skipString(b); !ok {
		return "", b, false
	}
	v, rest, err := e.scanString(b)
	return v, rest, err == nil
}

// scanScores decodes "scores": null, or an object of plain keys and numbers (a new map,
// as encoding/json makes; a key given twice keeps its last value, as there).
func (e *PredictionEvent) scanScores(b []byte) ([]byte, bool) {
	if rest, ok := literal(b, "null"); ok {
		return rest, true
	}
	if len(b) == 0 || b[0] != '{' {
		return b, false
	}
	m := map[string]float64{}
	s := skipSpace(b[1:])
	if len(s) > 0 && s[0] == '}' {
		e.Scores = m
		return s[1:], true
	}
	for {
		k, rest, ok := plainString(s)
		if !ok {
			return b, false
		}
		rest = skipSpace(rest)
		if len(rest) == 0 || rest[0] != ':' {
			return b, false
		}
		f, rest, ok := readNumber(skipSpace(rest[1:]))
		if !ok {
			return b, false
		}
		m[string(k)] = f
		rest = skipSpace(rest)
		if len(rest) == 0 {
			return b, false
		}
		if rest[0] == '}' {
			e.Scores = m
			return rest[1:], true
		}
		if rest[0] != ',' {
			return b, false
		}
		s = skipSpace(rest[1:])
	}
}

// plainString reads a string at the start of b that encoding/json would take byte for
// byte: no escapes, no control characters, valid UTF-8. It returns the bytes between
// the quotes.
func plainString(b []byte) ([]byte, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, b, false
	}
	i := 1
	// Eight bytes at a time (of the record: the string may end within them), to the
	// first one that needs a look: every key and most values of every record pass
	// through here, and most end at a quote found this way.
	for i+8 <= len(b) {
		m := lookMask(binary.LittleEndian.Uint64(b[i:]))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) / 8
		if b[i] == '"' { // every byte before it is plain ASCII
			return b[1:i], b[i+1:], true
		}
		break
	}
	ascii := true
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[1:i]) {
				return nil, b, false
			}
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, b, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, b, false
}

// lookMask has the high bit set of each of the eight bytes in x (the first in the
// lowest bits) that plainString must look at: a quote, a backslash, a control character
// or a byte of a multi-byte character. Bits above the lowest may be set for bytes that
// need no look, as the borrow of a zero byte runs into the next (Hacker's Delight, 6-1);
// the lowest is exact, and so is whether any is set.
func lookMask(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\') // zero bytes where x has one
	return x&highs | (x-ones*0x20)&^x&highs | (quote-ones)&^quote&highs | (backslash-ones)&^backslash&highs
}

func literal(b []byte, lit string) ([]byte, bool) {
	if len(b) >= len(lit) && string(b[:len(lit)]) == lit {
		return b[len(lit):], true
	}
	return b, false
}

// readNumber reads a number in JSON's grammar at the start of b and its value; false
// for anything else, or a number out of float64's range.
func readNumber(b []byte) (float64, []byte, bool) {
	n, rest, ok := scanNumber(b)
	if !ok {
		return 0, b, false
	}
	x, err := strconv.ParseFloat(unsafeString(n), 64)
	return x, rest, err == nil
}

// scanNumber reads a number in JSON's grammar at the start of b.
func scanNumber(b []byte) (num, rest []byte, ok bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, b, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, b, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, b, false
		}
	}
	return b[:i], b[i:], true
}

// skipValue validates the JSON value at the start of b and returns what follows it.
func skipValue(b []byte, depth int) ([]byte, bool) {
	if len(b) == 0 || depth > maxFastDepth {
		return b, false
	}
	switch c := b[0]; {
	case c == '"':
		return skipString(b)
	case c == '{':
		s := skipSpace(b[1:])
		if len(s) > 0 && s[0] == '}' {
			return s[1:], true
		}
		for {
			rest, ok := skipString(s)
			if !ok {
				return b, false
			}
			rest = skipSpace(rest)
			if len(rest) == 0 || rest[0] != ':' {
				return b, false
			}
			if rest, ok = skipValue(skipSpace(rest[1:]), depth+1); !ok {
				return b, false
			}
			rest = skipSpace(rest)
			if len(rest) == 0 {
				return b, false
			}
			if rest[0] == '}' {
				return rest[1:], true
			}
			if rest[0] != ',' {
				return b, false
			}
			s = skipSpace(rest[1:])
		}
	case c == '[':
		s := skipSpace(b[1:])
		if len(s) > 0 && s[0] == ']' {
			return s[1:], true
		}
		for {
			rest, ok := skipValue(s, depth+1)
			if !ok {
				return b, false
			}
			rest = skipSpace(rest)
			if len(rest) == 0 {
				return b, false
			}
			if rest[0] == ']' {
				return rest[1:], true
			}
			if rest[0] != ',' {
				return b, false
			}
			s = skipSpace(rest[1:])
		}
	case c == 't':
		return literal(b, "true")
	case c == 'f':
		return literal(b, "false")
	case c == 'n':
		return literal(b, "null")
	}
	_, rest, ok := scanNumber(b)
	return rest, ok
}

// skipString validates a JSON string at the start of b (escapes included; bytes that are
// not UTF-8 are valid JSON, which encoding/json replaces) and returns what follows it.
func skipString(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return b, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[i+1:], true
		case c < 0x20:
			return b, false
		case c == '\\':
			i++
			if i >= len(b) {
				return b, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return b, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return b, false
					}
				}
				i += 4
			default:
				return b, false
			}
		}
	}
	return b, false
}
