"""The ``grokking:`` config block: which experiments the grokking rules read, and their settings.

Keys:

* ``experiments: [name, ...]``: rule ``grokking`` tabulates and draws them (train 100 % /
  test 50 % / 90 % steps, the accuracy and loss figure);
* ``koopman: {experiments: [...], observables, steps, rank, n_delays, n_perm, collapse_tol,
  seed, group_by}``: rule ``grokking_koopman`` compares the Koopman spectra of the groups of
  runs (``group_by``, default ``optimizer.constrain_norm``: the grokking and the
  norm-constrained transformer) over the first ``steps`` training steps, one spectrum per
  independent baseline, with W1 and a permutation test (:data:`KOOPMAN_DEFAULTS`);
* ``path: {experiments: [...], n_perm, seed}``: rule ``grokking_path`` measures how far the
  grokking step of each perturbed copy moves from its own baseline's, against eps, with the
  weight distances and the interpolation barriers before and after grokking.

:func:`resolve` returns the ``experiments`` list; :func:`koopman_spec` / :func:`path_spec` the
resolved sub-blocks; :func:`check` (run by ``validate()``, :data:`pathdep.config.blocks.CHECKS`)
requires every named experiment to exist, the Koopman experiments to record evenly spaced
checkpoints from step 0 to ``steps`` and to have at least two groups, and the path
experiments to be swept over ``perturbation.epsilon``. A grokking experiment may also get the
standard figures and analyses (metrics, geometry with the transformer permutation spec,
fits); the default config lists them in ``figures.exclude`` for the time budget.
How it was checked: ``tests/config/test_grokking.py`` (known and unknown experiments, a
malformed block, the sub-blocks' defaults and one-line errors).
"""

from __future__ import annotations

import copy

from pathdep.config.errors import ConfigError

__all__ = ["DEFAULTS", "KOOPMAN_DEFAULTS", "PATH_DEFAULTS", "resolve", "koopman_spec", "path_spec", "check"]

#: ``grokking.koopman``: observables of :func:`pathdep.stages.koopman.observations` (``weights``:
#: the whole flat weight vector, ``output_weights``: the unembedding), DMD settings of
#: :func:`pathdep.analysis.koopman.koopman_eigenvalues`, the permutation test's settings.
KOOPMAN_DEFAULTS: dict = {"experiments": [], "observables": ["weights", "output_weights"], "steps": 100,
                          "rank": 10, "n_delays": 0, "n_perm": 1000, "collapse_tol": 1e-3, "seed": 0,
                          "group_by": "optimizer.constrain_norm"}
#: ``grokking.path``: the trend test's permutations and seed.
PATH_DEFAULTS: dict = {"experiments": [], "n_perm": 10000, "seed": 0}
DEFAULTS: dict = {"experiments": [], "koopman": KOOPMAN_DEFAULTS, "path": PATH_DEFAULTS}
_OBSERVABLES = ("weights", "output_weights")


def _names(value, key: str, runs: dict) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise ConfigError(f"config: {key}: expected a list of experiment names, got {value!r}")
    for e in value:
        if e not in runs:
            raise ConfigError(f"config: {key}: unknown experiment {e!r} (expected one of: {', '.join(runs)})")
    return list(value)


def _block(config: dict) -> dict:
    block = config.get("grokking") or {}
    if not isinstance(block, dict) or set(block) - set(DEFAULTS):
        raise ConfigError(f"config: grokking: expected a mapping with keys {sorted(DEFAULTS)}, got {block!r}")
    return block


def _sub(config: dict, name: str, defaults: dict) -> dict:
    sub = _block(config).get(name) or {}
    if not isinstance(sub, dict):
        raise ConfigError(f"config: grokking.{name}: expected a mapping, got {sub!r}")
    unknown = sorted(set(sub) - set(defaults))
    if unknown:
        raise ConfigError(f"config: grokking.{name}.{unknown[0]}: unknown key (expected some of {sorted(defaults)})")
    return {**copy.deepcopy(defaults), **sub}


def resolve(config: dict, runs: dict[str, list[dict]]) -> list[str]:
    """The ``grokking.experiments`` list, checked against the configured experiments.

    Raises:
        ConfigError: one line naming ``grokking.<key>``.
    """
    return _names(_block(config).get("experiments") or [], "grokking.experiments", runs)


def koopman_spec(config: dict, runs: dict[str, list[dict]]) -> dict:
    """``grokking.koopman`` merged over :data:`KOOPMAN_DEFAULTS`, its experiments checked."""
    s = _sub(config, "koopman", KOOPMAN_DEFAULTS)
    s["experiments"] = _names(s["experiments"], "grokking.koopman.experiments", runs)
    obs = s["observables"]
    if not isinstance(obs, list) or not obs or any(o not in _OBSERVABLES for o in obs):
        raise ConfigError(f"config: grokking.koopman.observables: expected a list of {list(_OBSERVABLES)}, got {obs!r}")
    if not isinstance(s["steps"], int) or s["steps"] < s["n_delays"] + 3:
        raise ConfigError(f"config: grokking.koopman.steps: expected an integer >= n_delays + 3, got {s['steps']!r}")
    return s


def path_spec(config: dict, runs: dict[str, list[dict]]) -> dict:
    """``grokking.path`` merged over :data:`PATH_DEFAULTS`, its experiments checked."""
    s = _sub(config, "path", PATH_DEFAULTS)
    s["experiments"] = _names(s["experiments"], "grokking.path.experiments", runs)
    return s


def _check_koopman_runs(s: dict, runs: dict) -> None:
    from pathdep.config.koopman import group_of

    for e in s["experiments"]:
        groups = set()
        for run in runs[e]:
            ck = (run.get("training") or {}).get("checkpoints") or {}
            if ck.get("mode") != "every" or ck.get("every") != 1:
                raise ConfigError(f"config: grokking.koopman: experiment {e!r} must record every step "
                                  f"(training.checkpoints: {{mode: every, every: 1}}), got {ck!r}")
            try:
                groups.add(group_of(run, s["group_by"]))
            except ValueError:
                raise ConfigError(f"config: grokking.koopman.group_by: key {s['group_by']!r} not in the runs of "
                                  f"{e!r}") from None
        if len(groups) < 2:
            raise ConfigError(f"config: grokking.koopman: experiment {e!r} has {len(groups)} group(s) of "
                              f"{s['group_by']}, need >= 2 to compare")


def check(config: dict, runs: dict[str, list[dict]]) -> None:
    """The block resolves; Koopman experiments record every step and have >= 2 groups; path
    experiments sweep ``perturbation.epsilon`` (raises :class:`ConfigError`)."""
    resolve(config, runs)
    _check_koopman_runs(koopman_spec(config, runs), runs)
    for e in path_spec(config, runs)["experiments"]:
        if not any("perturbation.epsilon" in (r.get("swept") or {}) for r in runs[e]):
            raise ConfigError(f"config: grokking.path: experiment {e!r} does not sweep perturbation.epsilon "
                              "(expected perturbation: {epsilon: [..]})")
