"""Reference values for processors.ScoreSignals: a prediction's confidence (highest class
score, the scores normalised to sum to 1) and the entropy of its class scores in nats, by
scipy.stats.entropy (which normalises too). A single score s is a binary model's
probability of one class, the other having 1 - s.

Run: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scipy==1.14.1 "numpy<2.3"
     /tmp/venv/bin/python processors/testdata/gen_scores.py > processors/testdata/scores_reference.json
"""
import json

import numpy as np
from scipy.stats import entropy

CASES = [
    {"a": 0.7, "b": 0.2, "c": 0.1},
    {"a": 1.0, "b": 0.0},
    {"x": 0.25, "y": 0.25, "z": 0.25, "w": 0.25},
    {"1": 0.8},
    {"1": 0.5},
    {"1": 0.0},
    {"a": 2.0, "b": 6.0},  # not normalised
    {"c%d" % i: float(i + 1) for i in range(12)},
]

out = []
for scores in CASES:
    p = np.array(list(scores.values()), dtype=float)
    if len(p) == 1:
        p = np.array([p[0], 1 - p[0]])
    out.append({"scores": scores, "confidence": float(p.max() / p.sum()), "entropy": float(entropy(p))})
print(json.dumps(out, indent=1))
