#!/usr/bin/env python3
"""Reference values for detectors/noise_test.go (the joint model's held-out row errors and
its threshold's tail), computed with scipy and numpy.

Run from this folder:  python3 -m pip install -r requirements.txt && python3 gen_noise.py
It writes noise_reference.json. The Go tests read it; nothing here runs in CI.
"""
import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261202)
out = {"scipy": __import__("scipy").__version__, "pearson3_ppf": [], "pca": []}

# Pearson type III quantiles (the joint threshold's tail).
for mean, sd, skew, p in [(1.0, 0.1, 0.2, 1 - 1e-6), (1.0, 0.1, 0.0, 1 - 1e-6), (2.5, 0.3, 1.5, 0.999),
                          (0.4, 0.05, 0.05, 1 - 1e-6), (1.0, 0.2, -0.5, 0.99), (3.0, 1.0, 0.7, 0.5)]:
    out["pearson3_ppf"].append({"mean": mean, "sd": sd, "skew": skew, "p": p,
                                "q": float(stats.pearson3.ppf(p, skew, loc=mean, scale=sd))})


def fit(rows, share=0.65):
    """The joint model as docs/statistics.md describes it: fitted on the even rows
    (standardized with their mean and population std, principal components of their
    correlation matrix kept up to `share` of the variance, at most d - 1), row errors
    measured on the odd rows."""
    fit_rows, held = rows[0::2], rows[1::2]
    mean, scale = fit_rows.mean(axis=0), fit_rows.std(axis=0)
    corr = np.corrcoef(fit_rows, rowvar=False)
    vals, vecs = np.linalg.eigh(corr)
    order = np.argsort(vals)[::-1]
    comps, acc = [], 0.0
    for i in order:
        if len(comps) == corr.shape[0] - 1 or (comps and acc >= share * vals.sum()):
            break
        comps.append(vecs[:, i])
        acc += vals[i]
    v = np.array(comps)
    r = np.eye(corr.shape[0]) - v.T @ v
    q = (((held - mean) / scale) @ r.T) ** 2
    q = q.sum(axis=1)
    return mean, scale, r, len(comps), q


for name, cov, n in [
    ("correlated", [[1.0, 0.8, 0.1, 0.0], [0.8, 1.0, 0.2, 0.0], [0.1, 0.2, 1.0, 0.3], [0.0, 0.0, 0.3, 2.0]], 800),
    ("pair", [[4.0, -1.5], [-1.5, 1.0]], 600),
]:
    rows = np.round(rng.multivariate_normal(np.zeros(len(cov)), cov, size=n) * 3 + 10, 3)
    mean, scale, r, k, q = fit(rows)
    window = np.round(rng.multivariate_normal(np.zeros(len(cov)), cov, size=300) * 3 + 10, 3)
    wq = ((((window - mean) / scale) @ r.T) ** 2).sum(axis=1)
    out["pca"].append({
        "name": name, "rows": rows.tolist(), "window": window.tolist(), "components": k,
        "mean": mean.tolist(), "scale": scale.tolist(),
        "error_mean": float(q.mean()), "error_std": float(q.std(ddof=1)),
        "error_skew": float(stats.skew(q)), "error_kurtosis": float(stats.kurtosis(q, fisher=False)),
        "error_rows": int(len(q)),
        # The window's reconstruction error is the mean of its rows' errors.
        "window_error": float(wq.mean()),
    })

with open("noise_reference.json", "w") as f:
    json.dump(out, f)
