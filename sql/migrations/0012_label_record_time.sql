-- When each label record was appended to its partition (its Kafka timestamp; 1970 when
-- the record had none). A window's cutoff on a label partition is also the first record
-- appended an hour after it (storage.JoinSpec): a partition that went quiet and later
-- delivers labels stamped in the past gives those labels to no window that settled
-- before them, whether the stream is read live or as a backlog.
ALTER TABLE {db}.label_offsets ADD COLUMN IF NOT EXISTS record_time DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');
ALTER TABLE {db}.label_offsets ADD INDEX IF NOT EXISTS record_time_minmax record_time TYPE minmax GRANULARITY 1;
