"""Building dominoes in memory: the sides' images, the draws of every split, the stacked images.

What it computes: :func:`build_dominoes` loads both sides (another configured dataset
through the source registry, an inline synthetic side, or a prepared side file), scales
them to [0, 1], resizes them (bilinear, antialiased when shrinking; grey repeated to RGB) to
a common ``(C, H, W)``, draws the train/test splits and the evaluation sets
(:func:`pathdep.data.dominoes.counts.sample_dominoes`, seeds ``SeedSequence(seed).spawn(2 +
len(EVAL_SETS))``: train, test, then one per evaluation set) and stacks the sides to
``(C, 2H, W)`` with blank (0) where a side is absent.

How it was checked: ``tests/datasets/test_dominoes.py`` (flags against the pixels: blank
sides equal ``blank_value``, shown sides equal the resized side image of ``top_label``;
torchvision MNIST/CIFAR-10 sides from tiny files in the real formats).
"""

from __future__ import annotations

import h5py
import numpy as np

from pathdep.data.dominoes.counts import SIDES, measure, sample_dominoes, solve_counts
from pathdep.data.dominoes.spec import EVAL_SETS, check_dominoes
from pathdep.data.registry import REGISTRY
from pathdep.data.storage import read_inputs
from pathdep.data.sources.synthetic import synthetic_side

__all__ = ["build_dominoes"]

# Evaluation sets: (prevalence, randomized side); every shown side is reliable.
_EVAL_REQUESTS = {"both": ({"top": 1.0, "bottom": 1.0}, None),
                  "top_only": ({"top": 1.0, "bottom": 0.0}, None),
                  "bottom_only": ({"top": 0.0, "bottom": 1.0}, None),
                  "top_randomized": ({"top": 1.0, "bottom": 1.0}, "top"),
                  "bottom_randomized": ({"top": 1.0, "bottom": 1.0}, "bottom")}


def _raw_side(sname: str, sspec: dict, datasets: dict | None, side_files: dict | None, side: str) -> dict:
    """The raw arrays of one side scaled to [0, 1] (x / pixel_scale), float32 (N, C, H, W)."""
    if side_files and side_files.get(side):
        with h5py.File(side_files[side], "r") as f:
            mean = np.asarray(f.attrs["mean"], dtype=np.float64)
            std = np.asarray(f.attrs["std"], dtype=np.float64)
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["classes"]]
            raw = {}
            for sp in ("train", "test"):
                x = read_inputs(f, f"{sp}/x").astype(np.float64)
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
    return REGISTRY[sspec["source"]].load(sname, sspec, datasets=datasets)


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


def _load_sides(name: str, spec: dict, p: dict, datasets: dict | None,
                side_files: dict | None) -> tuple[dict, int, int, tuple[int, int]]:
    """Both sides' arrays resized to a common ``(c, H, W)``, with the kept classes ``keep``.

    Returns:
        ``(sides, k, c, (H, W))``: ``sides[side]`` holds ``x_train``/``x_test`` (float32 in
        [0, 1]), ``y_train``/``y_test``, ``classes`` and ``keep``; ``k`` matched classes.
    """
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
    return sides, k, c, hw


def _draw_splits(name: str, p: dict, sides: dict, k: int) -> dict[str, dict]:
    """The flags and side indices of ``train``, ``test`` and every ``eval/<set>`` (test pools)."""
    pools = {sp: {s: [np.flatnonzero(sides[s][f"y_{sp}"] == cls) for cls in sides[s]["keep"]] for s in SIDES}
             for sp in ("train", "test")}
    ss = np.random.SeedSequence(p["seed"]).spawn(2 + len(EVAL_SETS))
    splits = {}
    for i, (sp, n) in enumerate((("train", p["n_train"]), ("test", p["n_test"]))):
        splits[sp] = sample_dominoes(np.random.default_rng(ss[i]), n, k, p["prevalence"], p["reliability"],
                                     pools[sp], p["replace"], where=name)
    full = {"top": 1.0, "bottom": 1.0}
    for j, e in enumerate(EVAL_SETS):
        prev, rnd = _EVAL_REQUESTS[e]
        splits[f"eval/{e}"] = sample_dominoes(np.random.default_rng(ss[2 + j]), p["n_eval"], k, prev, full,
                                              pools["test"], p["replace"], randomize=rnd, where=name)
    return splits


def _attrs(p: dict, sides: dict, splits: dict, c: int, hw: tuple[int, int]) -> dict:
    """Side names, kept classes, shapes, train counts, requested and achieved values per side."""
    ach, te = measure(splits["train"]), measure(splits["test"])
    counts = solve_counts(p["n_train"], p["prevalence"]["top"], p["prevalence"]["bottom"])
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
        attrs[f"achieved_test_prevalence_{s}"] = te[f"prevalence_{s}"]
        attrs[f"achieved_test_reliability_{s}"] = te[f"reliability_{s}"]
    return attrs


def build_dominoes(name: str, spec: dict, datasets: dict | None = None, side_files: dict | None = None) -> dict:
    """Build the train/test dominoes and the evaluation sets in memory.

    Args:
        name: Dataset name.
        spec: The ``source: dominoes`` block.
        datasets: The config's whole ``datasets`` mapping (to resolve ``top``/``bottom``).
        side_files: Optional ``{"top": path, "bottom": path}`` of prepared side files
            (``pathdep.dataset/2``); then the sides are read from them (decoded, un-normalised).

    Returns:
        ``{"splits": {"train": {...}, "test": {...}, "eval/<set>": {...}}, "attrs": {...},
        "classes": [...], "k": int, "normalize": bool}``: each split holds ``x`` (raw [0, 1],
        float32 (N, C, 2H, W)), ``label`` and the flags; ``attrs`` the requested/achieved
        values, train counts, kept classes and side shape; ``classes`` the ``"<top>|<bottom>"``
        class names.
    """
    p = check_dominoes(name, spec, datasets if side_files is None else None)
    sides, k, c, hw = _load_sides(name, spec, p, datasets, side_files)
    splits = _draw_splits(name, p, sides, k)
    for key, fl in splits.items():
        fl["x"] = _compose(fl, sides, "test" if key != "train" else "train")
    names = [f"{sides['top']['classes'][a]}|{sides['bottom']['classes'][b]}"
             for a, b in zip(sides["top"]["keep"], sides["bottom"]["keep"])]
    return {"splits": splits, "attrs": _attrs(p, sides, splits, c, hw), "classes": names, "k": k,
            "normalize": p["normalize"]}
