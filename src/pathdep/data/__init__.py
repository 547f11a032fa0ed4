"""Datasets (layer ``data``): one registry of sources (IDX files, torchvision, sklearn digits,
teacher-student, synthetic, dominoes) that preparation and config validation both ask.

Modules: :mod:`~pathdep.data.registry` (the :class:`Source` base, :func:`register`,
:func:`check_spec`, :func:`dataset_info`), :mod:`~pathdep.data.sources` (one module per
source), :mod:`~pathdep.data.prepare` (:func:`prepare_dataset`: raw arrays -> one HDF5
file), :mod:`~pathdep.data.dataset` (:class:`Dataset`, :func:`load_dataset`),
:mod:`~pathdep.data.dominoes` (the domino builder). The public API is re-exported here.
"""

from pathdep.data.registry import (  # noqa: F401
    REGISTRY,
    Source,
    check_spec,
    dataset_info,
    prepared_info,
    register,
)
from pathdep.data.sources import idx_header, read_idx, teacher_forward  # noqa: F401  (registers them)
from pathdep.data.dataset import FORMAT, Dataset, load_dataset  # noqa: F401
from pathdep.data.prepare import prepare_dataset  # noqa: F401
