"""The ``koopman:`` config block: defaults, resolution and cross-key checks.

What it holds:

* :data:`DEFAULTS`: ``toy`` (the OMD/OGD/bisection validation study of Redman et al.,
  NeurIPS 2024, sec. 4.1), ``calibration`` (rejection rates of the conjugacy test on noisy
  linear systems, :mod:`pathdep.analysis.koopman_calibration`) and ``experiment`` (the
  settings of one experiment's spectra: the top-level keys of ``koopman:`` with ``koopman.experiments.<exp>`` merged in).
* :func:`experiment_spec`: that merge (what the ``koopman_experiment`` rule passes
  through ``params:``); :func:`resolve`: defaults merged with a spec, then checked
  (``ValueError("koopman.<key>: ...")``); :func:`window_size`: a ``windows`` block in
  training steps; :func:`group_of`: a run's group label (``group_by``).
* :func:`check`: ``koopman.experiments`` name configured experiments, every experiment's
  settings resolve, ``group_by`` names a key of every run, ``windows`` of a weight
  observable come with evenly spaced checkpoints (not ``mode: log``), ``toy.n_groups``
  fits the grid, ``calibration`` resolves.

How it was checked: tests/config/test_koopman.py (defaults, unknown keys, the windows
block, group labels, one-line errors) and tests/test_bad_input.py (through ``snakemake -n``).
"""

from __future__ import annotations

import copy

from pathdep.config.errors import ConfigError

DEFAULTS: dict = {
    "toy": {
        "eta": 1e-2,        # Redman et al.'s step size: OMD and OGD agree to O(eta^2) per step
        "T": 100,           # iterations, as in the paper's Fig. 2
        "grid": 5,          # 5 x 5 grid of initial conditions (the paper's)
        "n_delays": 4,      # Hankel delays of the raw iterates (the paper's)
        "rank": None,       # full numerical rank
        "n_groups": 5,      # disjoint groups of initial conditions = replicate spectra per method
        "n_perm": 2000,     # permutations: p resolves 1/2001
        "seed": 0,
    },
    "calibration": {       # pathdep.analysis.koopman_calibration.calibrate: noisy linear systems
        "replicates": [3, 4, 5, 6],   # replicates per group (exact p floors 1/10, 1/35, 1/126, 1/462)
        "repeats": 200,     # repeats per case and group size: rates resolve 1/200
        "alpha": 0.05,
        "rho": [0.95, 0.8],  # moduli of the two eigenvalue pairs
        "theta": [0.2, 0.6],  # their angles; the alternative adds delta to the first
        "delta": 0.1,
        "sigma": 0.5,       # process noise
        "n_traj": 2,        # trajectories per replicate
        "T": 100,           # steps per trajectory
        "copy_eps": 1e-3,   # relative initial-condition perturbation of a copy (pseudo-replicates)
        "n_perm": 1000,     # random splits, only where the exact test is too large
        "seed": 0,
    },
    "experiment": {
        "observable": "output_weights",  # the paper's FCN study observes the output layer
        "n_delays": 0,                   # weights are high-dimensional: no delays needed
        "rank": 10,                      # DMD truncation (the paper's r = 10)
        "group_by": None,                # None: each run a group, its members the replicates
        "window": None,                  # [first, last] step kept (None: all)
        "windows": None,                 # {size, stride} or {per_epoch: true}: spectra per window
        "n_perm": 1000,                  # permutations of the conjugacy test
        "collapse_tol": 1e-3,            # spectra within this of 1 (or 0) are refused
        "seed": 0,                       # permutation RNG
    },
}
OBSERVABLES = ("output_weights", "weights", "loss")
WINDOW_KEYS = ("size", "stride", "per_epoch")


def experiment_spec(block: dict | None, experiment: str) -> dict:
    """The settings of one experiment: top-level ``koopman:`` keys (without ``toy`` and
    ``experiments``) with ``koopman.experiments.<experiment>`` merged over them."""
    spec = dict(block or {})
    spec.pop("toy", None)
    spec.pop("calibration", None)
    per_exp = spec.pop("experiments", None) or {}
    return {**spec, **(per_exp.get(experiment) or {})}


def _check_windows(windows) -> None:
    if not isinstance(windows, dict):
        raise ValueError(f"koopman.windows: expected a mapping {{size, stride}} or {{per_epoch: true}}, got {windows!r}")
    unknown = set(windows) - set(WINDOW_KEYS)
    if unknown:
        raise ValueError(f"koopman.windows.{sorted(unknown)[0]}: unknown key (expected some of {list(WINDOW_KEYS)})")
    if windows.get("per_epoch") and "size" in windows:
        raise ValueError("koopman.windows: give either size or per_epoch: true, not both")
    if not windows.get("per_epoch") and "size" not in windows:
        raise ValueError("koopman.windows: expected size (steps) or per_epoch: true")


def resolve(spec: dict | None, part: str = "experiment") -> dict:
    """:data:`DEFAULTS` ``[part]`` with ``spec`` merged over it, checked.

    Args:
        spec: ``koopman.toy`` (``part="toy"``), ``koopman.calibration`` or an experiment's
            settings (:func:`experiment_spec`).
        part: ``"toy"``, ``"calibration"`` or ``"experiment"``.

    Raises:
        ValueError: ``koopman[.toy|.calibration].<key>: ...`` for an unknown key, an
            unknown observable, a malformed ``windows`` block, or calibration replicates < 2.
    """
    base = DEFAULTS[part]
    s = {**copy.deepcopy(base), **(spec or {})}
    unknown = set(s) - set(base)
    if unknown:
        prefix = "koopman" if part == "experiment" else f"koopman.{part}"
        raise ValueError(f"{prefix}.{sorted(unknown)[0]}: unknown key")
    if part == "experiment":
        if s["observable"] not in OBSERVABLES:
            raise ValueError(f"koopman.observable: expected one of {list(OBSERVABLES)}, got {s['observable']!r}")
        if s["windows"]:
            _check_windows(s["windows"])
    if part == "calibration" and (not s["replicates"] or min(s["replicates"]) < 2):
        raise ValueError(f"koopman.calibration.replicates: expected sizes >= 2 per group, got {s['replicates']}")
    return s


def window_size(windows: dict, steps_per_epoch: int) -> tuple[int, int]:
    """(size, stride) in training steps of a ``koopman.windows`` block.

    Args:
        windows: ``{size: N, stride: M}`` (stride defaults to size) or ``{per_epoch: true}``
            (size = stride = one epoch).
        steps_per_epoch: of the run (from its trajectory.h5).
    """
    _check_windows(windows)
    if windows.get("per_epoch"):
        if steps_per_epoch < 1:
            raise ValueError("koopman.windows.per_epoch: the trajectory does not record steps_per_epoch")
        size = steps_per_epoch
    else:
        size = int(windows["size"])
    stride = int(windows.get("stride", size))
    if size < 1 or stride < 1:
        raise ValueError(f"koopman.windows: size and stride must be >= 1 step, got {size}, {stride}")
    return size, stride


def group_of(run: dict, group_by: str | None) -> str:
    """The group label of a resolved run: the value at the dotted key ``group_by``, or the
    run's name when ``group_by`` is None."""
    if not group_by:
        return run["run"]
    d = run
    for k in group_by.split("."):
        if not isinstance(d, dict) or k not in d:
            raise ValueError(f"koopman.group_by: key {group_by!r} not in the run config")
        d = d[k]
    return str(d)


def check(config: dict, runs: dict) -> None:
    """Cross-key checks of ``koopman:`` (``runs``: ``{experiment: [resolved run, ...]}``).

    Raises:
        ConfigError: one line ``config: koopman.<key>: ...``.
    """
    block, exps = config.get("koopman") or {}, [str(e) for e in (config.get("experiments") or {})]
    for e in block.get("experiments") or {}:
        if e not in exps:
            raise ConfigError(f"config: koopman.experiments.{e}: unknown experiment (expected some of: "
                              f"{', '.join(exps)})")
    toy = block.get("toy") or {}
    grid = toy.get("grid", DEFAULTS["toy"]["grid"])
    if not 2 <= toy.get("n_groups", DEFAULTS["toy"]["n_groups"]) <= grid ** 2 // 2:
        raise ConfigError("config: koopman.toy.n_groups: expected 2 .. grid^2 // 2 (one replicate spectrum "
                          "per disjoint group of initial conditions)")
    try:
        resolve(block.get("calibration"), "calibration")
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    for e in block.get("experiments") or {}:
        try:
            s = resolve(experiment_spec(block, e))
            for run in runs.get(e) or []:
                group_of(run, s["group_by"])
        except ValueError as exc:
            raise ConfigError(f"config: {exc}") from None
        _check_windows_sampling(e, s, runs.get(e) or [])


def _check_windows_sampling(exp: str, s: dict, runs: list) -> None:
    """Windows of a weight observable need evenly spaced checkpoints through the run: log-spaced
    ones are even only over the first few steps (the per-step ``loss`` observable always is)."""
    if not s["windows"] or s["observable"] == "loss":
        return
    for run in runs:
        mode = ((run.get("training") or {}).get("checkpoints") or {}).get("mode", "log")
        if mode == "log":
            raise ConfigError(f"config: koopman.experiments.{exp}.windows: expected evenly spaced checkpoints "
                              f"(training.checkpoints.mode: every or steps) for observable {s['observable']}, "
                              f"experiment {exp} records mode log (or use observable: loss)")
