-- partition_progress's rows were copied to read_progress by 0024. A driftd still writing
-- the old table (an older member in a rolling upgrade) fails its writes from here on and
-- retries them, holding its partitions until it is upgraded.
DROP TABLE IF EXISTS {db}.partition_progress;
