"""Reference values of K_nu(x) (scipy.special.kv) and of the Cramér–von Mises limiting
distribution (scipy.stats._hypotests._cdf_cvm_inf) for detectors' besselK and cvmCDFInf.
Run from detectors/testdata: python3 gen_bessel.py > bessel_reference.json"""
import json

import numpy as np
from scipy.special import kv
from scipy.stats._hypotests import _cdf_cvm_inf

xs = [float(x) for x in np.geomspace(1e-6, 1e4, 41)]
out = {
    "bessel": [{"nu": 0.25, "x": x, "k": float(kv(0.25, x))} for x in xs],
    "cvm": [{"x": x, "cdf": float(_cdf_cvm_inf(x))} for x in [0.004, 0.01, 0.03, 0.1, 0.2, 0.3, 0.46, 0.75, 1.0, 1.5, 2.5, 5.0]],
}
print(json.dumps(out, indent=1))
