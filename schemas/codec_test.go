package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

func sampleEvent() *PredictionEvent {
	return &PredictionEvent{
		EventID: "e1", RequestID: "r1", Model: "fraud-scorer", ModelVersion: "3.2.0", Deployment: "canary",
		Timestamp: time.Date(2026, 3, 4, 10, 0, 1, 250e6, time.UTC),
		Features: []Feature{
			{Name: "amount", Value: Value{Kind: Number, Num: 12.5}},
			{Name: "country", Value: Value{Kind: String, Str: "DE"}},
			{Name: "is_new", Value: Value{Kind: Bool, Num: 1}},
			{Name: "zip", Value: Value{}},
		},
		Prediction: Value{Kind: Number, Num: 0.93}, Scores: map[string]float64{"fraud": 0.93},
		LatencyMs: 12, Status: "ok", InputSize: 4, HasInputSize: true,
	}
}

func TestDecodeJSONAndAvroAgree(t *testing.T) {
	want := sampleEvent()
	js, err := MarshalPredictionJSON(want)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry("", map[uint32]string{7: SchemaPrediction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := reg.Codec(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	av, err := EncodePredictionAvro(codec, 7, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		format Format
		data   []byte
	}{{"json", FormatJSON, js}, {"avro", FormatAvro, av}, {"auto-json", FormatAuto, js}, {"auto-avro", FormatAuto, av}} {
		t.Run(c.name, func(t *testing.T) {
			var got PredictionEvent
			if err := (Decoder{Format: c.format, Registry: reg}).Prediction(context.Background(), c.data, &got); err != nil {
				t.Fatal(err)
			}
			// JSON keeps the record's order, Avro maps are sorted by name: compare as sets.
			if fmt.Sprint(featureSet(got.Features)) != fmt.Sprint(featureSet(want.Features)) {
				t.Errorf("features = %v, want %v", got.Features, want.Features)
			}
			wantNoFeat := *want
			got.Features, wantNoFeat.Features, got.strs = nil, nil, nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", wantNoFeat) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, wantNoFeat)
			}
		})
	}
}

func featureSet(fs []Feature) map[string]Value {
	m := map[string]Value{}
	for _, f := range fs {
		m[f.Name] = f.Value
	}
	return m
}

func TestDecodeJSONTimestampsAndDefaults(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{`{"model":"m","timestamp":"2026-03-04T10:00:00+02:00"}`, time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)},
		{`{"model":"m","timestamp":1772618400000}`, time.UnixMilli(1772618400000).UTC()},
		{`{"model":"m","timestamp":1772618400000,"features":{"a\"b":1,"c":"\u00e9"},"extra":[1,2]}`, time.UnixMilli(1772618400000).UTC()},
	} {
		var e PredictionEvent
		if err := DecodePredictionJSON([]byte(c.in), &e); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !e.Timestamp.Equal(c.want) || e.Deployment != "primary" || e.Status != "ok" {
			t.Errorf("%s: got %v %q %q", c.in, e.Timestamp, e.Deployment, e.Status)
		}
	}
	var e PredictionEvent
	if err := DecodePredictionJSON([]byte(`{"model":"m","timestamp":1,"features":{"a\"b":1,"c":"\u00e9"}}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Features[0].Name != `a"b` || e.Features[1].Value.Str != "é" {
		t.Errorf("escaped names and values: %+v", e.Features)
	}
}

func TestDecodeRejects(t *testing.T) {
	reg, _ := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	for _, c := range []struct {
		name, in string
		want     string
	}{
		{"random bytes", "\x07\x99garbage", "neither JSON"},
		{"empty", "", "empty record"},
		{"unknown schema id", "\x00\x00\x00\x00\x09\x02", "unknown schema id 9"},
		{"truncated avro", "\x00\x00\x00\x00\x01\x04ab", "schema id 1"},
		{"no model", `{"timestamp":1}`, "model is empty"},
		{"no timestamp", `{"model":"m"}`, "timestamp is missing"},
		{"wrong type", `{"model":"m","timestamp":1,"latency_ms":"fast"}`, "latency_ms"},
		{"bad timestamp", `{"model":"m","timestamp":"yesterday"}`, "RFC 3339"},
		{"nested feature", `{"model":"m","timestamp":1,"features":{"a":{"b":1}}}`, "nested"},
		{"bad status", `{"model":"m","timestamp":1,"status":"meh"}`, "status"},
		{"bad deployment", `{"model":"m","timestamp":1,"deployment":"x"}`, "deployment"},
		{"negative latency", `{"model":"m","timestamp":1,"latency_ms":-1}`, "latency_ms"},
		{"huge number", `{"model":"m","timestamp":1,"features":{"a":1e999}}`, "bad number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e PredictionEvent
			err := (Decoder{Format: FormatAuto, Registry: reg}).Prediction(context.Background(), []byte(c.in), &e)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// refusedAsInvalid are records that decode but break the contract: a feature given twice
// (Avro refuses it too), a second "features" object (its values would count for the same
// event), and timestamps outside what storage holds, in JSON and Avro (the bundled schema,
// id 1, decoded by the fast path; and another schema, id 2, decoded through goavro).
func refusedAsInvalid(t testing.TB) []struct {
	name string
	in   []byte
} {
	t.Helper()
	reg, err := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := reg.Codec(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	avroAt := func(ms int64) []byte {
		e := sampleEvent()
		e.Timestamp = time.UnixMilli(ms).UTC()
		b, err := EncodePredictionAvro(codec, 1, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	many := `{"model":"m","timestamp":1,"features":{`
	for i := 0; i < 40; i++ {
		many += fmt.Sprintf(`"f%02d":%d,`, i, i)
	}
	many += `"f07":1}}`
	cases := []struct {
		name string
		in   []byte
	}{
		{"json feature twice", []byte(`{"model":"m","timestamp":1,"features":{"a":1,"b":3,"a":2}}`)},
		{"json feature twice, once escaped", []byte(`{"model":"m","timestamp":1,"features":{"a":1,"\u0061":2}}`)},
		{"json feature twice among 41", []byte(many)},
		{"json features twice", []byte(`{"model":"m","timestamp":1,"features":{"a":1},"features":{"b":2}}`)},
		{"json features twice, other case", []byte(`{"model":"m","timestamp":1,"features":{"a":1},"Features":{"b":2}}`)},
		{"json features then null", []byte(`{"model":"m","features":{"a":1},"timestamp":1,"features":null}`)},
		{"json year 1500", []byte(`{"model":"m","timestamp":"1500-01-01T00:00:00Z"}`)},
		{"json year 1899", []byte(`{"model":"m","timestamp":"1899-12-31T23:59:59.999Z"}`)},
		{"json year 2262", []byte(`{"model":"m","timestamp":"2262-01-01T00:00:00Z"}`)},
		{"json year 9999", []byte(`{"model":"m","timestamp":"9999-12-31T23:59:59Z"}`)},
		{"json epoch ms in 1653", []byte(`{"model":"m","timestamp":-10000000000000}`)},
		{"json epoch ms in 2264", []byte(`{"model":"m","timestamp":9300000000000}`)},
		{"avro timestamp near the int64 limit", avroAt(math.MaxInt64 - 1000)},
		{"avro timestamp in 1653", avroAt(-10000000000000)},
		{"avro timestamp in 2264", avroAt(9300000000000)},
	}
	// The same out-of-range timestamp under a schema other than the bundled one.
	other := avroAt(math.MaxInt64 - 1000)
	other[4] = 2
	cases = append(cases, struct {
		name string
		in   []byte
	}{"avro (goavro) timestamp near the int64 limit", other})
	return cases
}

func TestDecodeRefusesAsInvalid(t *testing.T) {
	reg, err := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Id 2: the bundled schema under another record name: the same bytes, but not the
	// same schema, so decoded through goavro.
	text, _ := BundledSchema(SchemaPrediction)
	var schema map[string]any
	if err := json.Unmarshal([]byte(text), &schema); err != nil {
		t.Fatal(err)
	}
	schema["name"] = "OtherPrediction"
	otherText, _ := json.Marshal(schema)
	c, err := goavro.NewCodec(string(otherText))
	if err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	reg.add(2, c)
	reg.mu.Unlock()
	if reg.bundledPrediction[2] {
		t.Fatal("schema id 2 would take the fast path")
	}
	d := Decoder{Format: FormatAuto, Registry: reg}
	for _, c := range refusedAsInvalid(t) {
		t.Run(c.name, func(t *testing.T) {
			var e PredictionEvent
			err := d.Prediction(context.Background(), c.in, &e)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an invalid event (dead-letter class invalid)", err)
			}
		})
	}
	// The edges of the range are accepted, and names differing only in case are two
	// features.
	for _, in := range []string{
		`{"model":"m","timestamp":"1900-01-01T00:00:00Z","features":{"a":1,"A":2}}`,
		`{"model":"m","timestamp":"2261-12-31T23:59:59.999Z"}`,
	} {
		var e PredictionEvent
		if err := d.Prediction(context.Background(), []byte(in), &e); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	// Labels and pipeline events are held to the same range.
	var l LabelEvent
	if err := DecodeLabelJSON([]byte(`{"model":"m","request_id":"r","timestamp":"1500-01-01T00:00:00Z"}`), &l); !errors.Is(err, ErrInvalid) {
		t.Errorf("label in 1500: err = %v, want invalid", err)
	}
	var p PipelineEvent
	if err := DecodePipelineJSON([]byte(`{"pipeline":"p","stage":"s","status":"started","timestamp":9300000000000}`), &p); !errors.Is(err, ErrInvalid) {
		t.Errorf("pipeline event in 2264: err = %v, want invalid", err)
	}
}

func TestBundledSchemasCompile(t *testing.T) {
	for _, name := range []string{SchemaPrediction, SchemaLabel, SchemaPipeline, SchemaAlert} {
		text, err := BundledSchema(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := goavro.NewCodec(text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRegistryUnavailableIsRetryable(t *testing.T) {
	reg, _ := NewRegistry("http://127.0.0.1:1", nil, nil)
	_, err := reg.Codec(context.Background(), 3)
	if !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("err = %v, want ErrRegistryUnavailable", err)
	}
}

func FuzzDecodePrediction(f *testing.F) {
	js, _ := MarshalPredictionJSON(sampleEvent())
	reg, _ := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	codec, _ := reg.Codec(context.Background(), 1)
	av, _ := EncodePredictionAvro(codec, 1, sampleEvent())
	f.Add(js)
	f.Add(av)
	f.Add([]byte(`{"model":"m","timestamp":1,"features":{"a":"\\u0000"}}`))
	for _, c := range refusedAsInvalid(f) {
		f.Add(c.in)
	}
	d := Decoder{Format: FormatAuto, Registry: reg}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e PredictionEvent
		if err := d.Prediction(context.Background(), b, &e); err != nil {
			return
		}
		if e.Model == "" || checkTime(e.Timestamp) != nil {
			t.Fatalf("accepted an event without model or with a timestamp out of range: %+v", e)
		}
		names := map[string]bool{}
		for _, f := range e.Features {
			if f.Value.Kind == Number && !finite(f.Value.Num) {
				t.Fatalf("accepted a non-finite feature: %+v", f)
			}
			if names[f.Name] {
				t.Fatalf("accepted feature %q twice: %+v", f.Name, e.Features)
			}
			names[f.Name] = true
		}
	})
}

// Schemas are looked up in a registry once per id and cached.
func TestRegistryLooksUpAndCaches(t *testing.T) {
	text, _ := BundledSchema(SchemaPrediction)
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path != "/schemas/ids/42" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"schema": text})
	}))
	defer srv.Close()
	reg, _ := NewRegistry(srv.URL, nil, nil)
	codec, err := reg.Codec(context.Background(), 42)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := EncodePredictionAvro(codec, 42, sampleEvent())
	for i := 0; i < 3; i++ {
		var e PredictionEvent
		if err := (Decoder{Format: FormatAvro, Registry: reg}).Prediction(context.Background(), rec, &e); err != nil || e.Model != "fraud-scorer" {
			t.Fatalf("decode: %v %+v", err, e)
		}
	}
	if hits != 1 {
		t.Errorf("%d registry requests, want 1", hits)
	}
	if _, err := reg.Codec(context.Background(), 7); err == nil || !strings.Contains(err.Error(), "registry does not have it") {
		t.Errorf("unknown id: %v", err)
	}
}

func TestAlertAvroRoundTrip(t *testing.T) {
	text, _ := BundledSchema(SchemaAlert)
	codec, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	a := &AlertEvent{AlertID: "a1", Fingerprint: "f", State: StateFiring, Severity: SeverityCritical, Kind: KindDataDrift,
		Model: "m", Feature: "amount", Metric: "psi", Value: 0.31, Threshold: 0.25, WindowStart: time.UnixMilli(1000).UTC(),
		WindowEnd: time.UnixMilli(61000).UTC(), EmittedAt: time.UnixMilli(62000).UTC(), Summary: "s", Details: map[string]string{"test": "ks"}}
	b, err := EncodeAlertAvro(codec, 4, a)
	if err != nil {
		t.Fatal(err)
	}
	id, body, err := splitConfluent(b)
	if err != nil || id != 4 {
		t.Fatalf("framing: %d %v", id, err)
	}
	native, _, err := codec.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	m := native.(map[string]any)
	if m["feature"] != "amount" || m["value"] != 0.31 || m["details"].(map[string]any)["test"] != "ks" {
		t.Errorf("decoded %v", m)
	}
}

func FuzzDecodePipeline(f *testing.F) {
	f.Add([]byte(`{"event_id":"1","pipeline":"orders","stage":"join","status":"failed","timestamp":1,"records_in":5,"records_out":0,"error":"x","models":["m"]}`))
	f.Add([]byte(`{"pipeline":"o","stage":"j","status":"succeeded","timestamp":1,"duration_ms":-3,"records_in":-1,"records_out":null,"null_count":-2}`))
	f.Add([]byte("\x00\x00\x00\x00\x03\x02"))
	reg, _ := NewRegistry("", map[uint32]string{3: SchemaPipeline}, nil)
	d := Decoder{Format: FormatAuto, Registry: reg}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e PipelineEvent
		if err := d.Pipeline(context.Background(), b, &e); err != nil {
			return
		}
		if e.Pipeline == "" || e.Stage == "" || checkTime(e.Timestamp) != nil || (e.Status != "started" && e.Status != "succeeded" && e.Status != "failed") {
			t.Fatalf("accepted an invalid pipeline event: %+v", e)
		}
		// What the stage's rules count is a measurement: finite, not negative, bounded.
		if !(e.DurationMs >= 0 && e.DurationMs <= MaxRunDurationMs) || e.RecordsIn < 0 || e.RecordsOut < 0 || e.NullCount < 0 ||
			e.RecordsIn > MaxRunRecords || e.RecordsOut > MaxRunRecords || e.NullCount > MaxRunRecords ||
			(e.NoDuration && e.DurationMs != 0) || (e.NoRecordsIn && e.RecordsIn != 0) || (e.NoRecordsOut && e.RecordsOut != 0) {
			t.Fatalf("accepted numbers that are no measurement: %+v", e)
		}
	})
}

// A pipeline event's models list is kept in memory (the stages feeding each model), so it
// is bounded: too many models, or a name too long, and the event is invalid.
func TestPipelineModelsAreBounded(t *testing.T) {
	d := Decoder{Format: FormatJSON}
	event := func(models []string) []byte {
		b, err := json.Marshal(map[string]any{"event_id": "r1", "pipeline": "orders", "stage": "join", "run_id": "1",
			"status": "succeeded", "timestamp": "2026-11-02T10:00:00Z", "models": models})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	many := make([]string, MaxPipelineModels+1)
	for i := range many {
		many[i] = fmt.Sprintf("model-%d", i)
	}
	for _, c := range []struct {
		name   string
		models []string
		ok     bool
	}{
		{"a few", []string{"fraud", "churn"}, true},
		{"the most", many[:MaxPipelineModels], true},
		{"one too many", many, false},
		{"a name too long", []string{strings.Repeat("m", MaxNameBytes+1)}, false},
	} {
		var e PipelineEvent
		err := d.Pipeline(context.Background(), event(c.models), &e)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want an invalid event", c.name, err)
		}
	}
}

// A writer schema other than the bundled one (decoded through goavro) may make
// latency_ms optional or a float: the latency sent is read, and one not sent (null, or no
// such field) is not measured (NoLatency), as in JSON.
func TestAvroLatencyOfOtherWriterSchemas(t *testing.T) {
	text, _ := BundledSchema(SchemaPrediction)
	bundled, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := EncodePredictionAvro(bundled, 1, sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		typ       any // latency_ms's type in the writer schema; nil: no such field
		value     any // what the record holds
		latency   float64
		noLatency bool
	}{
		{"union with null, a value", []any{"null", "double"}, goavro.Union("double", 12.5), 12.5, false},
		{"union with null, null", []any{"null", "double"}, nil, 0, true},
		{"float", "float", float32(12.5), 12.5, false},
		{"long", "long", int64(12), 12, false},
		{"no such field", nil, nil, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var schema map[string]any
			if err := json.Unmarshal([]byte(text), &schema); err != nil {
				t.Fatal(err)
			}
			var fields []any
			for _, f := range schema["fields"].([]any) {
				field := f.(map[string]any)
				if field["name"] == "latency_ms" {
					if c.typ == nil {
						continue
					}
					field["type"] = c.typ
					delete(field, "default")
				}
				fields = append(fields, field)
			}
			schema["fields"], schema["name"] = fields, "OtherPrediction"
			writerText, _ := json.Marshal(schema)
			writer, err := goavro.NewCodec(string(writerText))
			if err != nil {
				t.Fatal(err)
			}
			native, _, err := bundled.NativeFromBinary(rec[5:])
			if err != nil {
				t.Fatal(err)
			}
			m := native.(map[string]any)
			delete(m, "latency_ms")
			if c.typ != nil {
				m["latency_ms"] = c.value
			}
			body, err := writer.BinaryFromNative(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := NewRegistry("", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			reg.mu.Lock()
			reg.add(7, writer)
			reg.mu.Unlock()
			var e PredictionEvent
			if err := (Decoder{Format: FormatAvro, Registry: reg}).Prediction(context.Background(), AppendConfluent(nil, 7, body), &e); err != nil {
				t.Fatal(err)
			}
			if e.LatencyMs != c.latency || e.NoLatency != c.noLatency || e.Model != "fraud-scorer" {
				t.Errorf("latency %v, no latency %t (model %q); want %v, %t", e.LatencyMs, e.NoLatency, e.Model, c.latency, c.noLatency)
			}
		})
	}
}

// A pipeline event's duration and record counts that were not sent (absent or null, in
// JSON or an Avro writer schema that makes them optional) are not measured: a run
// without a duration is not a run of 0 ms, and a run without records_out did not lose
// its records_in. What was sent is read, as any Avro number, and written back as sent.
func TestPipelineFieldsNotSentAreNotMeasured(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		fields string
		want   PipelineEvent
	}{
		{"all sent", `"duration_ms": 2500.5, "records_in": 100, "records_out": 90, "null_count": 3`,
			PipelineEvent{DurationMs: 2500.5, RecordsIn: 100, RecordsOut: 90, NullCount: 3, HasNullCount: true}},
		{"none sent", ``, PipelineEvent{NoDuration: true, NoRecordsIn: true, NoRecordsOut: true}},
		{"nulls", `"duration_ms": null, "records_in": null, "records_out": null, "null_count": null`,
			PipelineEvent{NoDuration: true, NoRecordsIn: true, NoRecordsOut: true}},
		{"zeros are values", `"duration_ms": 0, "records_in": 0, "records_out": 0, "null_count": 0`, PipelineEvent{HasNullCount: true}},
		{"output only", `"records_out": 7`, PipelineEvent{NoDuration: true, NoRecordsIn: true, RecordsOut: 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"event_id": "r1", "pipeline": "orders", "stage": "join", "status": "succeeded", "timestamp": "2026-11-02T10:00:00Z"`
			if c.fields != "" {
				body += ", " + c.fields
			}
			var e PipelineEvent
			if err := (Decoder{Format: FormatJSON}).Pipeline(ctx, []byte(body+"}"), &e); err != nil {
				t.Fatal(err)
			}
			got := PipelineEvent{DurationMs: e.DurationMs, RecordsIn: e.RecordsIn, RecordsOut: e.RecordsOut, NullCount: e.NullCount,
				HasNullCount: e.HasNullCount, NoDuration: e.NoDuration, NoRecordsIn: e.NoRecordsIn, NoRecordsOut: e.NoRecordsOut}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded %+v, want %+v", got, c.want)
			}
			again, err := MarshalPipelineJSON(&e)
			if err != nil {
				t.Fatal(err)
			}
			var back PipelineEvent
			if err := (Decoder{Format: FormatJSON}).Pipeline(ctx, again, &back); err != nil || !reflect.DeepEqual(back, e) {
				t.Errorf("written back and read %+v (%v), want %+v", back, err, e)
			}
		})
	}

	// An Avro writer schema with the counts optional (union with null) and the duration
	// an int, or without the fields at all.
	writer := func(fields string) *goavro.Codec {
		c, err := goavro.NewCodec(`{"type": "record", "name": "Run", "fields": [
			{"name": "event_id", "type": "string"}, {"name": "pipeline", "type": "string"}, {"name": "stage", "type": "string"},
			{"name": "status", "type": "string"}, {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}}` + fields + `]}`)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ts := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	base := map[string]any{"event_id": "r1", "pipeline": "orders", "stage": "join", "status": "succeeded", "timestamp": ts}
	for _, c := range []struct {
		name   string
		fields string
		values map[string]any
		want   PipelineEvent
	}{
		{"optional, sent", `, {"name": "duration_ms", "type": "int"}, {"name": "records_in", "type": ["null", "long"]}, {"name": "records_out", "type": ["null", "int"]}`,
			map[string]any{"duration_ms": int32(1500), "records_in": goavro.Union("long", int64(100)), "records_out": goavro.Union("int", int32(90))},
			PipelineEvent{DurationMs: 1500, RecordsIn: 100, RecordsOut: 90}},
		{"optional, null", `, {"name": "duration_ms", "type": ["null", "double"]}, {"name": "records_in", "type": ["null", "long"]}, {"name": "records_out", "type": ["null", "long"]}`,
			map[string]any{"duration_ms": nil, "records_in": nil, "records_out": nil},
			PipelineEvent{NoDuration: true, NoRecordsIn: true, NoRecordsOut: true}},
		{"no such fields", ``, map[string]any{}, PipelineEvent{NoDuration: true, NoRecordsIn: true, NoRecordsOut: true}},
	} {
		t.Run("avro "+c.name, func(t *testing.T) {
			w := writer(c.fields)
			m := maps.Clone(base)
			maps.Copy(m, c.values)
			body, err := w.BinaryFromNative(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := NewRegistry("", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			reg.mu.Lock()
			reg.add(9, w)
			reg.mu.Unlock()
			var e PipelineEvent
			if err := (Decoder{Format: FormatAvro, Registry: reg}).Pipeline(ctx, AppendConfluent(nil, 9, body), &e); err != nil {
				t.Fatal(err)
			}
			got := PipelineEvent{DurationMs: e.DurationMs, RecordsIn: e.RecordsIn, RecordsOut: e.RecordsOut, NoDuration: e.NoDuration,
				NoRecordsIn: e.NoRecordsIn, NoRecordsOut: e.NoRecordsOut}
			if !reflect.DeepEqual(got, c.want) || e.Stage != "join" {
				t.Errorf("decoded %+v, want %+v", got, c.want)
			}
		})
	}
}

// A negative duration or count is "unknown" (not measured; the run is kept), a value
// beyond any run's is invalid (dead-lettered), at its bound it is read.
func TestPipelineNumbersOutOfRange(t *testing.T) {
	for _, c := range []struct {
		name    string
		fields  string
		invalid bool
		want    PipelineEvent
	}{
		{"negative", `"duration_ms": -1, "records_in": -1, "records_out": -1, "null_count": -1`, false,
			PipelineEvent{NoDuration: true, NoRecordsIn: true, NoRecordsOut: true}},
		{"at the bounds", `"duration_ms": 1e10, "records_in": 1000000000000, "records_out": 0`, false,
			PipelineEvent{DurationMs: 1e10, RecordsIn: 1e12}},
		{"a duration beyond", `"duration_ms": 1.5e10`, true, PipelineEvent{}},
		{"a count beyond", `"records_out": 1000000000001`, true, PipelineEvent{}},
		{"nulls beyond", `"null_count": 9223372036854775807`, true, PipelineEvent{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"event_id": "r1", "pipeline": "orders", "stage": "join", "status": "succeeded", "timestamp": "2026-11-02T10:00:00Z", ` + c.fields + `}`
			var e PipelineEvent
			err := (Decoder{Format: FormatJSON}).Pipeline(context.Background(), []byte(body), &e)
			if c.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("err = %v, want an invalid event", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := PipelineEvent{DurationMs: e.DurationMs, RecordsIn: e.RecordsIn, RecordsOut: e.RecordsOut, NullCount: e.NullCount,
				HasNullCount: e.HasNullCount, NoDuration: e.NoDuration, NoRecordsIn: e.NoRecordsIn, NoRecordsOut: e.NoRecordsOut}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded %+v, want %+v", got, c.want)
			}
		})
	}
}
