-- The label join's prediction keys, one row per series, window and write: the keys that
-- one write brought for one window, in arrays (request_ids[i], event_times[i], … are one
-- prediction). One row per prediction (prediction_keys_by_window, 0010) made the engine
-- sort, index and merge a row for every prediction, which cost more than anything else
-- driftd stores (docs/performance.md): arrays are stored and merged as a few large
-- values. A window's keys are still one range of the primary key. A record read again
-- (a replay, a restart) writes its key again, possibly in another row: readers take one
-- per (request_id, event_time), as FINAL did (docs/storage.md).
CREATE TABLE IF NOT EXISTS {db}.prediction_key_batches (
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
) ENGINE = MergeTree
PARTITION BY toDate(window_start)
ORDER BY (model, model_version, deployment, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

-- The keys of prediction_keys_by_window are copied here, each window's in rows of ten
-- seconds of its keys (a row the size of a write, not of a whole window), and the table is
-- dropped by 0023: a copy interrupted and run again finds its source, and readers take
-- a key stored twice once.
INSERT INTO {db}.prediction_key_batches (model, model_version, deployment, window_start, window_end, request_ids, event_times, prediction_kinds, prediction_nums, prediction_classes, scores, written_at)
SELECT model, model_version, deployment, window_start, any(window_end),
    arrayMap(k -> tupleElement(k, 1), groupArray(key)), arrayMap(k -> tupleElement(k, 2), groupArray(key)),
    arrayMap(k -> tupleElement(k, 3), groupArray(key)), arrayMap(k -> tupleElement(k, 4), groupArray(key)),
    arrayMap(k -> tupleElement(k, 5), groupArray(key)), arrayMap(k -> tupleElement(k, 6), groupArray(key)),
    max(written_at)
FROM (
    SELECT model, model_version, deployment, window_start, window_end, written_at,
        intDiv(toUnixTimestamp64Milli(event_time), 10000) AS slice,
        tuple(request_id, event_time, prediction_kind, prediction_num, prediction_class, scores) AS key
    FROM {db}.prediction_keys_by_window FINAL
)
GROUP BY model, model_version, deployment, window_start, slice
-- A window at a time (the source's order), to disk past a gigabyte, and any number of
-- days in a block (a table kept longer than 100 days has keys of more).
SETTINGS optimize_aggregation_in_order = 1, max_bytes_before_external_group_by = 1000000000, max_partitions_per_insert_block = 0;
