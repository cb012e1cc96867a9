package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unsafe"
)

type jsonTime struct{ t time.Time }

func (j *jsonTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither RFC 3339 nor epoch milliseconds", s)
		}
		j.t = t.UTC()
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > 1e15 {
		return fmt.Errorf("timestamp %s is neither RFC 3339 nor epoch milliseconds", b)
	}
	j.t = epochMillis(int64(ms))
	return nil
}

type jsonValue struct{ v Value }

func (j *jsonValue) UnmarshalJSON(b []byte) error {
	v, rest, err := (*PredictionEvent)(nil).scanScalar(b)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return fmt.Errorf("unexpected %q after value", rest)
	}
	j.v = v
	return nil
}

// featureList decodes the "features" object straight into a reused slice. It is the hot
// path of every prediction: encoding/json into map[string]any costs one map, one interface
// and one string per feature per event, so the flat object of scalars is scanned here.
type featureList struct {
	e *PredictionEvent
	// seen: a "features" key came already. encoding/json calls UnmarshalJSON once per
	// key, and matches keys without regard to case, so {"features":…,"Features":…} would
	// count both objects' values for one event.
	seen bool
}

func (f *featureList) UnmarshalJSON(b []byte) error {
	if f.seen {
		return invalid("features given twice")
	}
	f.seen = true
	if err := f.scan(b); err != nil {
		return err
	}
	// A name given twice would count two values for one event; Avro refuses it too.
	if name, dup := f.e.duplicateFeature(); dup {
		return invalid("feature %q given twice", name)
	}
	return nil
}

func (f *featureList) scan(b []byte) error {
	b = skipSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("features must be an object")
	}
	b = skipSpace(b[1:])
	if len(b) > 0 && b[0] == '}' {
		return nil
	}
	for {
		name, rest, err := f.e.scanString(b)
		if err != nil {
			return fmt.Errorf("feature name: %w", err)
		}
		rest = skipSpace(rest)
		if len(rest) == 0 || rest[0] != ':' {
			return fmt.Errorf("feature %q: expected ':'", name)
		}
		v, rest, err := f.e.scanScalar(skipSpace(rest[1:]))
		if err != nil {
			return fmt.Errorf("feature %q: %w", name, err)
		}
		f.e.Features = append(f.e.Features, Feature{Name: name, Value: v})
		rest = skipSpace(rest)
		if len(rest) == 0 {
			return fmt.Errorf("features: unexpected end")
		}
		switch rest[0] {
		case ',':
			b = skipSpace(rest[1:])
		case '}':
			return nil
		default:
			return fmt.Errorf("features: unexpected %q", rest[0])
		}
	}
}

// duplicateFeature returns a feature name that e has twice. Events have tens of features:
// comparing each with the ones before costs less than sorting or hashing them, and
// comparing a few bytes of each first (nameKey) leaves few names to compare whole (names
// such as num_00 … num_13 share length and prefix); beyond that, the names are sorted in
// a reused slice, so a record of many features costs n log n, not n².
func (e *PredictionEvent) duplicateFeature() (string, bool) {
	f := e.Features
	if len(f) <= 32 {
		var keys [32]uint32
		for i := range f {
			k := nameKey(f[i].Name)
			for j, kj := range keys[:i] {
				if kj == k && f[i].Name == f[j].Name {
					return f[i].Name, true
				}
			}
			keys[i] = k
		}
		return "", false
	}
	names := e.names[:0]
	for _, x := range f {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	e.names = names
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return names[i], true
		}
	}
	return "", false
}

// nameKey packs a name's length, first and last two bytes: names that differ there differ.
func nameKey(s string) uint32 {
	n := len(s)
	switch n {
	case 0:
		return 0
	case 1:
		return 1<<24 | uint32(s[0])
	}
	return uint32(n)<<24 | uint32(s[0])<<16 | uint32(s[n-2])<<8 | uint32(s[n-1])
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// scanString reads a JSON string at the start of b; e, if not nil, interns it.
func (e *PredictionEvent) scanString(b []byte) (string, []byte, error) {
	if len(b) == 0 || b[0] != '"' {
		return "", b, fmt.Errorf("expected a string")
	}
	escaped := false
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			return "", b, fmt.Errorf("control character in string")
		case c == '"':
			if !escaped {
				if e != nil {
					return e.intern(b[1:i]), b[i+1:], nil
				}
				return string(b[1:i]), b[i+1:], nil
			}
			var s string
			if err := json.Unmarshal(b[:i+1], &s); err != nil {
				return "", b, err
			}
			return s, b[i+1:], nil
		}
	}
	return "", b, fmt.Errorf("unterminated string")
}

// scanScalar reads a number, string, boolean or null at the start of b.
func (e *PredictionEvent) scanScalar(b []byte) (Value, []byte, error) {
	if len(b) == 0 {
		return Value{}, b, fmt.Errorf("missing value")
	}
	switch c := b[0]; {
	case c == '"':
		s, rest, err := e.scanString(b)
		return Value{Kind: String, Str: s}, rest, err
	case c == 'n' && bytes.HasPrefix(b, []byte("null")):
		return Value{}, b[4:], nil
	case c == 't' && bytes.HasPrefix(b, []byte("true")):
		return Value{Kind: Bool, Num: 1}, b[4:], nil
	case c == 'f' && bytes.HasPrefix(b, []byte("false")):
		return Value{Kind: Bool}, b[5:], nil
	case c == '-' || (c >= '0' && c <= '9'):
		i := 1
		for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '.' || b[i] == 'e' || b[i] == 'E' || b[i] == '+' || b[i] == '-') {
			i++
		}
		f, err := strconv.ParseFloat(unsafeString(b[:i]), 64)
		if err != nil {
			return Value{}, b, fmt.Errorf("bad number %q", b[:i])
		}
		return Value{Kind: Number, Num: f}, b[i:], nil
	case c == '{' || c == '[':
		return Value{}, b, fmt.Errorf("nested objects and arrays are not supported; send scalars")
	}
	return Value{}, b, fmt.Errorf("unexpected %q", b[0])
}

type jsonPrediction struct {
	EventID      string             `json:"event_id"`
	RequestID    string             `json:"request_id"`
	Model        string             `json:"model"`
	ModelVersion string             `json:"model_version"`
	Deployment   string             `json:"deployment"`
	Timestamp    jsonTime           `json:"timestamp"`
	Features     featureList        `json:"features"`
	Prediction   jsonValue          `json:"prediction"`
	Scores       map[string]float64 `json:"scores"`
	LatencyMs    *float64           `json:"latency_ms"`
	Status       string             `json:"status"`
	InputSize    *float64           `json:"input_size"`
}

// DecodePredictionJSON decodes one JSON prediction into e, reusing e's memory: in one
// pass (jsonfast.go) when the record allows it, else through encoding/json.
func DecodePredictionJSON(b []byte, e *PredictionEvent) error {
	e.Reset()
	if !e.scanPrediction(b) {
		return decodePredictionJSONStd(b, e)
	}
	if err := e.validate(); err != nil {
		return fmt.Errorf("decode JSON prediction %s: %w", e.EventID, err)
	}
	return nil
}

// decodePredictionJSONStd decodes one JSON prediction through encoding/json: the
// reference the fast path is held to, and the path of every record it leaves.
func decodePredictionJSONStd(b []byte, e *PredictionEvent) error {
	e.Reset()
	j := jsonPrediction{Features: featureList{e: e}}
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode JSON prediction: %w", err)
	}
	e.EventID, e.RequestID, e.Model, e.ModelVersion = j.EventID, j.RequestID, j.Model, j.ModelVersion
	e.Deployment, e.Timestamp, e.Prediction, e.Scores = j.Deployment, j.Timestamp.t, j.Prediction.v, j.Scores
	e.Status = j.Status
	if j.LatencyMs != nil {
		e.LatencyMs = *j.LatencyMs
	} else {
		e.NoLatency = true
	}
	if j.InputSize != nil {
		e.InputSize, e.HasInputSize = *j.InputSize, true
	}
	if err := e.validate(); err != nil {
		return fmt.Errorf("decode JSON prediction %s: %w", e.EventID, err)
	}
	return nil
}

type jsonLabel struct {
	EventID   string    `json:"event_id"`
	RequestID string    `json:"request_id"`
	Model     string    `json:"model"`
	Timestamp jsonTime  `json:"timestamp"`
	Label     jsonValue `json:"label"`
	Outcome   string    `json:"outcome"`
}

// DecodeLabelJSON decodes one JSON label event.
func DecodeLabelJSON(b []byte, e *LabelEvent) error {
	var j jsonLabel
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode JSON label: %w", err)
	}
	*e = LabelEvent{EventID: j.EventID, RequestID: j.RequestID, Model: j.Model, Timestamp: j.Timestamp.t, Label: j.Label.v, Outcome: j.Outcome}
	return e.validate()
}

type jsonPipeline struct {
	EventID    string   `json:"event_id"`
	Pipeline   string   `json:"pipeline"`
	Stage      string   `json:"stage"`
	RunID      string   `json:"run_id"`
	Status     string   `json:"status"`
	Timestamp  jsonTime `json:"timestamp"`
	DurationMs *float64 `json:"duration_ms"`
	RecordsIn  *int64   `json:"records_in"`
	RecordsOut *int64   `json:"records_out"`
	NullCount  *int64   `json:"null_count"`
	Error      string   `json:"error"`
	Models     []string `json:"models"`
}

// DecodePipelineJSON decodes one JSON pipeline event.
func DecodePipelineJSON(b []byte, e *PipelineEvent) error {
	var j jsonPipeline
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode JSON pipeline event: %w", err)
	}
	*e = PipelineEvent{EventID: j.EventID, Pipeline: j.Pipeline, Stage: j.Stage, RunID: j.RunID, Status: StageStatus(j.Status),
		Timestamp: j.Timestamp.t, Error: j.Error, Models: j.Models,
		NoDuration: j.DurationMs == nil, NoRecordsIn: j.RecordsIn == nil, NoRecordsOut: j.RecordsOut == nil}
	if j.DurationMs != nil {
		e.DurationMs = *j.DurationMs
	}
	if j.RecordsIn != nil {
		e.RecordsIn = *j.RecordsIn
	}
	if j.RecordsOut != nil {
		e.RecordsOut = *j.RecordsOut
	}
	if j.NullCount != nil {
		e.NullCount, e.HasNullCount = *j.NullCount, true
	}
	return e.validate()
}

func (e *LabelEvent) validate() error {
	switch {
	case e.Model == "":
		return fmt.Errorf("decode label %s: %w", e.EventID, invalid("model is empty"))
	case e.RequestID == "":
		return fmt.Errorf("decode label %s: %w", e.EventID, invalid("request_id is empty"))
	case checkTime(e.Timestamp) != nil:
		return fmt.Errorf("decode label %s: %w", e.EventID, checkTime(e.Timestamp))
	case e.Label.Kind == Number && !finite(e.Label.Num):
		return fmt.Errorf("decode label %s: %w", e.EventID, invalid("label is not finite"))
	}
	return nil
}

// checkStatus is the status check of validate: a value outside the contract is invalid
// (dead-lettered), not a decoding failure.
func (e *PipelineEvent) checkStatus() error {
	if _, err := ParseStageStatus(string(e.Status)); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// Bounds of a run's numbers: beyond them a value is not a measurement (a run of more
// than ~116 days, a trillion records), and one such value would blind a stage's baselines
// for a week.
const (
	MaxRunDurationMs = 1e10
	MaxRunRecords    = 1e12
)

func (e *PipelineEvent) validate() error {
	// A negative duration or count is how some producers say "unknown": not measured,
	// as a field not sent, rather than the run dead-lettered (its status still counts).
	if e.DurationMs < 0 {
		e.DurationMs, e.NoDuration = 0, true
	}
	if e.RecordsIn < 0 {
		e.RecordsIn, e.NoRecordsIn = 0, true
	}
	if e.RecordsOut < 0 {
		e.RecordsOut, e.NoRecordsOut = 0, true
	}
	if e.NullCount < 0 {
		e.NullCount, e.HasNullCount = 0, false
	}
	switch {
	case e.DurationMs > MaxRunDurationMs:
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("duration_ms %g is beyond %g", e.DurationMs, float64(MaxRunDurationMs)))
	case e.RecordsIn > MaxRunRecords || e.RecordsOut > MaxRunRecords || e.NullCount > MaxRunRecords:
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("records_in %d, records_out %d or null_count %d is beyond %g",
			e.RecordsIn, e.RecordsOut, e.NullCount, float64(MaxRunRecords)))
	}
	switch {
	case e.Pipeline == "" || e.Stage == "":
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("pipeline and stage are required"))
	case checkTime(e.Timestamp) != nil:
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, checkTime(e.Timestamp))
	case e.checkStatus() != nil:
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, e.checkStatus())
	case !finite(e.DurationMs):
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("duration_ms is not finite"))
	case len(e.Models) > MaxPipelineModels:
		return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("models lists %d models, more than %d", len(e.Models), MaxPipelineModels))
	}
	for _, m := range e.Models {
		if len(m) > MaxNameBytes {
			return fmt.Errorf("decode pipeline event %s: %w", e.EventID, invalid("a model name in models is %d bytes, more than %d", len(m), MaxNameBytes))
		}
	}
	return nil
}

// A pipeline event's models list is kept (as the stages feeding each model): bounded, so
// that a few large records cannot hold hundreds of megabytes (issue: ten 650 KB records
// left 232 MiB live).
const (
	MaxPipelineModels = 100
	MaxNameBytes      = 256
)

// MarshalPredictionJSON encodes e as the contract's JSON (the simulator and tests use it).
func MarshalPredictionJSON(e *PredictionEvent) ([]byte, error) {
	feats := make(map[string]any, len(e.Features))
	for _, f := range e.Features {
		feats[f.Name] = f.Value.native()
	}
	m := map[string]any{
		"event_id": e.EventID, "request_id": e.RequestID, "model": e.Model, "model_version": e.ModelVersion,
		"deployment": e.Deployment, "timestamp": e.Timestamp.UTC().Format(time.RFC3339Nano), "features": feats,
		"prediction": e.Prediction.native(), "status": e.Status,
	}
	if !e.NoLatency {
		m["latency_ms"] = e.LatencyMs
	}
	if e.Scores != nil {
		m["scores"] = e.Scores
	}
	if e.HasInputSize {
		m["input_size"] = e.InputSize
	}
	return json.Marshal(m)
}

func (v Value) native() any {
	switch v.Kind {
	case Number:
		return v.Num
	case String:
		return v.Str
	case Bool:
		return v.Num != 0
	}
	return nil
}

// unsafeString views b as a string for a call that does not keep it (ParseFloat).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// MarshalLabelJSON encodes a label event as the contract's JSON.
func MarshalLabelJSON(e *LabelEvent) ([]byte, error) {
	m := map[string]any{"event_id": e.EventID, "request_id": e.RequestID, "model": e.Model,
		"timestamp": e.Timestamp.UTC().Format(time.RFC3339Nano), "label": e.Label.native()}
	if e.Outcome != "" {
		m["outcome"] = e.Outcome
	}
	return json.Marshal(m)
}

// MarshalPipelineJSON encodes a pipeline event as the contract's JSON.
func MarshalPipelineJSON(e *PipelineEvent) ([]byte, error) {
	m := map[string]any{"event_id": e.EventID, "pipeline": e.Pipeline, "stage": e.Stage, "run_id": e.RunID,
		"status": e.Status, "timestamp": e.Timestamp.UTC().Format(time.RFC3339Nano), "models": e.Models}
	if !e.NoDuration {
		m["duration_ms"] = e.DurationMs
	}
	if !e.NoRecordsIn {
		m["records_in"] = e.RecordsIn
	}
	if !e.NoRecordsOut {
		m["records_out"] = e.RecordsOut
	}
	if e.HasNullCount {
		m["null_count"] = e.NullCount
	}
	if e.Error != "" {
		m["error"] = e.Error
	}
	return json.Marshal(m)
}
