"""Datasets (layer ``data``): one registry of sources (IDX files, torchvision, sklearn digits,
teacher-student, ...) that preparation and config validation both ask.

The public API is re-exported here: :func:`prepare_dataset`, :func:`load_dataset`,
:class:`Dataset`, :func:`read_idx`, :data:`SOURCES` (the registry: source name ->
:class:`Source`), :func:`register`, :func:`check_spec`, :func:`dataset_info`.
A module that registers a new source is imported below (see :mod:`pathdep.data.registry`).
"""

from pathdep.data.registry import (  # noqa: F401
    REGISTRY,
    Source,
    check_spec,
    dataset_info,
    prepared_info,
    register,
)
from pathdep.data.sources import (  # noqa: F401
    FORMAT,
    SOURCES,
    Dataset,
    idx_header,
    load_dataset,
    prepare_dataset,
    read_idx,
    teacher_forward,
)

# Sources registered by other modules of data/ (importing them registers them).
import pathdep.data.dominoes  # noqa: E402,F401  (sources: dominoes, synthetic)
