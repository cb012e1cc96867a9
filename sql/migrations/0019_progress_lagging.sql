-- Whether the partition had records not read yet when its reader wrote the row: a
-- partition behind the model's newest because it is read behind the others (a backlog,
-- a member re-reading after a rebalance) holds the model's windows back longer than an
-- idle one (processors.WindowSpec.Holds), as one member's watermark does.
ALTER TABLE {db}.partition_progress ADD COLUMN IF NOT EXISTS lagging Bool DEFAULT false;
