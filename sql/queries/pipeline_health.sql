-- Per-window health of every stage of a pipeline: runs, failures, volume, records lost.
-- Parameters: pipeline, since (DateTime64).
SELECT
    window_start,
    stage,
    sum(runs) AS runs,
    sum(failures) AS failures,
    sum(failures) / greatest(sum(runs), 1) AS failure_rate,
    sum(records_in) AS records_in,
    sum(records_out) AS records_out,
    sum(records_lost) AS records_lost,
    sum(records_lost) / greatest(sum(records_in), 1) AS lost_share,
    sum(null_count) AS null_count,
    max(duration_max) AS duration_max_ms,
    max(last_success) AS last_success
FROM {db}.pipeline_stage_stats FINAL
WHERE pipeline = {pipeline:String} AND window_start >= {since:DateTime64(3)}
GROUP BY window_start, stage
ORDER BY window_start, stage;
