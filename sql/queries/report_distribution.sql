-- One feature's distribution in a slot's newest window of a period, its partitions
-- merged: counts between the reference's bin edges (numeric) or per category, for the
-- report's reference-vs-current chart. Parameters: model, version, deployment, feature,
-- from, to (DateTime64).
SELECT
    window_start,
    window_end,
    any(kind) AS kind,
    sum(count) AS present,
    anyIf(bin_edges, length(bin_counts) > 0) AS edges,
    sumForEachIf(bin_counts, length(bin_counts) > 0) AS bins,
    sumMap(categories) AS categories
FROM {db}.window_feature_stats FINAL
WHERE model = {model:String} AND model_version = {version:String} AND deployment = {deployment:String} AND feature = {feature:String}
  AND window_start = (
    SELECT max(window_start) FROM {db}.window_feature_stats
    WHERE model = {model:String} AND model_version = {version:String} AND deployment = {deployment:String} AND feature = {feature:String}
      AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)})
GROUP BY window_start, window_end;
