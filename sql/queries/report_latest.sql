-- The end of the newest window of a model ('' for every model): where the UI's pages end
-- by default, so that a replayed backlog or simulated time ahead of the clock shows its
-- last day. Parameters: model.
SELECT max(window_end)
FROM {db}.window_model_stats
WHERE {model:String} = '' OR model = {model:String};
