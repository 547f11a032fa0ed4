"""pathdep: how much does a trained network depend on its path through weight space?

The package holds all logic (datasets, models, seeded initialisation and perturbations,
vectorised ensemble training with a pure update map, HDF5 trajectories, metrics and
analyses); the Snakemake workflow in the repository root only calls it. It never imports
snakemake, so every piece is usable from a notebook.
"""

__version__ = "0.1.0"
