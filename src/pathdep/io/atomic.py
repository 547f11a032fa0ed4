"""One atomic writer for every output file (layer ``io``).

Every file the workflow produces is written to ``<path>.partial`` and renamed onto
``path`` only when complete (``os.replace`` is atomic on POSIX), so Snakemake, a rerun or a
reader never sees a half-written file, and a failure leaves whatever existed before
untouched. HDF5 (h5py), netCDF (xarray with the h5netcdf engine) and CSV (pandas) go
through :func:`atomic_write`.

How it was checked: ``tests/io/test_atomic.py`` (a writer that raises leaves the old file
and no ``.partial``; the three formats round-trip).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial"


def partial_path(path: str | Path) -> Path:
    """The temporary name ``<path>.partial`` a file is written under before its rename."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it onto ``path``, else remove it.

    Example:
        >>> with atomic_write("out.h5") as tmp:           # doctest: +SKIP
        ...     with h5py.File(tmp, "w") as f: ...
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_netcdf(ds, path: str | Path) -> None:
    """Write an ``xarray.Dataset`` with h5netcdf, atomically."""
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def write_csv(df, path: str | Path, index: bool = False) -> None:
    """Write a ``pandas.DataFrame`` as CSV, atomically."""
    with atomic_write(path) as tmp:
        df.to_csv(tmp, index=index)


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)
