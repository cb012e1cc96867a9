-- A model's traffic per window and slot for a report: requests, failed requests (errors
-- and timeouts), and the p99 latency of its busiest partition's sketch (an upper bound).
-- Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    window_end,
    concat(model_version, ' ', deployment) AS slot,
    sum(events) AS events,
    sum(errors + timeouts) AS failed,
    max(latency_p99) AS p99_ms
FROM {db}.window_model_stats FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY window_start, window_end, slot
ORDER BY window_start, slot;
