-- Requests, error rate and latency percentiles per model version and deployment slot.
-- Percentiles are the per-window values weighted by events (exact when one partition
-- carries the model; merge latency_sketch with driftd for exact cross-partition values).
-- Parameters: model, since (DateTime64).
SELECT
    model_version,
    deployment,
    sum(events) AS requests,
    sum(errors + timeouts) / sum(events) AS error_rate,
    sum(latency_p50 * events) / sum(events) AS p50_ms,
    sum(latency_p99 * events) / sum(events) AS p99_ms,
    max(latency_max) AS max_ms
FROM {db}.window_model_stats FINAL
WHERE model = {model:String} AND window_start >= {since:DateTime64(3)}
GROUP BY model_version, deployment
ORDER BY model_version, deployment;
