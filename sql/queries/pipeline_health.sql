-- Per-window health of every stage of a pipeline: runs, failures, volume, records lost.
-- Parameters: pipeline, since (DateTime64).
SELECT
    window_start,
    stage,
    sum(runs) AS total_runs,
    sum(failures) AS total_failures,
    total_failures / greatest(total_runs, 1) AS failure_rate,
    sum(records_in) AS total_in,
    sum(records_out) AS total_out,
    sum(records_lost) AS total_lost,
    total_lost / greatest(total_in, 1) AS lost_share,
    sum(null_count) AS total_nulls,
    max(duration_max) AS duration_max_ms,
    max(last_success) AS latest_success
FROM {db}.pipeline_stage_stats FINAL
WHERE pipeline = {pipeline:String} AND window_start >= {since:DateTime64(3)}
GROUP BY window_start, stage
ORDER BY window_start, stage;
