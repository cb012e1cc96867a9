-- Judging a spread group exactly (kafka.group_mode: spread; docs/architecture.md). Every
-- member writes the partials of the partitions it reads; one member per model (the
-- reader of partition fnv32a(model) mod P of the prediction topic) judges the model's
-- windows once every partition has written them, from the partials read back.

-- How far each member has written a model's windows from one partition: every window of
-- the model ending at or before `through` is written for the partition (its records in
-- it are final), and `event_max` is the newest event time the partition delivered for
-- the model (bounded by the clock as the watermark is). Written after the partials they
-- cover. A row with model '' says the partition has been read past its reader's start-up
-- grace: until every partition has one, nothing is judged. The newest `through` wins.
CREATE TABLE IF NOT EXISTS {db}.partition_progress (
    model String,
    topic String,
    partition Int32,
    through DateTime64(3, 'UTC'),
    event_max DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(through)
ORDER BY (model, topic, partition);

-- What one partition's events add to a first window of a model version that has no
-- reference yet (a serialized detectors.Sample), written by the member that read them,
-- so that the model's judge merges the partitions' shares in partition order and builds
-- the reference one member would have built.
CREATE TABLE IF NOT EXISTS {db}.reference_sample_parts (
    model String,
    model_version String,
    window_start DateTime64(3, 'UTC'),
    topic String,
    partition Int32,
    sample String CODEC(ZSTD(3)),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at)
ORDER BY (model, model_version, window_start, topic, partition)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY;

-- Per model, the end of the last window judged: windows ending at or before `through`
-- have their verdicts, alerts and judgement written. A restart restores the judging state
-- from these windows only (a spread group writes partials before they are judged), and a
-- model's next judge starts after them. The newest `through` wins.
CREATE TABLE IF NOT EXISTS {db}.judge_progress (
    model String,
    through DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(through)
ORDER BY model;

-- The windows written before this migration were judged as they were written (only
-- when nothing is recorded yet: the statement may run again, as every migration may).
INSERT INTO {db}.judge_progress (model, through, written_at)
SELECT model, max(window_end), now64(3) FROM {db}.window_model_stats
WHERE (SELECT count() FROM {db}.judge_progress) = 0
GROUP BY model;
