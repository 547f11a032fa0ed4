"""pathdep: how much does a trained network depend on its path through weight space?

The package holds all logic (datasets, models, seeded initialisation and perturbations,
vectorised ensemble training with a pure update map, HDF5 trajectories, metrics and
analyses); the Snakemake workflow in the repository root only calls it. It never imports
snakemake, so every piece is usable from a notebook.

Results in a notebook (imported on first use, so ``import pathdep`` stays cheap)::

    import pathdep
    run = pathdep.open_run("results/epsilon/eps0.0001")   # one lazy xarray.Dataset
    exp = pathdep.open_experiment("results", "epsilon")   # runs along `run`, swept values as coords
    fits = pathdep.open_table("results", "fits", "epsilon")

(:mod:`pathdep.io.results`, :mod:`pathdep.config.results`; the files: docs/files.md.)
"""

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "open_run": "pathdep.io.results",
    "open_table": "pathdep.io.results",
    "list_experiments": "pathdep.io.results",
    "list_runs": "pathdep.io.results",
    "open_experiment": "pathdep.config.results",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pathdep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
