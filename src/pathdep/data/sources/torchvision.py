"""The ``torchvision`` source: ``torchvision.datasets`` MNIST / FashionMNIST / CIFAR10 / CIFAR100.

What it reads: the real torchvision loaders (``dataset``: ``mnist`` | ``fashion_mnist`` |
``cifar10`` | ``cifar100``) under ``root``, downloading only when ``download: true``; images become
(N, C, H, W) uint8 codes (``pixel_scale`` 255), the official train/test split.

How it was checked: ``tests/datasets/test_torchvision.py`` writes the same tiny IDX files in
torchvision's MNIST / FashionMNIST raw layout (the arrays equal those of the ``idx``
source) and tiny CIFAR-10 pickle batches in the real format; missing files with
``download: false`` give one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pathdep.data.registry import Source, _bool, _did_you_mean, _str, register

__all__ = ["TorchvisionSource"]

# under root, the files torchvision looks for there).
_TV_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                   "t10k-labels-idx1-ubyte")
_TV_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
_TORCHVISION = {
    "mnist": ("MNIST", (1, 28, 28), 10, 60000, "MNIST/raw", _TV_MNIST_FILES),
    "fashion_mnist": ("FashionMNIST", (1, 28, 28), 10, 60000, "FashionMNIST/raw", _TV_MNIST_FILES),
    "cifar10": ("CIFAR10", (3, 32, 32), 10, 50000, "cifar-10-batches-py", _TV_CIFAR_FILES),
    # CIFAR-100: the 100 fine labels ("fine_labels", names from meta's fine_label_names)
    "cifar100": ("CIFAR100", (3, 32, 32), 100, 50000, "cifar-100-python", ("train", "test", "meta")),
}


@register
class TorchvisionSource(Source):
    """``torchvision.datasets`` MNIST / FashionMNIST / CIFAR10 / CIFAR100 under ``root``."""

    name = "torchvision"
    keys = frozenset({"dataset", "root", "download"})
    defaults = {"root": "data/", "download": False}

    def check(self, name, spec, *, offline=False, datasets=None):
        which = spec.get("dataset")
        if which not in _TORCHVISION:
            raise ValueError(f"datasets.{name}.dataset: expected one of {', '.join(_TORCHVISION)}; got {which!r}"
                             f"{_did_you_mean(which, _TORCHVISION)}")
        _str(name, spec, "root", self.defaults["root"])
        if _bool(name, spec, "download", self.defaults["download"]) and offline:
            raise ValueError(f"datasets.{name}.download: true, but the config says offline: true")

    def info(self, name, spec, *, check_files=False, datasets=None):
        """Known shapes; ``check_files`` with ``download: false``: the files torchvision reads exist."""
        which = spec["dataset"]
        _, shape, n_classes, n_train, folder, files = _TORCHVISION[which]
        if check_files and not self.param(spec, "download"):
            root = Path(self.param(spec, "root"))
            missing = [f for f in files if not (root / folder / f).is_file()]
            if missing:
                raise ValueError(f"datasets.{name}.root: {which} not found under {root} and download is false "
                                 f"({root / folder / missing[0]} is missing); set download: true, or point root "
                                 f"at the folder that holds {folder}/")
        return {"in_shape": shape, "out_dim": n_classes, "n_train": n_train, "exact": True}

    def load(self, name, spec, *, datasets=None):
        import torchvision.datasets as tvd

        which = spec.get("dataset")
        root = self.param(spec, "root")
        download = _bool(name, spec, "download", False)
        cls_name, *_, folder, files = _TORCHVISION[which]
        cls = getattr(tvd, cls_name)
        out = {}
        for split, train in (("train", True), ("test", False)):
            try:
                ds = cls(root=root, train=train, download=download)
            except RuntimeError as e:
                if not download:
                    raise ValueError(
                        f"datasets.{name}.root: {which} not found under {root} and download is false; set "
                        f"download: true or point root at the folder that contains {folder}/ ({e})") from None
                raise ValueError(f"datasets.{name}: {which} could not be downloaded into {root}: {e}") from None
            except OSError as e:  # network errors during download (URLError is an OSError)
                raise ValueError(f"datasets.{name}: {which} could not be downloaded into {root}: {e}") from None
            data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
            if data.ndim == 3:  # MNIST-like (N, H, W)
                data = data[:, None]
            else:  # CIFAR (N, H, W, C) -> (N, C, H, W)
                data = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
            targets = ds.targets.numpy() if isinstance(ds.targets, torch.Tensor) else np.asarray(ds.targets)
            out[f"x_{split}"], out[f"y_{split}"] = data, targets
            out["classes"] = [str(c) for c in ds.classes]
        return dict(out, pixel_scale=255.0, split="official train/test")
