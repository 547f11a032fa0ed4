"""The experiment config (layer ``config``): loading, schema and semantic validation (asking
the ``data`` registry and ``core``), sweep expansion, run names and seeds.

``python -m pathdep.config FILE`` checks a config file and prints one line.
"""

from pathdep.config.validation import (  # noqa: F401
    BASE_DEFAULTS,
    LIST_VALUED,
    SCHEMA_PATH,
    ConfigError,
    dataset_info,
    dataset_shape,
    deep_merge,
    expand_experiment,
    load_config,
    main,
    origin,
    resolve_model,
    validate,
)
from pathdep.core.context import canonical, run_seeds  # noqa: F401
