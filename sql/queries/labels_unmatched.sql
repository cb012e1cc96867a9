-- Labels whose request was never predicted (or predicted without a request_id), per day:
-- kept, counted here, never joined.
-- Parameters: model, since (DateTime64).
SELECT toDate(event_time) AS day, count() AS labels, uniqExact(request_id) AS requests
FROM {db}.label_events FINAL
WHERE model = {model:String} AND event_time >= {since:DateTime64(3)}
  AND request_id GLOBAL NOT IN (SELECT arrayJoin(request_ids) FROM {db}.prediction_key_batches WHERE model = {model:String})
GROUP BY day
ORDER BY day;
