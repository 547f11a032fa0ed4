"""Seeded initialisation of flat weight vectors, and perturbations of initial weights.

What it computes:

* :func:`init_params`: a reference initialisation ``w0`` of shape ``(P,)`` for a module,
  under one of :data:`SCHEMES`:

  - ``"default"``: PyTorch's own ``reset_parameters`` of every submodule, i.e. what the
    module holds right after construction under ``torch.manual_seed(seed)``. For
    ``nn.Linear``/``nn.Conv2d`` this is **Kaiming-uniform with a = sqrt(5)**, which works out
    to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases (variance
    ``1/(3 fan_in)``); it is *not* Kaiming-normal (DESIGN.md trap).
  - ``"kaiming_normal"`` / ``"kaiming_uniform"``: He et al. 2015, variance
    ``sigma^2 = 2 / fan_in`` (ReLU gain, whatever the activation).
  - ``"hyperspherical"``: the seed's "thickness-0 Kaiming" (dominoes-perturbing-weights-
    hypersphere-walks, "Taking the thickness to 0"): each tensor of size ``D`` is drawn
    uniformly on the sphere of radius ``sqrt(D) sigma`` (Muller method: normalise a
    standard normal vector).

* :func:`perturb`: a perturbed copy ``w`` of ``w0``, either i.i.d. Gaussian noise (the
  seed's naive perturbation ``delta_i ~ N(0, eps^2)``, or relative to each tensor's norm)
  or the seed's sphere-restricted perturbation (same norm as ``w0``, chord ``|w - w0|``
  exactly ``eps``), tensor by tensor or on the whole vector.

Randomness: everything except ``"default"`` uses ``numpy.random.Generator(PCG64(seed))``
in float64, cast to the parameters' dtype at the end, so results do not depend on torch's
global RNG, on the device or on the torch version. ``"default"`` uses torch's CPU generator
inside ``torch.random.fork_rng`` (the caller's global RNG state is left untouched).

How it was checked: ``tests/test_init.py`` reproduces ``nn.Linear`` construction under
``torch.manual_seed`` exactly; checks the hyperspherical norms (1e-6), the Kaiming-normal
standard deviation (5%), that sphere perturbations have ``|w_p| = |w0_p|`` and ``|w_p -
w0_p| = c`` (1e-6, float32) including ``w0 = -e_D`` (the seed's Householder trap), that the
component of ``w - w0`` along ``w0`` is ``-c^2/(2r)``, that the direction is uniform on the
intersection sphere, and the scale of relative Gaussian perturbations.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from torch import Tensor, nn

from pathdep.core.models import Layout

SCHEMES = ("default", "kaiming_normal", "kaiming_uniform", "hyperspherical")
PERTURBATIONS = ("gaussian", "sphere", "norm")
GRANULARITIES = ("tensor", "global")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _check_layout(module: nn.Module, layout: Layout) -> None:
    own = Layout.from_module(module)
    if own.names != layout.names or own.shapes != layout.shapes:
        raise ValueError("layout: does not match the module's parameters "
                         f"(module has {len(own.names)} tensors / {own.n_params} parameters, "
                         f"layout {len(layout.names)} / {layout.n_params})")


def fan_in(layout: Layout, name: str) -> int:
    """Fan-in of the layer owning parameter ``name``.

    A weight of shape ``(out, in, *kernel)`` has ``fan_in = in * prod(kernel)`` (conv:
    ``in_ch * k * k``), as ``torch.nn.init._calculate_fan_in_and_fan_out``. A 1-d tensor
    (a bias) takes the fan-in of the ``weight`` of the same layer.

    Raises:
        ValueError: for a 1-d tensor whose layer has no ``>= 2``-d weight.
    """
    i = layout.names.index(name)
    shape = layout.shapes[i]
    if len(shape) >= 2:
        return int(shape[1] * math.prod(shape[2:]))
    prefix = name.rsplit(".", 1)[0] if "." in name else ""
    for n, s in zip(layout.names, layout.shapes):
        if len(s) >= 2 and (n.rsplit(".", 1)[0] if "." in n else "") == prefix:
            return int(s[1] * math.prod(s[2:]))
    raise ValueError(f"init.scheme: cannot tell the fan-in of 1-d parameter {name!r} "
                     "(its layer has no weight matrix); use scheme 'default'")


def init_params(module: nn.Module, layout: Layout, scheme: str, seed: int) -> Tensor:
    """Seeded initial parameters of ``module`` as one flat vector.

    Args:
        module: the network; it is **not** modified.
        layout: ``Layout.from_module(module)``.
        scheme: one of :data:`SCHEMES` (ignored for a module with ``parameterization ==
            "ntk"``: there every entry is ``N(0, 1)``, drawn in float64 from
            ``numpy.random.Generator(PCG64(seed))``; the forward pass carries the scale):

            * ``"default"``: PyTorch's ``reset_parameters`` of each submodule, in
              ``module.modules()`` order, after ``torch.manual_seed(seed)`` inside
              ``torch.random.fork_rng(devices=[])``, on a float32 CPU copy. This equals
              the parameters of the same architecture constructed right after
              ``torch.manual_seed(seed)`` (default dtype float32). For ``nn.Linear`` /
              ``nn.Conv2d``: Kaiming-uniform with ``a = sqrt(5)``, i.e. weights and biases
              ``~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` -- not Kaiming-normal.
            * ``"kaiming_normal"``: every entry ``~ N(0, sigma^2)``, ``sigma^2 = 2/fan_in``.
            * ``"kaiming_uniform"``: every entry ``~ U(-sqrt(3) sigma, sqrt(3) sigma)``
              (same variance ``2/fan_in``).
            * ``"hyperspherical"``: each tensor of size ``D`` uniform on the sphere of
              radius ``sqrt(D) sigma``: a standard normal vector normalised to that
              radius (Muller method), so ``|w_p| = sqrt(D) sigma`` exactly.

            For the last three, **biases are drawn with the same sigma as their layer's
            weight** (``fan_in`` of the layer; conv: ``in_ch * k * k``): the seed notes
            that its reasoning "applies equally well to the bias". They are drawn in
            float64 from ``numpy.random.Generator(PCG64(seed))``, tensor by tensor in
            layout order, then cast.
        seed: non-negative integer.

    Returns:
        ``(P,)`` tensor with the dtype and device of the module's parameters.

    Raises:
        ValueError: unknown scheme (``init.scheme``), bad seed, layout mismatch, or a
            module with parameters but no ``reset_parameters`` (``"default"``).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init.scheme: expected one of {list(SCHEMES)}, got {scheme!r}")
    seed = _check_seed(seed)
    _check_layout(module, layout)
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.get_default_dtype()
    device = params[0].device if params else torch.device("cpu")

    if getattr(module, "parameterization", "standard") == "ntk":
        # NTK parameterisation: the scale sigma_w/sqrt(fan_in) is in the forward pass, so
        # every weight and bias is N(0, 1) whatever the scheme (float64 PCG64, then cast).
        out = _rng(seed).standard_normal(layout.n_params)
        return torch.from_numpy(out).to(device=device, dtype=dtype)

    if scheme == "default":
        return _torch_default(module, layout, seed).to(device=device, dtype=dtype)
    return torch.from_numpy(_fan_in_scheme(layout, scheme, seed)).to(device=device, dtype=dtype)


def _torch_default(module: nn.Module, layout: Layout, seed: int) -> Tensor:
    """Scheme ``"default"``: each submodule's ``reset_parameters`` on a float32 CPU copy after
    ``torch.manual_seed(seed)`` (inside ``fork_rng``), flattened ``(P,)``."""
    clone = copy.deepcopy(module).to(device="cpu", dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, sub in clone.named_modules():
                if not any(True for _ in sub.parameters(recurse=False)):
                    continue
                if not hasattr(sub, "reset_parameters"):
                    raise ValueError(f"init.scheme: module {name!r} ({type(sub).__name__}) has "
                                     "parameters but no reset_parameters; use another scheme")
                sub.reset_parameters()
    return layout.flatten(dict(clone.named_parameters())).detach()


def _fan_in_scheme(layout: Layout, scheme: str, seed: int) -> np.ndarray:
    """Schemes with ``sigma^2 = 2/fan_in`` (``kaiming_normal``, ``kaiming_uniform``,
    ``hyperspherical``): float64 ``(P,)``, drawn tensor by tensor in layout order."""
    rng = _rng(seed)
    out = np.empty(layout.n_params, dtype=np.float64)
    for name, o, d in zip(layout.names, layout.offsets, layout.sizes):
        sigma = math.sqrt(2.0 / fan_in(layout, name))
        if scheme == "kaiming_normal":
            x = sigma * rng.standard_normal(d)
        elif scheme == "kaiming_uniform":
            b = math.sqrt(3.0) * sigma
            x = rng.uniform(-b, b, d)
        else:  # hyperspherical
            z = rng.standard_normal(d)
            x = z * (math.sqrt(d) * sigma / np.linalg.norm(z))
        out[o:o + d] = x
    return out


def _groups(layout: Layout, n: int, granularity: str) -> list[tuple[str, slice]]:
    if granularity == "global":
        return [("<all parameters>", slice(0, n))]
    return [(name, slice(o, o + d)) for name, o, d in zip(layout.names, layout.offsets, layout.sizes)]


def _sphere_step(x0: np.ndarray, c: float, z: np.ndarray, name: str) -> np.ndarray:
    """Point at chord ``c`` from ``x0`` on the sphere ``|x| = |x0|`` (float64)."""
    r = float(np.linalg.norm(x0))
    if r == 0.0:
        raise ValueError(f"perturbation.kind: sphere perturbation of tensor {name!r} is undefined "
                         "because |w0| = 0 (no sphere to stay on); use kind 'gaussian' or "
                         "granularity 'global'")
    if c > 2.0 * r * (1.0 + 1e-12):  # a chord equal to the diameter up to rounding is allowed
        raise ValueError(f"perturbation.epsilon: sphere perturbation chord {c} exceeds the diameter "
                         f"2|w0| = {2.0 * r} of tensor '{name}'")
    c = min(c, 2.0 * r)
    n = x0 / r
    if x0.size == 1:
        if c == 2.0 * r:
            return -x0
        raise ValueError(f"perturbation.granularity: tensor {name!r} has one element; on its "
                         "0-sphere a sphere perturbation can only flip the sign (chord 2|w0|); "
                         "use granularity 'global'")
    # Direction uniform on the unit sphere orthogonal to w0: project w0 out of an
    # isotropic Gaussian (twice, for orthogonality to rounding) and normalise.
    u = z - (z @ n) * n
    u = u - (u @ n) * n
    u = u / np.linalg.norm(u)
    # cos(theta) = 1 - c^2/(2 r^2): the intersection sphere sits at r cos(theta) along w0,
    # i.e. -c^2/(2r) from w0, and has radius r sin(theta) = c sqrt(1 - c^2/(4 r^2)).
    along = -c * c / (2.0 * r)
    across = c * math.sqrt(max(0.0, 1.0 - c * c / (4.0 * r * r)))
    return x0 + along * n + across * u


def perturb(w0: Tensor, layout: Layout, kind: str, epsilon: float, seed: int, *,
            relative: bool = False, granularity: str = "tensor") -> tuple[Tensor, dict]:
    """Perturb initial weights ``w0`` (seed: "How to Perturb Weights").

    Args:
        w0: ``(P,)`` reference weights.
        layout: the model's layout (``layout.n_params == P``).
        kind: ``"gaussian"``, ``"sphere"`` or ``"norm"``.

            * ``"norm"``: the seed's "a perturbation with norm eps" taken literally: an
              isotropic direction ``z / |z|`` scaled so that ``|delta| = eps`` exactly
              (absolute) or ``|delta| = eps |w0|`` (relative), over the whole vector
              (granularity ``global``) or within each group (``tensor``: then each
              group moves by ``eps`` or ``eps |w0_p|``). This is the default's kind: one
              number with one meaning, the global L2 size of the perturbation.

            * ``"gaussian"``, absolute: ``delta_i ~ N(0, eps^2)`` i.i.d. for every entry
              (the seed's formula; ``epsilon`` is a per-coordinate standard deviation, so
              ``E|delta|^2 = eps^2 P``; granularity does not matter). Relative: within
              each group ``p`` of size ``D_p``, ``delta ~ N(0, (eps |w0_p|)^2 / D_p)`` per
              entry, so ``E|delta_p|^2 = eps^2 |w0_p|^2`` (a zero group stays zero).
            * ``"sphere"``: the seed's sphere-restricted perturbation. For each group with
              ``r = |w0_p|`` and chord ``c = eps`` (absolute) or ``c = eps r`` (relative),
              the result satisfies ``|w_p| = r`` and ``|w_p - w0_p| = c`` exactly (float64,
              then cast), uniformly distributed on that intersection sphere. With
              ``cos(theta) = 1 - c^2/(2 r^2)`` the intersection sphere sits at ``r
              cos(theta)`` along ``w0_p`` and has radius ``r sin(theta)`` (the seed writes
              ``r cos(theta)``, DESIGN.md). Instead of the seed's Householder reflection
              of ``e_D`` onto ``w0`` (which cancels catastrophically when ``w0`` is near
              ``-e_D``), the direction is an isotropic Gaussian with ``w0`` projected out,
              normalised: exact, always well conditioned, and uniform on the sphere
              orthogonal to ``w0``. Absolute chords apply to *each* group, so with
              granularity ``"tensor"`` the global distance is ``eps sqrt(n_tensors)``.
        epsilon: perturbation size ``>= 0``; ``0`` returns a copy of ``w0``.
        seed: non-negative integer; noise comes from ``numpy.random.Generator(PCG64(seed))``
            in float64, drawn group by group in layout order.
        relative: scale by each group's norm ``|w0_p|`` (see above).
        granularity: ``"tensor"`` (each parameter tensor is a group) or ``"global"`` (the
            whole vector is one group).

    Returns:
        ``(w, info)``: ``w`` of shape ``(P,)`` with ``w0``'s dtype and device; ``info`` with
        ``"distance"`` (``|w - w0|``), ``"distance_per_tensor"`` (list, one float per
        layout tensor) and ``"relative_distance"`` (``|w - w0| / |w0|``), all measured in
        float64 on the returned (cast) tensor.

    Raises:
        ValueError: naming ``perturbation.epsilon`` (negative / not finite, or a sphere
            chord larger than a group's diameter ``2|w0_p|``), ``perturbation.kind``
            (unknown kind, or a sphere perturbation of an all-zero group),
            ``perturbation.granularity`` (unknown, or a single-element tensor on a sphere).
    """
    _check_perturb_args(kind, epsilon, granularity)
    seed = _check_seed(seed)
    if w0.dim() != 1 or w0.shape[0] != layout.n_params:
        raise ValueError(f"perturbation: w0 must have shape ({layout.n_params},) to match the layout, "
                         f"got {tuple(w0.shape)}")
    epsilon = float(epsilon)
    if epsilon == 0.0:
        w = w0.clone()
    else:
        x0 = w0.detach().to(device="cpu", dtype=torch.float64).numpy()
        x = _perturbed(x0, layout, kind, epsilon, _rng(seed), relative, granularity)
        w = torch.from_numpy(x).to(device=w0.device, dtype=w0.dtype)
    return w, _distances(w, w0, layout)


def _check_perturb_args(kind: str, epsilon: float, granularity: str) -> None:
    """Known kind and granularity, a finite ``epsilon >= 0``."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturbation.kind: expected one of {list(PERTURBATIONS)}, got {kind!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"perturbation.granularity: expected one of {list(GRANULARITIES)}, "
                         f"got {granularity!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon):
        raise ValueError(f"perturbation.epsilon: expected a finite number >= 0, got {epsilon!r}")
    if epsilon < 0:
        raise ValueError(f"perturbation.epsilon: expected >= 0, got {epsilon!r}")


def _perturbed(x0: np.ndarray, layout: Layout, kind: str, epsilon: float, rng: np.random.Generator,
               relative: bool, granularity: str) -> np.ndarray:
    """float64 ``x0`` perturbed group by group in layout order (one normal draw per group)."""
    x = x0.copy()
    for name, sl in _groups(layout, x0.size, granularity):
        g0 = x0[sl]
        z = rng.standard_normal(g0.size)
        r = float(np.linalg.norm(g0))
        if kind == "gaussian":
            scale = epsilon * r / math.sqrt(g0.size) if relative else epsilon
            x[sl] = g0 + scale * z
        elif kind == "norm":
            x[sl] = g0 + (epsilon * r if relative else epsilon) * z / np.linalg.norm(z)
        else:
            c = epsilon * r if relative else epsilon
            x[sl] = _sphere_step(g0, c, z, name)
    return x


def _distances(w: Tensor, w0: Tensor, layout: Layout) -> dict:
    """``distance``, ``distance_per_tensor`` and ``relative_distance`` of ``w`` from ``w0`` (float64)."""
    diff = (w.detach().double() - w0.detach().double()).cpu()
    norm0 = float(w0.detach().double().norm())
    dist = float(diff.norm())
    per = [float(diff[sl].norm()) for _, sl in _groups(layout, diff.numel(), "tensor")]
    info = {"distance": dist, "distance_per_tensor": per,
            "relative_distance": dist / norm0 if norm0 > 0 else float("inf") if dist > 0 else 0.0}
    return info
