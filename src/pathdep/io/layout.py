"""The layout of a network's flat parameter vector (layer ``io``: it is part of every file's
schema, stored as the ``layout`` attribute of init and trajectory files).

How it was checked: ``tests/core/test_models.py`` (round trips flatten/unflatten, offsets
against ``named_parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layout:
    """Where each named parameter tensor lives inside the flat vector.

    Attributes:
        names: parameter names in ``module.named_parameters()`` order.
        shapes: their shapes.
        offsets: start index of each tensor in the flat vector; ``offsets[i+1] =
            offsets[i] + prod(shapes[i])``.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]

    @classmethod
    def from_module(cls, module: nn.Module) -> "Layout":
        """The layout of ``module.named_parameters()`` in order."""
        return cls.from_named(module.named_parameters())

    @classmethod
    def from_named(cls, named) -> "Layout":
        """The layout of ``(name, tensor)`` pairs in order (parameters, or buffers)."""
        names, shapes, offsets, off = [], [], [], 0
        for name, p in named:
            names.append(name)
            shapes.append(tuple(p.shape))
            offsets.append(off)
            off += p.numel()
        return cls(tuple(names), tuple(shapes), tuple(offsets))

    @property
    def sizes(self) -> tuple[int, ...]:
        out = []
        for s in self.shapes:
            n = 1
            for d in s:
                n *= d
            out.append(n)
        return tuple(out)

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def slice(self, name: str) -> slice:
        i = self.names.index(name)
        return slice(self.offsets[i], self.offsets[i] + self.sizes[i])

    def unflatten(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``w[..., P]`` as ``{name: tensor[..., *shape]}`` (differentiable, vmap-safe)."""
        lead = w.shape[:-1]
        return {n: w[..., o:o + s].reshape(*lead, *sh)
                for n, sh, o, s in zip(self.names, self.shapes, self.offsets, self.sizes)}

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Inverse of :meth:`unflatten` for tensors without leading axes."""
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    def layers(self) -> list[str]:
        """Module names (``fc0``, ``conv1``...) in order; a layer groups weight and bias."""
        seen: list[str] = []
        for n in self.names:
            mod = n.rsplit(".", 1)[0]
            if mod not in seen:
                seen.append(mod)
        return seen

    def layer_index(self) -> list[int]:
        """For each parameter tensor, the index of its layer in :meth:`layers`."""
        layers = self.layers()
        return [layers.index(n.rsplit(".", 1)[0]) for n in self.names]

    def to_attrs(self) -> dict:
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes],
                "offsets": list(self.offsets)}

    @classmethod
    def from_attrs(cls, d: dict) -> "Layout":
        return cls(tuple(d["names"]), tuple(tuple(int(v) for v in s) for s in d["shapes"]),
                   tuple(int(v) for v in d["offsets"]))
