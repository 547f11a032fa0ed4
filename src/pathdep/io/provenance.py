"""Provenance attached to every output file.

What it computes: a JSON-serialisable dict with the resolved config, seeds, package,
Python, NumPy, torch and CUDA versions, the git commit of the checkout (and whether it
was dirty), host and device. Trajectory (HDF5) and metrics (netCDF) files store it as the
``provenance`` attribute, a JSON string, so any file can be traced to the code and
config that made it.

How it was checked: ``tests/test_provenance.py`` round-trips it through HDF5 and netCDF
attributes and checks the keys.
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

from pathdep import __version__


def git_commit(path: str | Path | None = None) -> tuple[str, bool]:
    """(commit hash, dirty) of the git checkout containing ``path``; ("unknown", False) outside git."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return (sha or "unknown"), dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def device_name(device: str | torch.device | None) -> str:
    """Human-readable device: ``cpu (<processor>)`` or ``cuda:0 (<GPU name>)``."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def collect(config: dict | None = None, device: str | torch.device | None = None,
            seeds: dict | None = None) -> dict:
    """Provenance dict for an output file.

    Args:
        config: the resolved config slice that produced the output.
        device: the torch device used (``None`` -> cpu).
        seeds: named seeds used (entropy of SeedSequences), if any.
    """
    sha, dirty = git_commit()
    return {
        "pathdep_version": __version__,
        "git_commit": sha,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none",
        "device": device_name(device),
        "host": platform.node(),
        "platform": platform.platform(),
        "config": config if config is not None else {},
        "seeds": seeds if seeds is not None else {},
    }


def dumps(prov: dict) -> str:
    return json.dumps(prov, sort_keys=True, default=str)
