// Package schemas defines driftd's events (DESIGN.md's event contract), their bundled Avro
// schemas, and the decoders for JSON and for Avro in the Confluent wire format.
package schemas

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/driftd/driftd/internal/enum"
)

// Deployment slots a prediction can come from.
const (
	DeploymentPrimary = "primary"
	DeploymentCanary  = "canary"
	DeploymentShadow  = "shadow"
	DeploymentBlue    = "blue"
	DeploymentGreen   = "green"
)

// Prediction statuses.
const (
	StatusOK      = "ok"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// StageStatus is what a pipeline event says of its run. Its text is the event's status on
// the wire (DESIGN.md's contract).
type StageStatus string

// Stage statuses.
const (
	StageStarted   StageStatus = "started"
	StageSucceeded StageStatus = "succeeded"
	StageFailed    StageStatus = "failed"
)

// ParseStageStatus parses started, succeeded or failed.
func ParseStageStatus(s string) (StageStatus, error) {
	return enum.Parse("status", s, StageStarted, StageSucceeded, StageFailed)
}

func (s StageStatus) String() string               { return string(s) }
func (s StageStatus) MarshalText() ([]byte, error) { return []byte(s), nil }

// Kind says what a Value holds.
type Kind uint8

// Value kinds. Booleans are categorical ("true"/"false") for every statistic.
const (
	Missing Kind = iota
	Number
	String
	Bool
)

// Value is a feature value or a prediction: a number, a string, a boolean or missing.
type Value struct {
	Kind Kind
	Num  float64
	Str  string
}

// Category returns the value as a category label.
func (v Value) Category() string {
	switch v.Kind {
	case String:
		return v.Str
	case Bool:
		if v.Num != 0 {
			return "true"
		}
		return "false"
	case Number:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	}
	return ""
}

// Feature is one named input of a prediction.
type Feature struct {
	Name  string
	Value Value
}

// PredictionEvent is one prediction made by a model service.
type PredictionEvent struct {
	EventID      string
	RequestID    string
	Model        string
	ModelVersion string
	Deployment   string
	Timestamp    time.Time
	// Features keeps the order of the record; decoders reuse its backing array.
	Features   []Feature
	Prediction Value
	Scores     map[string]float64
	LatencyMs  float64
	// NoLatency: the record carried no latency (JSON without latency_ms, or null). Its
	// latency is not measured (LatencyMs is 0 and counts nowhere): a producer that
	// sends none, or none with its errors, must not read as a model answering in 0 ms.
	NoLatency    bool
	Status       string
	InputSize    float64
	HasInputSize bool

	// strs interns feature names and categorical values across the events decoded into
	// this value: the same few hundred strings recur in every record.
	strs *internTable
	// names is scratch space for checking that feature names are unique.
	names []string
}

// internTable is the interned strings of one or more events (ShareInterned).
type internTable struct {
	m map[string]string
	// recent holds the last string interned for each value of internSlot: a model's
	// name, version and categories are found there, without hashing the whole string
	// and probing the map, for several strings of every record.
	recent [256]string
}

// maxInterned bounds the interned strings (high-cardinality values stop being interned).
const maxInterned = 8192

// internSlot is where b is kept in internTable.recent: a hash of its length and its
// last eight bytes (the differing end of names such as model-01, model-02).
func internSlot(b []byte) uint8 {
	var x uint64
	if len(b) >= 8 {
		x = binary.LittleEndian.Uint64(b[len(b)-8:])
	} else {
		for _, c := range b {
			x = x<<8 | uint64(c)
		}
	}
	return uint8((x*0x9E3779B97F4A7C15 + uint64(len(b))*0xBF58476D1CE4E5B9) >> 56)
}

// intern returns b as a string, shared with earlier equal strings.
func (e *PredictionEvent) intern(b []byte) string {
	if e.strs == nil {
		e.strs = &internTable{m: make(map[string]string, 64)}
	}
	t := e.strs
	slot := internSlot(b)
	if s := t.recent[slot]; s == string(b) { // the comparison does not allocate
		return s
	}
	s, ok := t.m[string(b)] // the conversion in a map index does not allocate
	if !ok {
		s = string(b)
		if len(t.m) < maxInterned {
			t.m[s] = s
		}
	}
	t.recent[slot] = s
	return s
}

// ShareInterned makes e intern into from's table of strings, so that events decoded in
// turn by one goroutine (a ring of them) intern each string once. Only one goroutine may
// decode into events that share a table.
func (e *PredictionEvent) ShareInterned(from *PredictionEvent) {
	if from.strs == nil {
		from.strs = &internTable{m: make(map[string]string, 64)}
	}
	e.strs = from.strs
}

// Reset clears e for reuse, keeping allocated capacity and interned strings.
func (e *PredictionEvent) Reset() {
	f, strs, names := e.Features[:0], e.strs, e.names[:0]
	*e = PredictionEvent{Features: f, strs: strs, names: names}
}

// LabelEvent is the ground truth or user outcome for an earlier prediction.
type LabelEvent struct {
	EventID   string
	RequestID string
	Model     string
	Timestamp time.Time
	Label     Value
	Outcome   string
}

// PipelineEvent is one run of one stage of an upstream data pipeline.
type PipelineEvent struct {
	EventID      string
	Pipeline     string
	Stage        string
	RunID        string
	Status       StageStatus
	Timestamp    time.Time
	DurationMs   float64
	RecordsIn    int64
	RecordsOut   int64
	NullCount    int64
	HasNullCount bool
	// NoDuration, NoRecordsIn and NoRecordsOut say the producer did not send the field
	// (absent or null): a run whose duration was not measured is not a run of 0 ms, and
	// records lost are counted only over runs that sent both counts.
	NoDuration, NoRecordsIn, NoRecordsOut bool
	Error                                 string
	Models                                []string
}

// AlertEvent is what driftd publishes on the alert topic and stores in ClickHouse.
type AlertEvent struct {
	AlertID      string            `json:"alert_id"`
	Fingerprint  string            `json:"fingerprint"`
	State        string            `json:"state"`
	Severity     string            `json:"severity"`
	Kind         string            `json:"kind"`
	Model        string            `json:"model,omitempty"`
	ModelVersion string            `json:"model_version,omitempty"`
	Deployment   string            `json:"deployment,omitempty"`
	Feature      string            `json:"feature,omitempty"`
	Pipeline     string            `json:"pipeline,omitempty"`
	Stage        string            `json:"stage,omitempty"`
	Metric       string            `json:"metric"`
	Value        float64           `json:"value"`
	Threshold    float64           `json:"threshold"`
	WindowStart  time.Time         `json:"window_start"`
	WindowEnd    time.Time         `json:"window_end"`
	EmittedAt    time.Time         `json:"emitted_at"`
	Summary      string            `json:"summary"`
	Details      map[string]string `json:"details,omitempty"`
}

// Alert states, severities and kinds (DESIGN.md).
const (
	StateFiring   = "firing"
	StateResolved = "resolved"

	SeverityWarning  = "warning"
	SeverityCritical = "critical"
	// SeverityInfo is a recommendation (a canary that can be promoted): it pages nobody.
	SeverityInfo = "info"

	KindDataDrift       = "data_drift"
	KindPredictionDrift = "prediction_drift"
	KindLatency         = "latency"
	KindErrors          = "errors"
	// KindInputQuality judges missing values, unseen categories and input size;
	// KindOutputQuality null predictions; KindVolume a series' events per window.
	KindInputQuality  = "input_quality"
	KindOutputQuality = "output_quality"
	KindVolume        = "volume"
	// KindPerformance judges a window's labelled predictions against its reference
	// period's; KindConceptDrift a change found on the stream of their losses.
	KindPerformance  = "performance"
	KindConceptDrift = "concept_drift"
	// KindCanary judges a canary's windows against the primary's of the same period;
	// KindShadow a shadow's agreement with the primary on the same requests.
	KindCanary = "canary"
	KindShadow = "shadow"
)

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
