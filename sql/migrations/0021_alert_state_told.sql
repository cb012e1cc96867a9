-- An alert that fired silently because another alert's page told it (an out-of-range
-- alert told in its feature's drift alert: detectors.AlertState.Told) resolves silently
-- too; a restart must know which alerts those are.
ALTER TABLE {db}.alert_state ADD COLUMN IF NOT EXISTS told UInt8 DEFAULT 0;
