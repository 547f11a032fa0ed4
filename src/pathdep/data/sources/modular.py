"""The ``modular_arithmetic`` source: every equation ``a op b = c (mod p)``, as token sequences.

What it builds: for a prime ``p`` and ``op`` in ``add | sub | mul | div``, every pair
``(a, b)`` with ``0 <= a, b < p`` (``div``: ``b != 0``) and its answer ``c = a + b``,
``a - b``, ``a * b`` or ``a * b^(p-2)`` (division through the modular inverse, Fermat's
little theorem), all mod ``p``. A sample is the token sequence ``x = (a, b, =)`` with the
``=`` token id ``p``, and its label is ``c`` (the answer at the last position; the
transformer of :mod:`pathdep.core.transformer` classifies from that position). The
vocabulary, and so the class count (``out_dim``), is ``p + 1`` (ids ``0..p-1`` are the
numbers, ``p`` is ``=``; class ``p`` is never a target). ``train_fraction`` of the pairs
(``round(train_fraction * N)``, at least 1 and at most ``N - 1``) form the train split,
chosen by ``numpy.random.default_rng(seed).permutation(N)``; the rest is the test split;
both keep the order ``a``-major. The token ids are stored as integer codes (uint8 up to
p = 255), decoded to exact float token ids on load; ``normalize`` must stay false.

Power et al. 2022 and Nanda et al. 2023 use this task (p = 113, addition, 30 % train) to
study grokking.

How it was checked: ``tests/datasets/test_modular.py`` (every equation recomputed with
Python integers for each op; div equals multiplication by the inverse, ``b = 0`` absent;
the split sizes, disjointness and cover; seeded determinism; the prepared file's shapes and
decoded tokens; errors naming the key).
"""

from __future__ import annotations

import numpy as np

from pathdep.data.registry import Source, _float, _int, register

__all__ = ["ModularArithmetic", "OPS", "equations", "is_prime"]

OPS = ("add", "sub", "mul", "div")
_MAX_P = 4093   # p^2 equations: 16.7 M samples at most


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n ** 0.5) + 1))


def equations(p: int, op: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(a, b)`` and ``c = a op b mod p``, ``a``-major.

    Args:
        p: a prime.
        op: one of :data:`OPS` (``div``: ``a * b^(p-2) mod p``, pairs with ``b = 0`` left out).

    Returns:
        ``(a, b, c)`` int64 arrays of length ``p^2`` (``p (p - 1)`` for ``div``).
    """
    a, b = (g.ravel().astype(np.int64) for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
    if op == "add":
        c = (a + b) % p
    elif op == "sub":
        c = (a - b) % p
    elif op == "mul":
        c = (a * b) % p
    else:
        inv = np.array([pow(int(v), p - 2, p) for v in range(p)], dtype=np.int64)
        c = (a * inv[b]) % p
    return a, b, c


@register
class ModularArithmetic(Source):
    """All equations ``a op b = c (mod p)``: tokens ``(a, b, =)``, label ``c``, a seeded split."""

    name = "modular_arithmetic"
    keys = frozenset({"p", "op", "train_fraction", "seed"})
    defaults = {"p": 113, "op": "add", "train_fraction": 0.3, "seed": 0}
    subset = False
    normalize = False

    def _params(self, name: str, spec: dict) -> dict:
        p = _int(name, spec, "p", self.defaults["p"], minimum=2)
        if not is_prime(p) or p > _MAX_P:
            raise ValueError(f"datasets.{name}.p: expected a prime <= {_MAX_P}, got {p}")
        op = spec.get("op", self.defaults["op"])
        if op not in OPS:
            raise ValueError(f"datasets.{name}.op: expected one of {', '.join(OPS)}, got {op!r}")
        frac = _float(name, spec, "train_fraction", self.defaults["train_fraction"], 0.0, 1.0, open_lo=True)
        seed = _int(name, spec, "seed", self.defaults["seed"], minimum=0)
        if spec.get("normalize"):
            raise ValueError(f"datasets.{name}.normalize: token ids are not normalised (expected false)")
        n = p * (p - 1) if op == "div" else p * p
        n_train = min(max(int(round(frac * n)), 1), n - 1)
        return {"p": p, "op": op, "frac": frac, "seed": seed, "n": n, "n_train": n_train}

    def check(self, name, spec, *, offline=False, datasets=None):
        self._params(name, spec)

    def info(self, name, spec, *, check_files=False, datasets=None):
        q = self._params(name, spec)
        return {"in_shape": (3,), "out_dim": q["p"] + 1, "n_train": q["n_train"], "exact": True}

    def load(self, name, spec, *, datasets=None):
        q = self._params(name, spec)
        p = q["p"]
        a, b, c = equations(p, q["op"])
        dtype = np.uint8 if p < 256 else np.uint16
        x = np.stack([a, b, np.full_like(a, p)], axis=1).astype(dtype)
        perm = np.random.default_rng(q["seed"]).permutation(q["n"])
        tr, te = np.sort(perm[:q["n_train"]]), np.sort(perm[q["n_train"]:])
        sym = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[q["op"]]
        return dict(x_train=x[tr], y_train=c[tr], x_test=x[te], y_test=c[te],
                    classes=[str(v) for v in range(p)] + ["="], pixel_scale=1.0,
                    split=f"all {q['n']} equations a {sym} b = c (mod {p}) as tokens (a, b, =) with '=' id {p}; "
                          f"random {q['n_train']} train ({q['frac']:g}) / {q['n'] - q['n_train']} test, "
                          f"numpy default_rng({q['seed']}).permutation")
