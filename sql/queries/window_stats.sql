-- Per-window service statistics of one model, partitions merged: events, throughput,
-- status counts and late events.
-- Parameters: model, since (DateTime64).
SELECT
    w.window_start AS window_start,
    w.model_version AS model_version,
    w.deployment AS deployment,
    sum(w.events) AS events,
    sum(w.events) / dateDiff('second', any(w.window_start), any(w.window_end)) AS events_per_second,
    sum(w.ok) AS ok,
    sum(w.errors) AS errors,
    sum(w.timeouts) AS timeouts,
    sum(w.null_predictions) AS null_predictions,
    max(w.latency_max) AS latency_max
FROM {db}.window_model_stats AS w FINAL
WHERE w.model = {model:String} AND w.window_start >= {since:DateTime64(3)}
GROUP BY window_start, model_version, deployment
ORDER BY window_start, model_version, deployment;
