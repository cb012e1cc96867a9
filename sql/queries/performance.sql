-- Each settled window's performance and label coverage: what the performance and
-- concept_drift detectors judged (labels stamped up to labels_until), per version and
-- deployment slot. in_reference: bit 1, the window is in the series' performance reference;
-- bit 2, in its outcomes' reference. outcome_rates: each
-- user outcome's share of the window's predictions (what output_quality judged).
-- Parameters: model, since (DateTime64).
SELECT window_start, model_version, deployment, task, predictions, labelled, coverage, beyond_horizon,
    accuracy, macro_f1, log_loss, roc_auc, mae, rmse, mape,
    mapSort(mapApply((k, v) -> (k, if(predictions = 0, 0, v / predictions)), outcomes)) AS outcome_rates,
    in_reference, labels_until
FROM {db}.window_performance FINAL
WHERE model = {model:String} AND window_start >= {since:DateTime64(3)}
ORDER BY window_start, model_version, deployment;
