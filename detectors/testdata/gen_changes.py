#!/usr/bin/env python3
"""Reference detections for detectors/changes_test.go, computed with River 0.26.1.

Run from this folder:
    python3 -m venv /tmp/river-venv && /tmp/river-venv/bin/pip install river==0.26.1
    /tmp/river-venv/bin/python gen_changes.py            # both parts
    /tmp/river-venv/bin/python gen_changes.py concept    # part 2 only

Part 1 writes changes_reference.json: deterministic streams (numpy, seeded) and the drift
(and warning) indices River's detectors report on them with their default parameters.
Part 2, if concept_streams.json exists (the SEA/Agrawal loss streams driftd's simulator
produces; `go test ./detectors/ -run TestConceptStreams -update-concept` writes it),
writes concept_river.json: River's detections on those identical streams.
The Go tests read both; nothing here runs in CI.
"""
import json
import os

import numpy as np
import river
from river import drift
from river.drift import binary

assert river.__version__ == "0.26.1", river.__version__

KSWIN_SEED = 42
KSWIN_SEEDS = 20


def detectors(binary_stream):
    """Fresh River detectors with default parameters, by driftd's ChangeKind name."""
    d = {
        "adwin": drift.ADWIN(),
        "page-hinkley": drift.PageHinkley(),
        "kswin": drift.KSWIN(seed=KSWIN_SEED),
    }
    if binary_stream:
        d.update({
            "ddm": binary.DDM(),
            "eddm": binary.EDDM(),
            "hddm-a": binary.HDDMA(),
            "hddm-w": binary.HDDMW(),
        })
    return d


def runs(indices):
    """Consecutive indices as [first, last] pairs: warnings come in long runs."""
    out = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def run(det, values):
    """Drift indices, and warning indices as runs (River's warning flag, which EDDM
    may leave up on a drift's value)."""
    drifts, warnings = [], []
    for i, v in enumerate(values):
        det.update(v)
        if det.drift_detected:
            drifts.append(i)
        if getattr(det, "warning_detected", False):
            warnings.append(i)
    return {"drifts": drifts, "warnings": runs(warnings)}


def sigmoid_mix(n, position, width, rng):
    """True where the new concept is drawn: River's ConceptDriftStream picks the new
    concept with probability 1 / (1 + exp(-4 (i - position) / width))."""
    i = np.arange(n)
    p_new = 1.0 / (1.0 + np.exp(-4.0 * (i - position) / width))
    return rng.random(n) < p_new


def streams():
    rng = np.random.default_rng(20261203)
    out = {}
    n = 2000
    out["bern_abrupt"] = {
        "binary": True, "drift_at": 1000,
        "values": [int(v) for v in np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])],
    }
    n = 3000
    new = sigmoid_mix(n, 1500, 500, rng)
    u = rng.random(n)
    out["bern_gradual"] = {
        "binary": True, "drift_at": 1500,
        "values": [int(v) for v in np.where(new, u < 0.4, u < 0.1)],
    }
    out["bern_stationary"] = {
        "binary": True, "drift_at": None,
        "values": [int(v) for v in rng.random(3000) < 0.1],
    }
    g = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(1.0, 1.0, 1000)])
    out["gauss_shift"] = {
        "binary": False, "drift_at": 1000,
        "values": [round(float(v), 4) for v in g],
    }
    out["gauss_stationary"] = {
        "binary": False, "drift_at": None,
        "values": [round(float(v), 4) for v in rng.normal(0.0, 1.0, 3000)],
    }
    # Streams whose mean falls (a model getting better), for the one-sided/two-sided options.
    out["bern_improve"] = {
        "binary": True, "drift_at": 1000,
        "values": [int(v) for v in np.concatenate([rng.random(1000) < 0.4, rng.random(1000) < 0.1])],
    }
    out["gauss_down"] = {
        "binary": False, "drift_at": 1000,
        "values": [round(float(v), 4) for v in np.concatenate([rng.normal(1.0, 1.0, 1000), rng.normal(0.0, 1.0, 1000)])],
    }
    return out


# Non-default parameters (River's names), each run on the streams listed.
PARAM_CASES = [
    ("adwin", {"delta": 0.05, "clock": 1, "min_window_length": 10, "grace_period": 50},
     ["bern_gradual", "gauss_shift", "gauss_down"]),
    ("adwin", {"max_buckets": 2, "clock": 8}, ["bern_abrupt", "gauss_stationary"]),
    ("ddm", {"warm_start": 100, "warning_threshold": 1.5, "drift_threshold": 2.5},
     ["bern_abrupt", "bern_gradual", "bern_stationary"]),
    ("eddm", {"warm_start": 10, "alpha": 0.98, "beta": 0.95}, ["bern_abrupt", "bern_stationary"]),
    ("hddm-a", {"drift_confidence": 0.01, "warning_confidence": 0.05, "two_sided_test": True},
     ["bern_abrupt", "bern_improve", "bern_stationary"]),
    ("hddm-w", {"lambda_val": 0.1, "two_sided_test": True}, ["bern_abrupt", "bern_improve", "bern_stationary"]),
    ("page-hinkley", {"mode": "up", "threshold": 20, "delta": 0.01}, ["gauss_shift", "gauss_down", "bern_abrupt"]),
    ("page-hinkley", {"mode": "down", "threshold": 20, "min_instances": 10}, ["gauss_shift", "gauss_down", "bern_improve"]),
]

MAKERS = {
    "adwin": drift.ADWIN, "ddm": binary.DDM, "eddm": binary.EDDM, "hddm-a": binary.HDDMA,
    "hddm-w": binary.HDDMW, "page-hinkley": drift.PageHinkley,
}


def part1(here):
    ss = streams()
    ref = {"river": river.__version__, "kswin_seed": KSWIN_SEED, "streams": ss, "detections": {}}
    for name, s in ss.items():
        for kind, det in detectors(s["binary"]).items():
            ref["detections"].setdefault(kind, {})[name] = run(det, s["values"])
    ref["param_cases"] = [
        {"kind": kind, "params": params, "stream": name, **run(MAKERS[kind](**params), ss[name]["values"])}
        for kind, params, names in PARAM_CASES for name in names
    ]
    # KSWIN draws at random (Mersenne Twister in River, PCG in driftd), so its
    # detections are compared in distribution: River's over seeds 1..KSWIN_SEEDS.
    ref["kswin_seeds"] = {
        name: [run(drift.KSWIN(seed=seed), s["values"])["drifts"] for seed in range(1, KSWIN_SEEDS + 1)]
        for name, s in ss.items()
    }
    # scipy's exact two-sample KS p-value for equal sizes, at every D = h/n.
    from scipy import stats as sstats
    ref["ks_exact"] = []
    for n in (5, 30, 100):
        for h in range(0, n + 1):
            a = [0.0] * n
            b = [0.0] * (n - h) + [1.0] * h  # D = h/n exactly
            res = sstats.ks_2samp(a, b, method="exact")
            ref["ks_exact"].append({"n": n, "h": h, "d": float(res.statistic), "p": float(res.pvalue)})
    with open(os.path.join(here, "changes_reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


def part2(here):
    path = os.path.join(here, "concept_streams.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        cs = json.load(f)
    out = {"river": river.__version__, "kswin_seed": KSWIN_SEED, "streams": {}}
    for s in cs["streams"]:
        # Four losses per hex digit, the first in the digit's high bit.
        values = [(int(c, 16) >> (3 - j)) & 1 for c in s["losses"] for j in range(4)][: s["n"]]
        # Drifts only: warnings on 30 streams would make the file ten times larger.
        out["streams"][s["name"]] = {k: {"drifts": run(d, values)["drifts"]} for k, d in detectors(True).items()}
    with open(os.path.join(here, "concept_river.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    # "concept" alone reruns part 2 (after go test -update-concept).
    if sys.argv[1:] != ["concept"]:
        part1(here)
    part2(here)
