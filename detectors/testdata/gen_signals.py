#!/usr/bin/env python3
"""Reference values for detectors/tails_test.go (the exact tests of the input, output and
service signals), computed with scipy.

Run from this folder:  python3 -m pip install -r requirements.txt && python3 gen_signals.py
It writes signals_reference.json. The Go tests read it; nothing here runs in CI.
"""
import json

import numpy as np
from scipy import stats

out = {"scipy": __import__("scipy").__version__, "fisher_greater": [], "betabinom_sf": [],
       "binom": [], "welch": [], "nbinom_cdf": []}

# One-sided Fisher: window (x of n) against reference (x_ref of n_ref), "window higher".
for x, n, xr, nr in [
    (54, 120, 2, 180),          # missing 1% -> 45% at 1 event/s (merged windows)
    (6, 100, 3, 300),           # a small, insignificant rise
    (0, 100, 5, 300),           # a fall
    (3, 60, 0, 180),            # sparse
    (200, 10000, 100, 10000),   # 1% -> 2% at 10k events: significant, irrelevant
    (320, 30000, 880, 90000),   # stationary 1% at 100 events/s, 5-minute windows
    (9000, 30000, 900, 90000),  # errors x30 at volume
    (1, 1, 0, 1),
    (50, 50, 0, 50),
]:
    p = stats.fisher_exact([[x, n - x], [xr, nr - xr]], alternative="greater").pvalue
    out["fisher_greater"].append({"x": x, "n": n, "x_ref": xr, "n_ref": nr, "p": float(p)})

# P(X >= x) for X ~ BetaBinomial(n, a, b): the count of window values above a reference
# order statistic.
for x, n, a, b in [
    (3, 100, 2, 179),
    (10, 100, 2, 179),
    (120, 120, 2, 179),
    (330, 30000, 901, 89100),
    (400, 30000, 901, 89100),
    (200, 30000, 901, 89100),
    (70, 120, 90, 91),
    (0, 50, 1.5, 3.5),
    (1, 50, 1.5, 3.5),
]:
    # Summed pmf: betabinom.sf is 1 - cdf and underflows to 0 far in the tail.
    sf = stats.betabinom(n, a, b).pmf(np.arange(x, n + 1)).sum()
    out["betabinom_sf"].append({"x": x, "n": n, "a": a, "b": b, "sf": float(sf)})

for x, n, p in [(0, 240, 0.25), (30, 210, 0.25), (52, 210, 0.25), (90, 210, 0.25), (5, 10, 0.5),
                (25, 100000, 0.0001), (1000, 100000, 0.01)]:
    out["binom"].append({"x": x, "n": n, "p": p, "sf": float(stats.binom(n, p).pmf(np.arange(x, n + 1)).sum()),
                         "cdf": float(stats.binom(n, p).pmf(np.arange(0, x + 1)).sum())})

# P(X <= x) for X negative binomial with mean mu and size r (variance mu + mu^2 / r): a
# window's events under traffic that varies more than Poisson (r from the learned windows'
# dispersion). Summed pmf, for the far tail.
for x, mu, r in [(0, 60, 4), (6, 60, 4), (15, 60, 4), (0, 300, 20), (30, 300, 20), (150, 300, 20),
                 (60, 600, 85.7), (500, 600, 85.7), (3, 5.5, 2.25), (0, 1.5, 0.5)]:
    d = stats.nbinom(r, r / (r + mu))
    out["nbinom_cdf"].append({"x": x, "mu": mu, "r": r, "cdf": float(d.pmf(np.arange(0, x + 1)).sum())})

for m1, s1, n1, m2, s2, n2 in [(7.5, 2.0, 120, 5.0, 1.5, 180), (5.02, 1.4, 30000, 5.0, 1.4, 90000),
                               (10, 3, 5, 12, 1, 8), (100, 50, 300, 98, 45, 900)]:
    r = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    out["welch"].append({"mean1": m1, "std1": s1, "n1": n1, "mean2": m2, "std2": s2, "n2": n2,
                         "t": float(r.statistic), "df": float(df), "p": float(r.pvalue)})

with open("signals_reference.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
