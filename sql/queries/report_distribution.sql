-- One feature's distribution in a slot's newest window of a period, one row per
-- partition in partition order, for the report's reference-vs-current chart: counts
-- between the bin edges the partition was counted against, the values it kept when it
-- was written before its reference existed (raw), or its categories. The report merges
-- the partitions that agree with the reference (partitions of one window may have been
-- counted against different layouts). Parameters: model, version, deployment, feature,
-- from, to (DateTime64).
SELECT
    window_start,
    window_end,
    kind,
    count,
    bin_edges,
    bin_counts,
    raw,
    categories
FROM {db}.window_feature_stats FINAL
WHERE model = {model:String} AND model_version = {version:String} AND deployment = {deployment:String} AND feature = {feature:String}
  AND window_start = (
    SELECT max(window_start) FROM {db}.window_feature_stats
    WHERE model = {model:String} AND model_version = {version:String} AND deployment = {deployment:String} AND feature = {feature:String}
      AND window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)})
ORDER BY topic, partition;
