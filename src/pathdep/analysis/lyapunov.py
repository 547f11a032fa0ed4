"""Lyapunov spectra, finite-time exponents and covariant Lyapunov vectors of a discrete map:
one import for the three modules that hold them.

* :mod:`pathdep.analysis.lyapunov_qr` - QR with a positive diagonal (Householder,
  CholeskyQR2, by shape) and seeded orthonormal bases;
* :mod:`pathdep.analysis.lyapunov_benettin` - Benettin spectra (jvp, full Jacobian,
  batched), running estimates, finite-time exponents;
* :mod:`pathdep.analysis.lyapunov_clv` - Ginelli's covariant Lyapunov vectors, their growth
  rates and angles.

How it was checked: the tests of those modules (tests/analysis/test_lyapunov_*.py).
"""

from pathdep.analysis.lyapunov_benettin import (LyapunovResult, Map, batched_jacobian, benettin,
                                                benettin_batched, ftle, full_spectrum, jacobian)
from pathdep.analysis.lyapunov_clv import CLVResult, clv, clv_angles, clv_batched, solve_normalize
from pathdep.analysis.lyapunov_qr import (QR_METHODS, qr_auto, qr_cholesky, qr_positive,
                                          random_orthonormal)

__all__ = [
    "Map", "LyapunovResult", "CLVResult", "benettin", "benettin_batched", "full_spectrum", "ftle",
    "clv", "clv_batched", "clv_angles", "qr_positive", "jacobian", "batched_jacobian",
    "random_orthonormal", "qr_cholesky", "qr_auto", "QR_METHODS", "solve_normalize",
]
