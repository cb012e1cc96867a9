-- Ground truth joined to predictions (docs/concept-drift.md, "Label join"). The join is
-- done here, not in driftd's memory: predictions wait up to the label horizon (7 days by
-- default) for their labels, far more than memory should hold at 10,000 events/s.

-- One row per prediction that carries a request_id (while a label topic is configured):
-- what it said and which window of its series it fell in. A record read again after a
-- restart writes the same row again (ReplacingMergeTree keeps one).
CREATE TABLE IF NOT EXISTS {db}.prediction_keys (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(event_time)
ORDER BY (model, request_id, model_version, deployment)
TTL toDateTime(event_time) + INTERVAL {ttl_days} DAY;

-- Every label read, with where it came from. Duplicates (the same request labelled
-- again) are kept as rows and counted once by the join, which takes each request's
-- newest label (in event time) up to the time it judges as of. A label whose prediction
-- never arrives stays here (docs/concept-drift.md has the query that counts them).
CREATE TABLE IF NOT EXISTS {db}.labels (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(event_time)
ORDER BY (model, request_id, topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL {ttl_days} DAY;

-- Performance per window of each series, from its labelled predictions: written once,
-- when the window settles (the labels stamped up to labels_until, its end plus the settle
-- time, have all been read), and judged as written. coverage is labelled / predictions,
-- so that fewer labels are never read as worse performance. The sums are kept beside the
-- metrics: a reference is the sum of its windows (in_reference = 1), restored from them.
CREATE TABLE IF NOT EXISTS {db}.window_performance (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

-- The change detector on each series' loss stream (concept drift), as of the end of the
-- last settled window it took (a detectors.ChangeDetector's MarshalBinary), so that a
-- restart continues where it stopped.
CREATE TABLE IF NOT EXISTS {db}.change_state (
    model String,
    model_version String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    state String,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(window_start)
ORDER BY (model, model_version, deployment)
TTL toDateTime(written_at) + INTERVAL {ttl_days} DAY;
