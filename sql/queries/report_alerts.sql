-- A model's alerts (firing and resolved) over a period, for a report's timeline.
-- Parameters: model, from, to (DateTime64).
SELECT
    emitted_at,
    window_start,
    window_end,
    state,
    severity,
    kind,
    model_version,
    deployment,
    feature,
    summary
FROM {db}.alerts FINAL
WHERE model = {model:String} AND window_end > {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
ORDER BY window_end, emitted_at
LIMIT 1000;
