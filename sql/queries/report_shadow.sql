-- A model's shadow versions' agreement with the primary per window for a report
-- (detectors.JudgeShadow). Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    shadow_version,
    primary_version,
    matched,
    agreement,
    mean_abs_diff
FROM {db}.shadow_analysis FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
ORDER BY shadow_version, window_start;
