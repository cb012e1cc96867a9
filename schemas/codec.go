package schemas

import (
	"context"
	"fmt"

	"github.com/driftd/driftd/internal/enum"
)

// Format is the wire format of a topic.
type Format string

// Wire formats. Auto tells JSON from Confluent Avro per record (byte 0 is 0 for Avro, "{"
// for JSON), so a team can move a topic from one to the other without downtime.
const (
	FormatJSON Format = "json"
	FormatAvro Format = "avro"
	FormatAuto Format = "auto"
)

// ParseFormat checks a configured format name; "" is auto.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return FormatAuto, nil
	}
	return enum.Parse("format", s, FormatJSON, FormatAvro, FormatAuto)
}

func (f Format) String() string               { return string(f) }
func (f Format) MarshalText() ([]byte, error) { return []byte(f), nil }

// UnmarshalText parses a format from YAML or the environment.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Decoder decodes the records of one topic.
type Decoder struct {
	Format   Format
	Registry *Registry
}

func (d Decoder) isAvro(b []byte) (bool, error) {
	switch d.Format {
	case FormatJSON:
		return false, nil
	case FormatAvro:
		return true, nil
	}
	t := skipSpace(b)
	if len(t) == 0 {
		return false, fmt.Errorf("empty record")
	}
	switch t[0] {
	case '{':
		return false, nil
	case 0:
		return true, nil
	}
	return false, fmt.Errorf("record is neither JSON (starts with '{') nor Confluent Avro (starts with byte 0): first byte 0x%02x", b[0])
}

// Prediction decodes one prediction record into e, reusing e's memory.
func (d Decoder) Prediction(ctx context.Context, b []byte, e *PredictionEvent) error {
	avro, err := d.isAvro(b)
	if err != nil {
		return fmt.Errorf("decode prediction: %w", err)
	}
	if !avro {
		return DecodePredictionJSON(b, e)
	}
	if d.Registry == nil {
		return fmt.Errorf("decode prediction: Avro record but no schema registry or bundled schema id is configured")
	}
	return d.Registry.DecodePredictionAvro(ctx, b, e)
}

// Pipeline decodes one pipeline event record.
func (d Decoder) Pipeline(ctx context.Context, b []byte, e *PipelineEvent) error {
	avro, err := d.isAvro(b)
	if err != nil {
		return fmt.Errorf("decode pipeline event: %w", err)
	}
	if !avro {
		return DecodePipelineJSON(b, e)
	}
	if d.Registry == nil {
		return fmt.Errorf("decode pipeline event: Avro record but no schema registry or bundled schema id is configured")
	}
	return d.Registry.DecodePipelineAvro(ctx, b, e)
}

// Label decodes one label record (ground truth or a user outcome) into e.
func (d Decoder) Label(ctx context.Context, b []byte, e *LabelEvent) error {
	avro, err := d.isAvro(b)
	if err != nil {
		return fmt.Errorf("decode label: %w", err)
	}
	if !avro {
		return DecodeLabelJSON(b, e)
	}
	if d.Registry == nil {
		return fmt.Errorf("decode label: Avro record but no schema registry or bundled schema id is configured")
	}
	return d.Registry.DecodeLabelAvro(ctx, b, e)
}
