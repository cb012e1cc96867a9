-- Upstream pipeline health: one row per stage × window × source partition (partials,
-- summed at read time like the model windows). last_success is the latest successful run
-- seen in the window (1970-01-01 when none).

CREATE TABLE IF NOT EXISTS {db}.pipeline_stage_stats (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (pipeline, stage, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;
