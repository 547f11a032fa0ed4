"""The ``teacher_student`` source: regression on Gaussian inputs labelled by a random teacher.

What it draws: inputs ``x ~ N(0, I_{d_in})`` labelled by a random one-hidden-layer tanh
teacher ``y = W2 tanh(W1 x + b1) + b2 + noise * e`` (``e ~ N(0, I)``); ``n_train`` and
``n_test`` are the numbers of samples drawn. Seeds: ``SeedSequence(seed).spawn(4)`` for the
teacher, the train inputs, the test inputs and the noise. The teacher's weights are stored in
the prepared file (group ``/teacher``); it acts on the raw inputs (``normalize`` defaults to
false here).

How it was checked: ``tests/datasets/test_teacher_student.py`` (seeded determinism; ``y ==
teacher(x)`` at zero noise, recomputed independently in float64).
"""

from __future__ import annotations

import numpy as np

from pathdep.data.registry import Source, _float, _int, register

__all__ = ["TeacherStudent", "teacher_forward"]

@register
class TeacherStudent(Source):
    """Regression on Gaussian inputs labelled by a random one-hidden-layer tanh teacher."""

    name = "teacher_student"
    keys = frozenset({"d_in", "d_out", "teacher_hidden", "n_train", "n_test", "noise", "seed"})
    defaults = {"d_in": 10, "d_out": 1, "teacher_hidden": 32, "n_train": 2000, "n_test": 500,
                "noise": 0.0, "seed": 0}
    subset = False
    normalize = False

    def _params(self, name: str, spec: dict) -> dict:
        p = {k: self.param(spec, k) for k in self.defaults}
        for k in ("d_in", "d_out", "teacher_hidden", "n_train", "n_test"):
            p[k] = _int(name, p, k)
        p["noise"] = _float(name, p, "noise", 0.0, 0.0)
        p["seed"] = _int(name, p, "seed", 0, minimum=0)
        return p

    def check(self, name, spec, *, offline=False, datasets=None):
        self._params(name, spec)

    def info(self, name, spec, *, check_files=False, datasets=None):
        p = self._params(name, spec)
        return {"in_shape": (p["d_in"],), "out_dim": p["d_out"], "n_train": p["n_train"], "exact": True}

    def load(self, name, spec, *, datasets=None):
        p = self._params(name, spec)
        d_in, d_out, h, n_tr, n_te = p["d_in"], p["d_out"], p["teacher_hidden"], p["n_train"], p["n_test"]
        noise, seed = p["noise"], p["seed"]
        s_teacher, s_train, s_test, s_noise = np.random.SeedSequence(seed).spawn(4)
        rt = np.random.default_rng(s_teacher)
        teacher = {  # LeCun-normal scaling so pre-activations are O(1) for x ~ N(0, I)
            "W1": rt.standard_normal((h, d_in)) / np.sqrt(d_in),
            "b1": rt.standard_normal(h) * 0.1,
            "W2": rt.standard_normal((d_out, h)) / np.sqrt(h),
            "b2": rt.standard_normal(d_out) * 0.1,
        }
        rn = np.random.default_rng(s_noise)
        out = {}
        for split, n, ss in (("train", n_tr, s_train), ("test", n_te, s_test)):
            # inputs are rounded to float32 first so the stored x is exactly the teacher's input
            x = np.random.default_rng(ss).standard_normal((n, d_in)).astype(np.float32)
            y = teacher_forward(teacher, x.astype(np.float64))
            if noise > 0:
                y = y + noise * rn.standard_normal(y.shape)
            out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.float32)
        return dict(out, teacher=teacher, classes=[], pixel_scale=1.0, task="regression",
                    split=f"independent N(0, I) draws: {n_tr} train / {n_te} test, seed {seed} "
                          f"(SeedSequence spawn: teacher, train x, test x, noise)")


def teacher_forward(teacher: dict, x: np.ndarray) -> np.ndarray:
    """Evaluate the teacher ``y = W2 tanh(W1 x + b1) + b2`` in float64.

    Args:
        teacher: ``W1 (h, d_in)``, ``b1 (h,)``, ``W2 (d_out, h)``, ``b2 (d_out,)``.
        x: Raw (un-normalised) inputs ``(N, d_in)``.

    Returns:
        ``(N, d_out)`` float64 outputs (no noise).
    """
    return np.tanh(x @ teacher["W1"].T + teacher["b1"]) @ teacher["W2"].T + teacher["b2"]
