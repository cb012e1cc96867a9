package schemas

import (
	"context"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// A label reads the same from JSON and from Avro, whatever its label's kind.
func TestDecodeLabelJSONAndAvroAgree(t *testing.T) {
	text, _ := BundledSchema(SchemaLabel)
	codec, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry("", map[uint32]string{5: SchemaLabel}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Decoder{Format: FormatAuto, Registry: reg}
	at := time.Date(2026, 3, 4, 10, 0, 1, 250e6, time.UTC)
	for _, c := range []struct {
		name  string
		label Value
	}{
		{"number", Value{Kind: Number, Num: 0.5}},
		{"class", Value{Kind: String, Str: "fraud"}},
		{"none (an outcome only)", Value{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := LabelEvent{EventID: "l1", RequestID: "r1", Model: "m", Timestamp: at, Label: c.label, Outcome: "clicked"}
			js, err := MarshalLabelJSON(&want)
			if err != nil {
				t.Fatal(err)
			}
			av, err := EncodeLabelAvro(codec, 5, &want)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range [][]byte{js, av} {
				var got LabelEvent
				if err := d.Label(context.Background(), b, &got); err != nil {
					t.Fatalf("decode %q: %v", b, err)
				}
				if got.EventID != want.EventID || got.RequestID != want.RequestID || got.Model != want.Model ||
					!got.Timestamp.Equal(want.Timestamp) || got.Label != want.Label || got.Outcome != want.Outcome {
					t.Errorf("decoded %+v, want %+v", got, want)
				}
			}
		})
	}
}

func TestDecodeLabelRejects(t *testing.T) {
	d := Decoder{Format: FormatAuto}
	for name, b := range map[string]string{
		"no request_id":     `{"event_id":"1","model":"m","timestamp":"2026-01-01T00:00:00Z","label":1}`,
		"no model":          `{"event_id":"1","request_id":"r","timestamp":"2026-01-01T00:00:00Z","label":1}`,
		"no timestamp":      `{"event_id":"1","request_id":"r","model":"m","label":1}`,
		"not JSON":          `{"event_id":`,
		"Avro, no registry": "\x00\x00\x00\x00\x05\x02",
		"neither":           "hello",
	} {
		var e LabelEvent
		if err := d.Label(context.Background(), []byte(b), &e); err == nil {
			t.Errorf("%s: decoded %+v", name, e)
		}
	}
}

func FuzzDecodeLabel(f *testing.F) {
	f.Add([]byte(`{"event_id":"1","request_id":"r","model":"m","timestamp":"2026-01-01T00:00:00Z","label":"fraud","outcome":"clicked"}`))
	f.Add([]byte(`{"event_id":"1","request_id":"r","model":"m","timestamp":1,"label":1e308}`))
	f.Add([]byte("\x00\x00\x00\x00\x05\x02a\x02r\x02m\x02\x02\x02\x00"))
	reg, _ := NewRegistry("", map[uint32]string{5: SchemaLabel}, nil)
	d := Decoder{Format: FormatAuto, Registry: reg}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e LabelEvent
		if err := d.Label(context.Background(), b, &e); err != nil {
			return
		}
		if e.Model == "" || e.RequestID == "" || checkTime(e.Timestamp) != nil || (e.Label.Kind == Number && !finite(e.Label.Num)) {
			t.Fatalf("accepted an invalid label: %+v", e)
		}
	})
}
