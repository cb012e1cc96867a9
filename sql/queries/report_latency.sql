-- A model's latency sketches per window, slot and partition for a report: driftd merges
-- each window's partitions into exact percentiles (a percentile of percentiles is not
-- one). Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    model_version,
    deployment,
    latency_sketch
FROM {db}.window_model_stats FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)} AND events > 0
ORDER BY window_start, model_version, deployment, topic, partition;
