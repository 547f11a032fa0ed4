"""Benchmark: storage of prepared datasets and trajectories (sizes, write and read times) in one run.

Measures, on the files of a finished default run (``--results``, e.g. ``results/`` of ``make
run``; files of the ``pathdep.dataset/1`` era are read as they are):

1. datasets: every ``data/*.h5`` prepared again with this checkout (its ``spec`` attribute,
   the sides' blocks from ``config.yaml``) into a temporary folder: the old and new file
   size, the prepare time, the read time of every split (old: one h5py read of the stored
   float32; new: read + decompress + decode, :func:`pathdep.data.storage.read_inputs`, best
   of 3) and a bit-for-bit comparison of the decoded inputs and every other array with the
   old file (``IDENTICAL`` / ``DIFFERENT``);
2. the filter choice on Fashion-MNIST's uint8 train images: size and read time with no
   filter, gzip 1 / 4 / 9 and LZF;
3. trajectories: every ``*/*/trajectory.h5`` and ``init.h5`` (``--sample``: the largest file
   per experiment, the others scaled by its ratio) re-written with the writer's filters
   (:data:`pathdep.io.trajectory.WEIGHT_FILTERS`, shuffle + gzip 1, one chunk per
   checkpoint): the weights' bytes before/after, the write time per checkpoint against the
   run's own training time per checkpoint (``train_seconds / checkpoints`` from the file),
   the read time per checkpoint, and the weights read back compared bit for bit; on the
   largest default trajectory also the alternatives (shuffle + gzip 4 / 6, shuffle + LZF),
   each written on a second thread while this one runs a Python loop: the loop's longest
   pause, against the write time of one checkpoint, shows whether the write holds the GIL;
4. the ``results/`` size per experiment folder: before (``du -sb``-like sum of file sizes)
   and after (before minus the measured savings of its files);
5. the storage options of ``training.checkpoints`` (:mod:`pathdep.io.storage`: ``store:
   deltas``, ``precision: float16 | bfloat16``, both): up to ``--ckpts`` checkpoints of the
   largest trajectory per experiment written through ``TrajectoryWriter`` and read back
   through ``Trajectory.weights``: stored/raw, the measured error (``max |dw|/|w|`` over
   entries with ``|w| >= 2^-14``; ``max |dw_k| / |w_k - w_base|`` over member rows) against
   the documented bound, and the default run's trajectory bytes per run per option
   (``--options-only`` runs this part and part 6 alone);
6. a ResNet-18 (``pathdep.core.resnet``, 11,173,962 parameters with BatchNorm) trained a
   few SGD steps on random 32x32 data: a baseline, a copy at relative eps 1e-3 and an
   independent network (the worst case of a delta: unrelated weights); each row's stored
   bytes per option, extrapolated to 11 members x 40 checkpoints (19.7 GB raw float32)
   between "copies stay near the baseline" and "copies as far as independent networks".

Usage: ``.venv/bin/python bench/bench_storage.py --results results [--sample] [--config config.yaml]
[--options-only] [--ckpts 8] [--resnet-steps 10]``.
Prints markdown tables (kept in the README, "Results size"). Timings on a shared machine
are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
import yaml

from pathdep.data import prepare_dataset
from pathdep.data.storage import read_inputs
from pathdep.io.trajectory import WEIGHT_FILTERS

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6


def _arrays(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))
    return np.array_equal(a, b)


def _best(fn, n: int = 3) -> float:
    best = np.inf
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _read_old(path: Path) -> None:
    with h5py.File(path, "r") as f:
        for k in [k for k in _arrays_keys(f) if k.endswith("/x")]:
            f[k][()]


def _read_new(path: Path) -> None:
    with h5py.File(path, "r") as f:
        for k in [k for k in _arrays_keys(f) if k.endswith("/x")]:
            read_inputs(f, k)


def _arrays_keys(f: h5py.File) -> list[str]:
    keys = []
    f.visititems(lambda n, o: keys.append(n) if isinstance(o, h5py.Dataset) else None)
    return keys


def bench_datasets(results: Path, config: Path, tmp: Path) -> dict[str, int]:
    """Part 1: every prepared dataset again; returns {file name: new size}."""
    datasets = yaml.safe_load(config.read_text())["datasets"]
    print("\n## Prepared datasets (old: pathdep.dataset/1 normalised float32; new: codes + shuffle/gzip 4)\n")
    print("| file | old MB | new MB | new/old | prepare s | read old s | read+decode new s | stored x | decoded |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    sizes = {}
    for old in sorted((results / "data").glob("*.h5")):
        with h5py.File(old, "r") as f:
            spec = json.loads(f.attrs["spec"])
        name = old.stem
        new = tmp / old.name
        t = time.perf_counter()
        prepare_dataset(name, spec, new, provenance={"bench": True}, datasets=dict(datasets, **{name: spec}))
        t_prep = time.perf_counter() - t
        a, b = _arrays(old), _arrays(new)
        with h5py.File(new, "r") as f:
            for k in [k for k in b if k.endswith("/x")]:
                b[k] = read_inputs(f, k)
            stored = f["train/x"].dtype.name
        ok = sorted(a) == sorted(b) and all(_same(a[k], b[k]) for k in a)
        r_old, r_new = _best(lambda: _read_old(old)), _best(lambda: _read_new(new))
        so, sn = old.stat().st_size, new.stat().st_size
        sizes[old.name] = sn
        print(f"| {old.name} | {so / MB:.1f} | {sn / MB:.1f} | {sn / so:.3f} | {t_prep:.2f} | {r_old:.3f} | "
              f"{r_new:.3f} | {stored} | {'IDENTICAL' if ok else 'DIFFERENT'} |")
    return sizes


def bench_filters(results: Path, tmp: Path) -> None:
    """Part 2: the filter choice on Fashion-MNIST's uint8 train images."""
    from pathdep.data.sources.idx import IdxSource

    fm = results / "data" / "fashion_mnist.h5"
    if not fm.exists():
        return
    with h5py.File(fm, "r") as f:
        spec = json.loads(f.attrs["spec"])
    x = IdxSource().load("fashion_mnist", spec)["x_train"]
    print(f"\n## Filters on Fashion-MNIST train images ({x.shape}, {x.dtype}, {x.nbytes / MB:.1f} MB raw)\n")
    print("| filter | MB | write s | read s |")
    print("|---|---:|---:|---:|")
    rows = max(1, (1 << 20) // (x.nbytes // len(x)))
    for label, kw in (("none", {}), ("gzip 1", dict(compression="gzip", compression_opts=1)),
                      ("gzip 4", dict(compression="gzip", compression_opts=4)),
                      ("gzip 9", dict(compression="gzip", compression_opts=9)), ("lzf", dict(compression="lzf"))):
        p = tmp / "filter.h5"
        t = time.perf_counter()
        with h5py.File(p, "w") as f:
            f.create_dataset("x", data=x, chunks=(rows,) + x.shape[1:] if kw else None, **kw)
        tw = time.perf_counter() - t

        def read():
            with h5py.File(p, "r") as f:
                f["x"][()]
        print(f"| {label} | {p.stat().st_size / MB:.1f} | {tw:.2f} | {_best(read):.3f} |")


def _reencode(path: Path, tmp: Path) -> dict:
    """The weights of one trajectory/init file written with the writer's filters: sizes, times, bits."""
    with h5py.File(path, "r") as f:
        W = f["weights"][()]
        attrs = dict(f.attrs)
    traj = W.ndim == 3
    C = W.shape[0] if traj else 1
    out = tmp / "w.h5"
    t = time.perf_counter()
    with h5py.File(out, "w") as g:
        d = g.create_dataset("weights", shape=W.shape, dtype=W.dtype, chunks=(1,) + W.shape[1:], **WEIGHT_FILTERS)
        if traj:
            for c in range(C):  # as TrajectoryWriter.write_weights: one checkpoint, one chunk
                d[c] = W[c]
        else:
            d[...] = W
        stored = d.id.get_storage_size()
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    with h5py.File(out, "r") as g:
        back = np.stack([g["weights"][c] for c in range(C)]) if traj else g["weights"][()]
    t_read = time.perf_counter() - t
    train_per_ckpt = float(attrs.get("train_seconds", np.nan)) / C if traj else np.nan
    return {"raw": W.nbytes, "stored": stored, "write_ms": 1e3 * t_write / C, "read_ms": 1e3 * t_read / C,
            "train_ms": 1e3 * train_per_ckpt, "same": _same(back, W), "ckpts": C, "file": path.stat().st_size}


def bench_trajectories(results: Path, tmp: Path, sample: bool) -> dict[str, int]:
    """Part 3: trajectory and init weights re-encoded; returns {relative path: bytes saved}."""
    files = sorted(results.glob("*/*/trajectory.h5")) + sorted(results.glob("*/*/init.h5"))
    groups = defaultdict(list)
    for p in files:
        groups[(p.parts[-3], p.name)].append(p)
    saved, rows = {}, []
    for (exp, kind), paths in sorted(groups.items()):
        todo = [max(paths, key=lambda p: p.stat().st_size)] if sample else paths
        res = {p: _reencode(p, tmp) for p in todo}
        ratio = np.mean([r["stored"] / r["raw"] for r in res.values()])
        for p in paths:
            if p in res:
                saved[str(p.relative_to(results))] = res[p]["raw"] - res[p]["stored"]
            else:  # --sample: the same experiment's ratio
                with h5py.File(p, "r") as f:
                    raw = f["weights"].nbytes
                saved[str(p.relative_to(results))] = int(raw * (1 - ratio))
        r0 = next(iter(res.values()))
        rows.append(f"| {exp} | {kind} | {len(paths)} | {sum(r['raw'] for r in res.values()) / MB:.1f} | {ratio:.3f} | "
                    f"{r0['write_ms']:.1f} | {r0['train_ms']:.1f} | {r0['read_ms']:.1f} | "
                    f"{'IDENTICAL' if all(r['same'] for r in res.values()) else 'DIFFERENT'} |")
    print("\n## Trajectory and init weights (shuffle + gzip 1, one chunk per checkpoint)\n")
    print("| experiment | file | runs | weights MB (measured) | stored/raw | write ms/ckpt | train ms/ckpt | "
          "read ms/ckpt | decoded |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    return saved


def _longest_pause(work) -> float:
    """Longest gap between iterations of a pure-Python loop on this thread while ``work()`` runs on another."""
    th = threading.Thread(target=work)
    th.start()
    last, longest = time.perf_counter(), 0.0
    while th.is_alive():
        sum(range(100))
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    th.join()
    return longest


def bench_alternatives(results: Path, tmp: Path) -> None:
    """Part 3b: filters on the largest default trajectory, written on a second thread."""
    files = sorted(results.glob("*/*/trajectory.h5"), key=lambda p: p.stat().st_size)
    if not files:
        return
    path = files[-1]
    with h5py.File(path, "r") as f:
        W = f["weights"][()]
    C = W.shape[0]
    print(f"\n## Filters on {path.relative_to(results)} (weights {W.shape}, {W.dtype}, {W.nbytes / MB:.1f} MB)\n")
    print("| filter | stored/raw | write ms/ckpt | read ms/ckpt | longest pause of a Python loop beside it, ms |")
    print("|---|---:|---:|---:|---:|")
    out = tmp / "alt.h5"

    def write(kw):
        with h5py.File(out, "w") as g:
            d = g.create_dataset("weights", shape=W.shape, dtype=W.dtype, chunks=(1,) + W.shape[1:], **kw)
            for c in range(C):
                d[c] = W[c]
    for label, kw in (("none", {}), ("shuffle + lzf", dict(compression="lzf", shuffle=True)),
                      ("shuffle + gzip 1 (the writer)", WEIGHT_FILTERS),
                      ("shuffle + gzip 4", dict(compression="gzip", compression_opts=4, shuffle=True)),
                      ("shuffle + gzip 6", dict(compression="gzip", compression_opts=6, shuffle=True))):
        t = time.perf_counter()
        pause = _longest_pause(lambda: write(kw))
        tw = (time.perf_counter() - t) / C
        t = time.perf_counter()
        with h5py.File(out, "r") as g:
            back = np.stack([g["weights"][c] for c in range(C)])
            stored = g["weights"].id.get_storage_size()
        tr = (time.perf_counter() - t) / C
        assert _same(back, W), label
        print(f"| {label} | {stored / W.nbytes:.3f} | {1e3 * tw:.1f} | {1e3 * tr:.1f} | {1e3 * pause:.0f} |")


def _tree_sizes(results: Path) -> dict[str, int]:
    sizes = defaultdict(int)
    for dirpath, _, names in os.walk(results):
        rel = Path(dirpath).relative_to(results)
        top = rel.parts[0] if rel.parts else "(top level)"
        for n in names:
            p = Path(dirpath) / n
            if not p.is_symlink():
                sizes[top] += p.stat().st_size
    return sizes


def results_size(results: Path, data_sizes: dict[str, int], saved: dict[str, int]) -> None:
    """Part 4: before / after per experiment folder."""
    before = _tree_sizes(results)
    after = dict(before)
    for name, new in data_sizes.items():
        after["data"] -= (results / "data" / name).stat().st_size - new
    for rel, s in saved.items():
        after[rel.split("/")[0]] -= s
    print("\n## results/ size per folder (before: measured; after: before minus the measured savings)\n")
    print("| folder | before MB | after MB | after/before |")
    print("|---|---:|---:|---:|")
    for k in sorted(before, key=lambda k: -before[k]):
        print(f"| {k} | {before[k] / MB:.1f} | {after[k] / MB:.1f} | {after[k] / max(before[k], 1):.3f} |")
    tb, ta = sum(before.values()), sum(after.values())
    print(f"| **total** | **{tb / MB:.1f}** | **{ta / MB:.1f}** | **{ta / tb:.3f}** |")


OPTIONS = (("full (default)", {}), ("deltas", {"store": "deltas"}), ("float16", {"precision": "float16"}),
           ("bfloat16", {"precision": "bfloat16"}), ("deltas + float16", {"store": "deltas", "precision": "float16"}),
           ("deltas + bfloat16", {"store": "deltas", "precision": "bfloat16"}))


def _stored_bytes(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return sum(f[n].id.get_storage_size() for n in ("weights", "weights_stored", "weights_base", "delta_scale")
                   if n in f)


def _errors(back: np.ndarray, W: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """(max |dw|/|w| over |w| >= 2^-14, max |dw_k| / |w_k - w_base| over member rows), float64."""
    W, back = W.astype(np.float64), back.astype(np.float64)
    big = np.abs(W) >= 2.0 ** -14
    e_w = float(np.max(np.abs(back - W)[big] / np.abs(W)[big])) if big.any() else 0.0
    rows = [k for k in range(len(base)) if base[k] != k]
    e_d = max((np.linalg.norm(back[k] - W[k]) / np.linalg.norm(W[k] - W[base[k]]) for k in rows
               if np.linalg.norm(W[k] - W[base[k]]) > 0), default=0.0)
    return e_w, float(e_d)


def _roundtrip(W: np.ndarray, members: list[dict], spec: dict, tmp: Path) -> tuple[int, float, float]:
    """W (C, K, P) through TrajectoryWriter(storage=spec) and Trajectory.weights: (bytes, e_w, e_d)."""
    from pathdep.io.layout import Layout
    from pathdep.io.storage import baseline_rows
    from pathdep.io.trajectory import Trajectory, TrajectoryWriter

    C, K, P = W.shape
    path = tmp / "opt.h5"
    w = TrajectoryWriter(path, Layout(("w",), ((P,),), (0,)), members, np.zeros((K, 1)), np.arange(C), C, 1,
                         W.dtype, {"config": "{}"}, storage=spec)
    for c in range(C):
        w.write_weights(c, W[c])
    w.finish()
    base, errs = baseline_rows(members), []
    with Trajectory(path) as tr:
        for c in range(C):
            back = tr.weights(c)
            if not spec.get("precision"):
                assert _same(back, W[c]), spec
            errs.append(_errors(back, W[c], base))
    return _stored_bytes(path), max(e[0] for e in errs), max(e[1] for e in errs)


def _members_of(f: h5py.File) -> list[dict]:
    g = f["members"]
    if "baseline" not in g:
        return [{"baseline": 0, "copy": int(k > 0)} for k in range(f["weights"].shape[1])]
    return [{"baseline": int(b), "copy": int(c)} for b, c in zip(g["baseline"][()], g["copy"][()])]


def bench_options(results: Path, tmp: Path, n_ckpts: int) -> None:
    """Part 5: storage options on the largest trajectory per experiment; bytes per default run."""
    files = sorted(results.glob("*/*/trajectory.h5"))
    groups = defaultdict(list)
    for p in files:
        groups[p.parts[-3]].append(p)
    ratio, raw, worst = {}, {}, defaultdict(lambda: [0.0, 0.0])
    print(f"\n## Storage options (training.checkpoints) on the default run: {len(files)} trajectories\n")
    print("| experiment | ckpts x K x P | " + " | ".join(f"{lab} stored/raw" for lab, _ in OPTIONS) + " |")
    print("|---|---|" + "---:|" * len(OPTIONS))
    for exp, paths in sorted(groups.items()):
        p = max(paths, key=lambda q: q.stat().st_size)
        with h5py.File(p, "r") as f:
            C = f["weights"].shape[0]
            sel = np.unique(np.linspace(0, C - 1, min(n_ckpts, C)).round().astype(int))
            W, members = np.stack([f["weights"][c] for c in sel]), _members_of(f)
        for path in paths:
            with h5py.File(path, "r") as f:
                raw[path] = f["weights"].nbytes
        cells = []
        for lab, spec in OPTIONS:
            b, e_w, e_d = _roundtrip(W, members, spec, tmp)
            ratio[(exp, lab)] = b / W.nbytes
            worst[lab] = [max(worst[lab][0], e_w), max(worst[lab][1], e_d)]
            cells.append(f"{b / W.nbytes:.3f}")
        print(f"| {exp} | {W.shape[0]} x {W.shape[1]} x {W.shape[2]} | " + " | ".join(cells) + " |")
    print("\n| option | bound (pathdep.io.storage) | measured max abs(dw)/abs(w) | measured max abs(dw_k)/abs(w_k - w_base) "
          "| default run: trajectory weights MB per run |")
    print("|---|---|---:|---:|---:|")
    from pathdep.io.storage import error_bound, spec_of

    for lab, spec in OPTIONS:
        per_run = sum(ratio[(p.parts[-3], lab)] * raw[p] for p in files) / len(files)
        print(f"| {lab} | {error_bound(spec_of(spec), 79510)} | {worst[lab][0]:.3g} | {worst[lab][1]:.3g} | "
              f"{per_run / MB:.1f} |")
    tot = sum(raw.values())
    print(f"\nraw float32 trajectory weights: {tot / MB:.0f} MB in {len(files)} runs ({tot / len(files) / MB:.1f} MB "
          "per run); per-option MB per run = each file's raw bytes x its experiment's measured ratio")


def _resnet18_checkpoints(steps: int) -> tuple[np.ndarray, list[int]]:
    """Flat weights (C, 3, P) float32 of [baseline, copy at relative eps 1e-3, independent net]."""
    import copy

    import torch

    from pathdep.core.resnet import ResNet

    torch.set_num_threads(1)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(ResNet((3, 32, 32), 10, depth=18, width=1, norm="batch"))
    pert = copy.deepcopy(nets[0])
    with torch.no_grad():
        v = torch.nn.utils.parameters_to_vector(pert.parameters())
        z = torch.randn(v.shape, generator=torch.Generator().manual_seed(2))
        torch.nn.utils.vector_to_parameters(v + 1e-3 * v.norm() * z / z.norm(), pert.parameters())
    nets = [nets[0], pert, nets[1]]
    opts = [torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) for n in nets]
    g = torch.Generator().manual_seed(3)
    ckpts = sorted({0, 1, max(1, steps // 2), steps})
    out = []
    for t in range(steps + 1):
        if t in ckpts:
            out.append(np.stack([torch.nn.utils.parameters_to_vector(n.parameters()).detach().numpy() for n in nets]))
        if t == steps:
            break
        x, y = torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
        for n, o in zip(nets, opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(n(x), y).backward()
            o.step()
    return np.stack(out).astype(np.float32), ckpts


def bench_resnet18(tmp: Path, steps: int) -> None:
    """Part 6: a ResNet-18's bytes per row and option, extrapolated to 11 members x 40 checkpoints."""
    t = time.perf_counter()
    W, ckpts = _resnet18_checkpoints(steps)
    C, _, P = W.shape
    members = [{"baseline": 0, "copy": c} for c in range(3)]
    raw_run = 11 * 40 * P * 4
    print(f"\n## ResNet-18 (P = {P:,}, trained {steps} SGD steps on random 32x32 data in "
          f"{time.perf_counter() - t:.0f} s; checkpoints {ckpts}); 11 members x 40 checkpoints raw: "
          f"{raw_run / 1e9:.2f} GB\n")
    print("| option | baseline row stored/raw | copy (eps 1e-3) row, last ckpt | independent row | max abs(dw)/abs(w) "
          "| max abs(dw_k)/abs(w_k - w_base) | 11 x 40 GB, copies near | 11 x 40 GB, copies independent |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for lab, spec in OPTIONS:
        per = []
        for rows in ([0], [0, 1], [0, 2]):   # bytes of the baseline, then with each kind of member row
            b, e_w, e_d = _roundtrip(W[-1:, rows], [members[r] for r in rows], spec, tmp)
            per.append(b)
        _, e_w, e_d = _roundtrip(W, members, spec, tmp)
        row = P * 4
        base, near, far = per[0] / row, (per[1] - per[0]) / row, (per[2] - per[0]) / row
        gb = lambda m: 40 * (base + 10 * m) * row / 1e9  # noqa: E731
        print(f"| {lab} | {base:.3f} | {near:.3f} | {far:.3f} | {e_w:.3g} | {e_d:.3g} | {gb(near):.2f} | {gb(far):.2f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "results"), help="a finished default run's results folder")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"), help="the config that run used (datasets block)")
    ap.add_argument("--sample", action="store_true", help="re-encode the largest file per experiment only")
    ap.add_argument("--options-only", action="store_true", help="parts 5 and 6 only (storage options)")
    ap.add_argument("--ckpts", type=int, default=8, help="checkpoints per trajectory in part 5")
    ap.add_argument("--resnet-steps", type=int, default=10, help="SGD steps of the ResNet-18 in part 6")
    a = ap.parse_args(argv)
    results = Path(a.results)
    print(f"# bench_storage: {results} (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="bench_storage_") as td:
        tmp = Path(td)
        if a.options_only:
            bench_options(results, tmp, a.ckpts)
            bench_resnet18(tmp, a.resnet_steps)
            return 0
        data_sizes = bench_datasets(results, Path(a.config), tmp)
        bench_filters(results, tmp)
        saved = bench_trajectories(results, tmp, a.sample)
        bench_alternatives(results, tmp)
    results_size(results, data_sizes, saved)
    with tempfile.TemporaryDirectory(prefix="bench_storage_") as td:
        bench_options(results, Path(td), a.ckpts)
        bench_resnet18(Path(td), a.resnet_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
