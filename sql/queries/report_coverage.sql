-- Each model's label coverage over a period, for the overview: labelled predictions of
-- its settled windows. Parameters: from, to (DateTime64).
SELECT
    model,
    sum(labelled) AS labelled,
    sum(predictions) AS predictions
FROM {db}.window_performance FINAL
WHERE window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY model
ORDER BY model;
