package pipeline

import (
	"time"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// DefaultDecodeAhead is how many records driftd run decodes ahead of the window updates:
// enough to keep the decoding goroutine busy through a flush's pause, a few MB at most.
const DefaultDecodeAhead = 512

// DefaultStartupGrace holds every window open after the first record (Settings.StartupGrace).
const DefaultStartupGrace = 5 * time.Second

// SettingsFromConfig are the pipeline's settings from a configuration: what driftd run
// uses, and what driftd detect-bench and the replay tests measure (so that they measure
// the real defaults). Observer and the clock-dependent parts are the caller's.
func SettingsFromConfig(cfg config.Config, predictions, pipelines schemas.Decoder) Settings {
	set := Settings{
		PredictionTopic:      cfg.Kafka.Topics.Predictions,
		Decoder:              predictions,
		WindowSpec:           cfg.WindowSpec,
		Thresholds:           cfg.Thresholds,
		ReferenceWindows:     cfg.ReferenceWindows,
		ReferenceMinEvents:   cfg.Detection.ReferenceMinEvents,
		Spread:               cfg.Kafka.GroupMode.Spread(),
		ReferenceSource:      cfg.ReferenceSource,
		FireAfter:            cfg.Detection.FireAfter,
		ResolveAfter:         cfg.Detection.ResolveAfter,
		FlushInterval:        time.Duration(cfg.Kafka.FlushInterval),
		CatchUpFlushInterval: time.Duration(cfg.Kafka.CatchUpFlushInterval),
		IdleClose:            time.Duration(cfg.Windows.IdleClose),
		StartupGrace:         DefaultStartupGrace,
		MaxOutage:            time.Duration(cfg.Limits.MaxOutage),
		MaxFuture:            time.Duration(cfg.Limits.MaxFuture),
		MaxEventBytes:        cfg.Limits.MaxEventBytes,
		LabelBatch:           max(cfg.ClickHouse.MaxBatchRows/2, 1),
		DecodeAhead:          DefaultDecodeAhead,
		AggregateWorkers:     cfg.Windows.AggregateWorkers(),
		PipelineTopic:        cfg.Kafka.Topics.Pipeline,
		PipelineDecoder:      pipelines,
		PipelineWindow:       processors.WindowSpec{Size: time.Duration(cfg.Pipelines.Window), Lateness: time.Duration(cfg.Pipelines.Lateness)},
		PipelineThresholds:   cfg.Pipelines.Thresholds(),
		FreshnessFactor:      cfg.Pipelines.FreshnessFactor,
		StageInterval:        cfg.StageInterval,
		StagesOf:             cfg.StagesOf,
		LabelTopic:           cfg.Kafka.Topics.Labels,
		LabelDecoder:         schemas.Decoder{Format: cfg.Kafka.Formats.Labels, Registry: predictions.Registry},
		Labels:               labelSettings(cfg.Labels),
		Canary:               cfg.Canary.Settings(),
		Shadow:               cfg.Shadow.Settings(cfg.Detection.SignalPValue),
	}
	set.Labels.ForModel = func(model string) LabelSettings { return labelSettings(cfg.LabelsFor(model)) }
	set.Labels.MinSettle = set.Labels.Settle
	for name := range cfg.Models {
		set.Labels.MinSettle = min(set.Labels.MinSettle, time.Duration(cfg.LabelsFor(name).Settle))
	}
	set.Limits.MaxFeatures, set.Limits.MaxCategories, set.Limits.MaxSeries = cfg.Limits.MaxFeatures, cfg.Limits.MaxCategories, cfg.Limits.MaxSeries
	return set
}

// labelSettings are a labels section's settings (the section's, or a model's with its
// overrides).
func labelSettings(l config.Labels) LabelSettings {
	return LabelSettings{Horizon: time.Duration(l.Horizon), Settle: time.Duration(l.Settle), Lateness: time.Duration(l.Lateness),
		Detector: l.Detector, Change: l.ChangeParams(), Thresholds: l.PerformanceThresholds()}
}
