"""Everything a stage needs from one resolved run (layer ``core``).

What it holds:

* :class:`RunContext` - built once from a resolved run config and a prepared dataset file:
  device, dtype, the model (``module``, flat ``layout``, functional ``apply``), the task's
  loss, the optimiser specialised to each member's hyperparameters, the shared batch
  schedule. Models with state besides their parameters (``norm: batch`` ResNets: BatchNorm
  running statistics, :mod:`pathdep.core.resnet`) also get ``buffer_layout`` (``Q``
  entries), ``apply_b(w, b, x, train) -> (out, b_new)`` and ``eval_apply(z, x)``: eval mode
  on the augmented vector ``z = (w, b)`` ``(P + Q,)``, so every evaluation consumer works on
  ``Z = cat([W, B], -1)`` with each member's own running statistics (:meth:`RunContext.z`).
  Their ``apply(w, x)`` is train mode (batch statistics; pure, vmappable, the buffers not
  touched): what the training dynamics compute, so :meth:`RunContext.step` and tangent maps
  work unchanged (in train mode the forward pass never reads the running statistics).
  Without buffers ``buffer_layout`` is None and ``eval_apply`` is ``apply``. Training, metrics, analyses and the Lyapunov tangent map all start here, so a
  run's set-up is written once.
* :func:`run_seeds` / :func:`canonical` - the seeds of a run (``numpy.random.SeedSequence``
  from ``run['seed']``) and the JSON form of a run stored in every output.
* :func:`eval_subset` - the fixed, seeded evaluation subsets of the metrics.

How it was checked: every stage builds through it (``tests/stages/test_train.py``,
``test_metrics.py``, ``test_lyapunov.py``, ``test_analysis.py``), and ``tests/core/test_context.py``
(equal to the individual helpers, dtype override, pure step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch

from pathdep.core.dynamics import make_step, task_loss
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer, optimizer_from_config
from pathdep.core.schedule import Schedule

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | None) -> torch.device:
    """``auto`` -> the job's GPU when there is one, else the CPU."""
    device = device or "auto"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' requested but no CUDA device is visible (set device: auto or cpu)")
    return torch.device(device)


def dataset_meta(data_path: str | Path) -> dict:
    """The attributes of a prepared dataset file (shape, outputs, task, sizes)."""
    path = Path(data_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: prepared dataset not found (run rule prepare_dataset)")
    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
            n_train = int(f["train/x"].shape[0])
    except OSError as exc:
        raise ValueError(f"{path}: not a readable dataset HDF5 file ({str(exc).splitlines()[0][:100]})") from None
    return {"in_shape": tuple(int(v) for v in a["in_shape"]), "out_dim": int(a["out_dim"]),
            "task": str(a["task"]), "n_train": n_train}


def build(run: dict, meta: dict, dtype=torch.float32):
    """(module, layout, apply) for a resolved run on a dataset with ``meta``."""
    module = build_model(run["model"], meta["in_shape"], meta["out_dim"]).to(dtype)
    layout = Layout.from_module(module)
    return module, layout, make_apply(module, layout)


def n_baselines(run: dict) -> int:
    """``perturbation.baselines`` of a run: R independent baselines (1 when absent)."""
    return int(run["perturbation"].get("baselines", 1) or 1)


def member_hparams(run: dict) -> tuple[Optimizer, list[dict]]:
    """The optimiser and each network's hyperparameters, K = R (members + 1) in blocks of
    ``[baseline r, copy 1, ..., copy M]`` (every block the same; member 0 is baseline 0)."""
    opt, hp = optimizer_from_config(run["optimizer"])
    pert = run["perturbation"]
    n = int(pert["members"])
    out = []
    for k in range(n + 1):
        h = dict(hp)
        if pert.get("target") == "hyperparameter" and k > 0:
            h[pert["hparam"]] = h[pert["hparam"]] * (1.0 + float(pert["epsilon"]) * k / n)
        out.append(h)
    out = [dict(h) for _ in range(n_baselines(run)) for h in out]
    return opt.specialized(out), out


def run_seeds(run: dict, baseline: int = 0) -> dict:
    """Seeds of one baseline of a run, all derived from ``run['seed']`` through SeedSequence.

    Baseline 0 uses ``SeedSequence(seed)`` (the seeds of a run without replicates); replicate
    baseline r >= 1 uses ``SeedSequence(seed, spawn_key=(3, r))``, independent of it and of the
    other replicates.

    Returns:
        ``{"root": s, "init": int, "schedule": int, "members_perturb": [M + 1 ints],
        "members_schedule": [M + 1 ints]}`` (index 0 is the baseline; ``"baseline": r`` added
        for r >= 1).
    """
    root = int(run.get("seed", 0))
    ss = np.random.SeedSequence(root) if baseline == 0 else np.random.SeedSequence(root, spawn_key=(3, baseline))
    init_ss, pert_ss, sched_ss = ss.spawn(3)
    k = int(run["perturbation"].get("members", 10)) + 1
    as_int = lambda s: int(s.generate_state(1, dtype=np.uint32)[0])  # noqa: E731
    out = {
        "root": root,
        "init": as_int(init_ss),
        "schedule": as_int(sched_ss),
        "members_perturb": [as_int(s) for s in pert_ss.spawn(k)],
        "members_schedule": [as_int(s) for s in sched_ss.spawn(k)],
    }
    return out | ({"baseline": baseline} if baseline else {})


def all_seeds(run: dict) -> dict:
    """The seeds recorded in a run's files: :func:`run_seeds` of baseline 0, plus
    ``"replicates": [run_seeds(run, r) for r = 1 .. R-1]`` when ``perturbation.baselines`` > 1."""
    seeds = run_seeds(run)
    R = n_baselines(run)
    return seeds | ({"replicates": [run_seeds(run, r) for r in range(1, R)]} if R > 1 else {})


def canonical(run: dict) -> str:
    """The JSON form of a resolved run (what a trajectory's ``config`` attribute stores)."""
    return json.dumps(run, sort_keys=True, default=str)


def eval_subset(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed, seeded subset of ``size`` indices out of ``n`` (sorted)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([int(seed), 7]).choice(n, size=size, replace=False))


@dataclass
class RunContext:
    """What a stage needs from one run: device, dtype, model, data, optimiser, schedule.

    Build it with :meth:`RunContext.build`; ``data`` is loaded lazily by
    :meth:`RunContext.load_data` (metrics and analyses load it, the init stage does not).
    """

    run: dict
    device: torch.device
    dtype: torch.dtype
    meta: dict
    module: torch.nn.Module
    layout: Layout
    apply: Callable
    opt: Optimizer
    hps: list
    data_path: str | None = None
    data: Any = field(default=None, repr=False)
    buffer_layout: Layout | None = None
    apply_b: Callable | None = None
    eval_apply: Callable | None = None

    @classmethod
    def build(cls, run: dict, data_path: str | Path, device: str | torch.device | None = None,
              dtype: str | None = None, load: bool = False) -> "RunContext":
        """Args:
            run: a resolved run config (``pathdep.config.validate`` output).
            data_path: the prepared dataset file (``results/data/<name>.h5``).
            device: ``auto``/``cpu``/``cuda``; default: ``run['device']``.
            dtype: ``float32``/``float64``; default: ``run['training']['dtype']``.
            load: also load the dataset onto the device.
        """
        dev = resolve_device(device if device is not None else run.get("device"))
        dt = DTYPES[dtype or run["training"]["dtype"]]
        meta = dataset_meta(data_path)
        module, layout, apply = build(run, meta, dt)
        module.to(dev)
        opt, hps = member_hparams(run)
        ctx = cls(run, dev, dt, meta, module, layout, apply, opt, hps, str(data_path))
        ctx._with_buffers()
        if load:
            ctx.load_data()
        return ctx

    def _with_buffers(self) -> None:
        """Set ``buffer_layout``, ``apply_b`` and ``eval_apply`` (module docstring)."""
        from pathdep.core.resnet import buffer_layout, make_apply_with_buffers

        blayout = buffer_layout(self.module)
        if blayout.n_params == 0:
            self.eval_apply = self.apply
            return
        P = self.layout.n_params
        apply_b = make_apply_with_buffers(self.module, self.layout, blayout)

        def eval_apply(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return apply_b(z[..., :P], z[..., P:], x, False)[0]

        b0 = torch.zeros(blayout.n_params, dtype=self.dtype, device=self.device)

        def train_apply(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:   # b is not read; batched like w
            return apply_b(w, b0 + 0 * w[..., :1].detach(), x, True)[0]

        train_apply.module, train_apply.layout = self.module, self.layout
        self.buffer_layout, self.apply_b, self.eval_apply, self.apply = blayout, apply_b, eval_apply, train_apply

    @property
    def has_buffers(self) -> bool:
        """Whether the model carries state besides its parameters (BatchNorm statistics)."""
        return self.buffer_layout is not None

    def z(self, W, B=None) -> torch.Tensor:
        """The evaluation vectors ``Z = cat([W, B], -1)`` ``(..., P + Q)`` of :attr:`eval_apply`
        on the context's device and dtype (``W`` alone without buffers)."""
        W = torch.as_tensor(W).to(self.device, self.dtype)
        if not self.has_buffers:
            return W
        return torch.cat([W, torch.as_tensor(B).to(self.device, self.dtype)], -1)

    def initial_buffers(self, K: int) -> torch.Tensor:
        """``(K, Q)``: the module's initial buffers (BN means 0, variances 1) for each member."""
        from pathdep.core.resnet import buffers_of

        Q = self.buffer_layout.n_params if self.has_buffers else 0
        b = buffers_of(self.module, self.buffer_layout) if Q else torch.zeros(0)
        return b.to(self.device, self.dtype).reshape(1, Q).repeat(K, 1)

    def bn_reset(self, xs) -> Callable | None:
        """``prepare(W (L, P)) -> Z (L, P + Q)``: the networks ``W`` with their BatchNorm statistics
        recomputed on the batches ``xs`` (:func:`pathdep.core.resnet.make_bn_reset`, train mode,
        the average of the batches' statistics) appended, for :attr:`eval_apply` (interpolated
        networks: Git Re-Basin's ``reset_bn_stats``, REPAIR); None without buffers. One network
        at a time on a CPU (faster than vmap there, the same numbers); the last result is reused
        when called again with equal ``W`` (the train and test splits of one curve)."""
        if not self.has_buffers:
            return None
        from pathdep.core.fast import member_loop_preferred
        from pathdep.core.resnet import make_bn_reset

        reset = make_bn_reset(self.module, self.layout, self.buffer_layout)
        vreset = torch.vmap(reset, in_dims=(0, None, None))
        loop, last = member_loop_preferred(self.module), []

        def prepare(W: torch.Tensor) -> torch.Tensor:
            if last and last[0].shape == W.shape and torch.equal(last[0], W):
                return last[1]
            with torch.no_grad():
                B = torch.stack([reset(w, None, xs) for w in W]) if loop else vreset(W, None, xs)
            last[:] = [W.clone(), torch.cat([W, B], -1)]
            return last[1]

        return prepare

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def loss(self) -> str:
        """The training loss of the task (cross-entropy or MSE)."""
        return task_loss(self.task)

    def load_data(self):
        """Load the prepared dataset onto the context's device (once)."""
        if self.data is None:
            from pathdep.data import load_dataset

            self.data = load_dataset(self.data_path, device=self.device)
        return self.data

    def step(self, optimizer: Optimizer | None = None) -> Callable:
        """The pure update map ``step(w, state, x, y, hp) -> (w, state, loss)``."""
        return make_step(self.apply, self.loss, optimizer or self.opt)

    def hparams(self, member: int | None = None) -> dict:
        """Member hyperparameters as tensors: one member's ``{name: scalar}`` or all ``{name: (K,)}``."""
        if member is not None:
            return {h: torch.tensor(v, dtype=self.dtype, device=self.device) for h, v in self.hps[member].items()}
        return {h: torch.tensor([hp[h] for hp in self.hps], dtype=self.dtype, device=self.device)
                for h in self.hps[0]}

    def schedule(self, seeds: list[int], swaps: list | None = None) -> Schedule:
        """The batch schedule of the given members' shuffle seeds."""
        tr = self.run["training"]
        return Schedule(self.meta["n_train"], int(tr["batch_size"]), int(tr["epochs"]), [int(s) for s in seeds],
                        swaps, tr.get("max_steps"))

    def train_tensors(self):
        """``(x, y)`` of the whole training split on the device (y cast to dtype for regression)."""
        data = self.load_data()
        x = data.x_train.to(self.device, self.dtype)
        y = data.y_train.to(self.device) if self.task == "classification" else data.y_train.to(self.device, self.dtype)
        return x, y
