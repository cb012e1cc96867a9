-- Drift of every feature of one model over time: one row per window and feature.
-- Parameters: model, since (DateTime64).
SELECT
    window_start,
    model_version,
    deployment,
    feature,
    argMax(psi, written_at) AS psi,
    argMax(p_value, written_at) AS p_value,
    argMax(drifted, written_at) AS drifted
FROM {db}.drift_scores
WHERE model = {model:String} AND window_start >= {since:DateTime64(3)}
GROUP BY window_start, model_version, deployment, feature
ORDER BY window_start, feature;
