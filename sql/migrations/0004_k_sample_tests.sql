-- The Anderson–Darling and Cramér–von Mises p-values of numeric features.

ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS ad_p Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS cvm_p Float64 DEFAULT 0;
