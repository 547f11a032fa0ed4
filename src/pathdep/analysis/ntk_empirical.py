"""Empirical NTK: the choice of method, the generic paths, and their cost model.

What it computes: :func:`compute` is the body of :func:`pathdep.analysis.ntk.empirical_ntk`.
It plans (:func:`plan`) and runs one of

* ``"structured"`` - :func:`pathdep.analysis.ntk_structured.structured_ntk` (Novak,
  Sohl-Dickstein & Schoenholz 2022), for every model it covers (an ``apply`` made by
  :func:`pathdep.core.models.make_apply` carries its module and layout);
* ``"jacobian"`` - per-sample Jacobians ``(B, O, P)`` of sample blocks
  (``vmap(jacrev)``), each block computed once per row block and contracted into the
  kernel block at once (neural-tangents' implementation 1, in blocks). When all Jacobians
  fit in the budget each is computed exactly once; otherwise the ``x1`` row block is held
  and the ``x2`` column blocks are streamed (for ``x2 = None`` only the upper blocks, the
  lower ones by transposition);
* ``"ntvp"`` - NTK-vector products (implementation 2): the Jacobian rows of one ``x2`` block
  are the cotangents ``u``, and ``J(x1) u`` comes from one vmapped forward-mode ``jvp`` over
  all of ``x1`` (the primal pass is shared by the vmapped tangents); no ``x1`` Jacobian is held.

The generic choice takes the method with the fewer estimated FLOPs (forward FLOPs per
sample measured by ``torch.utils.flop_counter`` on one input; a backward pass counted as
two forwards; each stored Jacobian entry as :data:`STORE_COST` FLOPs) whose estimated working memory fits ``max_mb`` (``method="generic"``: this
choice even where ``structured`` applies); the plan (method, FLOPs,
block sizes, bytes) is returned with the kernel when asked and written by the stages.

How it was checked (tests/analysis/test_ntk_empirical.py, float64): every method equals the
per-sample-gradient loop to 1e-10 (MLPs with and without bias, both parameterisations,
LeNet-5; full and trace; blocked and unblocked); the plan picks ``structured`` for the
registry's models and a generic method otherwise; the peak RSS of the generic path stays
within the budget plus a stated overhead (a fresh subprocess).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from torch.func import functional_call, jacrev, jvp

from pathdep.analysis import ntk_structured as S

METHODS = ("auto", "structured", "generic", "jacobian", "ntvp")
#: FLOP-equivalents per stored Jacobian entry: vmapped per-sample gradients are bound by
#: memory traffic, not arithmetic (784-512-512-10 MLP, one thread: ~40 ms per input's
#: (10, 669706) Jacobian, ~50x its arithmetic).
STORE_COST = 50.0
#: Inputs per vmapped ``jacrev`` call when a block's Jacobian is filled: bounds the scratch
#: memory, so a whole block's Jacobian rows can be held within the budget.
SUB = 16


def model_of(apply: Callable):
    """``(module, layout)`` attached to ``apply`` by ``make_apply``, or ``(None, None)``."""
    return getattr(apply, "module", None), getattr(apply, "layout", None)


def forward_cost(apply: Callable, w: Tensor, x: Tensor) -> tuple[float, float]:
    """FLOPs of one input's forward pass and the numbers it saves for the backward pass
    (activations per input, from a batch of two)."""
    from torch.utils.flop_counter import FlopCounterMode

    saved = [0]

    def pack(t):
        if t.dim() > 0 and t.shape[0] == 2:
            saved[0] += t.numel() // 2
        return t

    wv = w.detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fc, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        apply(wv, x[:2] if len(x) >= 2 else torch.cat([x, x]))
    return max(fc.get_total_flops() / 2.0, 2.0 * w.numel()), float(max(saved[0], 1))


def _generic_plans(n1: int, n2: int, sym: bool, O: int, P: int, fwd: float, act: float, trace: bool,
                   itemsize: int, budget: float) -> dict:
    """Block sizes, FLOPs and bytes of the ``jacobian`` and ``ntvp`` methods."""
    row = O * P * itemsize                        # one input's Jacobian
    jac_f = (1.0 + 2.0 * O) * fwd + STORE_COST * O * P   # one input's Jacobian (a forward, O backwards, stores)
    contract = 2.0 * n1 * n2 * P * (O if trace else O * O)
    nall = n1 if sym else n1 + n2
    # A block's Jacobian is filled SUB inputs at a time (vmap's per-tensor parts and their
    # concatenation: 2 SUB rows of scratch), so holding it costs its own rows plus that scratch.
    if nall * row + 2 * min(SUB, nall) * row <= budget:     # all Jacobians at once, each computed once
        jb = {"block": nall, "flops": nall * jac_f + contract, "bytes": nall * row + 2 * min(SUB, nall) * row}
    else:
        b = int(budget // (4 * row))              # a row and a column block held, each filled in one call
        if b > SUB:                               # ... or SUB inputs at a time (less scratch, larger blocks)
            b = int((budget - 2 * SUB * row) // (2 * row))
        b = max(1, b)
        nb = math.ceil(n1 / b)
        cols = nb * n2 if not sym else sum(n1 - i * b for i in range(nb))
        jb = {"block": b, "flops": n1 * jac_f + cols * jac_f + contract,
              "bytes": 2 * b * row + 2 * min(SUB, b) * row}
    t_per = n1 * act * itemsize * 2 + row         # one tangent: its activations on x1 and its u
    tb = max(1, min(n2 * O, int(budget // (3 * t_per))))
    nv = {"block": tb, "bytes": 3 * tb * t_per,
          "flops": n2 * jac_f + 2.0 * fwd * n1 * n2 * O + math.ceil(n2 * O / tb) * n1 * fwd}
    return {"jacobian": jb, "ntvp": nv}


def plan(apply: Callable, w: Tensor, x1: Tensor, x2: Tensor | None = None, trace: bool = False,
         max_mb: float = 1024.0, method: str = "auto") -> dict:
    """The method and block sizes :func:`compute` will use (a JSON-able dict).

    Raises:
        ValueError: ``method`` is not one of :data:`METHODS`, or ``structured`` is asked for
            a model it does not cover.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    module, layout = model_of(apply)
    n1, n2 = len(x1), len(x1) if x2 is None else len(x2)
    with torch.no_grad():
        O = int(apply(w.detach(), x1[:1]).shape[-1])
    P, s, budget = int(w.numel()), w.element_size(), float(max_mb) * 2 ** 20
    out = {"n1": n1, "n2": n2, "outputs": O, "n_params": P, "trace": bool(trace), "max_mb": float(max_mb)}
    if method in ("auto", "structured") and module is not None and S.supports(module):
        c = S.structured_cost(module, layout, n1, n2, O, trace, s)
        block = max(1, min(n2, int(budget // c["bytes_per_column"])))
        return {**out, "method": "structured", "flops": c["flops"], "block": block,
                "bytes": block * c["bytes_per_column"]}
    if method == "structured":
        raise ValueError(f"method: structured covers MLP and LeNet5 models made by make_apply, "
                         f"got {type(module).__name__ if module is not None else 'an apply without a model'}")
    fwd, act = forward_cost(apply, w, x1)
    plans = _generic_plans(n1, n2, x2 is None, O, P, fwd, act, trace, s, budget)
    if method in ("auto", "generic"):
        fits = [m for m in plans if plans[m]["bytes"] <= budget] or list(plans)
        method = min(fits, key=lambda m: plans[m]["flops"])
    return {**out, "method": method, **plans[method], "forward_flops": fwd}


def jacobian_rows(apply: Callable, w: Tensor, x: Tensor, sub: int | None = None) -> Tensor:
    """Per-sample Jacobian ``(B, O, P)`` of one block, ``sub`` inputs per vmapped ``jacrev``
    (default :data:`SUB`), written into one preallocated array.

    With a module and layout attached to ``apply`` the Jacobian is taken with respect to
    the named tensors and concatenated once: differentiating through the flat vector's
    slices would give every tensor's rows as a zero-padded ``(B, O, P)`` array.
    """
    sub = max(1, int(sub or SUB))
    if len(x) <= sub:
        return _jacobian_chunk(apply, w, x)
    first = _jacobian_chunk(apply, w, x[:sub])
    out = first.new_empty((len(x), *first.shape[1:]))
    out[:sub] = first
    del first
    for i in range(sub, len(x), sub):
        out[i:i + sub] = _jacobian_chunk(apply, w, x[i:i + sub])
    return out


def _jacobian_chunk(apply: Callable, w: Tensor, x: Tensor) -> Tensor:
    """Per-sample Jacobian ``(B, O, P)`` by one vmapped ``jacrev``."""
    module, layout = model_of(apply)
    if module is None:
        def f(wv, xi):
            return apply(wv, xi.unsqueeze(0))[0]

        return torch.vmap(jacrev(f), in_dims=(None, 0))(w.detach(), x)
    names = layout.names

    def g(ps, xi):
        return functional_call(module, dict(zip(names, ps)), (xi.unsqueeze(0),))[0]

    parts = torch.vmap(jacrev(g), in_dims=(None, 0))(tuple(layout.unflatten(w.detach()).values()), x)
    return torch.cat([p.flatten(start_dim=2) for p in parts], dim=2)


def _contract(j1: Tensor, j2: Tensor, trace: bool) -> Tensor:
    n1, o, p = j1.shape
    n2 = j2.shape[0]
    if trace:
        return j1.reshape(n1, o * p) @ j2.reshape(n2, o * p).T
    return (j1.reshape(n1 * o, p) @ j2.reshape(n2 * o, p).T).reshape(n1, o, n2, o).permute(0, 2, 1, 3)


def jacobian_ntk(apply: Callable, w: Tensor, x1: Tensor, x2: Tensor | None, trace: bool, block: int) -> Tensor:
    """The ``jacobian`` method: row blocks of ``x1`` held, column blocks streamed."""
    sym = x2 is None
    xs = x1 if sym else x2
    b = max(1, int(block))
    if not sym and b >= len(x1) + len(xs):      # everything fits: each Jacobian once
        return _contract(jacobian_rows(apply, w, x1), jacobian_rows(apply, w, xs), trace)
    out = None
    for i in range(0, len(x1), b):
        ji = jacobian_rows(apply, w, x1[i:i + b])
        for j in range(i if sym else 0, len(xs), b):
            jj = ji if (sym and j == i) else jacobian_rows(apply, w, xs[j:j + b])
            part = _contract(ji, jj, trace)
            if out is None:
                out = part.new_empty((len(x1), len(xs), *part.shape[2:]))
            out[i:i + b, j:j + b] = part
            if sym and j != i:
                out[j:j + b, i:i + b] = part.transpose(0, 1) if trace else part.permute(1, 0, 3, 2)
            del jj, part
        del ji
    return out


def ntvp_ntk(apply: Callable, w: Tensor, x1: Tensor, x2: Tensor | None, trace: bool, block: int) -> Tensor:
    """The ``ntvp`` method: ``J(x1) u`` by vmapped ``jvp`` for the Jacobian rows ``u`` of ``x2``."""
    xs = x1 if x2 is None else x2
    w = w.detach()
    per = max(1, int(block) // max(1, int(apply(w, x1[:1]).shape[-1])))     # x2 inputs per block

    def push(u):
        return jvp(lambda v: apply(v, x1), (w,), (u,))[1]                   # (N1, O)

    out = None
    for s in range(0, len(xs), per):
        u = jacobian_rows(apply, w, xs[s:s + per])                           # (b, O, P)
        b, O, P = u.shape
        col = torch.vmap(push)(u.reshape(b * O, P)).reshape(b, O, len(x1), O)  # [m, p, n, o]
        part = col.permute(2, 0, 3, 1)                                        # (N1, b, O_n, O_m)
        if trace:
            part = part.diagonal(dim1=2, dim2=3).sum(-1)
        if out is None:
            out = part.new_empty((len(x1), len(xs), *part.shape[2:]))
        out[:, s:s + b] = part
        del u, col, part
    return out


def compute(apply: Callable, w: Tensor, x1: Tensor, x2: Tensor | None = None, trace: bool = False,
            max_mb: float = 1024.0, method: str = "auto") -> tuple[Tensor, dict]:
    """Kernel ``(N1, N2[, O, O])`` and its :func:`plan` (see :func:`pathdep.analysis.ntk.empirical_ntk`)."""
    p = plan(apply, w, x1, x2, trace, max_mb, method)
    if p["method"] == "structured":
        module, layout = model_of(apply)
        th = S.structured_ntk(module, layout, w, x1, x2, trace, p["block"])
    elif p["method"] == "jacobian":
        th = jacobian_ntk(apply, w, x1, x2, trace, p["block"])
    else:
        th = ntvp_ntk(apply, w, x1, x2, trace, p["block"])
    return th, p
