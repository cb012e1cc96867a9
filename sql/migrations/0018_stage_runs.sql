-- The finished runs of pipeline stages, as read from the pipeline topic (one row per
-- record: a record read again after a restart replaces its row). In a spread group one
-- member reads the whole pipeline topic, and a model's judge, which may be another
-- member, reads the stages feeding the model from these rows for a drift alert's
-- upstream hint (docs/architecture.md).
CREATE TABLE IF NOT EXISTS {db}.stage_runs (
    pipeline String,
    stage String,
    event_time DateTime64(3, 'UTC'),
    failed UInt8,
    models Array(String),
    topic String,
    partition Int32,
    offset Int64,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(event_time)
ORDER BY (topic, partition, offset)
TTL toDateTime(event_time) + INTERVAL {ttl_days} DAY;
