"""Open a run's files as one lazy :class:`xarray.Dataset` (layer ``io``: it only reads files).

:func:`open_run` joins everything a run directory ``results/<exp>/<run>/`` holds:

* ``trajectory.h5``: ``weights`` (member, checkpoint, param), ``buffers`` (member,
  checkpoint, buffer) when the model has any, and ``batch_loss`` (member, train_step), all
  **lazy** (a read touches only the requested slab of the HDF5 file); ``valid`` (member,
  checkpoint); the member table as coordinates on ``member`` (``role``, ``target``,
  ``kind``, ``epsilon``, ``distance``, ``seed_*``, ``hp_*``, ...) and
  ``distance_per_tensor`` (member, tensor);
* ``init.h5``: ``init_weights`` (member, param), lazy;
* every netCDF file of the run (``metrics.nc``, ``geometry.nc``, ``lyapunov.nc``,
  ``patterns.nc``, ...), opened lazily by xarray.

Names are made consistent: ``member`` and ``checkpoint`` (with the ``step`` and ``epoch``
coordinates) are shared (a file that disagrees on them is refused); a file's dimension that clashes with another's (a different size
or index, or the name of a coordinate such as ``lyapunov.nc``'s ``step``) becomes
``<family>_<dim>`` (``lyapunov_step``); a variable whose name is already taken becomes
``<family>_<name>`` (``geometry_dist``), unless it is a coordinate equal to the one there.
Every data variable carries ``source`` (its file). Attributes: ``experiment``, ``run``,
``swept``, ``config`` (the resolved run config), ``provenance`` (of the training),
``layout`` (the flat parameter vector), ``files``, and per file ``<family>_provenance``
and ``<family>_attrs``; all JSON strings (``json.loads`` them), so the dataset can be
written back to netCDF.

:func:`open_table` opens one experiment-level table (fits, scaling, spread, Koopman, NTK,
...) by name; :func:`list_experiments` and :func:`list_runs` list a results folder.
Experiments with their sweep coordinates: :func:`pathdep.config.results.open_experiment`.

How it was checked: ``tests/io/test_results.py`` (files written in the real formats by the
writers: every variable equals the file's, weights stay unread until indexed, clashing
names renamed, the tiny workflow run opened).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from pathdep.io.atomic import PARTIAL

# per-run netCDF files in the order they are joined (any other *.nc of the run follows, sorted)
RUN_FILES = ("metrics.nc", "geometry.nc", "lyapunov.nc", "patterns.nc")

# dimensions every file of a run shares: a file that disagrees on them belongs to another run
SHARED = ("member", "checkpoint")

# experiment-level files: name -> (CSV pattern, netCDF pattern) under the results folder
TABLES = {
    "fits": ("{exp}/fits.csv", "{exp}/fits.nc"),
    "scaling": ("{exp}/scaling.csv", "{exp}/scaling.nc"),
    "patterns_summary": ("{exp}/patterns_summary.csv", None),
    "fits_summary": ("fits_summary.csv", None),
    "spread": ("spread/spread.csv", "spread/spread.nc"),
    "koopman": ("koopman/{exp}.csv", "koopman/{exp}.nc"),
    "ntk": (None, "ntk/{exp}.nc"),
    "lyapunov_link": ("lyapunov/link.csv", None),
    "lyapunov_study": ("lyapunov/study_auc.csv", "lyapunov/study.nc"),
    "lyapunov_roc": (None, "lyapunov/roc.nc"),
    "hypersphere": (None, "hypersphere/theory.nc"),
}


class _LazyH5(BackendArray):
    """A lazily read view of HDF5 datasets: one file, or several stacked on a leading ``run`` axis.

    Args:
        paths: the HDF5 files (one per run when ``stacked``).
        name: the dataset inside each file.
        order: output axis ``a`` is the file's axis ``order[a]`` (``(1, 0, 2)`` turns
            ``(C, K, P)`` into ``(K, C, P)``).
        stacked: prepend a ``run`` axis; files of smaller shape are padded with NaN.

    A read opens the file, reads the bounding box of the requested indices and closes it;
    nothing is read at construction beyond shapes and dtypes.
    """

    def __init__(self, paths: list[Path], name: str, order: tuple[int, ...], stacked: bool = False):
        self.paths, self.name, self.order, self.stacked = [Path(p) for p in paths], name, tuple(order), stacked
        shapes, dtypes = [], []
        for p in self.paths:
            with h5py.File(p, "r") as f:
                shapes.append(tuple(f[name].shape[i] for i in self.order))
                dtypes.append(f[name].dtype)
        self.file_shapes = shapes
        full = tuple(max(s[a] for s in shapes) for a in range(len(self.order)))
        self.shape = ((len(paths),) if stacked else ()) + full
        dtype = np.result_type(*dtypes)
        ragged = stacked and any(s != full for s in shapes)
        self.dtype = np.dtype(np.result_type(dtype, np.float32)) if ragged else np.dtype(dtype)
        self.reads = 0  # number of file reads, for tests and for the curious

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._raw)

    def _raw(self, key: tuple) -> np.ndarray:
        sels = [np.array([k]) if isinstance(k, (int, np.integer)) else np.arange(*k.indices(n))
                for k, n in zip(key, self.shape)]
        runs, inner = (sels[0], sels[1:]) if self.stacked else (np.array([0]), sels)
        out = np.full((len(runs),) + tuple(len(s) for s in inner), np.nan if self.dtype.kind == "f" else 0,
                      dtype=self.dtype)
        for i, r in enumerate(runs):
            self._read_one(int(r), inner, out[i])
        if not self.stacked:
            out = out[0]
        drop = tuple(a for a, k in enumerate(key) if isinstance(k, (int, np.integer)))
        return out.reshape([n for a, n in enumerate(out.shape) if a not in drop])

    def _read_one(self, r: int, sels: list[np.ndarray], out: np.ndarray) -> None:
        """Fill ``out`` (a view) with file ``r``'s values at ``sels`` (those inside its shape)."""
        shape = self.file_shapes[r]
        valid = [s[s < n] for s, n in zip(sels, shape)]
        if any(len(v) == 0 for v in valid):
            return
        box = [slice(int(v.min()), int(v.max()) + 1) for v in valid]
        file_key = [slice(None)] * len(self.order)
        for a, axis in enumerate(self.order):
            file_key[axis] = box[a]
        with h5py.File(self.paths[r], "r") as f:
            block = np.transpose(f[self.name][tuple(file_key)], self.order)
        self.reads += 1
        block = block[np.ix_(*[v - b.start for v, b in zip(valid, box)])]
        out[np.ix_(*[np.nonzero(s < n)[0] for s, n in zip(sels, shape)])] = block


def lazy_h5(paths: list[Path], name: str, order: tuple[int, ...], dims: tuple[str, ...],
            stacked: bool = False) -> xr.Variable:
    """An :class:`xarray.Variable` over HDF5 dataset ``name`` that reads nothing until indexed
    (see :class:`_LazyH5`; ``dims`` name the output axes, ``run`` first when ``stacked``)."""
    return xr.Variable(dims, indexing.LazilyIndexedArray(_LazyH5(paths, name, order, stacked)))


class _LazyDecoded(BackendArray):
    """Weights ``(K, C, P)`` of a trajectory stored with ``training.checkpoints`` options
    (deltas, a lossy precision): read lazily, one checkpoint at a time, through
    :meth:`pathdep.io.trajectory.Trajectory.weights`, which decodes them."""

    def __init__(self, path: Path):
        from pathdep.io.trajectory import Trajectory
        self.path, self._open = Path(path), Trajectory
        with Trajectory(path) as tr:
            self.shape = (tr.n_members, tr.n_checkpoints, tr.layout.n_params)
            self.dtype = np.dtype(tr.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._raw)

    def _raw(self, key: tuple) -> np.ndarray:
        sels = [np.array([k]) if isinstance(k, (int, np.integer)) else np.arange(*k.indices(n))
                for k, n in zip(key, self.shape)]
        with self._open(self.path) as tr:
            out = np.stack([tr.weights(int(c))[sels[0]][:, sels[2]] for c in sels[1]], axis=1)
        drop = tuple(a for a, k in enumerate(key) if isinstance(k, (int, np.integer)))
        return out.reshape([n for a, n in enumerate(out.shape) if a not in drop])


def _members(f: h5py.File) -> dict[str, np.ndarray]:
    g = f["members"]
    out = {}
    for c in g:
        v = g[c][()]
        if v.dtype.kind in ("O", "S"):
            v = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in v])
        out[c] = v
    return out


def _trajectory(path: Path) -> xr.Dataset:
    """The trajectory's variables (weights lazy) on ``member``/``checkpoint``."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != "trajectory":
            raise ValueError(f"{path}: not a pathdep trajectory file (attribute kind={f.attrs.get('kind')!r})")
        if not bool(f.attrs.get("complete", False)):
            raise ValueError(f"{path}: trajectory is incomplete (training did not finish)")
        members, steps, epochs = _members(f), f["steps"][()], f["epochs"][()]
        valid, diverged, names = f["valid"][()], f["diverged_step"][()], list(f)
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    layout = json.loads(attrs.get("layout", "{}"))
    k, c = valid.shape[1], valid.shape[0]
    ds = xr.Dataset(coords={"member": np.arange(k), "checkpoint": np.arange(c),
                            "step": ("checkpoint", steps), "epoch": ("checkpoint", epochs),
                            "diverged_step": ("member", diverged)})
    ds["weights"] = (lazy_h5([path], "weights", (1, 0, 2), ("member", "checkpoint", "param")) if "weights" in names
                     else xr.Variable(("member", "checkpoint", "param"),
                                      indexing.LazilyIndexedArray(_LazyDecoded(path))))
    if "buffers" in names:
        ds["buffers"] = lazy_h5([path], "buffers", (1, 0, 2), ("member", "checkpoint", "buffer"))
    ds["batch_loss"] = lazy_h5([path], "loss", (1, 0), ("member", "train_step"))
    ds["valid"] = (("member", "checkpoint"), valid.T)
    dpt = members.pop("distance_per_tensor", None)
    if dpt is not None:
        ds["distance_per_tensor"] = (("member", "tensor"), dpt)
        ds = ds.assign_coords(tensor=list(layout.get("names", range(dpt.shape[1]))))
    ds = ds.assign_coords({col: ("member", v) for col, v in members.items()})
    for name in ds.data_vars:
        ds[name].attrs["source"] = "trajectory.h5"
    ds.attrs.update({key: str(attrs[key]) for key in ("config", "provenance", "layout", "seeds") if key in attrs})
    ds.attrs["trajectory_attrs"] = json.dumps({key: v for key, v in attrs.items() if key not in ds.attrs},
                                              default=str)
    return ds


def _rename_clashes(base: xr.Dataset, new: xr.Dataset, family: str) -> xr.Dataset:
    """Rename ``new``'s dimensions and variables that clash with ``base`` (module docstring)."""
    dims = {}
    for d in new.dims:
        if d in base.variables and d not in base.dims:
            dims[d] = f"{family}_{d}"
        elif d in base.dims:
            same = base.sizes[d] == new.sizes[d] and (
                (d in base.indexes) == (d in new.indexes)
                and (d not in base.indexes or base.indexes[d].equals(new.indexes[d])))
            if not same and d in SHARED:
                raise ValueError(f"its {d!r} dimension ({new.sizes[d]}) differs from the trajectory's "
                                 f"({base.sizes[d]})" if base.sizes[d] != new.sizes[d] else f"its {d!r} index differs")
            if not same:
                dims[d] = f"{family}_{d}"
    new = new.rename({d: n for d, n in dims.items()})
    names = {}
    for name, var in new.variables.items():
        if name in new.dims or name not in base.variables:
            continue
        old = base.variables[name]
        if name in new.coords and name in base.coords and old.dims == var.dims and old.equals(var):
            new = new.drop_vars(name)
        else:
            names[name] = f"{family}_{name}"
    return new.rename(names)


def _add_file(ds: xr.Dataset, path: Path, files: dict) -> xr.Dataset:
    family = path.stem
    new = xr.open_dataset(path)
    for name in new.data_vars:
        new[name].attrs.setdefault("source", path.name)
    attrs = dict(new.attrs)
    new.attrs = {}
    new = _rename_clashes(ds, new, family)
    out = xr.merge([ds, new], join="exact", compat="override", combine_attrs="override")
    for key in ("config", "experiment", "run", "swept"):
        if key in attrs and key not in out.attrs:
            out.attrs[key] = str(attrs[key])
    if "provenance" in attrs:
        out.attrs[f"{family}_provenance"] = str(attrs.pop("provenance"))
    out.attrs[f"{family}_attrs"] = json.dumps({k: v for k, v in attrs.items() if k != "config"}, default=_jsonable)
    files[family] = path.name
    return out


def _jsonable(v):
    return v.tolist() if isinstance(v, (np.ndarray, np.generic)) else str(v)


def open_run(path: str | Path) -> xr.Dataset:
    """Open a run directory ``results/<exp>/<run>/`` as one lazy dataset.

    Args:
        path: the run directory (holding ``trajectory.h5`` and/or the run's netCDF files).

    Returns:
        An :class:`xarray.Dataset` on ``member`` x ``checkpoint`` (coordinates ``step``,
        ``epoch``) plus each file's own dimensions; see the module docstring for names and
        attributes. Weights are read only when indexed, e.g.
        ``ds.weights.isel(checkpoint=-1).values`` reads one checkpoint.

    Raises:
        FileNotFoundError: the directory holds neither a trajectory nor a netCDF file.
        ValueError: a file that is not a finished pathdep file, or files of one run that
            disagree on the shared coordinates (``member``/``checkpoint`` index).
    """
    path = Path(path)
    nc = [path / n for n in RUN_FILES if (path / n).exists()]
    nc += sorted(p for p in path.glob("*.nc") if p.name not in RUN_FILES and not p.name.endswith(PARTIAL))
    traj, init = path / "trajectory.h5", path / "init.h5"
    if not traj.exists() and not nc:
        raise FileNotFoundError(f"{path}: no trajectory.h5 and no netCDF file (not a run directory)")
    files = {}
    ds = _trajectory(traj) if traj.exists() else xr.Dataset()
    if traj.exists():
        files["trajectory"] = traj.name
    if init.exists():
        ds["init_weights"] = lazy_h5([init], "weights", (0, 1), ("member", "param"))
        ds["init_weights"].attrs["source"] = init.name
        files["init"] = init.name
    for p in nc:
        try:
            ds = _add_file(ds, p, files)
        except ValueError as exc:
            raise ValueError(f"{p}: does not fit the run's other files ({str(exc).splitlines()[0]})") from None
    config = json.loads(ds.attrs.get("config", "{}"))
    ds.attrs.setdefault("experiment", str(config.get("experiment", path.parent.name)))
    ds.attrs.setdefault("run", str(config.get("run", path.name)))
    ds.attrs.setdefault("swept", json.dumps(config.get("swept", {})))
    ds.attrs["files"] = json.dumps(files)
    ds.attrs["path"] = str(path)
    return ds


def list_runs(results_dir: str | Path, exp: str) -> list[str]:
    """Run names of experiment ``exp`` (directories holding a trajectory or metrics), sorted."""
    d = Path(results_dir) / exp
    return sorted(p.name for p in d.iterdir() if p.is_dir() and _is_run(p)) if d.is_dir() else []


def list_experiments(results_dir: str | Path) -> list[str]:
    """Experiments of a results folder: directories with at least one run, sorted."""
    d = Path(results_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: results folder not found")
    return sorted(p.name for p in d.iterdir() if p.is_dir() and list_runs(d, p.name))


def _is_run(p: Path) -> bool:
    return (p / "trajectory.h5").exists() or (p / "metrics.nc").exists()


def table_path(results_dir: str | Path, name: str, exp: str | None = None, netcdf: bool = False) -> Path:
    """Where table ``name`` of :data:`TABLES` lives (``exp``: the experiment, Koopman
    experiment or ``toy``, or NTK section, for names whose pattern has one).

    Raises:
        ValueError: unknown name, a missing ``exp``, or a format the table does not have.
    """
    if name not in TABLES:
        raise ValueError(f"open_table: unknown table {name!r} (expected one of: {', '.join(TABLES)})")
    pattern = TABLES[name][1 if netcdf else 0]
    if pattern is None:
        raise ValueError(f"open_table: table {name!r} has no {'netCDF' if netcdf else 'CSV'} file "
                         f"(use netcdf={not netcdf})")
    if "{exp}" in pattern and not exp:
        raise ValueError(f"open_table: table {name!r} needs exp= ({pattern})")
    return Path(results_dir) / pattern.format(exp=exp)


def open_table(results_dir: str | Path, name: str, exp: str | None = None,
               netcdf: bool = False) -> pd.DataFrame | xr.Dataset:
    """Open an experiment-level file: a CSV as a :class:`pandas.DataFrame`, a netCDF file
    (``netcdf=True``, or a table with only one) as a lazy :class:`xarray.Dataset`.

    Args:
        results_dir: the results folder (``results/``).
        name: a key of :data:`TABLES` (``fits``, ``scaling``, ``spread``, ``koopman``, ``ntk``, ...).
        exp: the experiment (or Koopman experiment / ``toy``, or NTK section) where needed.
        netcdf: open the netCDF file of a table that has both.

    Raises:
        FileNotFoundError: the workflow has not written the file (one line with its path).
        ValueError: see :func:`table_path`.
    """
    csv, nc = TABLES.get(name, (None, None))
    path = table_path(results_dir, name, exp, netcdf=netcdf or (csv is None and nc is not None))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {name} table (not produced by this configuration or not run yet)")
    return xr.open_dataset(path) if path.suffix == ".nc" else pd.read_csv(path)
