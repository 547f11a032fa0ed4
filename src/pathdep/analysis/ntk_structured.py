"""Empirical NTK by structured derivatives: each layer's contribution from its inputs and
its output cotangents, no per-sample parameter gradient of the whole network is formed
(Novak, Sohl-Dickstein & Schoenholz 2022, "Fast Finite Width Neural Tangent Kernel", ICML).

What it computes: for the models of :mod:`pathdep.core.models` (:class:`~pathdep.core.models.MLP`
with or without biases, standard or NTK parameterisation; :class:`~pathdep.core.models.LeNet5`)
:func:`structured_ntk` returns ``Theta(x1, x2)`` ``(N1, N2, O, O)`` or its trace over outputs
``(N1, N2)``. One forward pass records every trainable layer's input ``X_l`` and a zero
probe added to its pre-activation ``z_l``; one batched backward pass (``is_grads_batched``,
the ``O`` unit cotangents at once) gives ``D_l[n, o] = d f_o(x_n) / d z_l``. Then

* dense ``z = a x W^T + c b`` (standard: ``a = c = 1``; NTK: ``a = sigma_w / sqrt(fan_in)``,
  ``c = sigma_b``): ``Theta_l[n, m, o, p] = (a^2 X_l(x_n) . X_l(x_m) + c^2) (D_l(x_n)[o] . D_l(x_m)[p])``
  (no ``c^2`` without a bias): one ``(N1, fan) x (fan, N2)`` and one ``(N1 O, W) x (W, N2 O)``
  GEMM per layer (trace: ``(N1, O W) x (O W, N2)``);
* convolution: the layer's own weight Jacobian ``D_l U_l^T`` from the unfolded patches
  ``U_l = unfold(X_l)`` (``(N, O, C_out, C_in k^2)``, plus ``sum_pixels D_l`` for the bias),
  contracted like a dense Jacobian. For LeNet-5 this is cheaper than the patch-Gram order
  ``D U^T U' D'^T`` (which costs ``N1 N2 pixels^2`` per layer pair) because a convolution
  has few weights; it holds ``N x O x (weights of one conv layer)`` numbers.

``x2`` is processed in blocks of ``block`` inputs; memory is the output plus
``O(N x O x widths)`` cotangents and one block's ``N1 x block x O^2`` product.

How it was checked (tests/analysis/test_ntk_empirical.py, float64): equal to the
per-sample-gradient loop and to the generic Jacobian path to 1e-10 for MLPs with and
without bias in both parameterisations and for LeNet-5, full and trace, blocked and
unblocked over ``x2``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pathdep.core.models import MLP, LeNet5


def supports(module) -> bool:
    """Whether :func:`structured_ntk` covers ``module`` (exact classes: a subclass may add layers)."""
    return type(module) in (MLP, LeNet5)


def _dense(x: Tensor, weight: Tensor, bias, a: float, c: float, layers: list) -> Tensor:
    probe = torch.zeros(x.shape[0], weight.shape[0], dtype=x.dtype, device=x.device, requires_grad=True)
    z = (x @ weight.t()) * a + probe
    if bias is not None:
        z = z + c * bias
    layers.append({"kind": "dense", "x": x.detach(), "probe": probe, "a": a, "c": c if bias is not None else None})
    return z


def _conv(x: Tensor, conv, weight: Tensor, bias, layers: list) -> Tensor:
    z = F.conv2d(x, weight, bias, stride=conv.stride, padding=conv.padding)
    probe = torch.zeros_like(z, requires_grad=True)
    layers.append({"kind": "conv", "x": x.detach(), "probe": probe, "bias": bias is not None,
                   "k": conv.kernel_size, "stride": conv.stride, "padding": conv.padding})
    return z + probe


def tape(module, params: dict, x: Tensor) -> tuple[Tensor, list]:
    """Forward pass of an MLP or LeNet-5 at ``params`` (``layout.unflatten(w)``, detached)
    recording each trainable layer; returns ``(outputs (B, O), layers)``."""
    layers: list = []
    if isinstance(module, MLP):
        x = x.flatten(start_dim=1) if x.dim() > 2 else x
        ntk = module.parameterization == "ntk"
        for i in range(module.n_layers):
            a = module.sigma_w / math.sqrt(module.dims[i]) if ntk else 1.0
            c = module.sigma_b if ntk else 1.0
            x = _dense(x, params[f"fc{i}.weight"], params.get(f"fc{i}.bias"), a, c, layers)
            if i < module.n_layers - 1:
                x = module.act(x)
        return x, layers
    x = x.reshape(-1, *module.in_shape)
    for name in ("conv0", "conv1"):
        x = module.pool(module.act(_conv(x, getattr(module, name), params[f"{name}.weight"],
                                         params.get(f"{name}.bias"), layers)))
    x = x.flatten(start_dim=1)
    for i in range(module.n_fc):
        x = _dense(x, params[f"fc{i}.weight"], params.get(f"fc{i}.bias"), 1.0, 1.0, layers)
        if i < module.n_fc - 1:
            x = module.act(x)
    return x, layers


def features(module, params: dict, x: Tensor) -> list[dict]:
    """Per layer the factors of its kernel contribution on ``x``: dense ``{"x": (B, fan),
    "d": (B, O, W)}``; conv ``{"j": (B, O, weights of the layer [+ C_out])}``."""
    with torch.enable_grad():
        out, layers = tape(module, params, x)
        B, O = out.shape
        eye = torch.eye(O, dtype=out.dtype, device=out.device).unsqueeze(1).expand(O, B, O)
        grads = torch.autograd.grad(out, [L["probe"] for L in layers], grad_outputs=eye, is_grads_batched=True)
    feats = []
    for L, g in zip(layers, grads):
        d = g.detach().movedim(0, 1)                      # (B, O, ...)
        if L["kind"] == "dense":
            feats.append({"x": L["x"] * L["a"], "d": d, "c2": None if L["c"] is None else L["c"] ** 2})
            continue
        u = F.unfold(L["x"], L["k"], padding=L["padding"], stride=L["stride"])   # (B, C_in k^2, pixels)
        d = d.flatten(start_dim=3)                        # (B, O, C_out, pixels)
        j = torch.einsum("bocp,bqp->bocq", d, u).flatten(start_dim=2)
        if L["bias"]:
            j = torch.cat([j, d.sum(-1)], dim=2)
        feats.append({"j": j})
    return feats


def _pair(f1: dict, f2: dict, trace: bool) -> Tensor:
    """One layer's contribution ``(N1, N2[, O, O])`` from the factors of both input sets."""
    if "j" in f1:
        j1, j2 = f1["j"], f2["j"]
        n1, o, p = j1.shape
        n2 = j2.shape[0]
        if trace:
            return j1.reshape(n1, o * p) @ j2.reshape(n2, o * p).T
        return (j1.reshape(n1 * o, p) @ j2.reshape(n2 * o, p).T).reshape(n1, o, n2, o).permute(0, 2, 1, 3)
    g = f1["x"] @ f2["x"].T
    if f1["c2"] is not None:
        g = g + f1["c2"]
    d1, d2 = f1["d"], f2["d"]
    n1, o, w = d1.shape
    n2 = d2.shape[0]
    if trace:
        return g * (d1.reshape(n1, o * w) @ d2.reshape(n2, o * w).T)
    dd = (d1.reshape(n1 * o, w) @ d2.reshape(n2 * o, w).T).reshape(n1, o, n2, o).permute(0, 2, 1, 3)
    return dd * g[:, :, None, None]


def structured_ntk(module, layout, w: Tensor, x1: Tensor, x2: Tensor | None = None, trace: bool = False,
                   block: int | None = None) -> Tensor:
    """Empirical NTK of an MLP or LeNet-5 by structured derivatives.

    Args:
        module: the model (:func:`supports` must hold); its own parameters are not used.
        layout: its flat layout. w: ``(P,)`` parameters.
        x1: ``(N1, ...)`` inputs. x2: ``(N2, ...)`` or None (``x1``; its factors are reused).
        trace: ``(N1, N2)`` trace over outputs instead of ``(N1, N2, O, O)``.
        block: inputs of ``x2`` per block (None: all at once).

    Returns:
        the kernel in ``w``'s dtype.
    """
    params = {k: v.detach() for k, v in layout.unflatten(w.detach()).items()}
    f1 = features(module, params, x1)
    xs = x1 if x2 is None else x2
    step = max(1, int(block or len(xs)))
    out = None
    for s in range(0, len(xs), step):
        if x2 is None:   # the factors of x1, sliced
            f2 = [{k: v[s:s + step] if isinstance(v, Tensor) else v for k, v in f.items()} for f in f1]
        else:
            f2 = features(module, params, xs[s:s + step])
        part = _pair(f1[0], f2[0], trace)
        for a, b in zip(f1[1:], f2[1:]):
            part += _pair(a, b, trace)
        if out is None:
            out = part.new_empty((part.shape[0], len(xs), *part.shape[2:]))
        out[:, s:s + step] = part
        del part, f2
    return out


def structured_cost(module, layout, n1: int, n2: int, n_out: int, trace: bool, itemsize: int) -> dict:
    """Estimated FLOPs of the layer contractions and bytes per ``x2`` input held in one block
    (the ``N1 x O^2`` product and its cotangents)."""
    flops, width = 0.0, 0
    o2 = n_out if trace else n_out * n_out
    for name, shape in zip(layout.names, layout.shapes):
        if not name.endswith("weight"):
            continue
        fan = math.prod(shape[1:])
        width += shape[0]
        if len(shape) == 2:
            flops += 2.0 * n1 * n2 * (fan + o2 * shape[0]) + n1 * n2 * o2
        else:
            flops += 2.0 * n1 * n2 * o2 * (shape[0] * (fan + 1))
    per_col = itemsize * (3 * n1 * (n_out if not trace else 1) * n_out + 4 * n_out * max(width, 1))
    return {"flops": flops, "bytes_per_column": per_col}
