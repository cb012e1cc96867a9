#!/usr/bin/env python3
"""Reference values for detectors/performance_test.go (a window's performance metrics),
computed with scikit-learn.

Run from this folder:
  python3 -m pip install scikit-learn==1.5.2 -r requirements.txt && python3 gen_performance.py
It writes performance_reference.json. The Go tests read it; nothing here runs in CI.
"""
import json

import numpy as np
import sklearn
from sklearn import metrics

rng = np.random.default_rng(20261204)
out = {"sklearn": sklearn.__version__, "binary": [], "multiclass": [], "regression": []}

# Binary: a probability of class 1 beside a 0/1 label; rounded scores make ties (AUC).
for n, decimals in [(200, 3), (57, 1), (1000, 2)]:
    p = np.round(rng.uniform(0.01, 0.99, n), decimals)
    y = (rng.uniform(size=n) < p).astype(int)
    pred = (p >= 0.5).astype(int)
    prec, rec, f1, _ = metrics.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    out["binary"].append({
        "scores": p.tolist(), "labels": y.tolist(),
        "accuracy": metrics.accuracy_score(y, pred),
        "macro_precision": metrics.precision_score(y, pred, average="macro", zero_division=0),
        "macro_recall": metrics.recall_score(y, pred, average="macro", zero_division=0),
        "macro_f1": metrics.f1_score(y, pred, average="macro", zero_division=0),
        "class_f1": {"0": f1[0], "1": f1[1]},
        "log_loss": metrics.log_loss(y, p),
        "roc_auc": metrics.roc_auc_score(y, p),
    })

# Multiclass: string classes, one of them never predicted (its precision is 0).
classes = np.array(["cat", "dog", "fox", "owl"])
for n in [90, 400]:
    y = classes[rng.integers(0, 4, n)]
    pred = np.where(rng.uniform(size=n) < 0.6, y, classes[rng.integers(0, 3, n)])
    labels = sorted(set(y) | set(pred))
    _, _, f1, _ = metrics.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out["multiclass"].append({
        "labels": y.tolist(), "predictions": pred.tolist(),
        "accuracy": metrics.accuracy_score(y, pred),
        "macro_precision": metrics.precision_score(y, pred, average="macro", zero_division=0),
        "macro_recall": metrics.recall_score(y, pred, average="macro", zero_division=0),
        "macro_f1": metrics.f1_score(y, pred, average="macro", zero_division=0),
        "class_f1": {c: float(v) for c, v in zip(labels, f1)},
    })

# Regression: labels away from 0 (MAPE divides by them).
for n in [50, 300]:
    y = rng.uniform(1, 100, n)
    pred = y + rng.normal(2, 10, n)
    out["regression"].append({
        "labels": y.tolist(), "predictions": pred.tolist(),
        "mae": metrics.mean_absolute_error(y, pred),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
        "mean_error": float(np.mean(pred - y)),
        "mape": metrics.mean_absolute_percentage_error(y, pred),
    })

with open("performance_reference.json", "w") as f:
    json.dump(out, f, indent=1)
