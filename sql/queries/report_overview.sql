-- Every model version and slot with traffic in a period, for the overview: requests,
-- failed requests, the highest partition's p99, and the period its windows cover.
-- Parameters: from, to (DateTime64).
SELECT
    model,
    model_version,
    deployment,
    sum(events) AS events,
    sum(errors + timeouts) AS failed,
    max(latency_p99) AS p99_ms,
    min(window_start) AS first_window,
    max(window_end) AS last_window
FROM {db}.window_model_stats FINAL
WHERE window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY model, model_version, deployment
ORDER BY model, model_version, deployment;
