"""The dataset sources, one module each; importing this package registers them all.

Each module defines one :class:`pathdep.data.registry.Source` registered with ``@register``
(its keys and defaults, a cheap ``info`` that config validation calls, and the loader that
returns raw arrays for :func:`pathdep.data.prepare.prepare_dataset`):

* :mod:`~pathdep.data.sources.idx` -- ``idx``: the IDX files of an MNIST-style dataset;
* :mod:`~pathdep.data.sources.torchvision` -- ``torchvision``: MNIST / FashionMNIST / CIFAR10;
* :mod:`~pathdep.data.sources.sklearn_digits` -- ``sklearn_digits``: the bundled 8x8 digits;
* :mod:`~pathdep.data.sources.teacher_student` -- ``teacher_student``: regression on a random
  tanh teacher;
* :mod:`~pathdep.data.sources.synthetic` -- ``synthetic``: Gaussian classes ``s`` sigma apart;
* :mod:`~pathdep.data.sources.dominoes` -- ``dominoes``: two configured datasets stacked;
* :mod:`~pathdep.data.sources.modular` -- ``modular_arithmetic``: every ``a op b = c (mod p)``
  as tokens ``(a, b, =)`` (grokking);
* :mod:`~pathdep.data.sources.text` -- ``text``: next-character prediction on a UTF-8 file.

A new source is one more module here, imported below (the import order is the order in which
errors list the sources).
"""

from pathdep.data.sources import idx, torchvision, sklearn_digits, teacher_student, synthetic, dominoes  # noqa: F401
from pathdep.data.sources import modular, text  # noqa: F401
from pathdep.data.sources.idx import idx_header, read_idx  # noqa: F401
from pathdep.data.sources.teacher_student import teacher_forward  # noqa: F401
