-- Every upstream pipeline stage with runs in a period, for the overview: runs, failures,
-- the newest window's failures, and the latest success. Parameters: from, to (DateTime64).
SELECT
    pipeline,
    stage,
    sum(runs) AS runs,
    sum(failures) AS failures,
    max(last_success) AS latest_success,
    max(window_end) AS last_window
FROM {db}.pipeline_stage_stats FINAL
WHERE window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY pipeline, stage
ORDER BY pipeline, stage;
