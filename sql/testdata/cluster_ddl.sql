-- setup (storage.Migrate, before reading schema_migrations)
CREATE DATABASE IF NOT EXISTS driftd ON CLUSTER 'driftd';

CREATE TABLE IF NOT EXISTS driftd.schema_migrations_local ON CLUSTER 'driftd' (version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/schema_migrations_local', '{replica}', applied_at) ORDER BY version;

CREATE TABLE IF NOT EXISTS driftd.schema_migrations ON CLUSTER 'driftd' AS driftd.schema_migrations_local
ENGINE = Distributed('driftd', 'driftd', 'schema_migrations_local', version);

-- 0001_init
CREATE TABLE IF NOT EXISTS driftd.window_model_stats_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    topic String,
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    events UInt64,
    ok UInt64,
    errors UInt64,
    timeouts UInt64,
    null_predictions UInt64,
    latency_p50 Float64,
    latency_p90 Float64,
    latency_p95 Float64,
    latency_p99 Float64,
    latency_max Float64,
    latency_sketch String,
    input_size_count UInt64,
    input_size_mean Float64,
    input_size_std Float64,
    input_size_min Float64,
    input_size_max Float64,
    dropped_features UInt64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/window_model_stats_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.window_model_stats ON CLUSTER 'driftd' AS driftd.window_model_stats_local
ENGINE = Distributed('driftd', 'driftd', 'window_model_stats_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.window_feature_stats_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    topic String,
    partition Int32,
    feature String,
    kind String,
    count UInt64,
    missing UInt64,
    mismatched UInt64,
    mean Float64,
    std Float64,
    min Float64,
    max Float64,
    p50 Float64,
    p90 Float64,
    p95 Float64,
    p99 Float64,
    sketch String,
    reference_id String,
    bin_edges Array(Float64),
    bin_counts Array(UInt64),
    categories Map(String, UInt64),
    unseen UInt64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/window_feature_stats_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, feature, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.window_feature_stats ON CLUSTER 'driftd' AS driftd.window_feature_stats_local
ENGINE = Distributed('driftd', 'driftd', 'window_feature_stats_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.drift_scores_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    feature String,
    kind String,
    reference_id String,
    n UInt64,
    psi Float64,
    test String,
    statistic Float64,
    p_value Float64,
    alpha Float64,
    drifted UInt8,
    severity String,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/drift_scores_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, feature, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.drift_scores ON CLUSTER 'driftd' AS driftd.drift_scores_local
ENGINE = Distributed('driftd', 'driftd', 'drift_scores_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.alerts_local ON CLUSTER 'driftd' (
    alert_id String,
    fingerprint String,
    state String,
    severity String,
    kind String,
    model String,
    model_version String,
    deployment String,
    feature String,
    pipeline String,
    stage String,
    metric String,
    value Float64,
    threshold Float64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    emitted_at DateTime64(3, 'UTC'),
    summary String,
    details Map(String, String)
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alerts_local', '{replica}', emitted_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY alert_id
TTL toDateTime(window_end) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.alerts ON CLUSTER 'driftd' AS driftd.alerts_local
ENGINE = Distributed('driftd', 'driftd', 'alerts_local', cityHash64(fingerprint));

CREATE TABLE IF NOT EXISTS driftd.late_events_local ON CLUSTER 'driftd' (
    topic String,
    partition Int32,
    offset Int64,
    event_id String,
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    event_time DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/late_events_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (topic, partition, offset)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.late_events ON CLUSTER 'driftd' AS driftd.late_events_local
ENGINE = Distributed('driftd', 'driftd', 'late_events_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.reference_profiles_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    reference_id String,
    source String,
    created_at DateTime64(3, 'UTC'),
    windows UInt32,
    events UInt64,
    profile String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/reference_profiles_local', '{replica}', created_at)
ORDER BY (model, model_version, reference_id);

CREATE TABLE IF NOT EXISTS driftd.reference_profiles ON CLUSTER 'driftd' AS driftd.reference_profiles_local
ENGINE = Distributed('driftd', 'driftd', 'reference_profiles_local', cityHash64(model));

-- 0002_pipeline_stages
CREATE TABLE IF NOT EXISTS driftd.pipeline_stage_stats_local ON CLUSTER 'driftd' (
    pipeline String,
    stage String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    topic String,
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    runs UInt64,
    failures UInt64,
    duration_p50 Float64,
    duration_p90 Float64,
    duration_p99 Float64,
    duration_max Float64,
    records_in Float64,
    records_out Float64,
    records_lost Float64,
    null_count Float64,
    last_success DateTime64(3, 'UTC'),
    errors Map(String, UInt64),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/pipeline_stage_stats_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (pipeline, stage, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.pipeline_stage_stats ON CLUSTER 'driftd' AS driftd.pipeline_stage_stats_local
ENGINE = Distributed('driftd', 'driftd', 'pipeline_stage_stats_local', cityHash64(pipeline));

-- 0003_drift_distances
ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS p_adjusted Float64 DEFAULT p_value AFTER p_value;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS p_adjusted Float64 DEFAULT p_value AFTER p_value;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS js Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS js Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS hellinger Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS hellinger Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS kl Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS kl Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS wasserstein_norm Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS wasserstein_norm Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS tvd Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS tvd Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS linf Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS linf Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS g_test_p Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS g_test_p Float64 DEFAULT 0;

-- 0004_k_sample_tests
ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS ad_p Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS ad_p Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS cvm_p Float64 DEFAULT 0;

ALTER TABLE driftd.drift_scores ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS cvm_p Float64 DEFAULT 0;

-- 0005_alert_outbox
CREATE TABLE IF NOT EXISTS driftd.alerts_published_local ON CLUSTER 'driftd' (
    alert_id String,
    published_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alerts_published_local', '{replica}', published_at)
ORDER BY alert_id
TTL toDateTime(published_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.alerts_published ON CLUSTER 'driftd' AS driftd.alerts_published_local
ENGINE = Distributed('driftd', 'driftd', 'alerts_published_local', cityHash64(alert_id));

INSERT INTO driftd.alerts_published SELECT alert_id, emitted_at FROM driftd.alerts;

-- 0006_detection_state
CREATE TABLE IF NOT EXISTS driftd.alert_state_local ON CLUSTER 'driftd' (
    fingerprint String,
    firing UInt8,
    severity String,
    bad UInt32,
    good UInt32,
    last DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alert_state_local', '{replica}', last)
ORDER BY fingerprint
TTL toDateTime(written_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.alert_state ON CLUSTER 'driftd' AS driftd.alert_state_local
ENGINE = Distributed('driftd', 'driftd', 'alert_state_local', cityHash64(fingerprint));

CREATE TABLE IF NOT EXISTS driftd.pipeline_stage_state_local ON CLUSTER 'driftd' (
    pipeline String,
    stage String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    consecutive_failures UInt32,
    successes Array(DateTime64(3, 'UTC')),
    failures Array(DateTime64(3, 'UTC')),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/pipeline_stage_state_local', '{replica}', written_at)
ORDER BY (pipeline, stage, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.pipeline_stage_state ON CLUSTER 'driftd' AS driftd.pipeline_stage_state_local
ENGINE = Distributed('driftd', 'driftd', 'pipeline_stage_state_local', cityHash64(pipeline));

CREATE TABLE IF NOT EXISTS driftd.reference_samples_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    window_start DateTime64(3, 'UTC'),
    sample String CODEC(ZSTD(3)),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/reference_samples_local', '{replica}', written_at)
ORDER BY (model, model_version, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.reference_samples ON CLUSTER 'driftd' AS driftd.reference_samples_local
ENGINE = Distributed('driftd', 'driftd', 'reference_samples_local', cityHash64(model));

-- 0007_window_judgement
ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS judgement String DEFAULT '';

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS judgement String DEFAULT '';

ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS judged_from DateTime64(3, 'UTC') DEFAULT window_start;

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS judged_from DateTime64(3, 'UTC') DEFAULT window_start;

-- 0008_window_volume
ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS expected_events Float64 DEFAULT 0;

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS expected_events Float64 DEFAULT 0;

ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS volume_low UInt8 DEFAULT 0;

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS volume_low UInt8 DEFAULT 0;

-- 0009_labels
CREATE TABLE IF NOT EXISTS driftd.prediction_keys_local ON CLUSTER 'driftd' (
    model String,
    request_id String,
    model_version String,
    deployment String,
    event_time DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    prediction_kind UInt8,
    prediction_num Float64,
    prediction_class String,
    scores Map(String, Float64),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/prediction_keys_local', '{replica}', written_at)
PARTITION BY toDate(event_time)
ORDER BY (model, request_id, model_version, deployment)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.prediction_keys ON CLUSTER 'driftd' AS driftd.prediction_keys_local
ENGINE = Distributed('driftd', 'driftd', 'prediction_keys_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.labels_local ON CLUSTER 'driftd' (
    model String,
    request_id String,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    label_kind UInt8,
    label_num Float64,
    label_class String,
    outcome String,
    topic String,
    partition Int32,
    offset Int64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/labels_local', '{replica}', written_at)
PARTITION BY toDate(event_time)
ORDER BY (model, request_id, topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.labels ON CLUSTER 'driftd' AS driftd.labels_local
ENGINE = Distributed('driftd', 'driftd', 'labels_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.window_performance_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    labels_until DateTime64(3, 'UTC'),
    in_reference UInt8,
    task String,
    predictions UInt64,
    labelled UInt64,
    beyond_horizon UInt64,
    coverage Float64,
    correct UInt64,
    accuracy Float64,
    macro_precision Float64,
    macro_recall Float64,
    macro_f1 Float64,
    class_f1 Map(String, Float64),
    confusion_true Array(String),
    confusion_pred Array(String),
    confusion_count Array(UInt64),
    scored UInt64,
    log_loss_sum Float64,
    log_loss Float64,
    roc_auc Float64,
    regression UInt64,
    error_sum Float64,
    abs_error_sum Float64,
    squared_error_sum Float64,
    ape_sum Float64,
    ape_count UInt64,
    mae Float64,
    rmse Float64,
    mean_error Float64,
    mape Float64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/window_performance_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.window_performance ON CLUSTER 'driftd' AS driftd.window_performance_local
ENGINE = Distributed('driftd', 'driftd', 'window_performance_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.change_state_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    state String,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/change_state_local', '{replica}', window_start)
ORDER BY (model, model_version, deployment)
TTL toDateTime(written_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.change_state ON CLUSTER 'driftd' AS driftd.change_state_local
ENGINE = Distributed('driftd', 'driftd', 'change_state_local', cityHash64(model));

-- 0010_label_join_by_window
CREATE TABLE IF NOT EXISTS driftd.prediction_keys_by_window_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    event_time DateTime64(3, 'UTC'),
    request_id String,
    prediction_kind UInt8,
    prediction_num Float64,
    prediction_class String,
    scores Map(String, Float64),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/prediction_keys_by_window_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start, request_id, event_time)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.prediction_keys_by_window ON CLUSTER 'driftd' AS driftd.prediction_keys_by_window_local
ENGINE = Distributed('driftd', 'driftd', 'prediction_keys_by_window_local', cityHash64(model));

INSERT INTO driftd.prediction_keys_by_window (model, model_version, deployment, window_start, window_end, event_time, request_id, prediction_kind, prediction_num, prediction_class, scores, written_at)
SELECT model, model_version, deployment, window_start, window_end, event_time, request_id, prediction_kind, prediction_num, prediction_class, scores, written_at
FROM driftd.prediction_keys;

ALTER TABLE driftd.window_performance_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS change_state String DEFAULT '';

ALTER TABLE driftd.window_performance ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS change_state String DEFAULT '';

ALTER TABLE driftd.window_performance_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS outcomes Map(String, UInt64);

ALTER TABLE driftd.window_performance ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS outcomes Map(String, UInt64);

INSERT INTO driftd.window_performance (model, model_version, deployment, window_start, window_end, labels_until, in_reference, task, predictions, labelled, beyond_horizon, coverage, correct, accuracy, macro_precision, macro_recall, macro_f1, class_f1, confusion_true, confusion_pred, confusion_count, scored, log_loss_sum, log_loss, roc_auc, regression, error_sum, abs_error_sum, squared_error_sum, ape_sum, ape_count, mae, rmse, mean_error, mape, change_state, written_at)
SELECT p.model, p.model_version, p.deployment, p.window_start, p.window_end, p.labels_until, p.in_reference, p.task, p.predictions, p.labelled, p.beyond_horizon, p.coverage, p.correct, p.accuracy, p.macro_precision, p.macro_recall, p.macro_f1, p.class_f1, p.confusion_true, p.confusion_pred, p.confusion_count, p.scored, p.log_loss_sum, p.log_loss, p.roc_auc, p.regression, p.error_sum, p.abs_error_sum, p.squared_error_sum, p.ape_sum, p.ape_count, p.mae, p.rmse, p.mean_error, p.mape, s.state, now64(3, 'UTC')
FROM driftd.window_performance AS p FINAL
GLOBAL INNER JOIN (SELECT model, model_version, deployment, window_start, state FROM driftd.change_state FINAL) AS s
    ON p.model = s.model AND p.model_version = s.model_version AND p.deployment = s.deployment AND p.window_start = s.window_start;

CREATE TABLE IF NOT EXISTS driftd.label_events_local ON CLUSTER 'driftd' (
    model String,
    request_id String,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    label_kind UInt8,
    label_num Float64,
    label_class String,
    outcome String,
    topic String,
    partition Int32,
    offset Int64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/label_events_local', '{replica}', written_at)
PARTITION BY toDate(event_time)
ORDER BY (model, toStartOfHour(event_time), request_id, topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.label_events ON CLUSTER 'driftd' AS driftd.label_events_local
ENGINE = Distributed('driftd', 'driftd', 'label_events_local', cityHash64(model));

INSERT INTO driftd.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at
FROM driftd.labels;

CREATE TABLE IF NOT EXISTS driftd.label_offsets_local ON CLUSTER 'driftd' (
    topic String,
    partition Int32,
    offset Int64,
    event_time DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC'),
    INDEX event_time_minmax event_time TYPE minmax GRANULARITY 1
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/label_offsets_local', '{replica}', written_at)
PARTITION BY toDate(event_time)
ORDER BY (topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.label_offsets ON CLUSTER 'driftd' AS driftd.label_offsets_local
ENGINE = Distributed('driftd', 'driftd', 'label_offsets_local', cityHash64(topic, partition));

INSERT INTO driftd.label_offsets (topic, partition, offset, event_time, written_at)
SELECT topic, partition, offset, event_time, written_at FROM driftd.labels;

CREATE TABLE IF NOT EXISTS driftd.label_progress_local ON CLUSTER 'driftd' (
    topic String,
    partition Int32,
    model String,
    latest DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/label_progress_local', '{replica}', latest)
ORDER BY (topic, partition, model)
TTL toDateTime(written_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.label_progress ON CLUSTER 'driftd' AS driftd.label_progress_local
ENGINE = Distributed('driftd', 'driftd', 'label_progress_local', cityHash64(topic, partition));

INSERT INTO driftd.label_progress (topic, partition, model, latest, written_at)
SELECT topic, partition, model, max(event_time), max(written_at) FROM driftd.labels GROUP BY topic, partition, model;

-- 0011_drop_moved_label_tables
DROP TABLE IF EXISTS driftd.prediction_keys ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.prediction_keys_local ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.labels ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.labels_local ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.change_state ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.change_state_local ON CLUSTER 'driftd';

-- 0012_label_record_time
ALTER TABLE driftd.label_offsets_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS record_time DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');

ALTER TABLE driftd.label_offsets ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS record_time DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');

ALTER TABLE driftd.label_offsets_local ON CLUSTER 'driftd' ADD INDEX IF NOT EXISTS record_time_minmax record_time TYPE minmax GRANULARITY 1;

-- 0013_canary_analysis
CREATE TABLE IF NOT EXISTS driftd.canary_analysis_local ON CLUSTER 'driftd' (
    model String,
    canary_version String,
    canary_deployment String,
    primary_version String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    verdict LowCardinality(String),
    canary_events UInt64,
    primary_events UInt64,
    reason String,
    metrics Array(String),
    values Array(Float64),
    thresholds Array(Float64),
    breached Array(UInt8),
    confounded Array(String),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/canary_analysis_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, canary_version, canary_deployment, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.canary_analysis ON CLUSTER 'driftd' AS driftd.canary_analysis_local
ENGINE = Distributed('driftd', 'driftd', 'canary_analysis_local', cityHash64(model));

-- 0014_shadow_analysis
CREATE TABLE IF NOT EXISTS driftd.shadow_analysis_local ON CLUSTER 'driftd' (
    model String,
    shadow_version String,
    primary_version String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    in_reference UInt8,
    shadows UInt64,
    matched UInt64,
    agreed UInt64,
    agreement Float64,
    numeric UInt64,
    abs_diff_sum Float64,
    sum_shadow Float64,
    sum_primary Float64,
    sum_shadow_sq Float64,
    sum_primary_sq Float64,
    sum_product Float64,
    mean_abs_diff Float64,
    correlation Float64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/shadow_analysis_local', '{replica}', written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, shadow_version, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.shadow_analysis ON CLUSTER 'driftd' AS driftd.shadow_analysis_local
ENGINE = Distributed('driftd', 'driftd', 'shadow_analysis_local', cityHash64(model));

-- 0015_window_joint
ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_n Float64 DEFAULT 0;

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_n Float64 DEFAULT 0;

ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_mean Array(Float64) DEFAULT [];

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_mean Array(Float64) DEFAULT [];

ALTER TABLE driftd.window_model_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_comoments Array(Float64) DEFAULT [];

ALTER TABLE driftd.window_model_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS joint_comoments Array(Float64) DEFAULT [];

-- 0016_window_raw
ALTER TABLE driftd.window_feature_stats_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS raw Array(Float64) DEFAULT [] CODEC(ZSTD(3));

ALTER TABLE driftd.window_feature_stats ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS raw Array(Float64) DEFAULT [] CODEC(ZSTD(3));

-- 0017_spread_judging
CREATE TABLE IF NOT EXISTS driftd.partition_progress_local ON CLUSTER 'driftd' (
    model String,
    topic String,
    partition Int32,
    through DateTime64(3, 'UTC'),
    event_max DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/partition_progress_local', '{replica}', through)
ORDER BY (model, topic, partition);

CREATE TABLE IF NOT EXISTS driftd.partition_progress ON CLUSTER 'driftd' AS driftd.partition_progress_local
ENGINE = Distributed('driftd', 'driftd', 'partition_progress_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.reference_sample_parts_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    window_start DateTime64(3, 'UTC'),
    topic String,
    partition Int32,
    sample String CODEC(ZSTD(3)),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/reference_sample_parts_local', '{replica}', written_at)
ORDER BY (model, model_version, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.reference_sample_parts ON CLUSTER 'driftd' AS driftd.reference_sample_parts_local
ENGINE = Distributed('driftd', 'driftd', 'reference_sample_parts_local', cityHash64(model));

CREATE TABLE IF NOT EXISTS driftd.judge_progress_local ON CLUSTER 'driftd' (
    model String,
    through DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/judge_progress_local', '{replica}', through)
ORDER BY model;

CREATE TABLE IF NOT EXISTS driftd.judge_progress ON CLUSTER 'driftd' AS driftd.judge_progress_local
ENGINE = Distributed('driftd', 'driftd', 'judge_progress_local', cityHash64(model));

INSERT INTO driftd.judge_progress (model, through, written_at)
SELECT model, max(window_end), now64(3) FROM driftd.window_model_stats
WHERE (SELECT count() FROM driftd.judge_progress) = 0
GROUP BY model;

-- 0018_stage_runs
CREATE TABLE IF NOT EXISTS driftd.stage_runs_local ON CLUSTER 'driftd' (
    pipeline String,
    stage String,
    event_time DateTime64(3, 'UTC'),
    failed UInt8,
    models Array(String),
    topic String,
    partition Int32,
    offset Int64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/stage_runs_local', '{replica}', written_at)
PARTITION BY toDate(event_time)
ORDER BY (topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.stage_runs ON CLUSTER 'driftd' AS driftd.stage_runs_local
ENGINE = Distributed('driftd', 'driftd', 'stage_runs_local', cityHash64(topic, partition));

-- 0019_progress_lagging
ALTER TABLE driftd.partition_progress_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lagging Bool DEFAULT false;

ALTER TABLE driftd.partition_progress ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lagging Bool DEFAULT false;

-- 0020_stage_signals
ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_n Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_n Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_mean Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_mean Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_m2 Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS log_duration_m2 Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lost_in Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lost_in Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lost Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS lost Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS null_out Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS null_out Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS nulls Float64 DEFAULT 0;

ALTER TABLE driftd.pipeline_stage_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS nulls Float64 DEFAULT 0;

-- 0021_alert_state_told
ALTER TABLE driftd.alert_state_local ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS told UInt8 DEFAULT 0;

ALTER TABLE driftd.alert_state ON CLUSTER 'driftd' ADD COLUMN IF NOT EXISTS told UInt8 DEFAULT 0;

-- 0022_prediction_keys_in_arrays
CREATE TABLE IF NOT EXISTS driftd.prediction_key_batches_local ON CLUSTER 'driftd' (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    request_ids Array(String),
    event_times Array(DateTime64(3, 'UTC')),
    prediction_kinds Array(UInt8),
    prediction_nums Array(Float64),
    prediction_classes Array(String),
    scores Array(Map(String, Float64)),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/prediction_key_batches_local', '{replica}')
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS driftd.prediction_key_batches ON CLUSTER 'driftd' AS driftd.prediction_key_batches_local
ENGINE = Distributed('driftd', 'driftd', 'prediction_key_batches_local', cityHash64(model));

INSERT INTO driftd.prediction_key_batches (model, model_version, deployment, window_start, window_end, request_ids, event_times, prediction_kinds, prediction_nums, prediction_classes, scores, written_at)
SELECT model, model_version, deployment, window_start, any(window_end),
    arrayMap(k -> tupleElement(k, 1), groupArray(key)), arrayMap(k -> tupleElement(k, 2), groupArray(key)),
    arrayMap(k -> tupleElement(k, 3), groupArray(key)), arrayMap(k -> tupleElement(k, 4), groupArray(key)),
    arrayMap(k -> tupleElement(k, 5), groupArray(key)), arrayMap(k -> tupleElement(k, 6), groupArray(key)),
    max(written_at)
FROM (
    SELECT model, model_version, deployment, window_start, window_end, written_at,
        intDiv(toUnixTimestamp64Milli(event_time), 10000) AS slice,
        tuple(request_id, event_time, prediction_kind, prediction_num, prediction_class, scores) AS key
    FROM driftd.prediction_keys_by_window FINAL
)
GROUP BY model, model_version, deployment, window_start, slice
SETTINGS optimize_aggregation_in_order = 1, max_bytes_before_external_group_by = 1000000000, max_partitions_per_insert_block = 0;

-- 0023_drop_prediction_keys_by_window
DROP TABLE IF EXISTS driftd.prediction_keys_by_window ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.prediction_keys_by_window_local ON CLUSTER 'driftd';

-- 0024_read_progress
CREATE TABLE IF NOT EXISTS driftd.read_progress_local ON CLUSTER 'driftd' (
    model String,
    topic String,
    partition Int32,
    through DateTime64(3, 'UTC'),
    event_max DateTime64(3, 'UTC'),
    lagging Bool,
    generation Int32,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/read_progress_local', '{replica}', written_at)
ORDER BY (model, topic, partition);

CREATE TABLE IF NOT EXISTS driftd.read_progress ON CLUSTER 'driftd' AS driftd.read_progress_local
ENGINE = Distributed('driftd', 'driftd', 'read_progress_local', cityHash64(model));

INSERT INTO driftd.read_progress (model, topic, partition, through, event_max, lagging, generation, written_at)
SELECT model, topic, partition, through, event_max, lagging, 0, written_at FROM driftd.partition_progress FINAL
WHERE (SELECT count() FROM driftd.read_progress) = 0;

-- 0025_drop_partition_progress
DROP TABLE IF EXISTS driftd.partition_progress ON CLUSTER 'driftd';

DROP TABLE IF EXISTS driftd.partition_progress_local ON CLUSTER 'driftd';

