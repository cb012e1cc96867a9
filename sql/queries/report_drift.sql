-- A model's drift per window and feature for a report: the highest PSI over its versions
-- and slots, and whether any judged it drifted. Parameters: model, from, to (DateTime64).
SELECT
    window_start,
    feature,
    max(psi) AS psi,
    max(drifted) AS drifted
FROM {db}.drift_scores FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY window_start, feature
ORDER BY window_start, feature;
