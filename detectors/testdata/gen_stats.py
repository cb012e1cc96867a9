#!/usr/bin/env python3
"""Reference values for detectors/stats_test.go, computed with scipy and numpy.

Run from this folder:  python3 -m pip install -r requirements.txt && python3 gen_stats.py
It writes stats_reference.json. The Go tests read it; nothing here runs in CI.
"""
import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261126)
out = {"scipy": __import__("scipy").__version__, "ks": [], "kolmogorov_sf": [], "chi2": [], "psi": [],
       "distances": [], "wasserstein": [], "gtest": [], "ztest": [], "fisher": [], "bh": []}

# Two-sample KS statistics and asymptotic p-values on raw samples (ties included).
for name, a, b in [
    ("normal-shift", rng.normal(0, 1, 300), rng.normal(0.3, 1, 200)),
    ("same", rng.normal(0, 1, 500), rng.normal(0, 1, 400)),
    ("ties", rng.integers(0, 5, 100).astype(float), rng.integers(1, 6, 120).astype(float)),
    ("scale", rng.normal(0, 1, 1000), rng.normal(0, 2, 1000)),
    ("tiny", np.array([1.0, 2.0, 3.0]), np.array([2.5, 3.5, 4.5, 5.5])),
]:
    r = stats.ks_2samp(a, b, method="asymp")
    n, m = len(a), len(b)
    out["ks"].append({
        "name": name, "a": a.tolist(), "b": b.tolist(), "d": float(r.statistic),
        # The Kolmogorov limiting distribution at sqrt(nm/(n+m)) * D.
        "p_kstwobign": float(stats.kstwobign.sf(np.sqrt(n * m / (n + m)) * r.statistic)),
        "p_scipy_asymp": float(r.pvalue),
    })

for x in [0.05, 0.2, 0.5, 0.8, 0.99, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0]:
    out["kolmogorov_sf"].append({"x": x, "sf": float(stats.kstwobign.sf(x))})

for name, a, b in [
    ("two-by-three", [10, 20, 30], [15, 25, 20]),
    ("shifted", [500, 300, 150, 50], [300, 300, 250, 150]),
    ("empty-category", [40, 0, 60], [35, 0, 65]),
    ("new-category", [100, 100, 0], [90, 80, 30]),
    ("large", [10000, 20000, 30000], [10100, 19800, 30100]),
]:
    table = np.array([a, b])
    keep = table.sum(axis=0) > 0
    chi2, p, dof, _ = stats.chi2_contingency(table[:, keep], correction=False)
    out["chi2"].append({"name": name, "a": a, "b": b, "stat": float(chi2), "dof": int(dof), "p": float(p)})

# PSI by its textbook definition, written independently of the Go code.
eps = 1e-4
for name, e, a in [
    ("uniform-vs-skewed", [10] * 10, [5, 5, 5, 5, 10, 10, 10, 15, 15, 20]),
    ("identical", [3, 7, 1], [3, 7, 1]),
    ("empty-bin", [50, 50, 0], [40, 40, 20]),
    ("shift", [100, 200, 400, 200, 100], [50, 100, 300, 300, 250]),
]:
    pe = np.maximum(np.array(e, float) / sum(e), eps)
    pa = np.maximum(np.array(a, float) / sum(a), eps)
    out["psi"].append({"name": name, "expected": e, "actual": a, "psi": float(np.sum((pa - pe) * np.log(pa / pe)))})

from scipy.spatial.distance import jensenshannon

# Distances between count vectors (reference a, window b).
for name, a, b in [
    ("shifted", [500, 300, 150, 50], [300, 300, 250, 150]),
    ("close", [10, 20, 30, 40], [11, 19, 31, 39]),
    ("identical", [3, 7, 1], [3, 7, 1]),
    ("empty-in-window", [40, 30, 30], [50, 50, 0]),
]:
    p = np.array(a, float) / sum(a)
    q = np.array(b, float) / sum(b)
    row = {"name": name, "a": a, "b": b,
           "js": float(jensenshannon(p, q, base=2)),
           # Hellinger from its L2 form, written independently of the Go formula.
           "hellinger": float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2)),
           "tvd": float(0.5 * np.abs(p - q).sum()),
           "linf": float(np.abs(p - q).max())}
    if (p > 0).all() and (q > 0).all():
        row["kl"] = float(stats.entropy(q, p))
    out["distances"].append(row)

# Wasserstein-1 on integer-valued samples: binned at every distinct value it is exact.
for name, a, b in [
    ("ints", rng.integers(0, 10, 200), rng.integers(2, 12, 150)),
    ("same-support", rng.integers(0, 5, 100), rng.integers(0, 5, 120)),
]:
    out["wasserstein"].append({"name": name, "a": a.astype(float).tolist(), "b": b.astype(float).tolist(),
                               "w1": float(stats.wasserstein_distance(a, b)), "ref_std": float(np.std(a, ddof=1))})

for name, a, b in [
    ("shifted", [500, 300, 150, 50], [300, 300, 250, 150]),
    ("empty-category", [40, 0, 60], [35, 0, 65]),
    ("sparse", [5, 1, 0, 3], [2, 0, 4, 6]),
]:
    table = np.array([a, b])
    keep = table.sum(axis=0) > 0
    g, p, dof, _ = stats.chi2_contingency(table[:, keep], correction=False, lambda_="log-likelihood")
    out["gtest"].append({"name": name, "a": a, "b": b, "g": float(g), "dof": int(dof), "p": float(p)})

# Two-proportion z-test, textbook formula with the pooled standard error.
for x1, n1, x2, n2 in [(45, 100, 60, 110), (500, 1000, 480, 1000), (0, 50, 3, 60)]:
    pool = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    out["ztest"].append({"x1": x1, "n1": n1, "x2": x2, "n2": n2, "z": float(z), "p": float(2 * stats.norm.sf(abs(z)))})

for t in [[[8, 2], [1, 5]], [[3, 1], [1, 3]], [[10, 0], [0, 10]], [[20, 15], [18, 22]], [[0, 5], [5, 0]], [[1, 9], [11, 3]]]:
    out["fisher"].append({"table": t, "p": float(stats.fisher_exact(t).pvalue)})

for ps in [[0.01, 0.04, 0.03, 0.2, 0.5], [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205], [0.9, 0.9]]:
    out["bh"].append({"p": ps, "adjusted": [float(x) for x in stats.false_discovery_control(ps, method="bh")]})

# Two-sample Anderson–Darling (midrank, p-value interpolated and capped to [0.001, 0.25])
# and Cramér–von Mises (asymptotic p-value) on raw samples, ties included.
out["ad"], out["cvm"] = [], []
for name, a, b in [
    ("normal-shift", rng.normal(0, 1, 300), rng.normal(0.2, 1, 250)),
    ("same", rng.normal(0, 1, 400), rng.normal(0, 1, 300)),
    ("ties", rng.integers(0, 6, 150).astype(float), rng.integers(0, 7, 130).astype(float)),
    ("scale", rng.normal(0, 1, 200), rng.normal(0, 1.5, 200)),
]:
    r = stats.anderson_ksamp([a, b])
    out["ad"].append({"name": name, "a": a.tolist(), "b": b.tolist(), "stat": float(r.statistic), "p": float(r.pvalue)})
    c = stats.cramervonmises_2samp(a, b, method="asymptotic")
    out["cvm"].append({"name": name, "a": a.tolist(), "b": b.tolist(), "stat": float(c.statistic), "p": float(c.pvalue)})

with open("stats_reference.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
