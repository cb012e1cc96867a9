-- driftd's tables. Window results are written per source partition ("partials") and
-- merged at read time, so several instances consuming one topic add up to one result.
-- Re-writing a window after a restart replaces the earlier row: ReplacingMergeTree keyed
-- by the window (and partition), versioned by written_at; read with FINAL or argMax.

CREATE TABLE IF NOT EXISTS {db}.window_model_stats (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.window_feature_stats (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, feature, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.drift_scores (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, feature, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.alerts (
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
) ENGINE = ReplacingMergeTree(emitted_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY alert_id
TTL toDateTime(window_end) + INTERVAL {ttl_days} DAY;

-- One row per event that arrived after its window closed: keyed by its Kafka position,
-- so re-reading it after a restart does not count it twice.
CREATE TABLE IF NOT EXISTS {db}.late_events (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (topic, partition, offset)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

-- Reference profiles are versioned by content (reference_id) and kept without TTL.
CREATE TABLE IF NOT EXISTS {db}.reference_profiles (
    model String,
    model_version String,
    reference_id String,
    source String,
    created_at DateTime64(3, 'UTC'),
    windows UInt32,
    events UInt64,
    profile String
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (model, model_version, reference_id);
