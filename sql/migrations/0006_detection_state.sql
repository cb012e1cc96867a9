-- Detection state a restart must not lose, so that window results and alerts are a
-- function of the event stream, not of where driftd was restarted. Each row is written
-- in the same flush as the windows that changed it, before their marker rows
-- (window_model_stats, pipeline_stage_stats): a window whose marker is missing is judged
-- again, and these rows say how far judging had got.

-- The alerter's hysteresis per fingerprint: firing, the consecutive breached (bad) and
-- clean (good) windows, and the end of the last window observed (`last`, the version: a
-- window ending no later is not counted twice).
CREATE TABLE IF NOT EXISTS {db}.alert_state (
    fingerprint String,
    firing UInt8,
    severity String,
    bad UInt32,
    good UInt32,
    last DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(last)
ORDER BY fingerprint
TTL toDateTime(written_at) + INTERVAL {ttl_days} DAY;

-- A pipeline stage as of the end of each judged window, in event time: the failed runs in
-- a row it ended the window with, its latest successes up to the window's end (at most
-- 21: the last success and the learned interval) and the window's failed runs (the
-- upstream hints on model alerts).
CREATE TABLE IF NOT EXISTS {db}.pipeline_stage_state (
    pipeline String,
    stage String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    consecutive_failures UInt32,
    successes Array(DateTime64(3, 'UTC')),
    failures Array(DateTime64(3, 'UTC')),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at)
ORDER BY (pipeline, stage, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

-- What each of a model version's first windows adds to the reference being built from
-- them (a serialized detectors.Sample, cut to what the reference keeps), so that a
-- restart inside those windows builds the same reference as a clean run.
CREATE TABLE IF NOT EXISTS {db}.reference_samples (
    model String,
    model_version String,
    window_start DateTime64(3, 'UTC'),
    sample String CODEC(ZSTD(3)),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at)
ORDER BY (model, model_version, window_start)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;
