-- Every distance driftd computes per feature and window, beside PSI and the test:
-- Jensen–Shannon (base 2), Hellinger, KL, Wasserstein-1 over the reference's standard
-- deviation (numeric), total variation and L∞ (categorical), the G-test's p-value, and
-- the p-value corrected across the window's features.

ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS p_adjusted Float64 DEFAULT p_value AFTER p_value;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS js Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS hellinger Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS kl Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS wasserstein_norm Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS tvd Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS linf Float64 DEFAULT 0;
ALTER TABLE {db}.drift_scores ADD COLUMN IF NOT EXISTS g_test_p Float64 DEFAULT 0;
