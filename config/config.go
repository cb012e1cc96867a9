// Package config loads driftd's YAML configuration, applies DRIFTD_* environment
// overrides and defaults, and validates it, naming the field at fault.
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/webguard"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	dsql "github.com/driftd/driftd/sql"
	"github.com/driftd/driftd/storage"
)

// Duration is a time.Duration written as "90s", "5m" or "1h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 90s, 5m or 1h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// LogLevel is the level of driftd's log: debug, info, warn or error (slog's parsing, so
// also DEBUG or info+2).
type LogLevel slog.Level

// Level makes a LogLevel a slog.Leveler, for slog.HandlerOptions.
func (l LogLevel) Level() slog.Level { return slog.Level(l) }

func (l LogLevel) String() string               { return slog.Level(l).String() }
func (l LogLevel) MarshalText() ([]byte, error) { return slog.Level(l).MarshalText() }

// UnmarshalText parses a level, naming the accepted ones where slog's error does not.
func (l *LogLevel) UnmarshalText(b []byte) error {
	var v slog.Level
	if err := v.UnmarshalText(b); err != nil {
		return fmt.Errorf("log level %q is not one of debug, info, warn, error", b)
	}
	*l = LogLevel(v)
	return nil
}

// Config is the whole configuration. Defaults match docker-compose.yml.
type Config struct {
	Kafka      Kafka                  `yaml:"kafka"`
	ClickHouse ClickHouse             `yaml:"clickhouse"`
	Windows    Windows                `yaml:"windows"`
	Detection  Detection              `yaml:"detection"`
	Models     map[string]ModelConfig `yaml:"models"`
	Pipelines  Pipelines              `yaml:"pipelines"`
	Labels     Labels                 `yaml:"labels"`
	Canary     Canary                 `yaml:"canary"`
	Shadow     Shadow                 `yaml:"shadow"`
	Limits     Limits                 `yaml:"limits"`
	HTTP       HTTP                   `yaml:"http"`
	LogLevel   LogLevel               `yaml:"log_level"`
}

// Canary is how a canary's windows are compared with the primary's of the same model
// and period (docs/deployments.md).
type Canary struct {
	// MinEvents is the least requests each side needs in a window for a verdict; with
	// fewer the window is inconclusive.
	MinEvents uint64 `yaml:"min_events"`
	// RegressionWindows consecutive regressions fire a critical alert recommending
	// rollback; PromoteWindows consecutive healthy windows an info-level promote
	// recommendation.
	RegressionWindows int `yaml:"regression_windows"`
	PromoteWindows    int `yaml:"promote_windows"`
}

// Settings are the section's settings for the detectors.
func (c Canary) Settings() detectors.CanarySettings {
	return detectors.CanarySettings{MinEvents: c.MinEvents, RegressionWindows: c.RegressionWindows, PromoteWindows: c.PromoteWindows}
}

// Shadow is how a shadow's agreement with the primary on the same requests is judged
// (docs/deployments.md).
type Shadow struct {
	// MinMatched is the least predictions joined to the primary's a window needs to be
	// judged or to count towards the shadow's reference (its first reference_windows).
	MinMatched       uint64 `yaml:"min_matched"`
	ReferenceWindows int    `yaml:"reference_windows"`
	// The disagreement rate breaches against the reference's when it is at least
	// disagreement_min_increase more and disagreement_min_ratio times as much (and a test
	// at detection.signal_p_value says so).
	DisagreementMinIncrease float64 `yaml:"disagreement_min_increase"`
	DisagreementMinRatio    float64 `yaml:"disagreement_min_ratio"`
	// MinAgreement, above 0, is a floor for the agreement itself (0: off).
	MinAgreement float64 `yaml:"min_agreement"`
}

// Settings are the section's settings for the detectors, tested at level pValue
// (detection.signal_p_value).
func (s Shadow) Settings(pValue float64) detectors.ShadowSettings {
	return detectors.ShadowSettings{MinMatched: s.MinMatched, ReferenceWindows: s.ReferenceWindows, MinIncrease: s.DisagreementMinIncrease,
		MinRatio: s.DisagreementMinRatio, MinAgreement: s.MinAgreement, PValue: pValue}
}

// HTTP is driftd's own endpoint: /metrics, /healthz, /readyz.
type HTTP struct {
	// Listen is host:port; localhost by default, empty to disable.
	Listen string `yaml:"listen"`
	// AllowedHosts are the names, besides IP addresses, localhost and the listen host, by
	// which browsers reach the pages (a name behind a proxy or in a cluster's DNS): a
	// request naming another host is refused, as a page rebound to this host would.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Username and Password guard the pages against clients on other hosts, as
	// clickhouse.password guards the embedded engine's data: without a password the pages
	// answer loopback clients only. /metrics and the health checks need neither.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// Kafka says where events come from and where alerts go.
type Kafka struct {
	Brokers        []string       `yaml:"brokers"`
	GroupID        string         `yaml:"group_id"`
	Topics         Topics         `yaml:"topics"`
	Formats        Formats        `yaml:"formats"`
	AlertFormat    schemas.Format `yaml:"alert_format"` // json or avro
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	// FlushInterval is the longest time closed windows wait before they are written and
	// their offsets committed.
	FlushInterval Duration `yaml:"flush_interval"`
	// CatchUpFlushInterval is how long after the last flush the next may wait while a
	// prediction partition is read a backlog behind (10,000 records or more unread, the
	// last read appended 10 s or more before): fewer inserts and commits leave more of the
	// machine to reading, and results behind anyway come a few seconds later. At most
	// FlushInterval (0 among them): flushes come every FlushInterval. At most a minute.
	CatchUpFlushInterval Duration `yaml:"catch_up_flush_interval"`
	TLS                  TLS      `yaml:"tls"`
	SASL                 SASL     `yaml:"sasl"`
	// GroupMode is how the consumer group shares partitions: active_standby (one member
	// reads everything, the others take over when it goes) or spread (Kafka's range
	// assignment; each model is judged by one member from the windows every member wrote:
	// docs/architecture.md, "Judging a spread group").
	GroupMode consumers.GroupMode `yaml:"group_mode"`
}

// Secret is a password. It prints as [redacted] wherever it is formatted or logged (the
// whole Config may be), so the only way to the value is Reveal, at the client that sends it.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the password itself.
func (s Secret) Reveal() string { return string(s) }

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures authentication to the brokers.
type SASL struct {
	Mechanism    consumers.SASL `yaml:"mechanism"` // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (any case)
	Username     string         `yaml:"username"`
	Password     Secret         `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
}

// Topics are the topic names.
type Topics struct {
	Predictions string `yaml:"predictions"`
	Labels      string `yaml:"labels"`
	Pipeline    string `yaml:"pipeline"`
	Alerts      string `yaml:"alerts"`
	DLQ         string `yaml:"dlq"`
}

// Formats are the wire formats per input topic: json, avro or auto.
type Formats struct {
	Predictions schemas.Format `yaml:"predictions"`
	Labels      schemas.Format `yaml:"labels"`
	Pipeline    schemas.Format `yaml:"pipeline"`
}

// SchemaRegistry says where Confluent schema ids are resolved.
type SchemaRegistry struct {
	URL string `yaml:"url"`
	// BundledIDs pins schema ids to bundled schemas (prediction, label, pipeline, alert),
	// for clusters without a registry.
	BundledIDs map[string]uint32 `yaml:"bundled_ids"`
}

// ClickHouse says where results are stored.
type ClickHouse struct {
	Addr          string           `yaml:"addr"`
	Protocol      storage.Protocol `yaml:"protocol"`
	Database      string           `yaml:"database"`
	Username      string           `yaml:"username"`
	Password      Secret           `yaml:"password"`
	PasswordFile  string           `yaml:"password_file"`
	TLS           bool             `yaml:"tls"`
	TLSCAFile     string           `yaml:"tls_ca_file"`
	RetentionDays int              `yaml:"retention_days"`
	MaxBatchRows  int              `yaml:"max_batch_rows"`
	// Cluster names a ClickHouse cluster (the servers' remote_servers): migrations then
	// create every table ON CLUSTER as a local Replicated*MergeTree table behind a
	// Distributed table of the same name (docs/clickhouse-cluster.md). "": one server.
	Cluster string `yaml:"cluster"`
	// ReplicaPath is the Keeper path prefix of the replicated tables (the local table's
	// name is appended); it must contain {shard}.
	ReplicaPath string `yaml:"replica_path"`
	// Embedded runs the ClickHouse engine inside driftd (chDB) and serves it on Listen
	// over ClickHouse's HTTP interface; addr and protocol are then ignored.
	Embedded Embedded `yaml:"embedded"`
}

// Embedded configures the in-process ClickHouse engine.
type Embedded struct {
	Enabled bool   `yaml:"enabled"`
	DataDir string `yaml:"data_dir"`
	Listen  string `yaml:"listen"`
	LibPath string `yaml:"lib_path"`
	// RemoteWrites lets clients with the password on other hosts change data or schema
	// (off: they read).
	RemoteWrites bool `yaml:"remote_writes"`
	// AllowedHosts are the host names clients use to reach the endpoint over plain HTTP,
	// besides IP addresses, localhost and the listen host; any other name in a request's
	// Host header is refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// MaxExecutionTime and MaxMemoryUsage (bytes) bound every query but driftd's own.
	MaxExecutionTime Duration `yaml:"max_execution_time"`
	MaxMemoryUsage   int      `yaml:"max_memory_usage"`
	// MaxBodyBytes caps a client's request body; a larger one is refused with 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// TLSCertFile and TLSKeyFile (PEM) make the endpoint serve HTTPS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// Windows are the default window settings of every model.
type Windows struct {
	Size     Duration `yaml:"size"`
	Lateness Duration `yaml:"lateness"`
	// IdleClose closes a model's open windows after this much wall time without events,
	// once the stream's event-time clock has passed their end (plus the lateness).
	IdleClose Duration `yaml:"idle_close"`
	// Workers is how many goroutines update the windows' aggregates beside the one that
	// reads and judges and the one that decodes (0: the first does; -1, the default: one
	// per core beyond three, none on up to three cores, where the broker's readers and
	// the ClickHouse client use the third). The results are the same either way.
	Workers int `yaml:"workers"`
}

// Detection holds the default thresholds and alerting rules.
type Detection struct {
	// Reference: first_windows (a version's first reference_windows windows, or a file
	// stored with driftd baseline), previous_window, same_window_yesterday or
	// same_window_last_week.
	Reference        detectors.ReferenceSource `yaml:"reference"`
	ReferenceWindows int                       `yaml:"reference_windows"`
	// ReferenceMinEvents: a first-windows reference also waits until its windows hold
	// this many events, so that a low-volume model is not compared with a handful.
	ReferenceMinEvents uint64  `yaml:"reference_min_events"`
	PSIWarning         float64 `yaml:"psi_warning"`
	PSICritical        float64 `yaml:"psi_critical"`
	PValue             float64 `yaml:"p_value"`
	MinEvents          uint64  `yaml:"min_events"`
	LatencyP99Ms       float64 `yaml:"latency_p99_ms"`
	ErrorRate          float64 `yaml:"error_rate"`
	FireAfter          int     `yaml:"fire_after"`
	ResolveAfter       int     `yaml:"resolve_after"`
	// Correction across a window's features: bonferroni or bh (Benjamini–Hochberg).
	Correction detectors.Correction `yaml:"correction"`
	// DriftShare: the share of drifted features at which a window drifts as a whole.
	DriftShare float64 `yaml:"drift_share"`
	// Method (auto, test, distance), Distance (psi, js, hellinger, kl, wasserstein, tvd,
	// linf) and DistanceThreshold decide drift per feature (docs/statistics.md).
	Method            detectors.Method   `yaml:"method"`
	Distance          detectors.Distance `yaml:"distance"`
	DistanceThreshold float64            `yaml:"distance_threshold"`
	// ThresholdFrom is fixed (the thresholds above) or reference (learned per feature from
	// the reference's own variability).
	ThresholdFrom detectors.ThresholdFrom `yaml:"threshold_from"`
	// Test is the hypothesis test of numeric features: ks, ad or cvm; CategoricalTest of
	// categorical ones: chi2, g or z.
	Test            detectors.NumericTest     `yaml:"test"`
	CategoricalTest detectors.CategoricalTest `yaml:"categorical_test"`
	// The signals judged against each version's reference (docs/detection.md):
	// SignalPValue is the per-window level of each signal kind's exact test; the others
	// are the effects that matter (a rate must rise by quality_min_increase or
	// error_min_increase AND to *_min_ratio × the reference's; latency p50/p99 must reach
	// latency_min_ratio × the reference's AND latency_min_increase_ms above it; the mean
	// input size must move by input_size_min_change; events per window must fall to
	// volume_drop × or rise to volume_jump × the expected). 0 disables a rule.
	SignalPValue         float64 `yaml:"signal_p_value"`
	QualityMinIncrease   float64 `yaml:"quality_min_increase"`
	QualityMinRatio      float64 `yaml:"quality_min_ratio"`
	InputSizeMinChange   float64 `yaml:"input_size_min_change"`
	LatencyMinRatio      float64 `yaml:"latency_min_ratio"`
	LatencyMinIncreaseMs float64 `yaml:"latency_min_increase_ms"`
	ErrorMinIncrease     float64 `yaml:"error_min_increase"`
	ErrorMinRatio        float64 `yaml:"error_min_ratio"`
	VolumeDrop           float64 `yaml:"volume_drop"`
	VolumeJump           float64 `yaml:"volume_jump"`
}

// ModelConfig overrides windows and thresholds for one model.
type ModelConfig struct {
	Window           Duration                  `yaml:"window"`
	Lateness         *Duration                 `yaml:"lateness"`
	ReferenceWindows int                       `yaml:"reference_windows"`
	Reference        detectors.ReferenceSource `yaml:"reference"` // "": detection.reference
	Thresholds       Overrides                 `yaml:"thresholds"`
	Features         map[string]Overrides      `yaml:"features"`
	// Labels overrides the labels section for this model (LabelsFor).
	Labels LabelOverrides `yaml:"labels"`
}

// LabelOverrides are optional per-model overrides of the labels section: how long its
// labels are awaited, its change detector's sensitivity and its thresholds.
type LabelOverrides struct {
	Settle               *Duration `yaml:"settle"`
	ADWINDelta           *float64  `yaml:"adwin_delta"`
	ReferenceMinLabelled *uint64   `yaml:"reference_min_labelled"`
	PValue               *float64  `yaml:"p_value"`
	ErrorMinIncrease     *float64  `yaml:"error_min_increase"`
	MAEMinRatio          *float64  `yaml:"mae_min_ratio"`
	MinCoverageRatio     *float64  `yaml:"min_coverage_ratio"`
	ConceptMinIncrease   *float64  `yaml:"concept_min_increase"`
	OutcomeMinChange     *float64  `yaml:"outcome_min_change"`
	OutcomeMinRatio      *float64  `yaml:"outcome_min_ratio"`
}

// LabelsFor returns the labels section as it applies to a model: the section, then the
// model's overrides.
func (c *Config) LabelsFor(model string) Labels {
	l := c.Labels
	m, ok := c.Models[model]
	if !ok {
		return l
	}
	o := m.Labels
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	if o.Settle != nil {
		l.Settle = *o.Settle
	}
	if o.ReferenceMinLabelled != nil {
		l.ReferenceMinLabelled = *o.ReferenceMinLabelled
	}
	set(&l.ADWINDelta, o.ADWINDelta)
	set(&l.PValue, o.PValue)
	set(&l.ErrorMinIncrease, o.ErrorMinIncrease)
	set(&l.MAEMinRatio, o.MAEMinRatio)
	set(&l.MinCoverageRatio, o.MinCoverageRatio)
	set(&l.ConceptMinIncrease, o.ConceptMinIncrease)
	set(&l.OutcomeMinChange, o.OutcomeMinChange)
	set(&l.OutcomeMinRatio, o.OutcomeMinRatio)
	return l
}

// Overrides are optional threshold overrides.
type Overrides struct {
	PSIWarning        *float64                   `yaml:"psi_warning"`
	PSICritical       *float64                   `yaml:"psi_critical"`
	PValue            *float64                   `yaml:"p_value"`
	MinEvents         *uint64                    `yaml:"min_events"`
	LatencyP99Ms      *float64                   `yaml:"latency_p99_ms"`
	ErrorRate         *float64                   `yaml:"error_rate"`
	Method            *detectors.Method          `yaml:"method"`
	Distance          *detectors.Distance        `yaml:"distance"`
	DistanceThreshold *float64                   `yaml:"distance_threshold"`
	ThresholdFrom     *detectors.ThresholdFrom   `yaml:"threshold_from"`
	Test              *detectors.NumericTest     `yaml:"test"`
	CategoricalTest   *detectors.CategoricalTest `yaml:"categorical_test"`

	SignalPValue         *float64 `yaml:"signal_p_value"`
	QualityMinIncrease   *float64 `yaml:"quality_min_increase"`
	QualityMinRatio      *float64 `yaml:"quality_min_ratio"`
	InputSizeMinChange   *float64 `yaml:"input_size_min_change"`
	LatencyMinRatio      *float64 `yaml:"latency_min_ratio"`
	LatencyMinIncreaseMs *float64 `yaml:"latency_min_increase_ms"`
	ErrorMinIncrease     *float64 `yaml:"error_min_increase"`
	ErrorMinRatio        *float64 `yaml:"error_min_ratio"`
	VolumeDrop           *float64 `yaml:"volume_drop"`
	VolumeJump           *float64 `yaml:"volume_jump"`
}

// Pipelines configures the health checks of upstream pipeline stages.
type Pipelines struct {
	Window   Duration `yaml:"window"`
	Lateness Duration `yaml:"lateness"`
	// FailureRate fires pipeline_failure when failed / finished runs in a window reach it;
	// ConsecutiveFailures fires it when that many runs in a row failed.
	FailureRate         float64 `yaml:"failure_rate"`
	ConsecutiveFailures int     `yaml:"consecutive_failures"`
	// VolumeDrop and VolumeJump fire pipeline_volume when a window's records_out falls
	// below VolumeDrop × or rises above VolumeJump × the stage's baseline.
	VolumeDrop float64 `yaml:"volume_drop"`
	VolumeJump float64 `yaml:"volume_jump"`
	// DurationJump fires pipeline_duration when a window's typical run takes that many
	// times its baseline's (and DurationMinIncreaseMs longer); LostMinIncrease/LostMinRatio fire pipeline_volume
	// (records_lost_share) and NullMinIncrease/NullMinRatio pipeline_quality (null_rate)
	// when the share rises by the increase and to the ratio × its baseline's. Each also
	// needs its test's p-value below PValue. 0 turns a rule off (docs/health.md).
	DurationJump          float64 `yaml:"duration_jump"`
	DurationMinIncreaseMs float64 `yaml:"duration_min_increase_ms"`
	LostMinIncrease       float64 `yaml:"lost_min_increase"`
	LostMinRatio          float64 `yaml:"lost_min_ratio"`
	NullMinIncrease       float64 `yaml:"null_min_increase"`
	NullMinRatio          float64 `yaml:"null_min_ratio"`
	PValue                float64 `yaml:"p_value"`
	// FreshnessFactor × the median interval between successes is how long a stage may go
	// without succeeding before pipeline_freshness fires (unless configured per stage).
	FreshnessFactor float64 `yaml:"freshness_factor"`
	// Stages, keyed "pipeline/stage", set an expected interval and the models fed.
	Stages map[string]StageConfig `yaml:"stages"`
}

// dividesDays says whether windows of size d line up with the days: d divides a day, or
// is whole days.
func dividesDays(d time.Duration) bool {
	const day = 24 * time.Hour
	return d > 0 && (day%d == 0 || d%day == 0)
}

// Thresholds are the pipeline health rules as the detectors take them.
func (p Pipelines) Thresholds() detectors.PipelineThresholds {
	return detectors.PipelineThresholds{FailureRate: p.FailureRate, ConsecutiveFailures: p.ConsecutiveFailures, VolumeDrop: p.VolumeDrop,
		VolumeJump: p.VolumeJump, DurationJump: p.DurationJump, DurationMinIncreaseMs: p.DurationMinIncreaseMs, LostMinIncrease: p.LostMinIncrease, LostMinRatio: p.LostMinRatio,
		NullMinIncrease: p.NullMinIncrease, NullMinRatio: p.NullMinRatio, PValue: p.PValue}
}

// StageConfig is one pipeline stage's settings.
type StageConfig struct {
	ExpectedInterval Duration `yaml:"expected_interval"`
	Models           []string `yaml:"models"`
}

// Labels configures the join of ground truth (kafka.topics.labels; "" turns it off) to
// predictions and the judging of model performance and concept drift
// (docs/concept-drift.md).
type Labels struct {
	// Horizon is how long a prediction waits for its label: a later label is counted as
	// beyond the horizon, not joined.
	Horizon Duration `yaml:"horizon"`
	// Settle is how long after a window's end its labels are awaited before the window's
	// performance is judged (once, with the labels stamped up to then).
	Settle Duration `yaml:"settle"`
	// Lateness is how far out of event-time order a label partition may run.
	Lateness Duration `yaml:"lateness"`
	// Detector is the change detector on the loss stream, with River's default
	// parameters (adwin, ddm, eddm, hddm-a, hddm-w, page-hinkley, kswin; the 0/1-only
	// ones watch classification series, and a regression series takes adwin).
	Detector detectors.ChangeKind `yaml:"detector"`
	// ADWINDelta is ADWIN's delta, the significance of its cut test (River: 0.002);
	// smaller finds fewer, larger changes.
	ADWINDelta float64 `yaml:"adwin_delta"`
	// ReferenceMinLabelled: the performance reference is a series' first settled windows
	// (detection.reference_windows of them, with labels) holding at least this many
	// labelled predictions.
	ReferenceMinLabelled uint64 `yaml:"reference_min_labelled"`
	// PValue, ErrorMinIncrease (points of error rate), MAEMinRatio, MinCoverageRatio and
	// ConceptMinIncrease: detectors.PerformanceThresholds.
	PValue             float64 `yaml:"p_value"`
	ErrorMinIncrease   float64 `yaml:"error_min_increase"`
	MAEMinRatio        float64 `yaml:"mae_min_ratio"`
	MinCoverageRatio   float64 `yaml:"min_coverage_ratio"`
	ConceptMinIncrease float64 `yaml:"concept_min_increase"`
	// OutcomeMinChange (points of the rate per prediction; 0 turns outcome judging off)
	// and OutcomeMinRatio: detectors.PerformanceThresholds.
	OutcomeMinChange float64 `yaml:"outcome_min_change"`
	OutcomeMinRatio  float64 `yaml:"outcome_min_ratio"`
}

// ChangeParams are the change detectors' parameters: River's defaults, with ADWINDelta.
func (l Labels) ChangeParams() detectors.ChangeParams {
	p := detectors.DefaultChangeParams()
	p.ADWIN.Delta = l.ADWINDelta
	return p
}

// PerformanceThresholds are the labels section's thresholds.
func (l Labels) PerformanceThresholds() detectors.PerformanceThresholds {
	return detectors.PerformanceThresholds{PValue: l.PValue, ErrorMinIncrease: l.ErrorMinIncrease, MAEMinRatio: l.MAEMinRatio,
		MinCoverageRatio: l.MinCoverageRatio, ReferenceMinLabelled: l.ReferenceMinLabelled, ConceptMinIncrease: l.ConceptMinIncrease,
		OutcomeMinChange: l.OutcomeMinChange, OutcomeMinRatio: l.OutcomeMinRatio}
}

// Limits bound driftd's memory and its waits.
type Limits struct {
	MaxFeatures   int `yaml:"max_features"`
	MaxCategories int `yaml:"max_categories"`
	// MaxFuture sets aside events stamped further ahead of the wall clock (0: no limit).
	MaxFuture Duration `yaml:"max_future"`
	// MaxSeries bounds the series (model, version, deployment; or pipeline stage) with
	// state in memory; events of further series go to the dead-letter topic (class limit)
	// until a series has been idle for a day.
	MaxSeries int `yaml:"max_series"`
	// MaxEventBytes sets aside larger records before decoding them.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// MaxOutage is how long a dependency (ClickHouse, Kafka's group or a partition's
	// leader, the dead-letter or alert topic, the schema registry) may keep failing before driftd exits non-zero, so that a standby
	// (or a restart) takes over instead of holding the partitions (0: wait for ever).
	MaxOutage Duration `yaml:"max_outage"`
}

// AggregateWorkers is windows.workers resolved for this process: -1 is one per core
// (GOMAXPROCS) beyond three.
func (w Windows) AggregateWorkers() int {
	if w.Workers >= 0 {
		return w.Workers
	}
	return max(runtime.GOMAXPROCS(0)-3, 0)
}

// Default returns the defaults.
func Default() Config {
	sig, perf, pl := detectors.DefaultSignalThresholds, detectors.DefaultPerformanceThresholds, detectors.DefaultPipelineThresholds
	return Config{
		Kafka: Kafka{
			Brokers: []string{"localhost:9092"}, GroupID: "driftd",
			Topics:        Topics{Predictions: "ml.predictions", Labels: "ml.labels", Pipeline: "ml.pipeline-events", Alerts: "ml.alerts", DLQ: "ml.dlq"},
			Formats:       Formats{Predictions: schemas.FormatAuto, Labels: schemas.FormatAuto, Pipeline: schemas.FormatAuto},
			AlertFormat:   schemas.FormatJSON,
			FlushInterval: Duration(time.Second), CatchUpFlushInterval: Duration(5 * time.Second),
			GroupMode: consumers.GroupActiveStandby,
		},
		ClickHouse: ClickHouse{Addr: "localhost:9000", Protocol: storage.ProtocolNative, Database: "driftd", Username: "default", RetentionDays: 90, MaxBatchRows: 50000,
			ReplicaPath: dsql.DefaultReplicaPath,
			Embedded: Embedded{DataDir: ".driftd/clickhouse", Listen: "127.0.0.1:8123",
				MaxExecutionTime: Duration(30 * time.Second), MaxMemoryUsage: 1 << 30, MaxBodyBytes: 256 << 20}},
		Windows: Windows{Size: Duration(5 * time.Minute), Lateness: Duration(30 * time.Second), IdleClose: Duration(2 * time.Minute), Workers: -1},
		Detection: Detection{Reference: detectors.SourceFirstWindows, ReferenceWindows: 3, ReferenceMinEvents: 1000, PSIWarning: detectors.DefaultThresholds.PSIWarning, PSICritical: detectors.DefaultThresholds.PSICritical,
			PValue: detectors.DefaultThresholds.PValue, MinEvents: detectors.DefaultThresholds.MinEvents, ErrorRate: detectors.DefaultThresholds.ErrorRate,
			FireAfter: 1, ResolveAfter: 2, Correction: detectors.DefaultThresholds.Correction, DriftShare: detectors.DefaultThresholds.DriftShare,
			Method: detectors.MethodAuto, Distance: detectors.DistancePSI, ThresholdFrom: detectors.ThresholdFixed, Test: detectors.TestKS, CategoricalTest: detectors.TestChi2,
			SignalPValue: sig.PValue, QualityMinIncrease: sig.QualityMinIncrease, QualityMinRatio: sig.QualityMinRatio,
			InputSizeMinChange: sig.InputSizeMinChange, LatencyMinRatio: sig.LatencyMinRatio, LatencyMinIncreaseMs: sig.LatencyMinIncreaseMs,
			ErrorMinIncrease: sig.ErrorMinIncrease, ErrorMinRatio: sig.ErrorMinRatio, VolumeDrop: sig.VolumeDrop, VolumeJump: sig.VolumeJump},
		Pipelines: Pipelines{Window: Duration(time.Hour), Lateness: Duration(5 * time.Minute), FailureRate: pl.FailureRate,
			ConsecutiveFailures: pl.ConsecutiveFailures, VolumeDrop: pl.VolumeDrop, VolumeJump: pl.VolumeJump, DurationJump: pl.DurationJump, DurationMinIncreaseMs: pl.DurationMinIncreaseMs,
			LostMinIncrease: pl.LostMinIncrease, LostMinRatio: pl.LostMinRatio, NullMinIncrease: pl.NullMinIncrease, NullMinRatio: pl.NullMinRatio,
			PValue: pl.PValue, FreshnessFactor: 2},
		Labels: Labels{Horizon: Duration(7 * 24 * time.Hour), Settle: Duration(time.Hour), Lateness: Duration(5 * time.Minute),
			Detector: detectors.ChangeADWIN, ADWINDelta: detectors.DefaultADWINParams().Delta, ReferenceMinLabelled: perf.ReferenceMinLabelled, PValue: perf.PValue,
			ErrorMinIncrease: perf.ErrorMinIncrease, MAEMinRatio: perf.MAEMinRatio, MinCoverageRatio: perf.MinCoverageRatio,
			ConceptMinIncrease: perf.ConceptMinIncrease, OutcomeMinChange: perf.OutcomeMinChange, OutcomeMinRatio: perf.OutcomeMinRatio},
		Canary: Canary{MinEvents: detectors.DefaultCanarySettings.MinEvents, RegressionWindows: detectors.DefaultCanarySettings.RegressionWindows,
			PromoteWindows: detectors.DefaultCanarySettings.PromoteWindows},
		Shadow: Shadow{MinMatched: detectors.DefaultShadowSettings.MinMatched, ReferenceWindows: detectors.DefaultShadowSettings.ReferenceWindows,
			DisagreementMinIncrease: detectors.DefaultShadowSettings.MinIncrease, DisagreementMinRatio: detectors.DefaultShadowSettings.MinRatio},
		Limits: Limits{MaxFeatures: processors.DefaultLimits.MaxFeatures, MaxCategories: processors.DefaultLimits.MaxCategories,
			MaxFuture: Duration(24 * time.Hour), MaxSeries: processors.DefaultLimits.MaxSeries, MaxEventBytes: 1 << 20,
			MaxOutage: Duration(10 * time.Minute)},
		HTTP:     HTTP{Listen: "127.0.0.1:9464", Username: "driftd"},
		LogLevel: LogLevel(slog.LevelInfo),
	}
}

// Load reads path (if not empty) over the defaults, then applies environment overrides
// (env maps names to values; pass os.Environ's content) and validates.
func Load(path string, env map[string]string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is all defaults
			return cfg, fmt.Errorf("config %s: %w", path, locate(b, err))
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "DRIFTD", "", env); err != nil {
		return cfg, err
	}
	if cfg.Kafka.SASL.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Kafka.SASL.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("config: kafka.sasl.password_file: %w", err)
		}
		cfg.Kafka.SASL.Password = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	if cfg.ClickHouse.PasswordFile != "" {
		b, err := os.ReadFile(cfg.ClickHouse.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("config: clickhouse.password_file: %w", err)
		}
		cfg.ClickHouse.Password = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	return cfg, cfg.Validate()
}

// locate names the field a YAML decoding error is about. yaml.v3 reports an option's
// UnmarshalText error (a method, a format) or a Duration's without its place, so the
// document is walked beside Config's type to find the first value that fails to parse;
// other errors (syntax, unknown fields, type mismatches) already carry a line number and
// come back as they are.
func locate(doc []byte, err error) error {
	var n yaml.Node
	if yaml.Unmarshal(doc, &n) != nil {
		return err
	}
	if field, line, ferr := firstBadValue(&n, reflect.TypeOf(Config{}), ""); ferr != nil {
		return fmt.Errorf("%s (line %d): %w", field, line, ferr)
	}
	return err
}

func firstBadValue(n *yaml.Node, t reflect.Type, path string) (string, int, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		for _, c := range n.Content {
			if f, line, err := firstBadValue(c, t, path); err != nil {
				return f, line, err
			}
		}
		if n.Alias != nil {
			return firstBadValue(n.Alias, t, path)
		}
		return "", 0, nil
	}
	v := reflect.New(t).Interface()
	if u, ok := v.(yaml.Unmarshaler); ok && n.Kind == yaml.ScalarNode {
		return path, n.Line, u.UnmarshalYAML(n)
	}
	if u, ok := v.(encoding.TextUnmarshaler); ok && n.Kind == yaml.ScalarNode {
		return path, n.Line, u.UnmarshalText([]byte(n.Value))
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			for j := 0; j < t.NumField(); j++ {
				if strings.Split(t.Field(j).Tag.Get("yaml"), ",")[0] == key {
					if f, line, err := firstBadValue(n.Content[i+1], t.Field(j).Type, joinPath(path, key)); err != nil {
						return f, line, err
					}
				}
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, line, err := firstBadValue(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value)); err != nil {
				return f, line, err
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			if f, line, err := firstBadValue(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return f, line, err
			}
		}
	}
	return "", 0, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Environ turns os.Environ() into a map.
func Environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyEnv sets every scalar (and string list) field from PREFIX_PATH_TO_FIELD, e.g.
// DRIFTD_KAFKA_BROKERS=a:9092,b:9092 or DRIFTD_CLICKHOUSE_PASSWORD; path is the fields'
// YAML path, for errors.
func applyEnv(v reflect.Value, prefix, path string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name, field := prefix+"_"+strings.ToUpper(tag), joinPath(path, tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, field, env); err != nil {
				return err
			}
			continue
		}
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setFromString(fv, raw); err != nil {
			return fmt.Errorf("config: %s (%s): %w", field, name, err)
		}
	}
	return nil
}

func setFromString(fv reflect.Value, raw string) error {
	// The options' own types (a method, a format, a log level) parse their text, and
	// name the accepted values when it is not one of them.
	if u, ok := fv.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch {
	case fv.Type() == reflect.TypeOf(Duration(0)):
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 90s, 5m or 1h", raw)
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		fv.SetInt(int64(n))
	case fv.Kind() == reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		fv.SetUint(n)
	case fv.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		fv.SetFloat(x)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment; use the config file")
	}
	return nil
}

// Validate checks the configuration, section by section; the first error names its
// field.
func (c *Config) Validate() error {
	for _, check := range []func() error{c.Kafka.validate, c.ClickHouse.validate, c.Windows.validate, c.validateDetection,
		c.validateModels, c.Pipelines.validate, c.validateLabels, c.Canary.validate, c.Shadow.validate, c.Limits.validate, c.validateHTTP} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// invalid is the error of a field's value.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...))
}

// validate checks the kafka section.
func (k *Kafka) validate() error {
	if len(k.Brokers) == 0 {
		return invalid("kafka.brokers", "at least one broker is needed")
	}
	for _, b := range k.Brokers {
		if !strings.Contains(b, ":") {
			return invalid("kafka.brokers", "%q is not host:port", b)
		}
	}
	if k.GroupID == "" {
		return invalid("kafka.group_id", "must not be empty")
	}
	for field, topic := range map[string]string{"kafka.topics.predictions": k.Topics.Predictions, "kafka.topics.alerts": k.Topics.Alerts, "kafka.topics.dlq": k.Topics.DLQ} {
		if topic == "" {
			return invalid(field, "must not be empty")
		}
	}
	// One role per topic: records are routed by topic, so a topic named twice would send
	// every record one way (predictions read as pipeline runs), and reading the alert or
	// dead-letter topic would feed driftd its own output.
	roles := map[string]string{}
	for _, r := range [][2]string{{"kafka.topics.predictions", k.Topics.Predictions}, {"kafka.topics.labels", k.Topics.Labels},
		{"kafka.topics.pipeline", k.Topics.Pipeline}, {"kafka.topics.alerts", k.Topics.Alerts}, {"kafka.topics.dlq", k.Topics.DLQ}} {
		if r[1] == "" {
			continue
		}
		if other, ok := roles[r[1]]; ok {
			return invalid(r[0], "%q is %s too: each topic has one role", r[1], other)
		}
		roles[r[1]] = r[0]
	}
	if k.AlertFormat == schemas.FormatAuto {
		return invalid("kafka.alert_format", "auto reads either format; alerts are written in one: json or avro")
	}
	if k.AlertFormat == schemas.FormatAvro && k.SchemaRegistry.BundledIDs["alert"] == 0 {
		return invalid("kafka.schema_registry.bundled_ids.alert", "Avro alerts need the schema id to frame them with")
	}
	for name := range k.SchemaRegistry.BundledIDs {
		if _, err := schemas.BundledSchema(name); err != nil {
			return invalid("kafka.schema_registry.bundled_ids."+name, "no bundled schema of that name (prediction, label, pipeline, alert)")
		}
	}
	if k.SASL.Mechanism != consumers.SASLNone && k.SASL.Username == "" {
		return invalid("kafka.sasl.username", "needed for SASL %s", k.SASL.Mechanism)
	}
	if k.TLS.CAFile != "" && !k.TLS.Enabled {
		return invalid("kafka.tls.ca_file", "set kafka.tls.enabled too")
	}
	if k.FlushInterval <= 0 {
		return invalid("kafka.flush_interval", "must be positive")
	}
	if k.CatchUpFlushInterval < 0 || k.CatchUpFlushInterval > Duration(time.Minute) {
		return invalid("kafka.catch_up_flush_interval", "must be between 0 (flush every flush_interval) and 1m: windows, alerts and commits wait this long")
	}
	return nil
}

// validate checks the clickhouse section.
func (ch *ClickHouse) validate() error {
	if e := ch.Embedded; (e.TLSCertFile == "") != (e.TLSKeyFile == "") {
		return invalid("clickhouse.embedded.tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
	}
	if ch.TLSCAFile != "" && !ch.TLS {
		return invalid("clickhouse.tls_ca_file", "set clickhouse.tls too")
	}
	if ch.Addr == "" || !strings.Contains(ch.Addr, ":") {
		return invalid("clickhouse.addr", "%q is not host:port", ch.Addr)
	}
	if !dsql.ValidIdentifier(ch.Database) {
		return invalid("clickhouse.database", "%q: use letters, digits and underscores", ch.Database)
	}
	if err := dsql.CheckCluster(ch.Cluster); err != nil {
		return invalid("clickhouse.cluster", "%v", err)
	}
	if ch.Cluster != "" {
		if ch.Embedded.Enabled {
			// The embedded engine has no Keeper and no distributed DDL queue.
			return invalid("clickhouse.cluster", "a cluster needs ClickHouse servers; turn clickhouse.embedded off")
		}
		if err := dsql.CheckReplicaPath(ch.ReplicaPath); err != nil {
			return invalid("clickhouse.replica_path", "%v", err)
		}
	}
	if e := ch.Embedded; e.Enabled {
		if !strings.Contains(e.Listen, ":") {
			return invalid("clickhouse.embedded.listen", "%q is not host:port", e.Listen)
		}
		if !LoopbackOnly(e.Listen) && ch.Password == "" {
			return invalid("clickhouse.embedded.listen", "%q can be reached from other hosts, and no clickhouse.password is set: "+
				"set one (or password_file) so that clients must authenticate, or listen on 127.0.0.1", e.Listen)
		}
		if e.MaxExecutionTime < 0 {
			return invalid("clickhouse.embedded.max_execution_time", "must not be negative (0: no limit)")
		}
		if e.MaxMemoryUsage < 0 {
			return invalid("clickhouse.embedded.max_memory_usage", "must not be negative (0: no limit)")
		}
		if e.MaxBodyBytes < 1 {
			return invalid("clickhouse.embedded.max_body_bytes", "must be at least 1")
		}
	}
	if ch.RetentionDays < 1 {
		return invalid("clickhouse.retention_days", "must be at least 1")
	}
	if ch.MaxBatchRows < 1 {
		return invalid("clickhouse.max_batch_rows", "must be at least 1")
	}
	return nil
}

// validate checks the windows section.
func (w *Windows) validate() error {
	if err := checkWindow("windows", w.Size, w.Lateness); err != nil {
		return err
	}
	if w.IdleClose <= 0 {
		return invalid("windows.idle_close", "must be positive")
	}
	if w.Workers < -1 || w.Workers > 256 {
		return invalid("windows.workers", "must be -1 (one per core beyond three) or between 0 and 256")
	}
	return nil
}

// validateDetection checks the detection section, with the thresholds it resolves to.
func (c *Config) validateDetection() error {
	if c.Detection.ReferenceMinEvents < 1 {
		return invalid("detection.reference_min_events", "must be at least 1")
	}
	if c.Detection.ReferenceWindows < 1 {
		return invalid("detection.reference_windows", "must be at least 1")
	}
	if err := checkThresholds("detection", c.Detection.PSIWarning, c.Detection.PSICritical, c.Detection.PValue, c.Detection.ErrorRate); err != nil {
		return err
	}
	if err := checkDistanceThreshold("detection", c.Thresholds("", "")); err != nil {
		return err
	}
	if err := checkSignals("detection", c.Thresholds("", "").Signals); err != nil {
		return err
	}
	if c.Detection.DriftShare < 0 || c.Detection.DriftShare > 1 {
		return invalid("detection.drift_share", "must be between 0 and 1 (0 disables)")
	}
	if c.Detection.FireAfter < 1 || c.Detection.ResolveAfter < 1 {
		return invalid("detection.fire_after", "fire_after and resolve_after must be at least 1")
	}
	return nil
}

// validateModels checks each model's overrides, with the thresholds they resolve to.
func (c *Config) validateModels() error {
	for name, m := range c.Models {
		if name == "" {
			return invalid("models", "a model has an empty name")
		}
		size, late := c.Windows.Size, c.Windows.Lateness
		if m.Window != 0 {
			size = m.Window
		}
		if m.Lateness != nil {
			late = *m.Lateness
		}
		if err := checkWindow("models."+name, size, late); err != nil {
			return err
		}
		if m.ReferenceWindows < 0 {
			return invalid("models."+name+".reference_windows", "must not be negative")
		}
		th := c.Thresholds(name, "")
		if err := checkThresholds("models."+name+".thresholds", th.PSIWarning, th.PSICritical, th.PValue, th.ErrorRate); err != nil {
			return err
		}
		if err := checkDistanceThreshold("models."+name+".thresholds", th); err != nil {
			return err
		}
		if err := checkSignals("models."+name+".thresholds", th.Signals); err != nil {
			return err
		}
		for f := range m.Features {
			th := c.Thresholds(name, f)
			if err := checkThresholds("models."+name+".features."+f, th.PSIWarning, th.PSICritical, th.PValue, th.ErrorRate); err != nil {
				return err
			}
			if err := checkDistanceThreshold("models."+name+".features."+f, th); err != nil {
				return err
			}
			if err := checkSignals("models."+name+".features."+f, th.Signals); err != nil {
				return err
			}
		}
	}
	return nil
}

// validate checks the pipelines section.
func (pl *Pipelines) validate() error {
	if err := checkWindow("pipelines", pl.Window, pl.Lateness); err != nil {
		return err
	}
	switch {
	case pl.FailureRate <= 0 || pl.FailureRate > 1:
		return invalid("pipelines.failure_rate", "must be in (0, 1]")
	case pl.ConsecutiveFailures < 1:
		return invalid("pipelines.consecutive_failures", "must be at least 1")
	case !(pl.VolumeDrop > 0 && pl.VolumeDrop < 1):
		return invalid("pipelines.volume_drop", "must be between 0 and 1")
	case !(pl.VolumeJump > 1 && pl.VolumeJump < math.Inf(1)):
		return invalid("pipelines.volume_jump", "must be above 1")
	case pl.FreshnessFactor < 1:
		return invalid("pipelines.freshness_factor", "must be at least 1")
	case pl.DurationJump != 0 && !(pl.DurationJump > 1 && pl.DurationJump < math.Inf(1)):
		return invalid("pipelines.duration_jump", "must be above 1 (0 disables)")
	case !(pl.DurationMinIncreaseMs >= 0 && pl.DurationMinIncreaseMs < math.Inf(1)):
		return invalid("pipelines.duration_min_increase_ms", "must be at least 0")
	case !(pl.LostMinIncrease >= 0 && pl.LostMinIncrease < 1):
		return invalid("pipelines.lost_min_increase", "must be in [0, 1) (0 disables)")
	case !(pl.LostMinRatio >= 1 && pl.LostMinRatio < math.Inf(1)):
		return invalid("pipelines.lost_min_ratio", "must be at least 1")
	case !(pl.NullMinIncrease >= 0 && pl.NullMinIncrease < math.Inf(1)):
		return invalid("pipelines.null_min_increase", "must be at least 0 (0 disables)")
	case !(pl.NullMinRatio >= 1 && pl.NullMinRatio < math.Inf(1)):
		return invalid("pipelines.null_min_ratio", "must be at least 1")
	case !(pl.PValue > 0 && pl.PValue < 1):
		return invalid("pipelines.p_value", "must be between 0 and 1")
	case !dividesDays(time.Duration(pl.Window)):
		return invalid("pipelines.window", "must divide a day (1h, 30m, 5m, …) or be whole days: a stage's baselines are the same time of the previous days")
	}
	for key, st := range pl.Stages {
		if p, s, ok := strings.Cut(key, "/"); !ok || p == "" || s == "" {
			return invalid("pipelines.stages."+key, "key must be pipeline/stage")
		}
		if st.ExpectedInterval < 0 {
			return invalid("pipelines.stages."+key+".expected_interval", "must not be negative")
		}
	}
	return nil
}

// validateLabels checks the labels section and each model's labels as resolved.
func (c *Config) validateLabels() error {
	if err := checkLabels("labels", c.Labels); err != nil {
		return err
	}
	for name := range c.Models {
		if err := checkLabels("models."+name+".labels", c.LabelsFor(name)); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the canary section.
func (cn *Canary) validate() error {
	if cn.MinEvents < 1 {
		return invalid("canary.min_events", "must be at least 1")
	}
	if cn.RegressionWindows < 1 || cn.PromoteWindows < 1 {
		return invalid("canary.regression_windows", "regression_windows and promote_windows must be at least 1")
	}
	return nil
}

// validate checks the shadow section.
func (sh *Shadow) validate() error {
	if sh.MinMatched < 1 || sh.ReferenceWindows < 1 {
		return invalid("shadow.min_matched", "min_matched and reference_windows must be at least 1")
	}
	if sh.DisagreementMinIncrease <= 0 || sh.DisagreementMinRatio < 1 {
		return invalid("shadow.disagreement_min_increase", "disagreement_min_increase must be above 0 and disagreement_min_ratio at least 1")
	}
	if sh.MinAgreement < 0 || sh.MinAgreement >= 1 {
		return invalid("shadow.min_agreement", "must be in [0, 1) (0: off)")
	}
	return nil
}

// validate checks the limits section.
func (l *Limits) validate() error {
	if l.MaxFuture < 0 {
		return invalid("limits.max_future", "must not be negative (0 disables)")
	}
	if l.MaxOutage < 0 {
		return invalid("limits.max_outage", "must not be negative (0: wait for ever)")
	}
	if l.MaxFeatures < 1 || l.MaxCategories < 1 {
		return invalid("limits", "max_features and max_categories must be at least 1")
	}
	if l.MaxSeries < 1 {
		return invalid("limits.max_series", "must be at least 1")
	}
	if l.MaxEventBytes < 1024 {
		return invalid("limits.max_event_bytes", "%d is below 1024", l.MaxEventBytes)
	}
	return nil
}

// validateHTTP checks the http section and the host names the web pages answer to.
func (c *Config) validateHTTP() error {
	if c.HTTP.Listen != "" && !strings.Contains(c.HTTP.Listen, ":") {
		return invalid("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	for _, hosts := range []struct {
		field string
		names []string
	}{{"http.allowed_hosts", c.HTTP.AllowedHosts}, {"clickhouse.embedded.allowed_hosts", c.ClickHouse.Embedded.AllowedHosts}} {
		for _, n := range hosts.names {
			if err := webguard.CheckName(n); err != nil {
				return invalid(hosts.field, "%v", err)
			}
		}
	}
	return nil
}

// ReferenceSource returns a model's kind of reference.
func (c *Config) ReferenceSource(model string) detectors.ReferenceSource {
	if m, ok := c.Models[model]; ok && m.Reference != "" {
		return m.Reference
	}
	return c.Detection.Reference
}

// checkDistanceThreshold checks the one drift-method setting that is a number: the method,
// distance and tests are valid once parsed (their UnmarshalText).
func checkDistanceThreshold(field string, th detectors.Thresholds) error {
	if th.DistanceThreshold < 0 {
		return fmt.Errorf("config: %s.distance_threshold: must not be negative", field)
	}
	return nil
}

// checkLabels checks a labels section (or a model's, overrides applied).
func checkLabels(field string, lb Labels) error {
	fail := func(name, format string, args ...any) error {
		return fmt.Errorf("config: %s.%s: %s", field, name, fmt.Sprintf(format, args...))
	}
	switch {
	case lb.Horizon <= 0:
		return fail("horizon", "must be positive")
	case lb.Settle < 0:
		return fail("settle", "must not be negative")
	case lb.Settle >= lb.Horizon:
		// A window is loaded to settle only while its end is within the horizon.
		return fail("settle", "must be shorter than the horizon (%s)", time.Duration(lb.Horizon))
	case lb.Lateness < 0:
		return fail("lateness", "must not be negative")
	case !(lb.ADWINDelta > 0 && lb.ADWINDelta < 1):
		return fail("adwin_delta", "must be between 0 and 1")
	case !(lb.PValue > 0 && lb.PValue < 1):
		return fail("p_value", "must be between 0 and 1")
	case !(lb.ErrorMinIncrease >= 0 && lb.ErrorMinIncrease < 1):
		return fail("error_min_increase", "must be in [0, 1) (0 turns classification judging off)")
	case lb.MAEMinRatio != 0 && !(lb.MAEMinRatio > 1):
		return fail("mae_min_ratio", "must be above 1 (0 turns regression judging off)")
	case !(lb.MinCoverageRatio >= 0 && lb.MinCoverageRatio <= 1):
		return fail("min_coverage_ratio", "must be in [0, 1]")
	case !(lb.ConceptMinIncrease > 0):
		return fail("concept_min_increase", "must be positive")
	case !(lb.OutcomeMinChange >= 0 && lb.OutcomeMinChange < 1):
		return fail("outcome_min_change", "must be in [0, 1) (0 turns outcome judging off)")
	case !(lb.OutcomeMinRatio >= 1):
		return fail("outcome_min_ratio", "must be at least 1")
	}
	if _, err := detectors.NewChangeDetector(lb.Detector, lb.ChangeParams()); err != nil {
		return fail("detector", "%v", err)
	}
	return nil
}

func checkSignals(field string, s detectors.SignalThresholds) error {
	fail := func(name, format string, args ...any) error {
		return fmt.Errorf("config: %s.%s: %s", field, name, fmt.Sprintf(format, args...))
	}
	switch {
	case s.PValue <= 0 || s.PValue >= 1:
		return fail("signal_p_value", "must be between 0 and 1")
	case s.QualityMinIncrease < 0 || s.QualityMinIncrease > 1:
		return fail("quality_min_increase", "must be between 0 and 1 (0 disables)")
	case s.QualityMinRatio < 1:
		return fail("quality_min_ratio", "must be at least 1")
	case s.InputSizeMinChange < 0:
		return fail("input_size_min_change", "must not be negative (0 disables)")
	case s.LatencyMinRatio != 0 && s.LatencyMinRatio < 1:
		return fail("latency_min_ratio", "must be at least 1 (0 disables)")
	case s.LatencyMinIncreaseMs < 0:
		return fail("latency_min_increase_ms", "must not be negative")
	case s.ErrorMinIncrease < 0 || s.ErrorMinIncrease > 1:
		return fail("error_min_increase", "must be between 0 and 1 (0 disables)")
	case s.ErrorMinRatio < 1:
		return fail("error_min_ratio", "must be at least 1")
	case s.VolumeDrop < 0 || s.VolumeDrop >= 1:
		return fail("volume_drop", "must be in [0, 1) (0 disables)")
	case s.VolumeJump != 0 && s.VolumeJump <= 1:
		return fail("volume_jump", "must be above 1 (0 disables)")
	}
	return nil
}

func checkWindow(field string, size, lateness Duration) error {
	switch {
	case size < Duration(time.Second):
		return fmt.Errorf("config: %s.size: must be at least 1s, got %v", field, time.Duration(size))
	case time.Duration(size)%time.Millisecond != 0:
		return fmt.Errorf("config: %s.size: must be a whole number of milliseconds", field)
	case lateness < 0:
		return fmt.Errorf("config: %s.lateness: must not be negative", field)
	}
	return nil
}

func checkThresholds(field string, warn, crit, p, errRate float64) error {
	switch {
	case warn <= 0:
		return fmt.Errorf("config: %s.psi_warning: must be positive", field)
	case crit < warn:
		return fmt.Errorf("config: %s.psi_critical: must be at least psi_warning (%v)", field, warn)
	case p <= 0 || p >= 1:
		return fmt.Errorf("config: %s.p_value: must be between 0 and 1", field)
	case errRate < 0 || errRate > 1:
		return fmt.Errorf("config: %s.error_rate: must be between 0 and 1", field)
	}
	return nil
}

// WindowSpec returns a model's window size and lateness.
func (c *Config) WindowSpec(model string) processors.WindowSpec {
	spec := processors.WindowSpec{Size: time.Duration(c.Windows.Size), Lateness: time.Duration(c.Windows.Lateness)}
	if m, ok := c.Models[model]; ok {
		if m.Window != 0 {
			spec.Size = time.Duration(m.Window)
		}
		if m.Lateness != nil {
			spec.Lateness = time.Duration(*m.Lateness)
		}
	}
	return spec
}

// ReferenceWindows returns how many first windows build a model version's reference.
func (c *Config) ReferenceWindows(model string) int {
	if m, ok := c.Models[model]; ok && m.ReferenceWindows > 0 {
		return m.ReferenceWindows
	}
	return c.Detection.ReferenceWindows
}

// Thresholds returns the thresholds of a model's feature ("" for model-level ones):
// defaults, then the model's overrides, then the feature's.
func (c *Config) Thresholds(model, feature string) detectors.Thresholds {
	d := c.Detection
	th := detectors.Thresholds{PSIWarning: d.PSIWarning, PSICritical: d.PSICritical, PValue: d.PValue,
		MinEvents: d.MinEvents, LatencyP99Ms: d.LatencyP99Ms, ErrorRate: d.ErrorRate, Correction: d.Correction, DriftShare: d.DriftShare,
		Method: d.Method, Distance: d.Distance, DistanceThreshold: d.DistanceThreshold, ThresholdFrom: d.ThresholdFrom, Test: d.Test, CategoricalTest: d.CategoricalTest,
		Signals: detectors.SignalThresholds{PValue: d.SignalPValue, QualityMinIncrease: d.QualityMinIncrease, QualityMinRatio: d.QualityMinRatio,
			InputSizeMinChange: d.InputSizeMinChange, LatencyMinRatio: d.LatencyMinRatio, LatencyMinIncreaseMs: d.LatencyMinIncreaseMs,
			ErrorMinIncrease: d.ErrorMinIncrease, ErrorMinRatio: d.ErrorMinRatio, VolumeDrop: d.VolumeDrop, VolumeJump: d.VolumeJump}}
	m, ok := c.Models[model]
	if !ok {
		return th
	}
	m.Thresholds.apply(&th)
	if f, ok := m.Features[feature]; ok && feature != "" {
		f.apply(&th)
	}
	return th
}

func (o Overrides) apply(th *detectors.Thresholds) {
	if o.PSIWarning != nil {
		th.PSIWarning = *o.PSIWarning
	}
	if o.PSICritical != nil {
		th.PSICritical = *o.PSICritical
	}
	if o.PValue != nil {
		th.PValue = *o.PValue
	}
	if o.MinEvents != nil {
		th.MinEvents = *o.MinEvents
	}
	if o.LatencyP99Ms != nil {
		th.LatencyP99Ms = *o.LatencyP99Ms
	}
	if o.ErrorRate != nil {
		th.ErrorRate = *o.ErrorRate
	}
	if o.Method != nil {
		th.Method = *o.Method
	}
	if o.Distance != nil {
		th.Distance = *o.Distance
	}
	if o.DistanceThreshold != nil {
		th.DistanceThreshold = *o.DistanceThreshold
	}
	if o.ThresholdFrom != nil {
		th.ThresholdFrom = *o.ThresholdFrom
	}
	if o.Test != nil {
		th.Test = *o.Test
	}
	if o.CategoricalTest != nil {
		th.CategoricalTest = *o.CategoricalTest
	}
	for _, f := range []struct {
		from *float64
		to   *float64
	}{{o.SignalPValue, &th.Signals.PValue}, {o.QualityMinIncrease, &th.Signals.QualityMinIncrease}, {o.QualityMinRatio, &th.Signals.QualityMinRatio},
		{o.InputSizeMinChange, &th.Signals.InputSizeMinChange}, {o.LatencyMinRatio, &th.Signals.LatencyMinRatio},
		{o.LatencyMinIncreaseMs, &th.Signals.LatencyMinIncreaseMs}, {o.ErrorMinIncrease, &th.Signals.ErrorMinIncrease},
		{o.ErrorMinRatio, &th.Signals.ErrorMinRatio}, {o.VolumeDrop, &th.Signals.VolumeDrop}, {o.VolumeJump, &th.Signals.VolumeJump}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
}

// StageInterval is a stage's configured expected interval between successes (0: learn it).
func (c *Config) StageInterval(pipeline, stage string) time.Duration {
	return time.Duration(c.Pipelines.Stages[pipeline+"/"+stage].ExpectedInterval)
}

// StagesOf lists the (pipeline, stage) pairs configured as feeding model.
func (c *Config) StagesOf(model string) [][2]string {
	var out [][2]string
	for key, st := range c.Pipelines.Stages {
		for _, m := range st.Models {
			if m == model {
				p, s, _ := strings.Cut(key, "/")
				out = append(out, [2]string{p, s})
			}
		}
	}
	return out
}

// LoopbackOnly reports whether a listen address (host:port) is reachable from this host
// only: a loopback IP or localhost. An empty host or 0.0.0.0 listens on every interface;
// any other name may resolve to anything.
func LoopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
