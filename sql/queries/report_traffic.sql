-- A model's traffic per window and slot for a report: requests, failed requests (errors
-- and timeouts) and null predictions. Latency comes from report_latency (the partitions'
-- sketches, merged by driftd). Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    window_end,
    model_version,
    deployment,
    sum(events) AS events,
    sum(errors + timeouts) AS failed,
    sum(null_predictions) AS nulls
FROM {db}.window_model_stats FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY window_start, window_end, model_version, deployment
ORDER BY window_start, model_version, deployment;
