"""Semantic checks of one resolved run: dataset, model, optimizer, checkpoints, perturbation.

What it computes: :func:`check_run` runs, on one run of an expanded experiment, the schema of
a run, then: a known dataset, the model width from ``n_params``/``depth``
(:func:`resolve_model`), the optimizer block (``pathdep.core.optim.optimizer_from_config``),
the model builds for the dataset's input shape (built on the meta device: no memory, no
time), ``batch_size`` <= training-set size, swaps fit in an epoch, checkpoint modes,
perturbation target/kind pairs, hyperparameter perturbations that exist and stay in range,
and sphere perturbations that fit on their spheres.

Sphere perturbations (``perturbation.kind: sphere``): a chord ``c`` fits on a sphere of
radius ``r`` only if ``c <= 2r``. Relative chords (``c = eps r``) need ``eps <= 2``.
Absolute chords need the actual radius of every tensor (or of the whole vector, for
``granularity: global``) of the reference initialisation. Only for ``init.scheme:
hyperspherical`` is that radius fixed (``sqrt(D) sigma``, ``sigma^2 = 2/fan_in``); for the
other schemes ``|w_p|`` is random (a bias of 10 entries under Kaiming-normal has
``|w_p|/(sqrt(D) sigma)`` anywhere in roughly [0.5, 1.5]), so the validation does not
approximate: it computes the run's actual reference initialisation, exactly as
``pathdep.stages.train.init_ensemble`` does (same model, dtype, scheme and ``run_seeds`` seed; a
few milliseconds for the default MLP, cached per distinct model), and checks every group.
The input shape and class count come from the prepared file when there is one, else from
the source (exact for every source when ``check_files`` is on; without it an ``idx``
dataset without ``classes`` is assumed to have 10 classes). ``init_ensemble`` keeps its
own check (``pathdep.core.init.perturb``), which runs for every member before ``init.h5`` is
written, so a mismatch that slips through still writes nothing.

How it was checked: ``tests/test_config.py`` (model widths, the sphere radii against
``init_ensemble``) and ``tests/test_bad_input.py`` (each bad value through Snakemake: one
line naming the key, nothing written).
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np

from pathdep.config.errors import ConfigError
from pathdep.config.schema import KEY_MSG, did_you_mean, key_error, schema_check, value_text

__all__ = ["check_run", "resolve_model"]

# Optimiser hyperparameters that must stay below 1 (a hyperparameter perturbation scales them).
_BELOW_ONE = {"momentum", "dampening", "beta1", "beta2", "alpha"}


def check_run(run: dict, run_schema: dict, at, datasets: dict, infos: dict) -> None:
    """Schema, dataset reference, model, optimizer and perturbation checks of one resolved run.

    Args:
        run: one run of :func:`pathdep.config.expand.expand_experiment`; ``run["model"]`` is
            replaced by its resolved form (:func:`resolve_model`).
        run_schema: the schema's ``run`` definition (with ``$defs``).
        at: ``at(*path) -> str``, where a key of this run was written (for messages).
        datasets: the config's ``datasets`` mapping.
        infos: ``{dataset: dataset_info(...)}`` of the datasets the runs use.

    Raises:
        ConfigError: one line, ``config: <key>: <what was expected>``.
    """
    body = {k: v for k, v in run.items() if k not in ("experiment", "run", "swept")}
    schema_check(body, run_schema, lambda p: at(*p))
    ds = run.get("dataset")
    if ds is None:
        raise ConfigError(f"config: {at('dataset')}: no dataset given (set defaults.dataset to one of "
                          f"{', '.join(map(str, datasets))})")
    if ds not in datasets:
        raise ConfigError(f"config: {at('dataset')}: unknown dataset {ds!r}{did_you_mean(ds, datasets)} "
                          f"(expected one of the keys of datasets: {', '.join(map(str, datasets))})")
    info = infos[ds]
    run["model"] = resolve_model(run["model"], info["in_shape"], info["out_dim"],
                                 at("model", "n_params").rsplit(".", 1)[0])
    _check_perturbation_kind(run, at)
    if run["model"].get("kind") == "resnet" and run["model"].get("norm", "batch") == "batch" \
            and run["init"].get("scheme", "default") != "default":   # a BatchNorm weight has no fan-in
        raise ConfigError(f"config: {at('init', 'scheme')}: kind resnet with norm batch uses its own init "
                          f"(scheme: default; a BatchNorm weight has no fan-in), got {run['init']['scheme']!r}")
    if run["model"].get("kind") == "transformer" and run["init"].get("scheme", "default") != "default":
        # fan-in schemes would read a per-head (H, dh, d) weight's fan-in as dh * d
        raise ConfigError(f"config: {at('init', 'scheme')}: kind transformer uses its own init (scheme: default), "
                          f"got {run['init']['scheme']!r}")
    hp = _check_optimizer(run, at)
    if run["perturbation"].get("target", "init") == "hyperparameter":
        _check_hparam_perturbation(run, at, hp)
    _check_checkpoints(run, at)
    from pathdep.config.storage import check_augment, check_storage
    check_storage(run, at)   # training.checkpoints storage keys (pathdep.config.storage)
    check_augment(run, info, at)
    _check_batches(run, at, info, ds)
    if run["model"].get("kind") == "mlp" and not isinstance(run["model"].get("hidden"), list):
        raise ConfigError(f"config: {at('model', 'hidden')}: expected a list of widths")
    _build_meta(run["model"], info["in_shape"], info["out_dim"], at, ds)
    _sphere_checks(run, info, at)


def _check_perturbation_kind(run: dict, at) -> None:
    """The perturbation kind belongs to its target (init or schedule)."""
    pert = run["perturbation"]
    target, kind = pert.get("target", "init"), pert.get("kind", "gaussian")
    if target == "init" and kind not in ("gaussian", "sphere", "norm", "reinit"):
        raise ConfigError(f"config: {at('perturbation', 'kind')}: target init expects gaussian, sphere, norm or "
                          f"reinit, got {kind!r}")
    if target == "schedule" and kind not in ("shuffle", "swap"):
        raise ConfigError(f"config: {at('perturbation', 'kind')}: target schedule expects shuffle or swap, got {kind!r}")


def _check_optimizer(run: dict, at) -> dict:
    """Nesterov needs momentum; the optimizer block builds. Returns its hyperparameters."""
    from pathdep.core.optim import optimizer_from_config

    opt = run["optimizer"]
    if opt.get("nesterov") and not opt.get("momentum", 0) > 0:
        raise ConfigError(f"config: {at('optimizer', 'nesterov')}: Nesterov momentum requires momentum > 0, "
                          f"got momentum {opt.get('momentum', 0)}")
    try:
        return optimizer_from_config(opt)[1]
    except ValueError as exc:
        raise key_error(exc, at) from None


def _check_hparam_perturbation(run: dict, at, hp: dict) -> None:
    """The perturbed hyperparameter exists, is non-zero, and stays below 1 where it must."""
    from pathdep.core.optim import Optimizer

    pert, opt = run["perturbation"], run["optimizer"]
    name = opt.get("name", "sgd")
    hps = Optimizer(name).hparam_names
    h = pert.get("hparam")
    if h not in hps:
        raise ConfigError(f"config: {at('perturbation', 'hparam')}: expected one of {', '.join(hps)} "
                          f"(the hyperparameters of optimizer {name}); got {value_text(h)}{did_you_mean(h, hps)}")
    eps = float(pert.get("epsilon", 0.0))
    if hp[h] == 0 and eps > 0:
        raise ConfigError(f"config: {at('perturbation', 'hparam')}: {h} is 0 for optimizer {name}, and a "
                          f"hyperparameter perturbation scales it (member k: {h} * (1 + epsilon k/N)); set "
                          f"optimizer.{h} > 0")
    top = hp[h] * (1.0 + eps)
    if h in _BELOW_ONE and top >= 1.0:
        raise ConfigError(f"config: {at('perturbation', 'epsilon')}: the last member's {h} would be "
                          f"{hp[h]:g} * (1 + {eps:g}) = {top:g}, expected < 1")


def _check_checkpoints(run: dict, at) -> None:
    """Checkpoint modes ``steps`` and ``every`` come with their list / interval."""
    ck = run["training"]["checkpoints"]
    mode = ck.get("mode", "log")
    if mode == "steps" and not ck.get("steps"):
        raise ConfigError(f"config: {at('training', 'checkpoints', 'steps')}: mode 'steps' needs a non-empty list of steps")
    if mode == "every" and "every" not in ck:
        raise ConfigError(f"config: {at('training', 'checkpoints', 'every')}: mode 'every' needs 'every: N'")


def _check_batches(run: dict, at, info: dict, ds: str) -> None:
    """``batch_size`` within the training set; schedule swaps fit in one epoch."""
    pert = run["perturbation"]
    target, kind = pert.get("target", "init"), pert.get("kind", "gaussian")
    n = info.get("n_train")
    bs = int(run["training"]["batch_size"])
    if n is not None:
        if bs > n:
            raise ConfigError(f"config: {at('training', 'batch_size')}: expected <= {n} (the training-set size of "
                              f"dataset {ds!r}), got {bs}")
        if target == "schedule" and kind == "swap":
            swaps = int(pert.get("swaps", 1))
            if 2 * swaps > n // bs:
                raise ConfigError(f"config: {at('perturbation', 'swaps')}: {swaps} swaps need {2 * swaps} batches per "
                                  f"epoch, dataset {ds!r} with batch_size {bs} has {n // bs}")


def resolve_model(model: dict, in_shape, out_dim: int, where: str = "model") -> dict:
    """Fill ``model.hidden`` from ``width``/``depth``/``n_params`` (constant-parameter depth sweeps).

    ``n_params`` (with ``depth``, default ``len(hidden)``) picks the width whose parameter
    count, counted from the built model, is closest; ``width``/``depth`` alone give
    ``[width] * depth``. ``where`` is the config path of the model block, for messages.

    Raises:
        ConfigError: ``<where>.n_params`` when no integer width comes within 5%, or
            width/depth/n_params on a model kind that has no hidden widths.
    """
    from pathdep.core.models import width_for_param_count

    m = dict(model)
    if m.get("kind") == "resnet":   # depth and width are the ResNet's own keys (pathdep.core.resnet)
        if "n_params" in m:
            raise ConfigError(f"config: {where}.n_params: kind resnet is sized by depth and width, not n_params")
        return m
    sizing = [k for k in ("n_params", "width", "depth") if k in m]
    if m.get("kind", "mlp") != "mlp":
        if sizing:
            raise ConfigError(f"config: {where}.{sizing[0]}: only model kind mlp has hidden widths to size, "
                              f"got kind {m.get('kind')!r}")
        return m
    in_dim = int(np.prod(in_shape))
    if "n_params" in m:
        depth = int(m.get("depth", len(m.get("hidden", [100]))))
        try:
            width = width_for_param_count(in_dim, depth, out_dim, int(m["n_params"]), bias=m.get("bias", True))
        except ValueError as exc:
            msg = re.sub(r"^model\.\w+: ", "", str(exc))
            raise ConfigError(f"config: {where}.n_params: {msg} (input {in_dim}, outputs {out_dim})") from None
        m["hidden"] = [width] * depth
    elif "width" in m or "depth" in m:
        m["hidden"] = [int(m.get("width", 100))] * int(m.get("depth", 1))
    return m


def _build_meta(model: dict, in_shape, out_dim: int, at, ds: str = "?") -> None:
    """Build the model on the meta device (shapes only) to catch a model/dataset mismatch."""
    import torch

    from pathdep.core.models import build_model

    try:
        with torch.device("meta"):
            build_model(model, tuple(in_shape), out_dim)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ValueError) and KEY_MSG.match(first):
            raise key_error(ValueError(first), at) from None
        raise ConfigError(f"config: {at('model', 'kind')}: {model.get('kind')} cannot take the inputs of dataset "
                          f"{ds!r}, shape {tuple(in_shape)} ({first})") from None


@functools.lru_cache(maxsize=32)
def _init_norms(key: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], float]:
    """Per-tensor and global norms of a run's reference initialisation (as init_ensemble makes it)."""
    import torch

    from pathdep.core.init import init_params
    from pathdep.core.models import Layout, build_model

    d = json.loads(key)
    dtype = torch.float64 if d["dtype"] == "float64" else torch.float32
    with torch.random.fork_rng(devices=[]):  # module construction draws from torch's global RNG
        module = build_model(d["model"], tuple(d["in_shape"]), d["out_dim"]).to(dtype)
    layout = Layout.from_module(module)
    w0 = init_params(module, layout, d["scheme"], d["seed"]).to(dtype)
    x = w0.detach().to(torch.float64).cpu().numpy()
    norms = tuple(float(np.linalg.norm(x[o:o + s])) for o, s in zip(layout.offsets, layout.sizes))
    return tuple(layout.names), tuple(layout.sizes), norms, float(np.linalg.norm(x))


def _sphere_checks(run: dict, info: dict, at) -> None:
    pert = run["perturbation"]
    if pert.get("target", "init") != "init" or pert.get("kind") != "sphere":
        return
    eps = float(pert.get("epsilon", 0.0))
    relative = bool(pert.get("relative", False))
    if relative and eps > 2:
        raise ConfigError(f"config: {at('perturbation', 'epsilon')}: a relative sphere perturbation moves at most "
                          f"the sphere's diameter (epsilon <= 2), got {eps:g}")
    if eps == 0:
        return
    from pathdep.core.context import run_seeds

    seed = run_seeds(run)["init"]
    key = json.dumps({"model": run["model"], "in_shape": list(info["in_shape"]), "out_dim": info["out_dim"],
                      "scheme": run["init"]["scheme"], "seed": seed, "dtype": run["training"]["dtype"]}, sort_keys=True)
    names, sizes, norms, total = _init_norms(key)
    if pert.get("granularity", "tensor") == "global":
        groups = [("<all parameters>", sum(sizes), total)]
    else:
        groups = list(zip(names, sizes, norms))
    for name, size, r in groups:
        if r == 0.0:
            raise ConfigError(f"config: {at('perturbation', 'kind')}: tensor '{name}' of the reference init is all "
                              f"zero, so it has no sphere to stay on; use kind gaussian or granularity global")
        c = eps * r if relative else eps
        if size == 1 and c < 2.0 * r:  # as pathdep.core.init.perturb: only the sign flip (c = 2r) exists
            raise ConfigError(f"config: {at('perturbation', 'granularity')}: tensor '{name}' has one element; on its "
                              f"0-sphere a sphere perturbation can only flip the sign; use granularity global")
    if relative:
        return
    name, size, r = min(groups, key=lambda g: g[2])
    if eps > 2.0 * r * (1.0 + 1e-12):
        scope = "the whole parameter vector" if name == "<all parameters>" else f"tensor '{name}' ({size} entries)"
        raise ConfigError(f"config: {at('perturbation', 'epsilon')}: sphere chord {eps:g} exceeds the diameter "
                          f"2|w0| = {2 * r:.6g} of {scope} in the reference init (init.scheme {run['init']['scheme']}, "
                          f"seed {run.get('seed', 0)}); use epsilon <= {2 * r:.6g}, relative: true or granularity: global")
