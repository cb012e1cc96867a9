-- A model's features over a period for a report: present, missing (null or absent) and
-- mismatched (the other kind) values, over every version and slot. Parameters: model,
-- from, to (DateTime64).
SELECT
    feature,
    any(kind) AS kind,
    sum(count) AS present,
    sum(missing) AS missing,
    sum(mismatched) AS mismatched
FROM {db}.window_feature_stats FINAL
WHERE model = {model:String} AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY feature
ORDER BY feature;
