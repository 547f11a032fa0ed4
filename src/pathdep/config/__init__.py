"""The experiment config (layer ``config``): loading, schema and semantic validation (asking
the ``data`` registry and ``core``), sweep expansion, run names and seeds.

Modules: :mod:`~pathdep.config.validation` (:func:`validate`, the passes in order),
:mod:`~pathdep.config.schema` (loading, the schema pass, one-line messages),
:mod:`~pathdep.config.expand` (run defaults, sweep expansion, run names),
:mod:`~pathdep.config.datasets` (names and dataset blocks, through the data registry),
:mod:`~pathdep.config.runs` (checks of one resolved run), :mod:`~pathdep.config.blocks`
(the table of the settings blocks' checks) and one ``config/<family>.py`` per settings
block (its ``DEFAULTS``, ``resolve`` and ``check``).

``python -m pathdep.config FILE`` checks a config file and prints one line.
"""

from pathdep.config.datasets import dataset_info  # noqa: F401
from pathdep.config.errors import ConfigError  # noqa: F401
from pathdep.config.expand import BASE_DEFAULTS, TOP_DEFAULTS, expand_experiment, origin, top_setting  # noqa: F401
from pathdep.config.merge import deep_merge  # noqa: F401
from pathdep.config.runs import resolve_model  # noqa: F401
from pathdep.config.schema import load_config  # noqa: F401
from pathdep.config.validation import main, validate  # noqa: F401
from pathdep.core.context import canonical, run_seeds  # noqa: F401
