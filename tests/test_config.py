"""pathdep.config: sweep expansion, run names, deep merge, seeds, model widths, dataset
shapes without loading, and where a message says a key was written.

The bad-input cases (one line per problem, through Snakemake) are in test_bad_input.py.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest

from pathdep.config import (BASE_DEFAULTS, ConfigError, canonical, dataset_info, deep_merge, origin,
                            resolve_model, run_seeds, validate)

BASE = {
    "seed": 3, "device": "cpu",
    "datasets": {"digits": {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0}},
    "defaults": {
        "dataset": "digits",
        "model": {"kind": "mlp", "hidden": [16]},
        "perturbation": {"epsilon": 0.01, "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0},
        "training": {"epochs": 1, "batch_size": 32, "checkpoints": {"mode": "log", "count": 4}},
    },
    "experiments": {"a": {}},
}


def cfg_with(exp: dict | None = None, **top) -> dict:
    c = copy.deepcopy(BASE)
    c["experiments"] = {"a": exp or {}}
    c.update(top)
    return c


# ----------------------------------------------------------------------------- sweeps and names


def test_sweep_is_the_cartesian_product_with_readable_unique_names():
    runs = validate(cfg_with({"optimizer": {"lr": [0.1, 0.01, 0.001], "momentum": [0.0, 0.9]},
                              "perturbation": {"epsilon": [1e-3, 1e-2]}}))["a"]
    assert len(runs) == 3 * 2 * 2
    names = [r["run"] for r in runs]
    assert len(set(names)) == len(names)
    assert "eps0.001_lr0.1_momentum0.9" in names
    combos = {(r["perturbation"]["epsilon"], r["optimizer"]["lr"], r["optimizer"]["momentum"]) for r in runs}
    assert combos == {(e, lr, m) for e in (1e-3, 1e-2) for lr in (0.1, 0.01, 0.001) for m in (0.0, 0.9)}
    for r in runs:  # each run records its swept values and carries the resolved scalar
        assert r["swept"] == {"perturbation.epsilon": r["perturbation"]["epsilon"], "optimizer.lr": r["optimizer"]["lr"],
                              "optimizer.momentum": r["optimizer"]["momentum"]}
        assert r["experiment"] == "a" and r["dataset_spec"] == BASE["datasets"]["digits"]
    # deterministic order and names
    again = validate(cfg_with({"optimizer": {"lr": [0.1, 0.01, 0.001], "momentum": [0.0, 0.9]},
                               "perturbation": {"epsilon": [1e-3, 1e-2]}}))["a"]
    assert [r["run"] for r in again] == names


def test_no_sweep_is_one_run_named_base():
    runs = validate(cfg_with())["a"]
    assert [r["run"] for r in runs] == ["base"] and runs[0]["swept"] == {}


def test_list_valued_keys_sweep_only_with_a_list_of_lists():
    one = validate(cfg_with({"model": {"hidden": [16, 8]}}))["a"]
    assert len(one) == 1 and one[0]["model"]["hidden"] == [16, 8] and one[0]["run"] == "base"
    two = validate(cfg_with({"model": {"hidden": [[16], [16, 8]]}}))["a"]
    assert [r["model"]["hidden"] for r in two] == [[16], [16, 8]]
    assert [r["run"] for r in two] == ["hidden16", "hidden16-8"]
    runs = validate(cfg_with({"optimizer": {"name": "adam", "lr": 1e-3, "betas": [[0.9, 0.99], [0.5, 0.9]]}},
                             defaults={**BASE["defaults"], "optimizer": {"name": "adam", "lr": 1e-3}}))["a"]
    assert [r["optimizer"]["betas"] for r in runs] == [[0.9, 0.99], [0.5, 0.9]]
    assert [r["run"] for r in runs] == ["betas0.9-0.99", "betas0.5-0.9"]


def test_sweep_in_defaults_applies_to_every_experiment():
    c = cfg_with()
    c["defaults"]["seed"] = [0, 1]
    c["experiments"]["b"] = {"optimizer": {"lr": [0.1, 0.2]}}
    runs = validate(c)
    assert [r["run"] for r in runs["a"]] == ["seed0", "seed1"]
    assert [r["run"] for r in runs["b"]] == ["seed0_lr0.1", "seed0_lr0.2", "seed1_lr0.1", "seed1_lr0.2"]


# ----------------------------------------------------------------------------- merge


def test_deep_merge_keeps_siblings_and_does_not_mutate():
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": [1, 2]}
    over = {"a": {"c": {"d": 20}}, "f": [9]}
    frozen = copy.deepcopy((base, over))
    out = deep_merge(base, over)
    assert out == {"a": {"b": 1, "c": {"d": 20, "e": 3}}, "f": [9]}
    assert (base, over) == frozen
    out["a"]["c"]["e"] = 99
    assert base["a"]["c"]["e"] == 3  # a copy, not a view


def test_experiment_overrides_defaults_over_built_in_defaults():
    c = cfg_with({"optimizer": {"momentum": 0.9}, "training": {"checkpoints": {"count": 6}}})
    run = validate(c)["a"][0]
    assert run["optimizer"] == {"name": "sgd", "lr": 0.05, "momentum": 0.9}  # lr from defaults, momentum from exp
    assert run["training"]["checkpoints"] == {"mode": "log", "count": 6}
    assert run["training"]["epochs"] == 1 and run["training"]["batch_size"] == 32
    assert run["training"]["dtype"] == BASE_DEFAULTS["training"]["dtype"]  # built-in
    assert run["init"] == BASE_DEFAULTS["init"] and run["seed"] == 3  # top-level seed
    c["defaults"]["seed"] = 5
    assert validate(c)["a"][0]["seed"] == 5  # defaults.seed over the top-level seed


def test_training_fast_has_one_default_true_documented_in_the_schema():
    """A config without ``training.fast`` gets the fast step; false selects the generic one."""
    from pathdep.config.schema import load_schema

    assert BASE_DEFAULTS["training"]["fast"] is True
    assert load_schema()["$defs"]["training"]["properties"]["fast"]["default"] is True
    assert validate(cfg_with({}))["a"][0]["training"]["fast"] is True
    assert validate(cfg_with({"training": {"fast": False}}))["a"][0]["training"]["fast"] is False


def test_top_level_settings_have_one_default_each():
    from pathdep.config import TOP_DEFAULTS, top_setting

    c = cfg_with({})
    c.pop("device", None)
    assert validate(c)["a"][0]["device"] == TOP_DEFAULTS["device"] == "auto"
    assert top_setting({"threads": 3}, "threads") == 3 and top_setting({}, "threads") == TOP_DEFAULTS["threads"]
    assert top_setting({}, "offline") is False


def test_origin_names_where_a_key_was_written():
    c = cfg_with({"optimizer": {"lr": 0.2}})
    assert origin(c, "a", "optimizer", "lr") == "experiments.a.optimizer.lr"
    assert origin(c, "a", "optimizer", "name") == "defaults.optimizer.name"
    assert origin(c, "a", "init", "scheme") == "experiments.a.init.scheme"  # built-in default
    assert origin(c, "a", "training", "checkpoints", "steps") == "defaults.training.checkpoints.steps"
    assert origin(c, "a", "seed") == "seed"


# ----------------------------------------------------------------------------- seeds


def test_run_seeds_are_deterministic_distinct_and_independent_of_swept_values():
    runs = validate(cfg_with({"perturbation": {"epsilon": [0.01, 0.1]}, "optimizer": {"lr": [0.1, 0.2]}}))["a"]
    seeds = [run_seeds(r) for r in runs]
    assert all(s == seeds[0] for s in seeds)  # only `seed` and `members` enter
    s = seeds[0]
    assert s == run_seeds(copy.deepcopy(runs[0]))
    assert len(s["members_perturb"]) == len(s["members_schedule"]) == 3  # baseline + 2 members
    every = [s["init"], s["schedule"], *s["members_perturb"], *s["members_schedule"]]
    assert len(set(every)) == len(every)
    # the SeedSequence recipe, spelled out
    ss = np.random.SeedSequence(3)
    init_ss, pert_ss, sched_ss = ss.spawn(3)
    assert s["init"] == int(init_ss.generate_state(1, dtype=np.uint32)[0])
    assert s["members_perturb"][1] == int(pert_ss.spawn(3)[1].generate_state(1, dtype=np.uint32)[0])
    other = run_seeds(validate(cfg_with(seed=4))["a"][0])
    assert other["init"] != s["init"]


def test_runs_of_an_experiment_share_the_reference_init(tmp_path):
    """An epsilon sweep shares its baseline: member 0 of every run's init.h5 is identical."""
    import h5py

    from pathdep.data import prepare_dataset
    from pathdep.stages.train import init_ensemble

    c = cfg_with({"perturbation": {"epsilon": [0.01, 0.1]}})
    c["experiments"]["b"] = {"optimizer": {"lr": 0.2}}
    runs = validate(c)
    data = tmp_path / "digits.h5"
    prepare_dataset("digits", c["datasets"]["digits"], data, provenance={})
    weights = {}
    for exp, rs in runs.items():
        for r in rs:
            out = tmp_path / f"{exp}_{r['run']}.h5"
            init_ensemble(r, data, out)
            with h5py.File(out, "r") as f:
                weights[(exp, r["run"])] = f["weights"][()]
    w = list(weights.values())
    for x in w[1:]:
        assert np.array_equal(x[0], w[0][0])
    a1, a2 = weights[("a", "eps0.01")], weights[("a", "eps0.1")]
    assert not np.array_equal(a1[1], a2[1])  # members differ in size ...
    d1, d2 = a1[1:] - a1[0], a2[1:] - a2[0]
    np.testing.assert_allclose(d2, 10 * d1, rtol=1e-3, atol=1e-6)  # ... but share their direction (same seeds)


def test_canonical_is_order_independent():
    run = validate(cfg_with())["a"][0]
    shuffled = dict(reversed(list(run.items())))
    assert canonical(shuffled) == canonical(run)


# ----------------------------------------------------------------------------- models


def _count(in_dim: int, hidden: list[int], out: int) -> int:
    from pathdep.core.models import MLP, count_params

    return count_params(MLP(in_dim, hidden, out))


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_resolve_model_from_n_params_and_depth(depth):
    m = resolve_model({"kind": "mlp", "n_params": 20000, "depth": depth}, (1, 8, 8), 10)
    assert len(m["hidden"]) == depth and len(set(m["hidden"])) == 1
    n = _count(64, m["hidden"], 10)
    assert abs(n - 20000) <= 0.05 * 20000
    w = m["hidden"][0]  # the closest width: neighbours are no closer
    assert abs(n - 20000) <= min(abs(_count(64, [w + d] * depth, 10) - 20000) for d in (-1, 1))


def test_resolve_model_width_depth_and_depth_sweep_at_constant_params():
    assert resolve_model({"kind": "mlp", "width": 32, "depth": 3}, (1, 8, 8), 10)["hidden"] == [32, 32, 32]
    runs = validate(cfg_with({"model": {"n_params": 20000, "depth": [1, 2, 3]}}))["a"]
    assert [r["run"] for r in runs] == ["depth1", "depth2", "depth3"]
    counts = [_count(64, r["model"]["hidden"], 10) for r in runs]
    assert all(abs(n - 20000) <= 1000 for n in counts)
    assert [len(r["model"]["hidden"]) for r in runs] == [1, 2, 3]


def test_resolve_model_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^config: experiments\.a\.model\.n_params: no integer width gives 50 "):
        resolve_model({"kind": "mlp", "n_params": 50, "depth": 3}, (1, 8, 8), 10, "experiments.a.model")
    with pytest.raises(ConfigError, match=r"^config: model\.n_params: only model kind mlp"):
        resolve_model({"kind": "lenet5", "n_params": 5000}, (1, 28, 28), 10)


# ----------------------------------------------------------------------------- datasets without loading


@pytest.mark.parametrize("frac", [0.1, 0.25, 0.3, 0.5])
def test_digits_train_size_matches_sklearn(frac):
    from sklearn.model_selection import train_test_split

    n_train = len(train_test_split(np.arange(1797), test_size=frac, random_state=0)[0])
    info = dataset_info("d", {"source": "sklearn_digits", "test_fraction": frac})
    assert info == {"in_shape": (1, 8, 8), "out_dim": 10, "n_train": n_train, "exact": True}


def test_dataset_info_of_each_source():
    assert dataset_info("t", {"source": "teacher_student", "d_in": 6, "d_out": 2, "n_train": 100})["in_shape"] == (6,)
    tv = dataset_info("c", {"source": "torchvision", "dataset": "cifar10", "download": True})
    assert tv["in_shape"] == (3, 32, 32) and tv["n_train"] == 50000
    assert dataset_info("m", {"source": "torchvision", "dataset": "mnist", "n_train": 1000})["n_train"] == 1000
    assert dataset_info("i", {"source": "idx", "root": "/nowhere"})["exact"] is False  # no file check asked


def test_dataset_info_reads_idx_headers(tmp_path):
    from test_bad_input import make_idx_root

    root = make_idx_root(tmp_path / "idx")
    info = dataset_info("fm", {"source": "idx", "root": str(root)}, check_files=True)
    assert info == {"in_shape": (1, 8, 8), "out_dim": 10, "n_train": 64, "exact": True}


def test_dataset_info_matches_the_prepared_file(tmp_path):
    from pathdep.data import load_dataset, prepare_dataset

    spec = {"source": "teacher_student", "d_in": 5, "d_out": 3, "n_train": 120, "n_test": 30}
    prepare_dataset("t", spec, tmp_path / "t.h5", provenance={})
    ds = load_dataset(tmp_path / "t.h5")
    info = dataset_info("t", spec)
    assert (info["in_shape"], info["out_dim"], info["n_train"]) == (ds.in_shape, ds.out_dim, len(ds.x_train))
    assert dataset_info("t", spec, data_dir=tmp_path) == {**info, "exact": True}


# ----------------------------------------------------------------------------- sphere radii


@pytest.mark.parametrize("scheme", ["hyperspherical", "kaiming_normal", "default"])
def test_sphere_check_uses_the_exact_reference_radii(scheme, tmp_path):
    """Validation accepts a chord just below the smallest tensor diameter and refuses one just
    above; for hyperspherical that diameter is 2 sqrt(D) sigma, sigma^2 = 2 / fan_in."""
    import torch

    from pathdep.core.init import init_params
    from pathdep.core.models import Layout, build_model

    c = cfg_with({"init": {"scheme": scheme}, "perturbation": {"kind": "sphere", "epsilon": 0.01}})
    run = validate(c)["a"][0]
    module = build_model(run["model"], (1, 8, 8), 10)
    layout = Layout.from_module(module)
    w0 = init_params(module, layout, scheme, run_seeds(run)["init"]).double().numpy()
    radii = [np.linalg.norm(w0[o:o + s]) for o, s in zip(layout.offsets, layout.sizes)]
    if scheme == "hyperspherical":
        fan = {"fc0.weight": 64, "fc0.bias": 64, "fc1.weight": 16, "fc1.bias": 16}
        want = [math.sqrt(s) * math.sqrt(2 / fan[n]) for n, s in zip(layout.names, layout.sizes)]
        np.testing.assert_allclose(radii, want, rtol=1e-6)
    limit = 2 * min(radii)
    for factor, ok in ((0.999, True), (1.001, False)):
        c["experiments"]["a"]["perturbation"]["epsilon"] = float(limit * factor)
        if ok:
            validate(c)
        else:
            with pytest.raises(ConfigError, match=r"experiments\.a\.perturbation\.epsilon: sphere chord"):
                validate(c)
    assert torch.get_default_dtype() == torch.float32


def test_sphere_global_granularity_uses_the_whole_vector():
    c = cfg_with({"perturbation": {"kind": "sphere", "epsilon": 3.0, "granularity": "global"}})
    validate(c)  # |w0| of the whole vector is ~7, so a chord of 3 fits
    c["experiments"]["a"]["perturbation"]["relative"] = True
    c["experiments"]["a"]["perturbation"]["epsilon"] = 2.0
    validate(c)  # relative 2 is the diameter itself


# ----------------------------------------------------------------------------- messages


def test_messages_start_with_config_and_the_key_and_are_one_line():
    bad = [
        ({"optimizer": {"lr": "fast"}}, "experiments.a.optimizer.lr"),
        ({"optimizer": {"lrr": 1}}, "experiments.a.optimizer.lrr"),
        ({"perturbation": {"target": "hyperparameter", "hparam": "beta2"}}, "experiments.a.perturbation.hparam"),
        ({"training": {"checkpoints": {"mode": "every"}}}, "experiments.a.training.checkpoints.every"),
    ]
    for exp, key in bad:
        with pytest.raises(ConfigError) as info:
            validate(cfg_with(exp))
        msg = str(info.value)
        assert msg.startswith(f"config: {key}: ") and "\n" not in msg, msg


def test_keys_set_in_defaults_are_named_under_defaults():
    c = cfg_with()
    c["defaults"]["training"]["batch_size"] = 4000
    with pytest.raises(ConfigError, match=r"^config: defaults\.training\.batch_size: expected <= 1347"):
        validate(c)


def test_random_edits_give_a_config_error_or_pass_never_a_crash():
    """300 seeded random edits of leaves (wrong types, ranges, lists, mappings, deletions):
    validate either accepts the config or raises one-line ConfigError('config: ...')."""
    import random

    values = [None, "x", -1, 0, 1, 0.5, 2.5, 1e9, [], {}, [1, "a"], [[1], [2]], True, [0.1, 0.2], {"k": 1}, "1e-3"]
    base = copy.deepcopy(BASE)
    base["datasets"]["t"] = {"source": "teacher_student", "d_in": 4, "d_out": 2, "n_train": 64}

    def leaves(d, p=()):
        yield p
        if isinstance(d, dict):
            for k, v in d.items():
                yield from leaves(v, p + (k,))

    paths = [p for p in leaves(base) if p] + [
        ("defaults", "perturbation", k) for k in ("kind", "target", "hparam", "relative", "granularity", "swaps")] + [
        ("defaults", "model", k) for k in ("n_params", "depth", "width", "kind")] + [
        ("experiments", "a", "dataset"), ("experiments", 1), ("defaults", "optimizer", "nesterov"),
        ("defaults", "init", "scheme"), ("defaults", "training", "checkpoints", "steps"), ("datasets", "digits", "n_train")]
    rng = random.Random(0)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        c = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(paths)
            d = c
            for k in p[:-1]:
                d = d.setdefault(k, {}) if isinstance(d, dict) else None
            if isinstance(d, dict):
                if rng.random() < 0.1:
                    d.pop(p[-1], None)
                else:
                    d[p[-1]] = copy.deepcopy(rng.choice(values))
        try:
            validate(c)
            outcomes["ok"] += 1
        except ConfigError as exc:
            outcomes["error"] += 1
            assert str(exc).startswith("config: ") and "\n" not in str(exc), str(exc)
    assert outcomes["ok"] > 10 and outcomes["error"] > 100


def test_a_default_that_clashes_with_one_swept_value_names_the_run():
    c = cfg_with({"optimizer": {"name": ["sgd", "adam"]}})  # defaults set momentum, which adam lacks
    with pytest.raises(ConfigError, match=r"^config: defaults\.optimizer\.momentum: unknown key for optimizer 'adam'"
                                          r".*\(in run a/optadam\)$"):
        validate(c)


# ----------------------------------------------------------------------------- settings blocks


def _open_objects(schema, path=()):
    """Paths of object schemas that accept keys they do not list (additionalProperties true/absent)."""
    out = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            checked_elsewhere = str(schema.get("$comment", "")).startswith("keys checked by ")
            if schema.get("additionalProperties", True) is True and not checked_elsewhere:
                out.append(path)
        for k, v in schema.items():
            if isinstance(v, (dict, list)):
                out += _open_objects(v, (*path, k))
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            out += _open_objects(v, (*path, i))
    return out


def test_every_schema_block_is_closed():
    """No block of the schema lets a typo through: every mapping lists its keys
    (additionalProperties: false), or says which code checks them (``$comment: keys checked
    by ...``, e.g. dataset blocks: the data registry, per source)."""
    from pathdep.config.schema import load_schema as _schema

    open_ = _open_objects(_schema())
    assert open_ == [], f"schema blocks that accept any key: {open_}"


def test_schema_blocks_list_the_keys_their_jobs_read():
    """The schema's lyapunov / lyapunov.study / geometry / fits keys are exactly the defaults of
    the code that reads them, so a key the code accepts is never refused and vice versa."""
    from pathdep.config.fits import DEFAULTS as FITS
    from pathdep.config.geometry import DEFAULTS as GEOMETRY
    from pathdep.config.schema import load_schema as _schema
    from pathdep.config.lyapunov import DEFAULTS as LYAP
    from pathdep.config.lyapunov import STUDY_DEFAULTS

    defs = _schema()["$defs"]
    assert set(defs["lyapunov"]["properties"]) == set(LYAP) | {"experiments", "study", "tangent_experiment"}
    assert set(defs["lyapunov_study"]["properties"]) == set(STUDY_DEFAULTS)
    assert set(defs["geometry"]["properties"]) == set(GEOMETRY) | {"experiments"}
    assert set(defs["geometry"]["properties"]["hypersphere"]["properties"]) == set(GEOMETRY["hypersphere"])
    assert set(defs["fits"]["properties"]) == set(FITS) | {"experiments"}


def test_settings_blocks_are_checked_before_any_job():
    base = cfg_with({})
    ok = copy.deepcopy(base)
    ok["lyapunov"] = {"experiments": ["a"], "k": 2, "steps": 10, "window": 5,
                      "study": {"n_networks": 4, "steps": 200}}
    ok["geometry"] = {"lambdas": 5, "experiments": {"a": {"lambdas": [0.0, 0.5, 1.0]}}}
    ok["fits"] = {"space": "linear", "experiments": {"a": {"models": ["sqrt"]}}}
    ok["figures"] = {}
    validate(ok)
    bad = {
        "lyapunov.qr_evry": (("lyapunov", "qr_evry"), 2),
        "lyapunov.window": (("lyapunov", "window"), 20),
        "lyapunov.study.times": (("lyapunov", "study", "times"), [5, 500]),
        "fits.experiments.a.space": (("fits", "experiments", "a", "space"), "loglog"),
        "geometry.checkpoint_mode": (("geometry", "checkpoint_mode"), "percent"),
        "geometry.experiments.a.lambdas": (("geometry", "experiments", "a", "lambdas"), [0.2, 0.5]),
    }
    for key, (path, value) in bad.items():
        c = copy.deepcopy(ok)
        d = c
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = value
        with pytest.raises(ConfigError, match=rf"^config: {re.escape(key)}: "):
            validate(c)
