-- Events that arrived after their window closed, per window.
-- Parameters: model, since (DateTime64).
SELECT window_start, model_version, deployment, count() AS late_events
FROM {db}.late_events FINAL
WHERE model = {model:String} AND window_start >= {since:DateTime64(3)}
GROUP BY window_start, model_version, deployment
ORDER BY window_start;
