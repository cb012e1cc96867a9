-- How far each partition's reader has written a model's windows, as partition_progress
-- (0017, 0019) said it, but the newest row wins instead of the one with the newest
-- `through`. A partition moves to another member at a rebalance, which re-reads it from
-- the committed offsets: its rows then say less (an earlier `through`), and it is read
-- behind (`lagging`). Under partition_progress the previous reader's last row outlived
-- them: read to its end when written (not lagging), its newest event time frozen, it
-- stopped holding the model's windows once the other partitions were the skew bound
-- ahead, and the judge judged windows that partition had still to write. A row says
-- only what was true when written (its windows stay written), so the newest is the one
-- that holds the windows back as the partition's reader now does. `generation` is the
-- consumer group's generation the writer read the partition in: a judge holds a model's
-- windows for a row written in a generation before its own (the partition may have
-- moved, and its new reader not said anything yet), as for a partition read behind.
CREATE TABLE IF NOT EXISTS {db}.read_progress (
    model String,
    topic String,
    partition Int32,
    through DateTime64(3, 'UTC'),
    event_max DateTime64(3, 'UTC'),
    lagging Bool,
    generation Int32,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at)
ORDER BY (model, topic, partition);

-- The rows of partition_progress are copied (only when nothing is recorded yet: the copy
-- may run again, and partition_progress is dropped by 0025, once the copy is recorded).
INSERT INTO {db}.read_progress (model, topic, partition, through, event_max, lagging, generation, written_at)
SELECT model, topic, partition, through, event_max, lagging, 0, written_at FROM {db}.partition_progress FINAL
WHERE (SELECT count() FROM {db}.read_progress) = 0;
