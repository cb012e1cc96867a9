-- The label join reads one window of one series at a time. prediction_keys (0009) is
-- ordered by request id within the model, so that read went through the model's whole
-- day; the keys are now kept by window, then request id, where a window is one range of
-- the primary key, read in pages of request ids (whose labels are then one range of
-- label_events' index in each hour). The order also tells apart two predictions that
-- reuse a request id at different times (they were one row). prediction_keys is copied
-- here and dropped by 0011.
CREATE TABLE IF NOT EXISTS {db}.prediction_keys_by_window (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start, request_id, event_time)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

INSERT INTO {db}.prediction_keys_by_window (model, model_version, deployment, window_start, window_end, event_time, request_id, prediction_kind, prediction_num, prediction_class, scores, written_at)
SELECT model, model_version, deployment, window_start, window_end, event_time, request_id, prediction_kind, prediction_num, prediction_class, scores, written_at
FROM {db}.prediction_keys;

-- The concept-drift detector's state is stored in each settled window's row, as of that
-- window's end: written apart (change_state, 0009), a crash between the two inserts let
-- the detector see windows twice after a restart. The states stored apart are moved to
-- the rows of the windows they were taken at; change_state is dropped by 0011.
ALTER TABLE {db}.window_performance ADD COLUMN IF NOT EXISTS change_state String DEFAULT '';

-- in_reference is now a set of bits: 1, the window is in its series' performance
-- reference (as before); 2, in its outcomes' reference (from the first window with an
-- outcome: a series may report outcomes before it has labels, or long after).

-- User outcomes (a label's outcome: "redo_search", "clicked", …): per outcome, how many of
-- the window's predictions it was reported for, judged as a rate per prediction
-- (output_quality); at most 50 names a window, the rest counted as __other__.
ALTER TABLE {db}.window_performance ADD COLUMN IF NOT EXISTS outcomes Map(String, UInt64);

INSERT INTO {db}.window_performance (model, model_version, deployment, window_start, window_end, labels_until, in_reference, task, predictions, labelled, beyond_horizon, coverage, correct, accuracy, macro_precision, macro_recall, macro_f1, class_f1, confusion_true, confusion_pred, confusion_count, scored, log_loss_sum, log_loss, roc_auc, regression, error_sum, abs_error_sum, squared_error_sum, ape_sum, ape_count, mae, rmse, mean_error, mape, change_state, written_at)
SELECT p.model, p.model_version, p.deployment, p.window_start, p.window_end, p.labels_until, p.in_reference, p.task, p.predictions, p.labelled, p.beyond_horizon, p.coverage, p.correct, p.accuracy, p.macro_precision, p.macro_recall, p.macro_f1, p.class_f1, p.confusion_true, p.confusion_pred, p.confusion_count, p.scored, p.log_loss_sum, p.log_loss, p.roc_auc, p.regression, p.error_sum, p.abs_error_sum, p.squared_error_sum, p.ape_sum, p.ape_count, p.mae, p.rmse, p.mean_error, p.mape, s.state, now64(3, 'UTC')
FROM {db}.window_performance AS p FINAL
GLOBAL INNER JOIN (SELECT model, model_version, deployment, window_start, state FROM {db}.change_state FINAL) AS s
    ON p.model = s.model AND p.model_version = s.model_version AND p.deployment = s.deployment AND p.window_start = s.window_start;

-- Labels ordered by model, then the hour of their time, then request: a window's join
-- reads the labels stamped in its range (an hour or so) by the index. labels (0009) is
-- ordered by request within the model, so the join read every label of the model in the
-- day's partition for each page of a window. labels is copied here and dropped by 0011.
CREATE TABLE IF NOT EXISTS {db}.label_events (
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
ORDER BY (model, toStartOfHour(event_time), request_id, topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL {ttl_days} DAY;

INSERT INTO {db}.label_events (model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at)
SELECT model, request_id, event_id, event_time, label_kind, label_num, label_class, outcome, topic, partition, offset, written_at
FROM {db}.labels;

-- Where each label record sits in its partition, in offset order. A window's cutoff on a
-- label partition (the first record stamped after a point in time, storage.JoinSpec) is
-- then found by skipping the granules stamped before it (the minmax index: the records
-- before the cutoff are all stamped before it) and reading in order up to the first row
-- after it, rather than by reading every label stamped after it, which in a backlog is
-- days of labels for every window.
CREATE TABLE IF NOT EXISTS {db}.label_offsets (
    topic String,
    partition Int32,
    offset Int64,
    event_time DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC'),
    INDEX event_time_minmax event_time TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(event_time)
ORDER BY (topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL {ttl_days} DAY;

INSERT INTO {db}.label_offsets (topic, partition, offset, event_time, written_at)
SELECT topic, partition, offset, event_time, written_at FROM {db}.labels;

-- Each label partition's progress per model: the newest label time read on it. Read at
-- start-up (the label watermark, and which models have labels) from a row per partition
-- and model instead of from every label kept.
CREATE TABLE IF NOT EXISTS {db}.label_progress (
    topic String,
    partition Int32,
    model String,
    latest DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(latest)
ORDER BY (topic, partition, model)
TTL toDateTime(written_at) + INTERVAL {ttl_days} DAY;

INSERT INTO {db}.label_progress (topic, partition, model, latest, written_at)
SELECT topic, partition, model, max(event_time), max(written_at) FROM {db}.labels GROUP BY topic, partition, model;
