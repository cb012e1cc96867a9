-- How each window's volume was judged: the events expected of it (0 when its volume was
-- not judged) and whether it was judged low (the volume condition breached). A series'
-- recent windows that were not judged low are what it is expected to send before a day
-- of same-hour history exists; a restart reads them back from here.
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS expected_events Float64 DEFAULT 0;
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS volume_low UInt8 DEFAULT 0;
