"""Domino datasets: two patterns in one image, with prevalence, reliability and simplicity.

What it computes. A domino stacks a *top* and a *bottom* image vertically (Shah et al.
2020, "The Pitfalls of Simplicity Bias", MNIST over CIFAR-10; the seed
dominoes-perturbing-weights-hypersphere-walks). Both sides are taken from two other
configured datasets whose classes are matched by index (all classes, or a subset per
side such as ``top: [0, 1]`` / ``bottom: [1, 9]``); they are resized (bilinear) to a
common height/width and channel count (grey repeated to RGB) and stacked to
``(C, 2H, W)``. Parameters per side:

* prevalence ``p`` -- the fraction of dominoes in which the side shows a pattern (a
  missing side is blank: raw pixel value 0, i.e. ``blank_value = -mean/std`` after
  normalisation);
* reliability ``r`` -- the fraction of *shown* sides whose class is the domino's label
  (otherwise a different class, uniform over the other ``K - 1``);
* simplicity -- the choice of side dataset, or continuously through the ``synthetic``
  side source (:func:`synthetic_side`): Gaussian classes whose means are ``s`` noise
  standard deviations apart (``s`` = Mahalanobis distance between any two class means).

Counts, not fractions. The seed's linear system for the sampling fractions has only the
trivial solution; here the counts are solved directly for the ``n`` requested dominoes
(:func:`solve_counts`): ``n_top = round(n p_top)``, ``n_bottom = max(round(n p_bottom),
n - n_top)``, ``n_both = n_top + n_bottom - n``; the one-sided counts follow. A request
with ``p_top + p_bottom < 1`` would leave dominoes with no side and is refused. Labels are
balanced (``i mod K``, shuffled); the reliable shown sides are an exact
``round(r n_shown)`` of the shown ones, chosen at random. Each side image is drawn without
replacement from that side's pool of its class (``replace: true`` draws with replacement);
too few samples of a class is a one-line error. The achieved prevalences and
reliabilities are *measured* from the flags and stored.

Evaluation sets (test pools, ``n_eval`` each, :data:`EVAL_SETS`): ``both`` (both sides,
reliable), ``top_only`` / ``bottom_only`` (the other side blank), and Shah et al.'s
randomized sets ``top_randomized`` / ``bottom_randomized`` (that side's class drawn
uniformly from all classes, independent of the label; the other side reliable). The
accuracy on ``top_randomized`` measures how much the network relies on the bottom
pattern, and vice versa.

File (``pathdep.dataset/1`` plus)::

    /train/{x,y}, /test/{x,y}           as every dataset (label = y)
    /{train,test}/{top_present,bottom_present}  bool (N,)
    /{train,test}/{top_label,bottom_label}      int64 (N,), -1 where the side is blank
    /eval/<set>/{x,y,top_present,bottom_present,top_label,bottom_label}
    attrs: requested_* / achieved_* prevalence and reliability per side (train split),
           counts_train (both, top_only, bottom_only), blank_value (per channel),
           side_shape (C, H, W), eval_sets, top/bottom (side names), top_classes, ...

Sweeps. A dataset parameter becomes a sweep axis through the experiment's ``data:``
block (deep-merged into the named dataset's block); :func:`derive_dataset` names each
distinct resolved block ``<dataset>-<8 hex of its hash>`` and adds it to the config's
``datasets`` so it is prepared once and reused by every run that asks for it.

How it was checked: ``tests/datasets/test_dominoes.py`` (the count solver over a grid of
requests including empty sides: achieved values within sampling error, exact counts;
impossible requests; flags against the pixels: blank sides equal ``blank_value``, shown
sides equal the resized side image of ``top_label``; randomized sets independent of the
label; derived names distinct and stable; torchvision MNIST/CIFAR-10 sides from tiny
files in the real formats).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["SIDES", "EVAL_SETS", "solve_counts", "sample_dominoes", "synthetic_side", "check_dominoes",
           "dominoes_info", "build_dominoes", "prepare_dominoes", "derive_dataset", "DATA_SHORT",
           "load_eval_sets"]

SIDES = ("top", "bottom")
EVAL_SETS = ("both", "top_only", "bottom_only", "top_randomized", "bottom_randomized")
FLAGS = ("top_present", "bottom_present", "top_label", "bottom_label")
DOMINO_KEYS = frozenset({"top", "bottom", "prevalence", "reliability", "classes", "size", "n_train", "n_test",
                         "n_eval", "seed", "replace", "normalize"})
DOMINO_DEFAULTS = {"prevalence": {"top": 1.0, "bottom": 1.0}, "reliability": {"top": 1.0, "bottom": 1.0},
                   "n_train": 2000, "n_test": 500, "n_eval": 500, "seed": 0, "replace": False, "normalize": True}
SYNTHETIC_KEYS = frozenset({"simplicity", "classes", "size", "channels", "n_train", "n_test", "seed", "normalize"})
SYNTHETIC_DEFAULTS = {"simplicity": 3.0, "classes": 10, "size": 28, "channels": 1, "n_train": 6000,
                      "n_test": 1000, "seed": 0}
# Short names of swept dataset parameters in run names (pathdep.config adds them to its SHORT).
DATA_SHORT = {("data", k, s): f"{k[0]}{s}" for k in ("prevalence", "reliability") for s in SIDES}
DATA_SHORT.update({("data", s, "simplicity"): f"s{s}" for s in SIDES})


# ----------------------------------------------------------------------------- counts


def _unit(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0.0 <= float(v) <= 1.0:
        hint = " (to sweep it, put the list under experiments.<exp>.data)" if isinstance(v, list) else ""
        raise ValueError(f"{where}: expected a number in [0, 1], got {v!r}{hint}")
    return float(v)


def solve_counts(n: int, p_top: float, p_bottom: float, where: str = "prevalence") -> dict[str, int]:
    """Numbers of two-sided and one-sided dominoes for the requested prevalences.

    Args:
        n: Number of dominoes.
        p_top, p_bottom: Requested fraction of dominoes showing the top / bottom side.
        where: Config key named in errors.

    Returns:
        ``{"both": n2, "top_only": n_t1, "bottom_only": n_b1}`` summing to ``n``, with
        ``|(n2 + n_t1)/n - p_top| <= 1/(2n)`` and the bottom within ``1/n``.

    Raises:
        ValueError: a prevalence outside [0, 1], or ``p_top + p_bottom < 1`` (some
            dominoes would show no side).
    """
    pt, pb = _unit(f"{where}.top", p_top), _unit(f"{where}.bottom", p_bottom)
    if pt + pb < 1.0 - 1e-12:
        raise ValueError(f"{where}: top {pt:g} + bottom {pb:g} < 1 would leave {1 - pt - pb:.3g} of the dominoes "
                         f"with no side; raise one of them")
    n_t = int(round(n * pt))
    n_b = max(int(round(n * pb)), n - n_t)
    n_both = n_t + n_b - n
    return {"both": n_both, "top_only": n_t - n_both, "bottom_only": n_b - n_both}


def sample_dominoes(rng: np.random.Generator, n: int, k: int, prevalence: dict, reliability: dict,
                    pools: dict, replace: bool = False, randomize: str | None = None,
                    where: str = "dominoes") -> dict[str, np.ndarray]:
    """Draw the labels, flags and side-image indices of ``n`` dominoes.

    Args:
        rng: Random generator.
        n: Number of dominoes.
        k: Number of classes (>= 2).
        prevalence, reliability: ``{"top": p, "bottom": p}``.
        pools: ``{"top": [idx of class 0, ..., idx of class k-1], "bottom": [...]}``
            indices into each side's image array.
        replace: Draw side images with replacement.
        randomize: ``"top"``/``"bottom"``: that side's class is uniform over all ``k``
            classes, independent of the label (Shah et al.'s randomized sets).
        where: Dataset name for errors.

    Returns:
        ``label, top_present, bottom_present, top_label, bottom_label, top_index,
        bottom_index`` arrays of length ``n`` (labels/indices -1 where the side is blank).
    """
    counts = solve_counts(n, prevalence["top"], prevalence["bottom"], where=f"datasets.{where}.prevalence")
    label = rng.permutation(np.arange(n) % k).astype(np.int64)
    kind = rng.permutation(np.repeat([0, 1, 2], [counts["both"], counts["top_only"], counts["bottom_only"]]))
    out = {"label": label}
    for side, only in (("top", 1), ("bottom", 2)):
        present = (kind == 0) | (kind == only)
        idx = np.flatnonzero(present)
        side_label = np.full(n, -1, dtype=np.int64)
        if randomize == side:
            side_label[idx] = rng.integers(0, k, size=len(idx))
        else:
            r = _unit(f"datasets.{where}.reliability.{side}", reliability[side])
            n_rel = int(round(r * len(idx)))
            rel = np.zeros(len(idx), dtype=bool)
            rel[rng.choice(len(idx), size=n_rel, replace=False)] = True
            shift = rng.integers(1, k, size=len(idx))  # uniform over the other k - 1 classes
            side_label[idx] = np.where(rel, label[idx], (label[idx] + shift) % k)
        index = np.full(n, -1, dtype=np.int64)
        for c in range(k):
            sel = np.flatnonzero(side_label == c)
            pool = pools[side][c]
            if len(sel) == 0:
                continue
            if not replace and len(sel) > len(pool):
                raise ValueError(f"datasets.{where}: not enough samples of class {c} on the {side} side "
                                 f"(need {len(sel)}, have {len(pool)}); lower n_train/n_test/n_eval or set replace: true")
            if len(pool) == 0:
                raise ValueError(f"datasets.{where}: class {c} has no samples on the {side} side")
            index[sel] = rng.choice(pool, size=len(sel), replace=replace)
        out[f"{side}_present"], out[f"{side}_label"], out[f"{side}_index"] = present, side_label, index
    return out


def measure(flags: dict) -> dict[str, float]:
    """Achieved prevalence (fraction of dominoes showing the side) and reliability (fraction
    of shown sides whose class is the label) per side, from the per-sample flags."""
    out = {}
    for s in SIDES:
        pres = np.asarray(flags[f"{s}_present"], dtype=bool)
        out[f"prevalence_{s}"] = float(pres.mean()) if len(pres) else float("nan")
        shown = np.asarray(flags[f"{s}_label"])[pres] == np.asarray(flags["label"])[pres]
        out[f"reliability_{s}"] = float(shown.mean()) if len(shown) else float("nan")
    return out


# ----------------------------------------------------------------------------- synthetic side


def synthetic_side(spec: dict, name: str = "synthetic") -> dict:
    """A side source whose difficulty is one number: Gaussian classes ``s`` sigma apart.

    Class ``c`` has mean ``mu_c = (s / sqrt 2) v_c`` with ``v_c`` orthonormal random
    directions in pixel space (so ``|mu_c - mu_c'| = s`` for every pair), and samples
    ``z = mu_c + e``, ``e ~ N(0, I)``; the stored raw pixels are ``0.5 + 0.15 z`` (about
    [0, 1], blank 0 stays distinct). The Bayes-optimal pairwise error is ``Phi(-s/2)``:
    ``s = 0`` carries no signal, ``s >= 6`` is trivially separable by a linear read-out.

    Args:
        spec: ``simplicity`` (s >= 0), ``classes`` (k), ``size`` (H = W), ``channels``,
            ``n_train``, ``n_test``, ``seed``.
        name: Dataset name for errors.

    Returns:
        The raw-arrays dict of a source: ``x_train`` (n, C, H, W) float64, ``y_train``,
        ``x_test``, ``y_test``, ``classes``, ``pixel_scale`` 1.0, ``split``, and ``means``.
    """
    p = {k: spec.get(k, v) if spec.get(k) is not None else v for k, v in SYNTHETIC_DEFAULTS.items()}
    s = p["simplicity"]
    if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
        raise ValueError(f"datasets.{name}.simplicity: expected a number >= 0, got {s!r}")
    ints = {}
    for key in ("classes", "size", "channels", "n_train", "n_test", "seed"):
        v = p[key]
        lo = {"classes": 2, "seed": 0}.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"datasets.{name}.{key}: expected an integer >= {lo}, got {v!r}")
        ints[key] = v
    k, h, c = ints["classes"], ints["size"], ints["channels"]
    d = c * h * h
    if k > d:
        raise ValueError(f"datasets.{name}.classes: at most {d} (pixels) classes, got {k}")
    s_dir, s_tr, s_te = np.random.SeedSequence(ints["seed"]).spawn(3)
    q, _ = np.linalg.qr(np.random.default_rng(s_dir).standard_normal((d, k)))
    means = (float(s) / np.sqrt(2.0)) * q.T  # (k, d)
    out = {}
    for split, n, ss in (("train", ints["n_train"], s_tr), ("test", ints["n_test"], s_te)):
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n) % k).astype(np.int64)
        z = means[y] + rng.standard_normal((n, d))
        out[f"x_{split}"] = (0.5 + 0.15 * z).reshape(n, c, h, h)
        out[f"y_{split}"] = y
    return dict(out, classes=[str(i) for i in range(k)], pixel_scale=1.0, means=means,
                split=f"independent draws, simplicity {float(s):g} (class means {float(s):g} sigma apart), "
                      f"seed {ints['seed']}")


# ----------------------------------------------------------------------------- config


def _side_ref(name: str, spec: dict, side: str, datasets: dict | None) -> tuple[str, dict]:
    v = spec.get(side)
    if isinstance(v, dict):
        if v.get("source") != "synthetic":
            raise ValueError(f"datasets.{name}.{side}: an inline side must be {{source: synthetic, ...}}, "
                             f"got source {v.get('source')!r}; name another datasets entry instead")
        unknown = sorted(set(v) - SYNTHETIC_KEYS - {"source"})
        if unknown:
            raise ValueError(f"datasets.{name}.{side}.{unknown[0]}: unknown key for an inline synthetic side "
                             f"(allowed: {', '.join(sorted(SYNTHETIC_KEYS))})")
        return f"{name}.{side}", v
    if not isinstance(v, str):
        raise ValueError(f"datasets.{name}.{side}: expected the name of another datasets entry or "
                         f"{{source: synthetic, simplicity: ...}}, got {v!r}")
    if datasets is not None:
        if v not in datasets:
            raise ValueError(f"datasets.{name}.{side}: unknown dataset {v!r} (expected one of: {', '.join(datasets)})")
        if v == name or (datasets[v] or {}).get("source") == "dominoes":
            raise ValueError(f"datasets.{name}.{side}: {v!r} is a dominoes dataset; a side must be a plain dataset")
        return v, datasets[v]
    return v, {}


def _per_side(name: str, spec: dict, key: str) -> dict[str, float]:
    v = spec.get(key, DOMINO_DEFAULTS[key])
    if not isinstance(v, dict) or set(v) - set(SIDES):
        raise ValueError(f"datasets.{name}.{key}: expected {{top: p, bottom: p}}, got {v!r}")
    full = dict(DOMINO_DEFAULTS[key], **v)
    return {s: _unit(f"datasets.{name}.{key}.{s}", full[s]) for s in SIDES}


def check_dominoes(name: str, spec: dict, datasets: dict | None = None) -> dict:
    """Check a ``source: dominoes`` block; returns the resolved parameters.

    Raises:
        ValueError: ``datasets.<name>.<key>: ...`` (one line): unknown key, a side that is
            not another (non-domino) dataset, prevalences/reliabilities outside [0, 1] or
            leaving dominoes with no side, bad sizes or class lists.
    """
    unknown = sorted(set(spec) - DOMINO_KEYS - {"source"})
    if unknown:
        raise ValueError(f"datasets.{name}.{unknown[0]}: unknown key for source dominoes "
                         f"(allowed: {', '.join(sorted(DOMINO_KEYS))})")
    p = {k: spec.get(k, v) if spec.get(k) is not None else v for k, v in DOMINO_DEFAULTS.items()}
    for s in SIDES:
        if s not in spec:
            raise ValueError(f"datasets.{name}.{s}: required (the name of another datasets entry)")
    p["sides"] = {s: _side_ref(name, spec, s, datasets) for s in SIDES}
    p["prevalence"] = _per_side(name, spec, "prevalence")
    p["reliability"] = _per_side(name, spec, "reliability")
    solve_counts(10, p["prevalence"]["top"], p["prevalence"]["bottom"], where=f"datasets.{name}.prevalence")
    for key in ("n_train", "n_test", "n_eval"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"datasets.{name}.{key}: expected an integer >= 1, got {v!r}")
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"datasets.{name}.seed: expected an integer >= 0, got {p['seed']!r}")
    for key in ("replace", "normalize"):
        if not isinstance(p[key], bool):
            raise ValueError(f"datasets.{name}.{key}: expected true or false, got {p[key]!r}")
    size = spec.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)):
        raise ValueError(f"datasets.{name}.size: expected [height, width] of one side, got {size!r}")
    classes = spec.get("classes")
    if classes is not None:
        ok = isinstance(classes, dict) and set(classes) == set(SIDES) and all(
            isinstance(classes[s], list) and len(classes[s]) >= 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes[s]) for s in SIDES)
        if not ok or len(classes["top"]) != len(classes["bottom"]):
            raise ValueError(f"datasets.{name}.classes: expected {{top: [i, ...], bottom: [j, ...]}}, two lists of "
                             f"the same length >= 2 (classes matched by position), got {classes!r}")
    return p


def dominoes_info(name: str, spec: dict, side_info, datasets: dict | None = None) -> dict:
    """Input shape, classes and train size of a dominoes block, from its sides' info.

    Args:
        name: Dataset name.
        spec: The block.
        side_info: ``side_info(side_name, side_spec) -> {"in_shape", "out_dim", ...}`` of a
            plain dataset (the registry's ``dataset_info``).
        datasets: The config's ``datasets`` mapping (resolves side names).
    """
    p = check_dominoes(name, spec, datasets)
    shapes, ks = [], []
    for s in SIDES:
        sname, sspec = p["sides"][s]
        if sspec.get("source") == "synthetic" and isinstance(spec.get(s), dict):
            q = dict(SYNTHETIC_DEFAULTS, **{k: v for k, v in sspec.items() if v is not None})
            info = {"in_shape": (q["channels"], q["size"], q["size"]), "out_dim": q["classes"]}
        else:
            info = side_info(sname, sspec)
        shapes.append(tuple(info["in_shape"]))
        ks.append(int(info["out_dim"]))
    classes = spec.get("classes")
    k = len(classes["top"]) if classes else ks[0]
    if not classes and ks[0] != ks[1]:
        raise ValueError(f"datasets.{name}.classes: the sides have {ks[0]} and {ks[1]} classes; "
                         f"choose matching subsets ({{top: [...], bottom: [...]}})")
    if classes:
        for s, ki in zip(SIDES, ks):
            if max(classes[s]) >= ki:
                raise ValueError(f"datasets.{name}.classes.{s}: class {max(classes[s])} but the side has {ki} classes")
    c = max(sh[0] for sh in shapes)
    hw = spec.get("size") or [max(sh[1] for sh in shapes), max(sh[2] for sh in shapes)]
    return {"in_shape": (c, 2 * int(hw[0]), int(hw[1])), "out_dim": k, "n_train": int(p["n_train"]), "exact": True}


# ----------------------------------------------------------------------------- building


def _raw_side(sname: str, sspec: dict, datasets: dict | None, side_files: dict | None, side: str) -> dict:
    """The raw arrays of one side scaled to [0, 1] (x / pixel_scale), float32 (N, C, H, W)."""
    if side_files and side_files.get(side):
        with h5py.File(side_files[side], "r") as f:
            mean = np.asarray(f.attrs["mean"], dtype=np.float64)
            std = np.asarray(f.attrs["std"], dtype=np.float64)
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["classes"]]
            raw = {}
            for sp in ("train", "test"):
                x = f[f"{sp}/x"][()].astype(np.float64)
                sh = (1, -1) + (1,) * (x.ndim - 2)
                raw[f"x_{sp}"] = x * std.reshape(sh) + mean.reshape(sh)  # back to [0, 1]
                raw[f"y_{sp}"] = f[f"{sp}/y"][()]
        raw.update(classes=classes, pixel_scale=1.0)
    elif sspec.get("source") == "synthetic":
        raw = synthetic_side(sspec, sname)
    else:
        raw = _load_source(sname, sspec, datasets)
    out = {}
    for sp in ("train", "test"):
        x = np.asarray(raw[f"x_{sp}"], dtype=np.float64) / float(raw["pixel_scale"])
        if x.ndim != 4:
            raise ValueError(f"datasets.{sname}: a domino side needs images (N, C, H, W), got shape {x.shape}")
        out[f"x_{sp}"], out[f"y_{sp}"] = x.astype(np.float32), np.asarray(raw[f"y_{sp}"], dtype=np.int64)
    out["classes"] = list(raw["classes"])
    return out


def _load_source(sname: str, sspec: dict, datasets: dict | None) -> dict:
    """Raw arrays of a plain configured dataset, through the source registry."""
    try:
        from pathdep.data.registry import REGISTRY

        src = REGISTRY.get(sspec.get("source"))
    except ImportError:  # pragma: no cover - before the registry existed
        src = None
    if src is not None and sspec.get("source") in REGISTRY:
        raw = src.load(sname, sspec, datasets=datasets)
    else:
        from pathdep.data import sources as S

        raw = S._LOADERS[sspec["source"]](sname, sspec)
    return raw


def _resize(x: np.ndarray, c: int, hw: tuple[int, int]) -> np.ndarray:
    """(N, C0, H0, W0) in [0, 1] -> (N, c, H, W): bilinear (antialiased when shrinking), grey -> c channels."""
    import torch
    import torch.nn.functional as F

    if x.shape[1] != c:
        if x.shape[1] != 1:
            raise ValueError(f"cannot match {x.shape[1]} channels to {c}")
        x = np.repeat(x, c, axis=1)
    if tuple(x.shape[2:]) == tuple(hw):
        return np.ascontiguousarray(x, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    shrink = hw[0] < x.shape[2] or hw[1] < x.shape[3]
    out = F.interpolate(t, size=tuple(hw), mode="bilinear", align_corners=False, antialias=shrink)
    return out.clamp_(min(0.0, float(x.min())), max(1.0, float(x.max()))).numpy()


def _compose(flags: dict, sides: dict, split: str) -> np.ndarray:
    """(N, C, 2H, W) raw [0, 1] dominoes: blank (0) where a side is absent."""
    top, bot = sides["top"][f"x_{split}"], sides["bottom"][f"x_{split}"]
    n = len(flags["label"])
    c, h, w = top.shape[1:]
    x = np.zeros((n, c, 2 * h, w), dtype=np.float32)
    for s, img, rows in (("top", top, slice(0, h)), ("bottom", bot, slice(h, 2 * h))):
        pres = flags[f"{s}_present"]
        x[pres, :, rows, :] = img[flags[f"{s}_index"][pres]]
    return x


def build_dominoes(name: str, spec: dict, datasets: dict | None = None, side_files: dict | None = None) -> dict:
    """Build the train/test dominoes and the evaluation sets in memory.

    Args:
        name: Dataset name.
        spec: The ``source: dominoes`` block.
        datasets: The config's whole ``datasets`` mapping (to resolve ``top``/``bottom``).
        side_files: Optional ``{"top": path, "bottom": path}`` of prepared side files
            (pathdep.dataset/1); then the sides are read from them (un-normalised).

    Returns:
        ``{"splits": {"train": {...}, "test": {...}, "eval/<set>": {...}}`` each with ``x``
        (raw [0, 1], float32) ``y`` and the flags; ``"attrs"``: requested/achieved values,
        counts, classes, sizes; ``"mean"``/``"std"`` (per channel, of the train split).}``
    """
    p = check_dominoes(name, spec, datasets if side_files is None else None)
    classes = spec.get("classes")
    sides = {}
    for s in SIDES:
        sname, sspec = p["sides"][s]
        sides[s] = _raw_side(sname, sspec, datasets, side_files, s)
        keep = classes[s] if classes else list(range(len(sides[s]["classes"])))
        if max(keep) >= len(sides[s]["classes"]):
            raise ValueError(f"datasets.{name}.classes.{s}: class {max(keep)} but {sname} has "
                             f"{len(sides[s]['classes'])} classes")
        sides[s]["keep"] = keep
    k = len(sides["top"]["keep"])
    if len(sides["bottom"]["keep"]) != k:
        raise ValueError(f"datasets.{name}.classes: the sides have {len(sides['top']['keep'])} and "
                         f"{len(sides['bottom']['keep'])} classes; choose matching subsets ({{top: [...], bottom: [...]}})")
    c = max(sides[s]["x_train"].shape[1] for s in SIDES)
    hw = tuple(spec.get("size") or (max(sides[s]["x_train"].shape[2] for s in SIDES),
                                    max(sides[s]["x_train"].shape[3] for s in SIDES)))
    for s in SIDES:
        for sp in ("train", "test"):
            sides[s][f"x_{sp}"] = _resize(sides[s][f"x_{sp}"], c, hw)
    pools = {sp: {s: [np.flatnonzero(sides[s][f"y_{sp}"] == cls) for cls in sides[s]["keep"]] for s in SIDES}
             for sp in ("train", "test")}
    ss = np.random.SeedSequence(p["seed"]).spawn(2 + len(EVAL_SETS))
    splits = {}
    for i, (sp, n) in enumerate((("train", p["n_train"]), ("test", p["n_test"]))):
        fl = sample_dominoes(np.random.default_rng(ss[i]), n, k, p["prevalence"], p["reliability"], pools[sp],
                             p["replace"], where=name)
        splits[sp] = fl
    one, full = {"top": 1.0, "bottom": 1.0}, {"top": 1.0, "bottom": 1.0}
    eval_req = {"both": (one, None), "top_only": ({"top": 1.0, "bottom": 0.0}, None),
                "bottom_only": ({"top": 0.0, "bottom": 1.0}, None),
                "top_randomized": (one, "top"), "bottom_randomized": (one, "bottom")}
    for j, e in enumerate(EVAL_SETS):
        prev, rnd = eval_req[e]
        splits[f"eval/{e}"] = sample_dominoes(np.random.default_rng(ss[2 + j]), p["n_eval"], k, prev, full,
                                              pools["test"], p["replace"], randomize=rnd, where=name)
    for key, fl in splits.items():
        fl["x"] = _compose(fl, sides, "test" if key != "train" else "train")
    ach = measure(splits["train"])
    counts = solve_counts(p["n_train"], p["prevalence"]["top"], p["prevalence"]["bottom"])
    names = [f"{sides['top']['classes'][a]}|{sides['bottom']['classes'][b]}"
             for a, b in zip(sides["top"]["keep"], sides["bottom"]["keep"])]
    attrs = {"top": p["sides"]["top"][0], "bottom": p["sides"]["bottom"][0],
             "top_classes": np.asarray(sides["top"]["keep"], dtype=np.int64),
             "bottom_classes": np.asarray(sides["bottom"]["keep"], dtype=np.int64),
             "side_shape": np.asarray((c, *hw), dtype=np.int64),
             "counts_train": np.asarray([counts["both"], counts["top_only"], counts["bottom_only"]], dtype=np.int64),
             "eval_sets": np.asarray(EVAL_SETS, dtype=h5py.string_dtype())}
    for s in SIDES:
        attrs[f"requested_prevalence_{s}"] = p["prevalence"][s]
        attrs[f"requested_reliability_{s}"] = p["reliability"][s]
        attrs[f"achieved_prevalence_{s}"] = ach[f"prevalence_{s}"]
        attrs[f"achieved_reliability_{s}"] = ach[f"reliability_{s}"]
        te = measure(splits["test"])
        attrs[f"achieved_test_prevalence_{s}"] = te[f"prevalence_{s}"]
        attrs[f"achieved_test_reliability_{s}"] = te[f"reliability_{s}"]
    return {"splits": splits, "attrs": attrs, "classes": names, "k": k, "normalize": p["normalize"]}


def prepare_dominoes(name: str, spec: dict, out_path: str | Path, provenance: dict | None = None,
                     datasets: dict | None = None, side_files: dict | None = None) -> None:
    """Build the dominoes and write them as a ``pathdep.dataset/1`` file (plus flags, eval sets).

    Normalisation: per-channel mean/std of the raw train dominoes (blank pixels included),
    applied to every split and evaluation set; ``blank_value = -mean/std``.

    Args:
        name, spec, datasets, side_files: As :func:`build_dominoes`.
        out_path: The ``.h5`` to write (atomically).
        provenance: Stored as JSON.
    """
    from pathdep.io.atomic import atomic_write

    b = build_dominoes(name, spec, datasets, side_files)
    sp = b["splits"]
    x_tr = sp["train"]["x"]
    c = x_tr.shape[1]
    if b["normalize"]:
        mean = x_tr.astype(np.float64).mean(axis=(0, 2, 3))
        std = x_tr.astype(np.float64).std(axis=(0, 2, 3))
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = np.zeros(c), np.ones(c)
    sh = (1, c, 1, 1)
    attrs = dict(b["attrs"], format="pathdep.dataset/1", name=name, source="dominoes", task="classification",
                 in_shape=np.asarray(x_tr.shape[1:], dtype=np.int64), out_dim=int(b["k"]),
                 n_train=int(len(x_tr)), n_test=int(len(sp["test"]["x"])), mean=mean, std=std,
                 blank_value=(-mean / std), pixel_scale=1.0,
                 split=f"dominoes from the {attrs_side(b, 'top')} (top) and {attrs_side(b, 'bottom')} (bottom) "
                       f"train/test splits, seed {spec.get('seed', DOMINO_DEFAULTS['seed'])}",
                 classes=np.asarray(b["classes"], dtype=h5py.string_dtype()),
                 spec=json.dumps(spec, sort_keys=True, default=str),
                 provenance=json.dumps(provenance or {}, sort_keys=True, default=str))
    with atomic_write(out_path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            for key, fl in sp.items():
                g = f.create_group(key)
                g.create_dataset("x", data=((fl["x"] - mean.reshape(sh)) / std.reshape(sh)).astype(np.float32))
                g.create_dataset("y", data=fl["label"].astype(np.int64))
                for fk in FLAGS:
                    g.create_dataset(fk, data=fl[fk])


def attrs_side(b: dict, side: str) -> str:
    return str(b["attrs"][side])


def load_eval_sets(path: str | Path, include_splits: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """The evaluation sets of a prepared dominoes file: ``{set: {"x", "y", flags...}}``.

    With ``include_splits`` the whole ``train`` and ``test`` splits are added too.
    """
    out = {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("source") != "dominoes" or "eval" not in f:
            raise ValueError(f"{path}: not a prepared dominoes file (no /eval group; source "
                             f"{f.attrs.get('source')!r})")
        keys = [f"eval/{e}" for e in f["eval"]] + (["train", "test"] if include_splits else [])
        for key in keys:
            g = f[key]
            out[key.split("/")[-1]] = {k: g[k][()] for k in ("x", "y", *FLAGS)}
    return out


# ----------------------------------------------------------------------------- sweeps


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def derive_dataset(run: dict, datasets: dict) -> dict:
    """Apply a run's ``data:`` overrides: a named, reusable dataset per distinct block.

    If ``run["data"]`` is a non-empty mapping, the run's dataset block is deep-merged with
    it, the result is registered in ``datasets`` as ``<dataset>-<8 hex>`` (first 8 hex
    digits of the SHA-1 of the merged block's sorted JSON: equal blocks share the name,
    and so the prepared file), and ``run["dataset"]`` is set to that name. Called by the
    config's sweep expansion once per run, after the sweep axes have been set.

    Args:
        run: One resolved run (``dataset`` and optional ``data``).
        datasets: The config's ``datasets`` mapping; the derived entry is added to it.

    Returns:
        ``run`` (modified in place).

    Raises:
        ValueError: ``data`` is not a mapping, names no configured dataset, or gives a bad
            dominoes block; the text starts with the key below ``data`` (``.prevalence: ...``)
            or ``: ...``, for the caller to prefix with where ``data`` was written.
    """
    over = run.get("data")
    if not over:
        return run
    if not isinstance(over, dict):
        raise ValueError(f": expected a mapping of dataset keys to override, got {over!r}")
    ds = run.get("dataset")
    if ds not in datasets:
        raise ValueError(f": the run's dataset {ds!r} is not a key of datasets (data: overrides a configured dataset)")
    merged = _merge(datasets[ds], over)
    tag = hashlib.sha1(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()[:8]
    derived = f"{ds}-{tag}"
    if merged.get("source") == "dominoes":  # name the key the user wrote, not the derived dataset
        try:
            check_dominoes(derived, merged, datasets)
        except ValueError as exc:
            raise ValueError(str(exc).replace(f"datasets.{derived}", "", 1) + f" (dataset {ds})") from None
    datasets[derived] = merged
    run["dataset"] = derived
    return run


# ----------------------------------------------------------------------------- registry

from pathdep.data.registry import Source, dataset_info, register  # noqa: E402


@register
class Synthetic(Source):
    """``source: synthetic``: Gaussian classes ``simplicity`` sigma apart (:func:`synthetic_side`)."""

    name = "synthetic"
    keys = SYNTHETIC_KEYS - {"normalize"}
    defaults = dict(SYNTHETIC_DEFAULTS)
    subset = False

    def check(self, name, spec, *, offline=False, datasets=None):
        q = dict(SYNTHETIC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None and k != "source"})
        s = q["simplicity"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
            raise ValueError(f"datasets.{name}.simplicity: expected a number >= 0, got {s!r}")
        for key in ("classes", "size", "channels", "n_train", "n_test", "seed"):
            v, lo = q[key], {"classes": 2, "seed": 0}.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"datasets.{name}.{key}: expected an integer >= {lo}, got {v!r}")

    def info(self, name, spec, *, check_files=False, datasets=None):
        q = dict(SYNTHETIC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None and k != "source"})
        return {"in_shape": (q["channels"], q["size"], q["size"]), "out_dim": q["classes"], "n_train": q["n_train"],
                "exact": True}

    def load(self, name, spec, *, datasets=None):
        raw = synthetic_side(spec, name)
        raw.pop("means")
        return raw


@register
class Dominoes(Source):
    """``source: dominoes``: two other datasets stacked (this module's docstring)."""

    name = "dominoes"
    keys = DOMINO_KEYS - {"normalize"}
    defaults = {k: v for k, v in DOMINO_DEFAULTS.items() if k != "normalize"}
    subset = False

    def check(self, name, spec, *, offline=False, datasets=None):
        check_dominoes(name, spec, datasets)

    def info(self, name, spec, *, check_files=False, datasets=None):
        return dominoes_info(name, spec, lambda n, s: dataset_info(n, s, check_files=check_files, datasets=datasets),
                             datasets)

    def load(self, name, spec, *, datasets=None):
        """The train/test dominoes in raw [0, 1] units (flags and evaluation sets: :meth:`prepare`)."""
        b = build_dominoes(name, spec, datasets)
        sp = b["splits"]
        return {"x_train": sp["train"]["x"], "y_train": sp["train"]["label"], "x_test": sp["test"]["x"],
                "y_test": sp["test"]["label"], "classes": b["classes"], "pixel_scale": 1.0,
                "split": f"dominoes {b['attrs']['top']} over {b['attrs']['bottom']}"}

    def prepare(self, name, spec, out_path, *, provenance=None, datasets=None):
        """Write the full file (flags, evaluation sets, achieved values): :func:`prepare_dominoes`."""
        prepare_dominoes(name, spec, out_path, provenance=provenance, datasets=datasets)
