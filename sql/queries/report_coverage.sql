-- Each model slot's label coverage over a period, for the overview: labelled predictions
-- of its settled windows, per version and deployment (a canary without labels does not
-- show its primary's). Parameters: from, to (DateTime64).
SELECT
    model,
    model_version,
    deployment,
    sum(labelled) AS labelled,
    sum(predictions) AS predictions
FROM {db}.window_performance FINAL
WHERE window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY model, model_version, deployment
ORDER BY model, model_version, deployment;
