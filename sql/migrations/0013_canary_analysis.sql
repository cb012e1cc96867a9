-- Each canary window's verdict against the primary's window of the same model and period
-- (detectors.CompareCanary): healthy, inconclusive (too little traffic on a side, or no
-- primary window) or regression, with the comparisons that decided it. A window judged
-- again (a restart before its batch was committed) writes the same row again.
CREATE TABLE IF NOT EXISTS {db}.canary_analysis (
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
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toDate(window_start)
ORDER BY (model, canary_version, canary_deployment, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;
