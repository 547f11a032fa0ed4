"""Datasets (layer ``data``): one registry of sources (IDX files, torchvision, sklearn digits,
teacher-student, ...) that preparation and config validation both ask.

The public API is re-exported here: :func:`prepare_dataset`, :func:`load_dataset`,
:class:`Dataset`, :func:`read_idx`, :data:`SOURCES`.
"""

from pathdep.data.sources import (  # noqa: F401
    FORMAT,
    SOURCES,
    Dataset,
    load_dataset,
    prepare_dataset,
    read_idx,
    teacher_forward,
)
