-- The features that drifted most since a point in time (e.g. this week), across models.
-- Parameters: since (DateTime64), limit (UInt32).
SELECT
    model,
    model_version,
    feature,
    max(psi) AS worst_psi,
    countIf(drifted = 1) AS drifted_windows,
    count() AS windows
FROM {db}.drift_scores FINAL
WHERE window_start >= {since:DateTime64(3)}
GROUP BY model, model_version, feature
ORDER BY worst_psi DESC
LIMIT {limit:UInt32};
