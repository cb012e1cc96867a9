-- How each window was judged. '' when on its own; 'judged over N windows merged: …' for a
-- low-volume series judged together with its preceding windows (judged_from is the
-- merged span's start); 'not judged: …' with the reason (fewer than min_events even
-- merged). Every partial row of a window carries its window's judgement.
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS judgement String DEFAULT '';
ALTER TABLE {db}.window_model_stats ADD COLUMN IF NOT EXISTS judged_from DateTime64(3, 'UTC') DEFAULT window_start;
