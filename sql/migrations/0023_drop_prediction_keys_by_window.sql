-- prediction_keys_by_window's keys were copied to prediction_key_batches by 0022. A
-- driftd still writing the old table (an older member in a rolling upgrade) fails its
-- writes from here on and retries them, holding its partitions until it is upgraded.
DROP TABLE IF EXISTS {db}.prediction_keys_by_window;
