-- Each shadow window joined to the primary's predictions by request id
-- (detectors.ShadowCounts): how many of its predictions the primary answered too, how
-- many alike, and the numeric pairs' sums (mean absolute difference, correlation).
-- in_reference marks the shadow's first windows, its reference, which a restart reads
-- back.
CREATE TABLE IF NOT EXISTS {db}.shadow_analysis (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, shadow_version, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;
