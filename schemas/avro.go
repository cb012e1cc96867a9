package schemas

import (
	"context"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
)

//go:embed avro/*.avsc
var bundled embed.FS

// goavro sizes maps and arrays by the block count a record claims, up to MaxInt32 by
// default: a few hostile bytes could make it allocate gigabytes (found by
// FuzzDecodePrediction). These are goavro's own process-wide limits; driftd sets them once
// to what a valid event can need (a record is at most 16 MiB, a feature map far below
// 65,536 entries).
func init() {
	goavro.MaxBlockCount = 1 << 16
	goavro.MaxBlockSize = 16 << 20
}

// Bundled schema names, as in avro/<name>.avsc.
const (
	SchemaPrediction = "prediction"
	SchemaLabel      = "label"
	SchemaPipeline   = "pipeline"
	SchemaAlert      = "alert"
)

// BundledSchema returns the text of a bundled Avro schema.
func BundledSchema(name string) (string, error) {
	b, err := bundled.ReadFile("avro/" + name + ".avsc")
	if err != nil {
		return "", fmt.Errorf("bundled schema %q: %w", name, err)
	}
	return string(b), nil
}

// ErrRegistryUnavailable marks a schema lookup that failed for a reason that may pass
// (network, 5xx). The record is fine; the caller retries instead of dead-lettering it.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

// Registry resolves Confluent schema ids to codecs: from a Schema Registry (looked up
// once per id, then cached) and from bundled schemas pinned to ids in config.
type Registry struct {
	url    string
	client *http.Client

	mu     sync.Mutex
	codecs map[uint32]*goavro.Codec
	// bundledPrediction marks the ids whose schema is the bundled prediction schema
	// (same canonical form): those are decoded by decodePredictionBinary.
	bundledPrediction map[uint32]bool
	predictionForm    string
}

// NewRegistry returns a registry. url may be empty (bundled schemas only); pinned maps a
// schema id to a bundled schema name.
func NewRegistry(url string, pinned map[uint32]string, client *http.Client) (*Registry, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	r := &Registry{url: url, client: client, codecs: map[uint32]*goavro.Codec{}, bundledPrediction: map[uint32]bool{}}
	text, err := BundledSchema(SchemaPrediction)
	if err != nil {
		return nil, err
	}
	pc, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("compile bundled schema %s: %w", SchemaPrediction, err)
	}
	r.predictionForm = pc.CanonicalSchema()
	ids := make([]uint32, 0, len(pinned))
	for id := range pinned {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		text, err := BundledSchema(pinned[id])
		if err != nil {
			return nil, err
		}
		c, err := goavro.NewCodec(text)
		if err != nil {
			return nil, fmt.Errorf("compile bundled schema %s: %w", pinned[id], err)
		}
		r.add(id, c)
	}
	return r, nil
}

// add caches the codec of id; the caller holds mu or owns r.
func (r *Registry) add(id uint32, c *goavro.Codec) {
	r.codecs[id] = c
	r.bundledPrediction[id] = c.CanonicalSchema() == r.predictionForm
}

// Codec returns the codec for a schema id.
func (r *Registry) Codec(ctx context.Context, id uint32) (*goavro.Codec, error) {
	r.mu.Lock()
	c, ok := r.codecs[id]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	if r.url == "" {
		return nil, fmt.Errorf("unknown schema id %d: no schema registry configured and no bundled schema pinned to it", id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/schemas/ids/"+strconv.FormatUint(uint64(id), 10), nil)
	if err != nil {
		return nil, fmt.Errorf("look up schema id %d: %w", id, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("look up schema id %d: %w: %v", id, ErrRegistryUnavailable, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("unknown schema id %d: the registry does not have it", id)
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("look up schema id %d: %w: HTTP %d", id, ErrRegistryUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("look up schema id %d: HTTP %d: %s", id, resp.StatusCode, body)
	}
	var doc struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("look up schema id %d: %w", id, err)
	}
	c, err = goavro.NewCodec(doc.Schema)
	if err != nil {
		return nil, fmt.Errorf("compile schema id %d: %w", id, err)
	}
	r.mu.Lock()
	r.add(id, c)
	r.mu.Unlock()
	return c, nil
}

// splitConfluent splits a Confluent wire-format record into schema id and Avro body.
func splitConfluent(b []byte) (uint32, []byte, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, errors.New("not Confluent wire format (magic byte 0 and a 4-byte schema id)")
	}
	return binary.BigEndian.Uint32(b[1:5]), b[5:], nil
}

// AppendConfluent frames an Avro body in the Confluent wire format.
func AppendConfluent(dst []byte, id uint32, body []byte) []byte {
	dst = append(dst, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], id)
	return append(dst, body...)
}

func (r *Registry) native(ctx context.Context, b []byte) (map[string]any, error) {
	id, body, err := splitConfluent(b)
	if err != nil {
		return nil, err
	}
	codec, err := r.Codec(ctx, id)
	if err != nil {
		return nil, err
	}
	v, rest, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("schema id %d: %d trailing bytes after the record", id, len(rest))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema id %d: not a record", id)
	}
	return m, nil
}

// DecodePredictionAvro decodes one Confluent-framed Avro prediction into e.
func (r *Registry) DecodePredictionAvro(ctx context.Context, b []byte, e *PredictionEvent) error {
	if id, body, err := splitConfluent(b); err == nil {
		if _, err := r.Codec(ctx, id); err != nil {
			return fmt.Errorf("decode Avro prediction: %w", err)
		}
		r.mu.Lock()
		fast := r.bundledPrediction[id]
		r.mu.Unlock()
		if fast {
			if err := decodePredictionBinary(body, e); err != nil {
				return fmt.Errorf("decode Avro prediction: schema id %d: %w", id, err)
			}
			if err := e.validate(); err != nil {
				return fmt.Errorf("decode Avro prediction %s: %w", e.EventID, err)
			}
			return nil
		}
	}
	return r.decodePredictionGeneric(ctx, b, e)
}

// decodePredictionGeneric decodes through goavro's generic values: any writer schema
// with the contract's field names.
func (r *Registry) decodePredictionGeneric(ctx context.Context, b []byte, e *PredictionEvent) error {
	m, err := r.native(ctx, b)
	if err != nil {
		return fmt.Errorf("decode Avro prediction: %w", err)
	}
	e.Reset()
	e.EventID, e.RequestID = avroString(m["event_id"]), avroString(m["request_id"])
	e.Model, e.ModelVersion, e.Deployment = avroString(m["model"]), avroString(m["model_version"]), avroString(m["deployment"])
	e.Timestamp = avroTime(m["timestamp"])
	if feats, ok := m["features"].(map[string]any); ok {
		names := make([]string, 0, len(feats))
		for k := range feats {
			names = append(names, k)
		}
		sort.Strings(names) // Avro maps have no order; make it deterministic.
		for _, k := range names {
			e.Features = append(e.Features, Feature{Name: k, Value: avroValue(feats[k])})
		}
	}
	e.Prediction = avroValue(m["prediction"])
	if s, ok := unwrapUnion(m["scores"]).(map[string]any); ok {
		e.Scores = make(map[string]float64, len(s))
		for k, v := range s {
			f, _ := v.(float64)
			e.Scores[k] = f
		}
	}
	// A writer schema other than the bundled one may make latency_ms optional (a union
	// with null, or no such field) or a float: a latency not sent is not measured.
	if v := avroValue(m["latency_ms"]); v.Kind == Number {
		e.LatencyMs = v.Num
	} else {
		e.NoLatency = true
	}
	e.Status = avroString(m["status"])
	if v := avroValue(m["input_size"]); v.Kind == Number {
		e.InputSize, e.HasInputSize = v.Num, true
	}
	if err := e.validate(); err != nil {
		return fmt.Errorf("decode Avro prediction %s: %w", e.EventID, err)
	}
	return nil
}

// DecodePipelineAvro decodes one Confluent-framed Avro pipeline event into e.
func (r *Registry) DecodePipelineAvro(ctx context.Context, b []byte, e *PipelineEvent) error {
	m, err := r.native(ctx, b)
	if err != nil {
		return fmt.Errorf("decode Avro pipeline event: %w", err)
	}
	*e = PipelineEvent{EventID: avroString(m["event_id"]), Pipeline: avroString(m["pipeline"]), Stage: avroString(m["stage"]),
		RunID: avroString(m["run_id"]), Status: StageStatus(avroString(m["status"])), Timestamp: avroTime(m["timestamp"]),
		Error: avroString(m["error"])}
	// A writer schema other than the bundled one may make these optional (a union with
	// null, or no such field) or of another numeric type: a field not sent is not
	// measured (0 ms, or 0 records, would be a value).
	if v := avroValue(m["duration_ms"]); v.Kind == Number {
		e.DurationMs = v.Num
	} else {
		e.NoDuration = true
	}
	var has bool
	e.RecordsIn, has = avroCount(m["records_in"])
	e.NoRecordsIn = !has
	e.RecordsOut, has = avroCount(m["records_out"])
	e.NoRecordsOut = !has
	e.NullCount, e.HasNullCount = avroCount(m["null_count"])
	if models, ok := m["models"].([]any); ok {
		for _, x := range models {
			if s, ok := x.(string); ok {
				e.Models = append(e.Models, s)
			}
		}
	}
	return e.validate()
}

// DecodeLabelAvro decodes one Confluent-framed Avro label event into e.
func (r *Registry) DecodeLabelAvro(ctx context.Context, b []byte, e *LabelEvent) error {
	m, err := r.native(ctx, b)
	if err != nil {
		return fmt.Errorf("decode Avro label: %w", err)
	}
	*e = LabelEvent{EventID: avroString(m["event_id"]), RequestID: avroString(m["request_id"]), Model: avroString(m["model"]),
		Timestamp: avroTime(m["timestamp"]), Label: avroValue(m["label"]), Outcome: avroString(unwrapUnion(m["outcome"]))}
	return e.validate()
}

// EncodeLabelAvro encodes e with the bundled label schema, framed for schema id.
func EncodeLabelAvro(codec *goavro.Codec, id uint32, e *LabelEvent) ([]byte, error) {
	var outcome any
	if e.Outcome != "" {
		outcome = goavro.Union("string", e.Outcome)
	}
	label := e.Label
	if label.Kind == Bool { // the schema's label is null, double or string
		label.Kind = Number
	}
	m := map[string]any{"event_id": e.EventID, "request_id": e.RequestID, "model": e.Model, "timestamp": e.Timestamp,
		"label": avroUnion(label), "outcome": outcome}
	body, err := codec.BinaryFromNative(nil, m)
	if err != nil {
		return nil, fmt.Errorf("encode label %s: %w", e.EventID, err)
	}
	return AppendConfluent(nil, id, body), nil
}

// EncodePredictionAvro encodes e with the bundled schema, framed for schema id. Its
// latency_ms is a double, so an event without a latency (NoLatency) is sent as 0 ms.
func EncodePredictionAvro(codec *goavro.Codec, id uint32, e *PredictionEvent) ([]byte, error) {
	feats := make(map[string]any, len(e.Features))
	for _, f := range e.Features {
		feats[f.Name] = avroUnion(f.Value)
	}
	m := map[string]any{
		"event_id": e.EventID, "request_id": e.RequestID, "model": e.Model, "model_version": e.ModelVersion,
		"deployment": e.Deployment, "timestamp": e.Timestamp, "features": feats, "prediction": avroUnion(e.Prediction),
		"scores": nil, "latency_ms": e.LatencyMs, "status": e.Status, "input_size": nil,
	}
	if e.Scores != nil {
		s := make(map[string]any, len(e.Scores))
		for k, v := range e.Scores {
			s[k] = v
		}
		m["scores"] = goavro.Union("map", s)
	}
	if e.HasInputSize {
		m["input_size"] = goavro.Union("double", e.InputSize)
	}
	body, err := codec.BinaryFromNative(nil, m)
	if err != nil {
		return nil, fmt.Errorf("encode Avro prediction %s: %w", e.EventID, err)
	}
	return AppendConfluent(nil, id, body), nil
}

// EncodeAlertAvro encodes an alert with the bundled alert schema, framed for schema id.
func EncodeAlertAvro(codec *goavro.Codec, id uint32, a *AlertEvent) ([]byte, error) {
	details := make(map[string]any, len(a.Details))
	for k, v := range a.Details {
		details[k] = v
	}
	m := map[string]any{
		"alert_id": a.AlertID, "fingerprint": a.Fingerprint, "state": a.State, "severity": a.Severity, "kind": a.Kind,
		"model": a.Model, "model_version": a.ModelVersion, "deployment": a.Deployment, "feature": a.Feature,
		"pipeline": a.Pipeline, "stage": a.Stage, "metric": a.Metric, "value": a.Value, "threshold": a.Threshold,
		"window_start": a.WindowStart, "window_end": a.WindowEnd, "emitted_at": a.EmittedAt, "summary": a.Summary,
		"details": details,
	}
	body, err := codec.BinaryFromNative(nil, m)
	if err != nil {
		return nil, fmt.Errorf("encode Avro alert %s: %w", a.AlertID, err)
	}
	return AppendConfluent(nil, id, body), nil
}

func avroUnion(v Value) any {
	switch v.Kind {
	case Number:
		return goavro.Union("double", v.Num)
	case String:
		return goavro.Union("string", v.Str)
	case Bool:
		return goavro.Union("boolean", v.Num != 0)
	}
	return nil
}

func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			switch k {
			case "double", "string", "boolean", "long", "int", "float", "map":
				return inner
			}
		}
	}
	return v
}

// avroCount reads a count written as any Avro number (false: null or not written).
func avroCount(v any) (int64, bool) {
	switch x := unwrapUnion(v).(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case float64:
		if math.Abs(x) < 1<<62 { // NaN and beyond int64 are not counts
			return int64(x), true
		}
	case float32:
		if math.Abs(float64(x)) < 1<<62 {
			return int64(x), true
		}
	}
	return 0, false
}

func avroValue(v any) Value {
	switch x := unwrapUnion(v).(type) {
	case float64:
		return Value{Kind: Number, Num: x}
	case float32:
		return Value{Kind: Number, Num: float64(x)}
	case int64:
		return Value{Kind: Number, Num: float64(x)}
	case int32:
		return Value{Kind: Number, Num: float64(x)}
	case string:
		return Value{Kind: String, Str: x}
	case bool:
		if x {
			return Value{Kind: Bool, Num: 1}
		}
		return Value{Kind: Bool}
	}
	return Value{}
}

func avroString(v any) string {
	s, _ := unwrapUnion(v).(string)
	return s
}

func avroTime(v any) time.Time {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case int64:
		return epochMillis(x)
	}
	return time.Time{}
}
