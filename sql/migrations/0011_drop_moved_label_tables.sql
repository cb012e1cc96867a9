-- Moved by 0010: the prediction keys to prediction_keys_by_window, the labels to
-- label_events, the change detectors' states into window_performance.
DROP TABLE IF EXISTS {db}.prediction_keys;
DROP TABLE IF EXISTS {db}.labels;
DROP TABLE IF EXISTS {db}.change_state;
