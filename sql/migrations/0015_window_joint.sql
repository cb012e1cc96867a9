-- The co-moments of a window's joint features on each partition (processors.CoMoments:
-- the rows' count, mean vector and the d×d sum of cross-products, row-major), so that a
-- window read back (a low-volume merge or a rolling reference after a restart, or a
-- window merged from several members' partitions) carries the joint model's input as
-- the window in memory did. Empty when the window's layout had no joint model.
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS joint_n Float64 DEFAULT 0;
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS joint_mean Array(Float64) DEFAULT [];
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS joint_comoments Array(Float64) DEFAULT [];
-- window_feature_stats.reference_id is, from here on, the reference whose layout (bin
-- edges, categories) the partition's values were counted against, "" when the window
-- opened before any reference; the reference a window was judged against is
-- drift_scores.reference_id.
