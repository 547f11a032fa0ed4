"""Analyses of ensemble trajectories: pure functions, numpy/torch in, numpy/xarray out.

Modules (each documents what it computes, the paper it follows and how it was checked):

* :mod:`~pathdep.analysis.align` - permutation alignment by weight matching (Git Re-Basin).
* :mod:`~pathdep.analysis.align_resnet` - ResNets' permutation specs (residual streams, option-A segments).
* :mod:`~pathdep.analysis.align_transformer` - transformers' permutation specs (MLP units, whole heads, residual stream).
* :mod:`~pathdep.analysis.interpolate` - loss/accuracy along linear interpolations, barriers.
* :mod:`~pathdep.analysis.barriers` - interpolation grids baseline-to-member over training, barriers.
* :mod:`~pathdep.analysis.function_space` - distances between networks' outputs.
* :mod:`~pathdep.analysis.divergence` - weight-space metrics and the baseline-as-ground-truth ("cf.") metrics.
* :mod:`~pathdep.analysis.autocorr` - normalised autocorrelations of weight/output trajectories.
* :mod:`~pathdep.analysis.fits` - functional forms fitted to divergence curves, AIC/BIC.
* :mod:`~pathdep.analysis.fit_forms` - the candidate forms, their starting points and bounds.
* :mod:`~pathdep.analysis.fit_holdout` - fits judged out of sample (fit 2/3 of the run, predict the rest).
* :mod:`~pathdep.analysis.scaling` - fitted parameters against swept hyperparameters.
* :mod:`~pathdep.analysis.hypersphere` - Brownian motion on spheres; diffusion fits of weights.
* :mod:`~pathdep.analysis.lyapunov` - one import for the three Lyapunov modules below.
* :mod:`~pathdep.analysis.lyapunov_qr` - QR with a positive diagonal (Householder, CholeskyQR2), seeded bases.
* :mod:`~pathdep.analysis.lyapunov_benettin` - Benettin spectra, running estimates, FTLEs.
* :mod:`~pathdep.analysis.lyapunov_clv` - Ginelli's covariant Lyapunov vectors, growth rates, angles.
* :mod:`~pathdep.analysis.lyapunov_link` - lambda_1 against the measured divergence, across baselines (verdict).
* :mod:`~pathdep.analysis.lyapunov_resolution` - exponent errors, resolved (|lambda| T >= 1) or a bound, ordering.
* :mod:`~pathdep.analysis.lyapunov_study` - the 2-2-1 weight-dynamics study (runner).
* :mod:`~pathdep.analysis.study_model` - the 2-2-1 networks' update map and closed-form Jacobian.
* :mod:`~pathdep.analysis.study_kernels` - compiled (numba) kernels of the 2-2-1 study.
* :mod:`~pathdep.analysis.study_roc` - the study's cross-validated ROC, AUCs, Hanley-McNeil errors.
* :mod:`~pathdep.analysis.quantities` - the divergence curves the fits read.
* :mod:`~pathdep.analysis.replicates` - replicate baselines: (baseline, copy) labels, intervals across baselines.
* :mod:`~pathdep.analysis.spread` - spread of ensembles by source of randomness.
* :mod:`~pathdep.analysis.koopman` - exact DMD, Hankel observables, Wasserstein distances between spectra.
* :mod:`~pathdep.analysis.koopman_groups` - spectra per run, distances between runs, group permutation tests.
* :mod:`~pathdep.analysis.koopman_toy` - the OMD / OGD / bisection toy of Redman et al. (2024).
* :mod:`~pathdep.analysis.koopman_stats` - exact or Monte-Carlo permutation p-values with their floor.
* :mod:`~pathdep.analysis.koopman_calibration` - the Koopman test's rejection rate under the null and its power.
* :mod:`~pathdep.analysis.koopman_windows` - dynamical transitions: the two-block split of window x window W1.
* :mod:`~pathdep.analysis.ntk` - empirical and analytic NTK / NNGP, linearised networks.
* :mod:`~pathdep.analysis.ntk_analytic` - infinite-width NNGP / NTK of fully connected networks (closed forms, quadrature).
* :mod:`~pathdep.analysis.ntk_empirical` - the empirical NTK's plan and generic paths (blocked Jacobians, NTK-vector products).
* :mod:`~pathdep.analysis.ntk_structured` - the empirical NTK by structured derivatives (MLP, LeNet-5).
* :mod:`~pathdep.analysis.ntk_dynamics` - the NTK sections' training loops, catapult and path-vs-width summaries.
* :mod:`~pathdep.analysis.architecture` - separation rate per architecture at matched parameter count, CNN - MLP verdict.
* :mod:`~pathdep.analysis.grokking` - grokking: first steps at train 100 %, test 50 % / 90 %, the delay.
* :mod:`~pathdep.analysis.patterns` - per-pattern learning curves of domino datasets, onsets, the toy model.
* :mod:`~pathdep.analysis.claims` - the claims ledger's decision rules, verdicts and curve statistics.
* :mod:`~pathdep.analysis.claims_stats` - one statistic per kind of claim of the seeds (arrays in, verdict out).

Everything works on flat parameter vectors (``w: (P,)``, ensembles ``(K, P)``) with
:class:`pathdep.core.models.Layout` and ``apply = make_apply(module, layout)``.
"""

import importlib

__all__ = ["align", "align_resnet", "align_transformer", "architecture", "autocorr", "barriers", "claims", "claims_stats", "divergence", "fit_forms", "fit_holdout", "fits", "function_space", "grokking", "hypersphere",
           "interpolate", "koopman", "koopman_calibration", "koopman_groups", "koopman_stats", "koopman_toy", "koopman_windows", "lyapunov", "lyapunov_benettin", "lyapunov_clv",
           "lyapunov_link", "lyapunov_qr", "lyapunov_resolution", "lyapunov_study", "ntk", "ntk_analytic",
           "ntk_dynamics", "ntk_empirical", "ntk_structured", "patterns", "quantities", "replicates", "scaling",
           "spread", "study_kernels", "study_model", "study_roc"]


def __getattr__(name: str):
    """Import submodules on first use (PEP 562): the fits / tables / figures jobs then need
    no torch import (about 2 s of CPU per job)."""
    if name in __all__:
        return importlib.import_module(f"pathdep.analysis.{name}")
    raise AttributeError(f"module 'pathdep.analysis' has no attribute {name!r}")
