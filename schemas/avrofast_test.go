package schemas

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// avroBodies encodes events of every shape the schema allows with goavro (the bundled
// schema under id 1), returning the Avro bodies without the Confluent header.
func avroBodies(t testing.TB) (*Registry, [][]byte) {
	t.Helper()
	reg, err := NewRegistry("", map[uint32]string{1: SchemaPrediction}, nil)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := reg.Codec(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	full := sampleEvent()
	bare := &PredictionEvent{EventID: "e2", Model: "m", Timestamp: time.UnixMilli(-1).UTC(), Deployment: "primary", Status: "timeout"}
	many := &PredictionEvent{EventID: "e3", Model: "m", Timestamp: time.UnixMilli(1 << 40).UTC(), Deployment: "shadow", Status: "ok",
		Prediction: Value{Kind: String, Str: "yes"}, Scores: map[string]float64{}, LatencyMs: 0.5}
	for i := 0; i < 300; i++ {
		many.Features = append(many.Features, Feature{Name: fmt.Sprintf("f%03d", 299-i), Value: Value{Kind: Number, Num: float64(i) - 150.25}})
	}
	// Out of the range storage holds: both paths refuse it.
	far := &PredictionEvent{EventID: "e4", Model: "m", Timestamp: time.UnixMilli(math.MaxInt64 - 1000).UTC(), Deployment: "primary", Status: "ok"}
	var out [][]byte
	for _, e := range []*PredictionEvent{full, bare, many, far} {
		b, err := EncodePredictionAvro(codec, 1, e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[5:])
	}
	return reg, out
}

// fastMatchesGeneric decodes body both ways and reports how they differ ("" if not).
func fastMatchesGeneric(reg *Registry, body []byte) string {
	var fast, generic PredictionEvent
	errFast := decodePredictionBinary(body, &fast)
	errGeneric := reg.decodePredictionGeneric(context.Background(), AppendConfluent(nil, 1, body), &generic)
	if errFast == nil {
		// The generic path validates too; compare like with like.
		errFast = fast.validate()
	}
	switch {
	case (errFast == nil) != (errGeneric == nil):
		return fmt.Sprintf("fast: %v; goavro: %v", errFast, errGeneric)
	case errFast != nil:
		return ""
	}
	fast.strs, generic.strs = nil, nil
	if f, g := fmt.Sprintf("%+v", fast), fmt.Sprintf("%+v", generic); f != g {
		return fmt.Sprintf("fast:\n%s\ngoavro:\n%s", f, g)
	}
	return ""
}

func TestAvroFastMatchesGoavro(t *testing.T) {
	reg, bodies := avroBodies(t)
	for i, b := range bodies {
		if d := fastMatchesGeneric(reg, b); d != "" {
			t.Errorf("event %d: %s", i, d)
		}
		// Every truncation fails both ways alike.
		for n := 0; n < len(b); n++ {
			if d := fastMatchesGeneric(reg, b[:n]); d != "" {
				t.Fatalf("event %d cut at %d: %s", i, n, d)
			}
		}
	}
	// A schema that differs from the bundled one goes through goavro, by field name.
	other := `{"type":"record","name":"P","fields":[{"name":"model","type":"string"},{"name":"timestamp","type":"long"},{"name":"event_id","type":"string"}]}`
	r2, _ := NewRegistry("", nil, nil)
	r2.mu.Lock()
	c, err := goavro.NewCodec(other)
	if err != nil {
		t.Fatal(err)
	}
	r2.add(9, c)
	r2.mu.Unlock()
	body, err := c.BinaryFromNative(nil, map[string]any{"model": "m", "timestamp": int64(5), "event_id": "x"})
	if err != nil {
		t.Fatal(err)
	}
	var e PredictionEvent
	if err := r2.DecodePredictionAvro(context.Background(), AppendConfluent(nil, 9, body), &e); err != nil || e.Model != "m" || e.EventID != "x" {
		t.Fatalf("another schema: %+v %v", e, err)
	}
}

// FuzzAvroFastMatchesGoavro: on any bytes, the fast decoder and goavro agree: both fail,
// or both give the same event.
func FuzzAvroFastMatchesGoavro(f *testing.F) {
	reg, bodies := avroBodies(f)
	for _, b := range bodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if d := fastMatchesGeneric(reg, body); d != "" {
			t.Fatal(d)
		}
	})
}
