-- A model's canary verdicts per window for a report (detectors.CompareCanary).
-- Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    concat(canary_version, ' ', canary_deployment) AS canary,
    primary_version,
    verdict,
    canary_events,
    primary_events,
    reason
FROM {db}.canary_analysis FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
ORDER BY canary, window_start;
