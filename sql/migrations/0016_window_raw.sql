-- The numeric values a partition kept of a window that opened before its version's
-- first-windows reference existed and was written before it did (processors.FeatureAgg's
-- Raw, at most MaxRawValues per feature): such a window has no bins yet. A low-volume
-- merge that reaches back into it after a restart bins these values against the
-- reference, as the window in memory did; without them its values were left out of the
-- merged bins. Empty for every other window (those store bin_counts).
ALTER TABLE {db}.window_feature_stats ADD COLUMN IF NOT EXISTS raw Array(Float64) DEFAULT [] CODEC(ZSTD(3));
