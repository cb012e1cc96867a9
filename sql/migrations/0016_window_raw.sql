-- The numeric values a partition kept of a window that opened before its version's
-- first-windows reference existed (processors.FeatureAgg's Raw, at most MaxRawValues per
-- feature and partition), when its bins alone would not read back as the window in
-- memory: written before the reference existed (no bins yet), or with more values kept
-- across the window's partitions than their merge keeps. A low-volume merge that
-- reaches back into the window after a restart merges and bins these values as the
-- window in memory did; without them its values were left out of the merged bins.
-- Empty for every other window (processors.Partial.KeepRaw).
ALTER TABLE {db}.window_feature_stats ADD COLUMN IF NOT EXISTS raw Array(Float64) DEFAULT [] CODEC(ZSTD(3));
