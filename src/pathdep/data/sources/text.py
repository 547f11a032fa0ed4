"""The ``text`` source: character-level next-token prediction on a local UTF-8 file.

What it builds: the file's characters (``max_chars`` first ones when given) and their
vocabulary, the sorted distinct characters (so a character's id is its rank; ``out_dim``
is the vocabulary size). A sample is a window of ``context`` consecutive character ids,
``x = ids[i : i + context]``, labelled by the character that follows, ``y = ids[i +
context]``, for every ``i`` in steps of ``stride``. The text is split *by position*,
not at random (overlapping windows would leak between random splits): windows whose
target lies in the first ``1 - test_fraction`` of the text are the train split, the
others the test split. Token ids are stored as integer codes (uint8 for vocabularies up
to 256, else uint16) and decoded to exact float ids on load; ``normalize`` stays false.

The target is the next character of the *last* position only (one label per window), so
the task is an ordinary classification that every pathdep family reads unchanged; a loss
over all positions of a window would need a sequence task kind (not implemented).

How it was checked: ``tests/datasets/test_text.py`` (a small file written by the test:
windows and targets against the string itself, the vocabulary, the positional split, the
stride, the prepared file's shapes; errors naming the key).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pathdep.data.registry import Source, _float, _int, _str, register

__all__ = ["Text", "read_text"]


def read_text(path: str | Path, max_chars: int | None = None) -> str:
    """The file's text (UTF-8), its first ``max_chars`` characters when given."""
    text = Path(path).read_text(encoding="utf-8")
    return text if max_chars is None else text[:max_chars]


@register
class Text(Source):
    """Next-character prediction from windows of ``context`` characters of a UTF-8 file."""

    name = "text"
    keys = frozenset({"path", "context", "stride", "test_fraction", "max_chars"})
    defaults = {"context": 32, "stride": 1, "test_fraction": 0.1, "max_chars": None}
    subset = False
    normalize = False

    def _params(self, name: str, spec: dict) -> dict:
        path = _str(name, spec, "path")
        context = _int(name, spec, "context", self.defaults["context"])
        stride = _int(name, spec, "stride", self.defaults["stride"])
        frac = _float(name, spec, "test_fraction", self.defaults["test_fraction"], 0.0, 1.0, open_lo=True)
        max_chars = _int(name, spec, "max_chars", None, minimum=2, allow_none=True)
        if spec.get("normalize"):
            raise ValueError(f"datasets.{name}.normalize: token ids are not normalised (expected false)")
        return {"path": path, "context": context, "stride": stride, "frac": frac, "max_chars": max_chars}

    def _text(self, name: str, q: dict) -> str:
        try:
            text = read_text(q["path"], q["max_chars"])
        except FileNotFoundError:
            raise ValueError(f"datasets.{name}.path: no such file {q['path']!r}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"datasets.{name}.path: {q['path']!r} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        return text

    def _windows(self, name: str, q: dict) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Windows ``(N, context)``, targets ``(N,)``, vocabulary, and which windows are train."""
        text = self._text(name, q)
        vocab = sorted(set(text))
        lut = {ch: i for i, ch in enumerate(vocab)}
        ids = np.fromiter((lut[ch] for ch in text), dtype=np.int64, count=len(text))
        T = q["context"]
        starts = np.arange(0, len(ids) - T, q["stride"])
        n_train_chars = int(round((1 - q["frac"]) * len(ids)))
        train = starts + T < n_train_chars
        if len(starts) == 0 or train.all() or not train.any():
            raise ValueError(f"datasets.{name}.context: {q['path']!r} has {len(ids)} characters: too few for "
                             f"windows of {T} with test_fraction {q['frac']:g} in both splits")
        x = ids[starts[:, None] + np.arange(T)[None, :]]
        return x, ids[starts + T], vocab, train

    def check(self, name, spec, *, offline=False, datasets=None):
        self._params(name, spec)

    def info(self, name, spec, *, check_files=False, datasets=None):
        q = self._params(name, spec)
        x, _, vocab, train = self._windows(name, q)
        return {"in_shape": (q["context"],), "out_dim": len(vocab), "n_train": int(train.sum()), "exact": True}

    def load(self, name, spec, *, datasets=None):
        q = self._params(name, spec)
        x, y, vocab, train = self._windows(name, q)
        x = x.astype(np.uint8 if len(vocab) <= 256 else np.uint16)
        return dict(x_train=x[train], y_train=y[train], x_test=x[~train], y_test=y[~train],
                    classes=vocab, pixel_scale=1.0,
                    split=f"character windows of {q['context']} (stride {q['stride']}) of {q['path']}, next "
                          f"character as label; split by position: targets in the first "
                          f"{1 - q['frac']:g} of the text train, the rest test")
