-- Label coverage and accuracy per window as of now, late labels included (joined here,
-- from prediction_key_batches and label_events; a request's newest label counts; the horizon is not
-- applied). What was judged, when each window settled, is in performance.sql.
-- binary_accuracy: 0/1 labels beside probabilities (class 1 from 0.5); class_accuracy:
-- string labels beside string predictions. A key stored twice (a record read again)
-- counts once; of two predictions at the same request id and millisecond, the lesser, as
-- in the join driftd judges with.
-- Parameters: model, since (DateTime64).
SELECT p.window_start AS window_start, p.model_version AS model_version, p.deployment AS deployment,
    count() AS predictions,
    countIf(l.request_id != '') AS labelled,
    labelled / predictions AS coverage,
    avgIf((p.prediction_num >= 0.5) = (l.num = 1), l.request_id != '' AND l.kind = 1 AND p.prediction_kind = 1) AS binary_accuracy,
    avgIf(p.prediction_class = l.class, l.request_id != '' AND l.kind = 2 AND p.prediction_kind = 2) AS class_accuracy
FROM (
    SELECT model_version, deployment, window_start, request_id,
        min((pk, pn, pc)) AS prediction,
        tupleElement(prediction, 1) AS prediction_kind, tupleElement(prediction, 2) AS prediction_num,
        tupleElement(prediction, 3) AS prediction_class
    FROM {db}.prediction_key_batches
    ARRAY JOIN request_ids AS request_id, event_times AS event_time, prediction_kinds AS pk,
        prediction_nums AS pn, prediction_classes AS pc
    WHERE model = {model:String} AND window_start >= {since:DateTime64(3)}
    GROUP BY model_version, deployment, window_start, request_id, event_time
) AS p
GLOBAL LEFT JOIN (
    SELECT request_id, argMax(label_kind, event_time) AS kind, argMax(label_num, event_time) AS num,
        argMax(label_class, event_time) AS class
    FROM {db}.label_events
    WHERE model = {model:String} AND label_kind != 0 AND event_time >= {since:DateTime64(3)}
    GROUP BY request_id
) AS l ON l.request_id = p.request_id
GROUP BY window_start, model_version, deployment
ORDER BY window_start, model_version, deployment;
