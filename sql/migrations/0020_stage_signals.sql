-- What each judged stage window adds to the baselines of later ones (detectors.StagePoint),
-- stored with the window's state so that a restart judges the same windows against the
-- same history: the moments of log(1 + duration ms) of its successful runs that sent a
-- duration, the records in and lost (in − out) of those that sent both counts, and the
-- records out and nulls of those that sent both. A window judged before this has none.
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS log_duration_n Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS log_duration_mean Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS log_duration_m2 Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS lost_in Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS lost Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS null_out Float64 DEFAULT 0;
ALTER TABLE {db}.pipeline_stage_state ADD COLUMN IF NOT EXISTS nulls Float64 DEFAULT 0;
