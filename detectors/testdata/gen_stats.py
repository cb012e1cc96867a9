#!/usr/bin/env python3
"""Reference values for detectors/stats_test.go, computed with scipy and numpy.

Run from this folder:  python3 -m pip install -r requirements.txt && python3 gen_stats.py
It writes stats_reference.json. The Go tests read it; nothing here runs in CI.
"""
import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261126)
out = {"scipy": __import__("scipy").__version__, "ks": [], "kolmogorov_sf": [], "chi2": [], "psi": []}

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

with open("stats_reference.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
