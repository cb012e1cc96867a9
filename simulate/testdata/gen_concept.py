#!/usr/bin/env python3
"""Reference values for simulate/concept_test.go, from River 0.26.1's own generators.

Run from this folder:
    python3 -m venv /tmp/river-venv && /tmp/river-venv/bin/pip install river==0.26.1
    /tmp/river-venv/bin/python gen_concept.py

It writes concept_reference.json: the share of class 1 for every SEA variant and every
Agrawal function (noise and perturbation off), and for the drifts the Go tests use, the
share of examples on which the old concept's rule disagrees with the new one's (the
error rate after the drift of a model that keeps predicting with the old rule). The Go
generators draw with a different PRNG, so the Go tests compare shares, with binomial
tolerances; nothing here runs in CI.
"""
import itertools
import json
import os

import river
from river.datasets import synth

assert river.__version__ == "0.26.1", river.__version__
N = 200_000

out = {"river": river.__version__, "n": N, "sea_class1": {}, "agrawal_class1": {}, "disagree": []}
for v in range(4):
    ys = [y for _, y in itertools.islice(synth.SEA(variant=v, seed=1), N)]
    out["sea_class1"][str(v)] = sum(ys) / N
for f in range(10):
    ys = [y for _, y in itertools.islice(synth.Agrawal(classification_function=f, seed=1), N)]
    out["agrawal_class1"][str(f)] = sum(ys) / N

# Disagreement between two concepts on the same examples: label each example of one
# generator with both rules.
sea_thr = {0: 8, 1: 9, 2: 7, 3: 9.5}
for a, b in [(0, 3), (1, 2)]:
    xs = [x for x, _ in itertools.islice(synth.SEA(variant=0, seed=2), N)]
    d = sum((x[0] + x[1] > sea_thr[a]) != (x[0] + x[1] > sea_thr[b]) for x in xs) / N
    out["disagree"].append({"family": "sea", "before": a, "after": b, "share": d})
ag = synth.Agrawal(seed=2)
fns = ag._classification_functions
names = ag.feature_names
for a, b in [(0, 2), (2, 5), (1, 6)]:
    xs = [x for x, _ in itertools.islice(synth.Agrawal(seed=2), N)]
    d = sum(fns[a](*(x[k] for k in names)) != fns[b](*(x[k] for k in names)) for x in xs) / N
    out["disagree"].append({"family": "agrawal", "before": a, "after": b, "share": d})

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "concept_reference.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
