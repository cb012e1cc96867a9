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
       "binom": [], "welch": [], "nbinom_cdf": [], "poisson_rate_greater": [], "stage_duration": [],
       "stage_duration_grouped": []}

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

# Two Poisson rates: x counts per n of exposure against x_ref per n_ref, "window higher"
# (a stage's nulls per record out; nulls may be counted per cell, so x may exceed n).
for x, n, xr, nr in [(30, 1000, 20, 7000), (3, 1000, 20, 7000), (600, 1000, 35, 7000),
                     (2500, 1000, 1000, 7000), (0, 100, 0, 700), (5, 10, 0, 70)]:
    p = stats.binom(x + xr, n / (n + nr)).pmf(np.arange(x, x + xr + 1)).sum()
    out["poisson_rate_greater"].append({"x": x, "n": n, "x_ref": xr, "n_ref": nr, "p": float(p)})

# A stage's run durations (ms) in a window against its baseline's: the one-sided pooled
# two-sample t-test on log(1 + ms) (ttest_ind_from_stats, equal_var, "greater"), and the
# ratio of the geometric means on 1 + ms.
rng = np.random.default_rng(7)
for name, window, base in [
    ("one run, steady stage, 4x", [8000.0], [2000, 2100, 1950, 2050, 1980, 2020, 2010]),
    ("one run, varied stage, 4x", [8000.0], [2000, 900, 4100, 1500, 3000, 2600, 1200]),
    ("twelve runs, 2x", list(rng.lognormal(np.log(4000), 0.3, 12)), list(rng.lognormal(np.log(2000), 0.3, 84))),
    ("twelve runs, unchanged", list(rng.lognormal(np.log(2000), 0.3, 12)), list(rng.lognormal(np.log(2000), 0.3, 84))),
    ("faster", [500.0, 600.0], [2000, 2100, 1950]),
    ("zero ms runs", [0.0, 3.0], [0.0, 1.0, 2.0]),
]:
    w, b = np.log1p(np.array(window, dtype=float)), np.log1p(np.array(base, dtype=float))
    sw = float(w.std(ddof=1)) if len(w) > 1 else 0.0
    r = stats.ttest_ind_from_stats(w.mean(), sw, len(w), b.mean(), b.std(ddof=1), len(b), equal_var=True, alternative="greater")
    out["stage_duration"].append({"name": name, "window_ms": [float(v) for v in window], "baseline_ms": [float(v) for v in base],
                                  "t": float(r.statistic), "df": float(len(w) + len(b) - 2), "p": float(r.pvalue),
                                  "ratio": float(np.exp(w.mean() - b.mean()))})

# A stage's durations against a week of hourly windows with a level per hour of day: the
# window's contrast in an ordinary least-squares model of log(1 + ms) with a mean per
# hour of day and one for the window (statsmodels OLS, one-sided). The level is the same
# hour of the previous seven days; the spread is pooled over every hour's runs.
import statsmodels.api as sm  # noqa: E402

for name, runs_per_window, days, hour, factor in [
    ("hourly stage, heavy nightly run, usual night", 1, 7, 2, 1.0),
    ("hourly stage, heavy nightly run, 4x", 1, 7, 2, 4.0),
    ("hourly stage, afternoon 4x", 1, 7, 14, 4.0),
    ("hourly stage, two days of history, 4x", 1, 2, 14, 4.0),
    ("five-minute stage, afternoon 2.2x", 12, 2, 14, 2.2),
]:
    rng = np.random.default_rng(11)
    history = []  # (hours after midnight of the first day, [ms]): the week before the window
    for h in range(hour, hour + days * 24):
        level = 10000.0 if h % 24 == 2 else 2000.0
        history.append((h, [float(round(level * np.exp(0.25 * rng.normal()))) for _ in range(runs_per_window)]))
    level = 10000.0 if hour == 2 else 2000.0
    window = [float(round(factor * level * np.exp(0.25 * rng.normal()))) for _ in range(runs_per_window)]
    at = hour + days * 24  # the window judged, after the history
    ys, groups, is_window = [], [], []
    for h, ms in history:
        for v in ms:
            ys.append(np.log1p(v)); groups.append(h % 24); is_window.append(0)
    for v in window:
        ys.append(np.log1p(v)); groups.append(hour); is_window.append(1)
    X = np.zeros((len(ys), 25))
    for i, (g, w) in enumerate(zip(groups, is_window)):
        X[i, g] = 1
        X[i, 24] = w
    fit = sm.OLS(np.array(ys), X).fit()
    t = float(fit.tvalues[24])
    df = float(fit.df_resid)
    p = float(stats.t.sf(t, df))
    same = [np.log1p(v) for h, ms in history if h % 24 == hour and at - h <= 7 * 24 for v in ms]
    out["stage_duration_grouped"].append({"name": name, "history": [{"hour": h, "ms": ms} for h, ms in history], "at": at,
                                          "window_ms": window, "t": t, "df": df, "p": p,
                                          "ratio": float(np.exp(np.mean(np.log1p(window)) - np.mean(same)))})

with open("signals_reference.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
