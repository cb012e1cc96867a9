-- The alert outbox. An alert is stored with its window's results, then published to the
-- alert topic, then recorded here. An alert stored but not recorded here (driftd stopped
-- in between) is published again at start-up: at least once, with the same alert_id.

CREATE TABLE IF NOT EXISTS {db}.alerts_published (
    alert_id String,
    published_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(published_at)
ORDER BY alert_id
TTL toDateTime(published_at) + INTERVAL {ttl_days} DAY;

-- Alerts stored before this table existed were published then.
INSERT INTO {db}.alerts_published SELECT alert_id, emitted_at FROM {db}.alerts;
